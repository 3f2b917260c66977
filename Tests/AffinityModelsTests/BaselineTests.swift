import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

func fit(_ name: String, _ settings: [String: String] = [:], on data: TrainingData) throws -> any Recommender {
    var h = Hyperparameters(settings)
    let model = try ModelRegistry.make(name, hyperparameters: &h)
    try model.fit(data, context: TrainingContext())
    return model
}

func scores(_ model: any Recommender, user: Int32) -> [Float] {
    var out = [Float](repeating: 0, count: model.itemCount)
    out.withUnsafeMutableBufferPointer { model.score(users: [user], into: $0) }
    return out
}

/// 4 users × 4 items: u0 {0,1}, u1 {0,1,2}, u2 {1,2}, u3 {3}.
let tiny = TrainingData(userCount: 4, itemCount: 4,
                        interactions: Interactions(users: [0, 0, 1, 1, 1, 2, 2, 3], items: [0, 1, 0, 1, 2, 1, 2, 3]))

@Suite struct BaselineTests {
    @Test func mostPopCountsTrainingInteractions() throws {
        let m = try fit("pop", on: tiny)
        #expect(scores(m, user: 0) == [2, 3, 2, 1])
        #expect(scores(m, user: 3) == [2, 3, 2, 1])
    }

    @Test func itemKNNMatchesBruteForceCosine() throws {
        let m = try fit("itemknn", ["k": "1"], on: tiny)
        // Column norms: √2, √3, √2, 1. sim(0,1) = 2/√6, sim(0,2) = 1/2, sim(1,2) = 2/√6, item 3 isolated.
        // k = 1: neighbour of 0 is 1, of 1 is 0 (tie with 2: lower index), of 2 is 1; item 3 has none.
        // score(u0, i) = Σ_{j ∈ {0,1}} W[j, i]: i=0 ← W[1,0] = 2/√6; i=1 ← W[0,1] = 2/√6; i=2 ← W[1,2] = 2/√6.
        let s = scores(m, user: 0)
        let w = Float(2 / (6.0.squareRoot() + 1e-6))
        #expect(abs(s[0] - w) < 1e-6 && abs(s[1] - w) < 1e-6 && abs(s[2] - w) < 1e-6 && s[3] == 0)
        let all = try fit("itemknn", ["k": "3", "shrink": "1"], on: tiny)
        let s3 = scores(all, user: 3)
        #expect(s3 == [0, 0, 0, 0])
        // With shrink 1: score(u2, 0) = sim(0,1) + sim(0,2) = 2/(√6+1) + 1/(2+1).
        let s2 = scores(all, user: 2)
        #expect(abs(Double(s2[0]) - (2 / (6.0.squareRoot() + 1 + 1e-6) + 1 / (3 + 1e-6))) < 1e-5)
    }

    @Test func easeMatchesClosedFormInDoublePrecision() throws {
        let lambda = 0.5
        let m = try fit("ease", ["reg_weight": String(lambda)], on: tiny)
        // Reference: P = (XᵀX + λI)⁻¹ by Gauss–Jordan in Double, B = −P / diag(P), diag 0.
        let x: [[Double]] = [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
        let n = 4
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        var inv = g
        for i in 0..<n {
            inv[i][i] = 1
            for j in 0..<n {
                var s: Double = i == j ? lambda : 0
                for u in 0..<4 { s += x[u][i] * x[u][j] }
                g[i][j] = s
            }
        }
        for c in 0..<n {
            let p = g[c][c]
            for j in 0..<n { g[c][j] /= p; inv[c][j] /= p }
            for r in 0..<n where r != c {
                let f = g[r][c]
                for j in 0..<n { g[r][j] -= f * g[c][j]; inv[r][j] -= f * inv[c][j] }
            }
        }
        let b = (0..<n).map { i in (0..<n).map { j in i == j ? 0 : -inv[i][j] / inv[j][j] } }
        for u in 0..<4 {
            let s = scores(m, user: Int32(u))
            for i in 0..<n {
                let want = (0..<n).reduce(0.0) { $0 + x[u][$1] * b[$1][i] }
                #expect(abs(Double(s[i]) - want) < 1e-4, "user \(u) item \(i)")
            }
        }
    }

    @Test func easeRefusesWhenTheItemMatrixDoesNotFit() throws {
        var h = Hyperparameters(["max_memory_gb": "0.00001"])
        let m = try ModelRegistry.make("ease", hyperparameters: &h)
        let big = TrainingData(userCount: 1, itemCount: 5000, interactions: Interactions(users: [0], items: [4999]))
        #expect(throws: ModelError.self) { try m.fit(big, context: TrainingContext()) }
        #expect(EASE.requiredBytes(items: 40_981) == 40_981 * 40_981 * 4)
    }

    @Test func unknownModelsAndSettingsAreErrors() {
        var h = Hyperparameters(["kk": "3"])
        #expect(throws: HyperparameterError.self) { _ = try ModelRegistry.make("itemknn", hyperparameters: &h) }
        var h2 = Hyperparameters(["k": "three"])
        #expect(throws: HyperparameterError.self) { _ = try ModelRegistry.make("itemknn", hyperparameters: &h2) }
        var h3 = Hyperparameters()
        #expect(throws: ModelError.self) { _ = try ModelRegistry.make("nosuchmodel", hyperparameters: &h3) }
    }

    /// The learned baselines beat MostPop on the built-in data (20-core items keep this fast in debug builds).
    @Test func neighbourhoodModelsBeatMostPop() throws {
        let d = try Preprocessing(userCore: 5, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        let data = TrainingData(split: split)
        let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
        func ndcg(_ name: String) throws -> Double {
            let m = try fit(name, on: data)
            return evaluator.evaluate(m, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
        }
        let pop = try ndcg("mostpop"), knn = try ndcg("itemknn"), ease = try ndcg("ease"), svd = try ndcg("puresvd")
        #expect(knn > pop * 1.2)
        #expect(ease > knn)
        #expect(svd > pop * 1.2)
    }

    /// PureSVD at full rank reproduces R exactly (r_u V Vᵀ = r_u); at rank 1 it scores with the leading
    /// singular pair of R, computed here by power iteration.
    @Test func pureSVDReconstructsTheMatrix() throws {
        let full = try fit("puresvd", ["rank": "4"], on: tiny)
        for u in 0..<4 {
            let row = scores(full, user: Int32(u))
            for i in 0..<4 {
                let truth: Float = tiny.userItems.contains(row: u, col: Int32(i)) ? 1 : 0
                #expect(abs(row[i] - truth) < 1e-4)
            }
        }
        // Leading right singular vector of R by power iteration on RᵀR.
        let r: [[Float]] = (0..<4).map { u in (0..<4).map { tiny.userItems.contains(row: u, col: Int32($0)) ? 1 : 0 } }
        var v: [Float] = [1, 1, 1, 1]
        for _ in 0..<200 {
            let rv = r.map { row in zip(row, v).reduce(0) { $0 + $1.0 * $1.1 } }
            v = (0..<4).map { i in (0..<4).reduce(Float(0)) { $0 + r[$1][i] * rv[$1] } }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / n }
        }
        let one = try fit("puresvd", ["rank": "1"], on: tiny)
        let projection = r[1].enumerated().reduce(Float(0)) { $0 + $1.element * v[$1.offset] }
        for (i, s) in scores(one, user: 1).enumerated() { #expect(abs(s - projection * v[i]) < 1e-4) }
    }
}
