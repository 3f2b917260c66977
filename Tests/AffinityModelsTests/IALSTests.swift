import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
@testable import AffinityModels
import AffinityTestSupport

@Suite struct IALSTests {
    func model(_ settings: [String: String]) throws -> IALS {
        var h = Hyperparameters(settings)
        return try IALS(&h)
    }

    /// Solves the n × n system A x = b by Gaussian elimination with partial pivoting, in double precision.
    func gaussianElimination(_ a: [[Double]], _ b: [Double]) -> [Double] {
        var m = a, v = b
        let n = b.count
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
            m.swapAt(col, pivot); v.swapAt(col, pivot)
            for row in (col + 1)..<n {
                let f = m[row][col] / m[col][col]
                for k in col..<n { m[row][k] -= f * m[col][k] }
                v[row] -= f * v[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            let s = ((row + 1)..<n).reduce(v[row]) { $0 - m[row][$1] * x[$1] }
            x[row] = s / m[row][row]
        }
        return x
    }

    /// The objective L (IALS's doc comment) computed pair by pair over the whole user × item matrix.
    func naiveObjective(users x: Matrix, items y: Matrix, strengths r: SparseMatrix, alpha: Double, unobserved: Double,
                        lambda: Double, exponent: Double) -> Double {
        func dot(_ u: Int, _ i: Int) -> Double { (0..<x.cols).reduce(0) { $0 + Double(x[u, $1]) * Double(y[i, $1]) } }
        func squaredNorm(_ m: Matrix, _ row: Int) -> Double { (0..<m.cols).reduce(0) { $0 + Double(m[row, $1] * m[row, $1]) } }
        let itemCounts = r.columnCounts()
        var loss = 0.0
        for u in 0..<x.rows {
            let observed = Dictionary(uniqueKeysWithValues: zip(r.columns(ofRow: u), r.values[r.rowStart[u]..<r.rowStart[u + 1]]))
            for i in 0..<y.rows {
                let s = dot(u, i)
                if let strength = observed[Int32(i)] {
                    loss += (1 + alpha * Double(strength)) * (1 - s) * (1 - s)
                } else {
                    loss += unobserved * s * s
                }
            }
            loss += lambda * pow(Double(r.count(ofRow: u)) + unobserved * Double(y.rows), exponent) * squaredNorm(x, u)
        }
        for i in 0..<y.rows {
            loss += lambda * pow(Double(itemCounts[i]) + unobserved * Double(x.rows), exponent) * squaredNorm(y, i)
        }
        return loss
    }

    /// One half-step on a tiny matrix with ratings: conjugate gradient run to convergence and the Cholesky solve both
    /// give each user the solution of the full weighted least-squares problem, built here entry by entry (every
    /// item, observed or not, with its own weight) and solved by Gaussian elimination. d = 4 runs the kernel's
    /// any-width path, d = 16 a fixed-width one.
    @Test(arguments: [4, 16]) func rowSolvesEqualTheDenseLeastSquaresSolution(d: Int) throws {
        let itemCount = 6
        let ratings = SparseMatrix(rows: 3, cols: itemCount, rowIndices: [0, 0, 0, 1, 1, 2], colIndices: [0, 2, 5, 1, 2, 3],
                                   values: [1, 3, 2, 5, 1, 4])
        var rng = SeededGenerator(seed: 3)
        let y = Matrix(rows: itemCount, cols: d, values: (0..<(itemCount * d)).map { _ in rng.nextGaussian() })
        let start = Matrix(rows: 3, cols: d, values: (0..<(3 * d)).map { _ in rng.nextGaussian() })
        let (alpha, unobserved, lambda, exponent) = (0.7, 0.3, 0.05, 0.5)
        let settings = ["embedding_size": "\(d)", "alpha": "\(alpha)", "unobserved_weight": "\(unobserved)",
                        "reg_weight": "\(lambda)", "reg_exponent": "\(exponent)"]

        var expected: [[Double]] = []
        for u in 0..<3 {
            var a = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
            var b = [Double](repeating: 0, count: d)
            for i in 0..<itemCount {
                let p = (ratings.rowStart[u]..<ratings.rowStart[u + 1]).first { ratings.colIndex[$0] == Int32(i) }
                let weight = p.map { 1 + alpha * Double(ratings.values[$0]) } ?? unobserved
                for r in 0..<d {
                    if p != nil { b[r] += weight * Double(y[i, r]) }
                    for c in 0..<d { a[r][c] += weight * Double(y[i, r]) * Double(y[i, c]) }
                }
            }
            let lambdaU = lambda * pow(Double(ratings.count(ofRow: u)) + unobserved * Double(itemCount), exponent)
            for r in 0..<d { a[r][r] += lambdaU }
            expected.append(gaussianElimination(a, b))
        }

        for extra in [["solver": "cg", "cg_steps": "\(3 * d)"], ["solver": "cholesky"]] {
            let ials = try model(settings.merging(extra) { $1 })
            let step = IALS.HalfStep(matrix: ratings, otherCount: itemCount, model: ials)
            var x = start
            let (rowsLoss, gramian) = try step.solve(&x, given: y, gramian: BLAS.matmul(y, y, transA: true))
            // The solved rows' Gramian XᵀX, for the next half-step.
            for r in 0..<d {
                for c in 0..<d {
                    let entry = (0..<3).reduce(0.0) { $0 + Double(x[$1, r]) * Double(x[$1, c]) }
                    #expect(abs(Double(gramian[r, c]) - entry) < 1e-5 * max(1, abs(entry)))
                }
            }
            for u in 0..<3 {
                for c in 0..<d {
                    #expect(abs(Double(x[u, c]) - expected[u][c]) < 1e-4 * max(1, abs(expected[u][c])), "\(extra) user \(u)")
                }
            }
            // The solved rows' share of the objective: observed pairs (minus their α0 term) and the users' penalty.
            var share = 0.0
            for u in 0..<3 {
                var norm = 0.0
                for c in 0..<d { norm += Double(x[u, c] * x[u, c]) }
                share += lambda * pow(Double(ratings.count(ofRow: u)) + unobserved * Double(itemCount), exponent) * norm
                for p in ratings.rowStart[u]..<ratings.rowStart[u + 1] {
                    let i = Int(ratings.colIndex[p])
                    let s = (0..<d).reduce(0.0) { $0 + Double(x[u, $1]) * Double(y[i, $1]) }
                    share += (1 + alpha * Double(ratings.values[p])) * (1 - s) * (1 - s) - unobserved * s * s
                }
            }
            #expect(abs(rowsLoss - share) < 1e-4 * abs(share))
        }
    }

    /// The Gramian XᵀX the half-steps pass on, on enough rows that the kernel's pieces hold several four-row blocks
    /// and a remainder.
    @Test(arguments: [16, 64]) func gramianEqualsTheSumOfOuterProducts(d: Int) throws {
        let rows = 1201
        var rng = SeededGenerator(seed: 8)
        let x = Matrix(rows: rows, cols: d, values: (0..<(rows * d)).map { _ in rng.nextGaussian() })
        let pattern = SparseMatrix(rows: rows, cols: 2, rowIndices: (0..<Int32(rows)).map { $0 }, colIndices: (0..<rows).map { Int32($0 % 2) })
        let step = IALS.HalfStep(matrix: pattern, otherCount: 2, model: try model(["embedding_size": "\(d)"]))
        #expect(step.pieces.count - 1 < rows / 4)
        let gramian = step.gramian(x)
        var expected = [Double](repeating: 0, count: d * d)
        for row in 0..<rows {
            let v = x.row(row).map(Double.init)
            for r in 0..<d { for c in 0..<d { expected[r * d + c] += v[r] * v[c] } }
        }
        for r in 0..<d {
            for c in 0..<d {
                #expect(abs(Double(gramian[r, c]) - expected[r * d + c]) < 1e-4 * max(10, abs(expected[r * d + c])), "\(r), \(c)")
            }
        }
    }

    /// Each half-step minimises the objective over one side (exactly, or by CG steps that each lower it), so the
    /// objective never rises; the value reported equals the objective computed pair by pair.
    @Test(arguments: ["cg", "cholesky"]) func objectiveDecreasesEveryHalfStep(solver: String) throws {
        let data = TrainingData(split: try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020))
        let settings = ["embedding_size": "16", "epochs": "6", "solver": solver, "alpha": "2", "unobserved_weight": "0.5",
                        "reg_weight": "0.01", "reg_exponent": "1", "init_std": "1"]
        let ials = try model(settings)
        try ials.fit(data, context: TrainingContext(seed: 4))
        #expect(ials.halfStepObjectives.count == 12)
        for (before, after) in zip(ials.halfStepObjectives, ials.halfStepObjectives.dropFirst()) {
            #expect(after <= before * (1 + 1e-6), "\(before) → \(after)")
        }
        #expect(ials.halfStepObjectives.last! < 0.8 * ials.halfStepObjectives.first!)
        #expect(ials.history.map(\.loss) == stride(from: 1, to: 12, by: 2).map { ials.halfStepObjectives[$0] })
        let naive = naiveObjective(users: ials.userEmbeddings, items: ials.itemEmbeddings, strengths: data.userItems,
                                   alpha: 2, unobserved: 0.5, lambda: 0.01, exponent: 1)
        #expect(abs(ials.halfStepObjectives.last! - naive) < 1e-4 * naive)
    }

    @Test func learnsAndBeatsMostPop() throws {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        let data = TrainingData(split: split)
        let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
        func ndcg(_ model: any Recommender) -> Double {
            evaluator.evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
        }
        var h = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &h)
        try pop.fit(data, context: TrainingContext())
        let ials = try model(["embedding_size": "32", "epochs": "8"])
        try ials.fit(data, context: TrainingContext(seed: 1))
        #expect(ndcg(ials) > ndcg(pop) * 1.1, "ials \(ndcg(ials)) vs mostpop \(ndcg(pop))")
        #expect(ials.userEmbeddings.rows == split.userCount && ials.itemEmbeddings.rows == split.itemCount)
    }

    /// Rows are solved independently whatever the schedule: one chunk on one worker, or many on all of them, give
    /// bit-identical factors (the thread count only changes the schedule).
    @Test(arguments: ["cg", "cholesky"]) func resultsDoNotDependOnTheSchedule(solver: String) throws {
        let data = TrainingData(split: try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020))
        func fitted(chunks: Int?) throws -> IALS {
            let ials = try model(["embedding_size": "16", "epochs": "3", "solver": solver, "reg_exponent": "1", "reg_weight": "0.001"])
            ials.parallelChunks = chunks
            try ials.fit(data, context: TrainingContext(seed: 9))
            return ials
        }
        let serial = try fitted(chunks: 1), spread = try fitted(chunks: 7), automatic = try fitted(chunks: nil)
        for other in [spread, automatic] {
            #expect(other.userEmbeddings == serial.userEmbeddings && other.itemEmbeddings == serial.itemEmbeddings)
            #expect(other.halfStepObjectives == serial.halfStepObjectives)
        }
    }

    /// Validation after every iteration: training stops after more than `stopping_step` iterations without
    /// improvement and keeps the factors of the best one.
    @Test func stopsEarlyAndKeepsTheBestIteration() throws {
        let data = TrainingData(split: try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020))
        let ials = try model(["embedding_size": "8", "epochs": "20", "stopping_step": "2"])
        let scores = [0.1, 0.3, 0.2, 0.25, 0.2, 0.9]
        var seen: [Matrix] = []
        try ials.fit(data, context: TrainingContext(seed: 2, validate: { scorer in
            seen.append((scorer as! IALS).userEmbeddings)
            return ["mrr@10": scores[seen.count - 1]]
        }))
        #expect(seen.count == 5)  // best at iteration 1, then three misses (more than stopping_step)
        #expect(ials.history.count == 5 && ials.history.allSatisfy { $0.validation != nil })
        #expect(ials.userEmbeddings == seen[1] && ials.userEmbeddings != seen[4])
    }

    @Test func badSettingsAreRefused() throws {
        for bad in [["reg_weight": "-0.1"], ["solver": "lu"], ["cg_steps": "0"], ["embedding_size": "0"], ["alpha": "-1"],
                    ["unobserved_weight": "-1"], ["reg_exponent": "-1"], ["init_std": "0"], ["epochs": "-1"], ["alpha": "lots"]] {
            #expect(throws: (any Error).self, "\(bad)") { _ = try model(bad) }
        }
        var h = Hyperparameters(["solver": "cholesky"])
        #expect(try ModelRegistry.make("ials", hyperparameters: &h) is IALS)
    }

    /// Without regularisation a user with one item and nothing weighting the rest has a singular system: the exact
    /// solver says so instead of returning NaN factors.
    @Test func singularSystemsAreReported() throws {
        let data = TrainingData(userCount: 2, itemCount: 3, interactions: Interactions(users: [0, 1], items: [0, 1]))
        let ials = try model(["embedding_size": "4", "epochs": "1", "solver": "cholesky", "reg_weight": "0", "unobserved_weight": "0"])
        #expect(throws: IALSError.self) { try ials.fit(data, context: TrainingContext()) }
    }
}
