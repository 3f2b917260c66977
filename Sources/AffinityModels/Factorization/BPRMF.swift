import AffinityCore

/// BPR-MF: matrix factorisation trained with Bayesian personalised ranking (Rendle et al., UAI 2009).
///
/// Score ⟨e_u, e_i⟩; loss −mean log σ(⟨e_u, e_i⟩ − ⟨e_u, e_j⟩) over (user, positive, sampled negative)
/// triples, plus `reg_weight · ½ (‖e_u‖² + ‖e_i‖² + ‖e_j‖²) / batch` on the batch's embeddings (0 by default,
/// as RecBole's BPR). Embeddings are Xavier-normal initialised and trained with Adam on row-sparse gradients.
/// `loss=bce` trains pointwise instead, and `denoise=tce|rce` truncates or reweights the loss (`PairLossSettings`).
public final class BPRMF: GradientModel, EmbeddingModel {
    public static let name = "bpr"
    public static let summary = "matrix factorisation with the BPR pairwise loss (Rendle et al. 2009)"

    public let dimension: Int
    public let regularization: Float
    public let training: TrainerSettings
    /// Row-sparse (lazy) optimizer updates: only the rows in the batch move. False gives PyTorch's dense
    /// semantics (every row's moments decay and keep moving the row each step), which is what RecBole runs.
    public let sparseUpdates: Bool
    public let lossSettings: PairLossSettings
    /// Batches trained so far (T-CE's schedule).
    private var iteration = 0

    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [userTable, itemTable] }
    public var userEmbeddings: Matrix { userTable.value }
    public var itemEmbeddings: Matrix { itemTable.value }

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        regularization = Float(try h.float("reg_weight", default: 0))
        training = try TrainerSettings(&h)
        sparseUpdates = try h.bool("sparse_updates", default: true)
        lossSettings = try PairLossSettings(&h)
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        userTable = Tensor(parameter: xavierNormal(rows: data.userCount, cols: dimension, rng: &rng), sparseGradients: sparseUpdates)
        itemTable = Tensor(parameter: xavierNormal(rows: data.itemCount, cols: dimension, rng: &rng), sparseGradients: sparseUpdates)
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let denoising = lossSettings.denoising(iteration: iteration)
        // BPR, plain or denoised, stays in the fused kernel; the pointwise form needs both scores.
        let loss = lossSettings.form == .bpr
            ? Loss.bprFactorization(userTable: userTable, itemTable: itemTable, users: users, positives: positives,
                                    negatives: negatives, denoising: denoising)
            : nil
        guard regularization > 0 || loss == nil else { return loss! }
        let u = Tensor.gather(userTable, rows: users)
        let i = Tensor.gather(itemTable, rows: positives)
        let j = Tensor.gather(itemTable, rows: negatives)
        let ranking = loss ?? Loss.pairLoss(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j),
                                            form: lossSettings.form, denoising: denoising)
        guard regularization > 0 else { return ranking }
        return ranking + Tensor.scale(Loss.embeddingPenalty([u, i, j], batchSize: users.count, squared: true), regularization)
    }
}
