import Foundation
import AffinityCore
import AffinityEval
import AffinityKernels

/// iALS: weighted matrix factorisation for implicit feedback, fitted by alternating least squares (Hu, Koren &
/// Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008), with the settings of Rendle et
/// al., "Revisiting the Performance of iALS on Item Recommendation Benchmarks" (RecSys 2022).
///
/// Every user–item pair is a regression target: 1 with confidence c_ui = 1 + α·r_ui where the user interacted
/// (r_ui = 1, or the rating or count with `use_ratings`), 0 with weight α0 (`unobserved_weight`) elsewhere:
///
///     L = Σ_{(u,i) observed} c_ui (1 − ⟨x_u, y_i⟩)²  +  α0 Σ_{(u,i) unobserved} ⟨x_u, y_i⟩²
///         + Σ_u λ_u ‖x_u‖² + Σ_i λ_i ‖y_i‖²,     λ_u = λ·(|I_u| + α0·|I|)^ν,  λ_i = λ·(|U_i| + α0·|U|)^ν
///
/// (Rendle et al.'s frequency-scaled regularisation; ν = 0 gives Hu et al.'s plain λ, α0 = 1 their
/// unit weight of unobserved pairs.) With the items fixed, each user's embedding solves (Hu et al., eq. 4)
///
///     (α0·YᵀY + Σ_{i ∈ I_u} (c_ui − α0) y_i y_iᵀ + λ_u I) x_u = Σ_{i ∈ I_u} c_ui y_i,
///
/// where the Gramian YᵀY is known before the half-step (the previous one accumulates it while its rows are still
/// in cache, piece by piece, summed in a fixed order), so a user costs O(d² + |I_u|·d) per
/// conjugate-gradient step (`solver=cg`, `cg_steps` steps warm-started from the current x_u, as the `implicit`
/// library and Takács et al. 2011) or O(|I_u|·d² + d³) exactly (`solver=cholesky`); items likewise. Rows are
/// solved in parallel by a C kernel (`affinity_ials_solve_rows`), each independently, so results do not depend on
/// the thread count. Rendle et al.'s objective (1 on observed pairs plus α0 on all pairs) is this one with
/// c_ui = 1 + α0 (alpha = unobserved_weight) up to scale: the targets become 1 + α0, which scales the factors by
/// √(1 + α0) and λ by 1 / (1 + α0) and leaves the ranking as it is.
///
/// Each iteration (a user and an item half-step) is an epoch: with a validation split it is validated every
/// `eval_step` iterations, training stops after more than `stopping_step` iterations without improvement, and the
/// best iteration's factors are kept (the trainer's rules). The reported loss is the objective L.
public final class IALS: EmbeddingModel {
    public static let name = "ials"
    public static let summary = "weighted matrix factorisation by alternating least squares (Hu et al. 2008; Rendle et al. 2022)"

    public enum Solver: String, Sendable, CaseIterable {
        case cg, cholesky
    }

    public let dimension: Int
    /// λ: the regularisation weight, scaled per row by (row count + α0 · other side's size)^ν.
    public let regularization: Double
    /// ν: the frequency-scaling exponent of the regularisation (0: plain λ).
    public let regularizationExponent: Double
    /// α: the confidence of an observed pair is 1 + α·r_ui.
    public let alpha: Double
    /// α0: the weight of each unobserved pair.
    public let unobservedWeight: Double
    /// Initial factors are N(0, (init_std / √d)²), as in Rendle et al.'s code.
    public let initStd: Double
    public let solver: Solver
    public let cgSteps: Int
    /// r_ui from the ratings (or, without ratings, the number of times the pair occurs) instead of 1.
    public let useRatings: Bool
    public let iterations: Int
    public let evalStep: Int
    public let stoppingStep: Int
    public let validMetric: String

    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var history: [EpochReport] = []
    /// The objective after every half-step: users then items, iteration by iteration. Each half-step solves its
    /// side's rows exactly (Cholesky) or moves them towards the exact solution (CG), so it never increases with
    /// the exact solver.
    public private(set) var halfStepObjectives: [Double] = []
    /// The number of contiguous chunks each half-step's rows are split into for the workers (nil: `Parallel`'s
    /// choice from the thread count). Rows are solved independently, so this changes nothing but the schedule;
    /// tests set it to show that.
    var parallelChunks: Int?

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        regularization = try h.float("reg_weight", default: 0.01)
        regularizationExponent = try h.float("reg_exponent", default: 0)
        alpha = try h.float("alpha", default: 1)
        unobservedWeight = try h.float("unobserved_weight", default: 1)
        initStd = try h.float("init_std", default: 0.1)
        solver = Solver(rawValue: try h.string("solver", default: "cg", allowed: Solver.allCases.map(\.rawValue)))!
        cgSteps = try h.int("cg_steps", default: 3)
        useRatings = try h.bool("use_ratings", default: false)
        iterations = try h.int("epochs", default: 15)
        evalStep = try h.int("eval_step", default: 1)
        stoppingStep = try h.int("stopping_step", default: 10)
        validMetric = try h.string("valid_metric", default: "mrr@10").lowercased()
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
        guard regularization >= 0 else { throw HyperparameterError.outOfRange("reg_weight", "must not be negative") }
        guard regularizationExponent >= 0 else { throw HyperparameterError.outOfRange("reg_exponent", "must not be negative") }
        guard alpha >= 0 else { throw HyperparameterError.outOfRange("alpha", "must not be negative") }
        guard unobservedWeight >= 0 else { throw HyperparameterError.outOfRange("unobserved_weight", "must not be negative") }
        guard initStd > 0 else { throw HyperparameterError.outOfRange("init_std", "must be positive") }
        guard cgSteps > 0 else { throw HyperparameterError.outOfRange("cg_steps", "must be positive") }
        guard iterations >= 0 else { throw HyperparameterError.outOfRange("epochs", "must not be negative") }
        guard evalStep >= 0, stoppingStep >= 0 else {
            throw HyperparameterError.outOfRange("eval_step/stopping_step", "must not be negative")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let d = dimension
        var rng = SeededGenerator(seed: context.seed)
        let std = Float(initStd / Double(d).squareRoot())
        userEmbeddings = gaussianTable(rows: data.userCount, cols: d, std: std, rng: &rng)
        itemEmbeddings = gaussianTable(rows: data.itemCount, cols: d, std: std, rng: &rng)
        history = []
        halfStepObjectives = []

        // r_ui per nonzero of the user × item matrix (same pattern as `userItems`), then confidences per side.
        let strengths = useRatings
            ? SparseMatrix(rows: data.userCount, cols: data.itemCount, rowIndices: data.interactions.users,
                           colIndices: data.interactions.items, values: data.interactions.ratings)
            : data.userItems
        let users = HalfStep(matrix: strengths, otherCount: data.itemCount, model: self)
        let items = HalfStep(matrix: strengths.transposed(), otherCount: data.userCount, model: self)

        let a0 = unobservedWeight
        var itemGramian = items.gramian(itemEmbeddings)
        var userGramian: Matrix
        var bookkeeping = EpochBookkeeping<(users: Matrix, items: Matrix)>(evalStep: evalStep, stoppingStep: stoppingStep,
                                                                          validMetric: validMetric)
        for iteration in 0..<iterations {
            if bookkeeping.shouldStop { break }
            let start = ContinuousClock.now
            // Users given items, then items given users; the objective after each (the all-pairs term through
            // the two Gramians: Σ_u x_uᵀ (YᵀY) x_u = ⟨XᵀX, YᵀY⟩).
            let userPart: Double, itemPart: Double
            (userPart, userGramian) = try users.solve(&userEmbeddings, given: itemEmbeddings, gramian: itemGramian)
            halfStepObjectives.append(a0 * frobeniusProduct(userGramian, itemGramian) + userPart + items.penalty(itemEmbeddings))
            (itemPart, itemGramian) = try items.solve(&itemEmbeddings, given: userEmbeddings, gramian: userGramian)
            let objective = a0 * frobeniusProduct(userGramian, itemGramian) + itemPart + users.penalty(userEmbeddings)
            halfStepObjectives.append(objective)
            guard objective.isFinite else { throw IALSError.diverged(iteration: iteration) }
            let elapsed = ContinuousClock.now - start

            var report = EpochReport(epoch: iteration, loss: objective,
                                     seconds: elapsed.inSeconds)
            try bookkeeping.finish(&report, headline: String(format: "iteration %d: objective %.6g, %.3f s", iteration, objective, report.seconds),
                                   scorer: self, context: context, snapshot: { (userEmbeddings, itemEmbeddings) })
            history.append(report)
        }
        if let best = bookkeeping.best {
            (userEmbeddings, itemEmbeddings) = best.snapshot
            context.log("restored best iteration \(best.epoch) (valid \(validMetric) \(String(format: "%.4f", best.score)))")
        }
    }

    /// ⟨A, B⟩ = Σ a_ij b_ij in double precision.
    private func frobeniusProduct(_ a: Matrix, _ b: Matrix) -> Double {
        zip(a.storage, b.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// What one side's half-step needs besides the factors: its rows' nonzeros with their confidences, each row's
    /// λ_r, and the rows cut into pieces of about equal work.
    struct HalfStep {
        let rowStart: [Int]
        let columns: [Int32]
        let confidence: [Float]
        let rowRegularization: [Float]
        let dimension: Int
        let unobservedWeight: Float
        let cgSteps: Int
        let exact: Bool
        /// Boundaries of the row pieces handed to the workers (the same for any thread count).
        let pieces: [Int]
        let chunks: Int?
        let longestRow: Int

        init(matrix: SparseMatrix, otherCount: Int, model: IALS) {
            rowStart = matrix.rowStart
            columns = matrix.colIndex
            confidence = matrix.values.map { 1 + Float(model.alpha) * $0 }
            let a0 = model.unobservedWeight, lambda = model.regularization, nu = model.regularizationExponent
            rowRegularization = (0..<matrix.rows).map { r in
                Float(lambda * (nu == 0 ? 1 : pow(Double(matrix.count(ofRow: r)) + a0 * Double(otherCount), nu)))
            }
            dimension = model.dimension
            unobservedWeight = Float(a0)
            cgSteps = model.cgSteps
            exact = model.solver == .cholesky
            chunks = model.parallelChunks
            longestRow = (0..<matrix.rows).map { matrix.count(ofRow: $0) }.max() ?? 0
            // A row costs about d² (the Gramian product) plus d per nonzero; cut at equal shares of the total. Each
            // piece also keeps a d × d partial Gramian, so wide embeddings get fewer pieces (at most ~8 MB of them).
            let d = model.dimension, pieceCount = min(256, max(16, (1 << 21) / (d * d)))
            let total = matrix.nonZeros + matrix.rows * d
            var boundaries = [0], done = 0
            for r in 0..<matrix.rows {
                done += matrix.count(ofRow: r) + d
                if done * pieceCount >= total * boundaries.count && r + 1 < matrix.rows { boundaries.append(r + 1) }
            }
            boundaries.append(matrix.rows)
            pieces = boundaries
        }

        /// Σ_r λ_r ‖x_r‖² for this side's factors `x`.
        func penalty(_ x: Matrix) -> Double {
            var norms = [Float](repeating: 0, count: x.rows)
            x.storage.withUnsafeBufferPointer { xs in
                norms.withUnsafeMutableBufferPointer { out in
                    affinity_row_dots(xs.baseAddress!, xs.baseAddress!, Int32(x.rows), Int32(x.cols), out.baseAddress!)
                }
            }
            return zip(norms, rowRegularization).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }

        /// XᵀX of this side's factors (the initial ones; `solve` returns it for the rows it solves).
        func gramian(_ x: Matrix) -> Matrix {
            x.storage.withUnsafeBufferPointer { xs in
                let rows = UnsafeSendable(UnsafeMutablePointer(mutating: xs.baseAddress!))
                return forEachPiece({ _, _, _ in }, gramianOf: { rows.value })
            }
        }

        /// Solves every row of `x` given the other side's factors `y` and their Gramian YᵀY. Returns the solved
        /// rows' share of the objective (observed pairs and their own penalty, summed in row order) and their
        /// Gramian XᵀX, which the next half-step needs: it is accumulated piece by piece right after the piece is
        /// solved, while its rows are still in cache.
        func solve(_ x: inout Matrix, given y: Matrix, gramian: Matrix) throws -> (loss: Double, gramian: Matrix) {
            let d = dimension
            let scaledGramian = gramian.storage.map { $0 * unobservedWeight }
            var rowLoss = [Double](repeating: 0, count: x.rows)
            let failures = UnsafeMutableBufferPointer<Int64>.allocate(capacity: pieces.count - 1)
            defer { failures.deallocate() }
            let newGramian = rowStart.withUnsafeBufferPointer { starts in
                columns.withUnsafeBufferPointer { cols in
                    confidence.withUnsafeBufferPointer { conf in
                        rowRegularization.withUnsafeBufferPointer { reg in
                            y.storage.withUnsafeBufferPointer { other in
                                scaledGramian.withUnsafeBufferPointer { g in
                                    x.storage.withUnsafeMutableBufferPointer { xs in
                                        rowLoss.withUnsafeMutableBufferPointer { loss in
                                            let problem = affinity_ials_problem(
                                                row_start: UnsafeRawPointer(starts.baseAddress!).assumingMemoryBound(to: Int64.self),
                                                col: cols.baseAddress, confidence: conf.baseAddress, other: other.baseAddress,
                                                gramian: g.baseAddress, regularization: reg.baseAddress, unobserved: unobservedWeight,
                                                d: Int32(d), cg_steps: Int32(cgSteps), exact: exact ? 1 : 0,
                                                longest_row: Int64(longestRow))
                                            let shared = UnsafeSendable((problem, xs.baseAddress!, loss.baseAddress!, failures))
                                            return forEachPiece { piece, rows, workspace in
                                                var problem = shared.value.0
                                                let (_, x, loss, failures) = shared.value
                                                failures[piece] = affinity_ials_solve_rows(&problem, x, Int64(rows.lowerBound),
                                                                                           Int64(rows.upperBound), loss, workspace)
                                            } gramianOf: { shared.value.1 }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let failed = failures.first(where: { $0 != 0 }) { throw IALSError.notPositiveDefinite(row: Int(failed) - 1) }
            return (rowLoss.reduce(0, +), newGramian)
        }

        /// Runs `body` on every piece (its index, rows and a workspace for the kernel), the pieces spread over the
        /// workers in chunks, then adds the piece's rows of `gramianOf()` into its partial Gramian. The partials are
        /// summed in piece order, so the result does not depend on how the pieces were scheduled.
        private func forEachPiece(_ body: (Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void,
                                  gramianOf rows: () -> UnsafeMutablePointer<Float>) -> Matrix {
            let d = dimension, pieceCount = pieces.count - 1
            let workspaceSize = 3 * d * d + 4 * d + 8 + 2 * longestRow
            var partials = [Float](repeating: 0, count: pieceCount * d * d)
            let minimumChunk = chunks.map { (pieceCount + $0 - 1) / $0 } ?? 1
            partials.withUnsafeMutableBufferPointer { buffer in
                let shared = UnsafeSendable((buffer.baseAddress!, rows()))
                withoutActuallyEscaping(body) { body in
                    let task = UnsafeSendable(body)
                    Parallel.forEachChunk(0..<pieceCount, minimumChunk: minimumChunk) { chunk in
                        let (partials, x) = shared.value
                        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: workspaceSize)
                        defer { workspace.deallocate() }
                        for piece in chunk {
                            let range = pieces[piece]..<pieces[piece + 1]
                            task.value(piece, range, workspace)
                            affinity_gramian_upper_rows(x, Int32(d), Int64(range.lowerBound), Int64(range.upperBound),
                                                        partials + piece * d * d)
                        }
                    }
                }
            }
            var total = Matrix(rows: d, cols: d)
            total.storage.withUnsafeMutableBufferPointer { sum in
                partials.withUnsafeBufferPointer { parts in
                    for piece in 0..<pieceCount { affinity_axpy(Int32(d * d), 1, parts.baseAddress! + piece * d * d, sum.baseAddress!) }
                }
            }
            for i in 0..<d { for j in 0..<i { total[i, j] = total[j, i] } }  // the kernel fills the upper triangle
            return total
        }
    }
}

public enum IALSError: Error, CustomStringConvertible {
    case notPositiveDefinite(row: Int)
    case diverged(iteration: Int)

    public var description: String {
        switch self {
        case .notPositiveDefinite(let row):
            return "ials: the least-squares system of row \(row) is not positive definite; set reg_weight above 0"
        case .diverged(let iteration):
            return "ials: the objective is not finite after iteration \(iteration); raise reg_weight"
        }
    }
}
