import AffinityCore
import AffinityEval

/// Rel-MF: matrix factorisation trained with the unbiased pointwise loss of Saito, Yaginuma, Nishino, Sakata and
/// Nakata, "Unbiased Recommender Learning from Missing-Not-At-Random Implicit Feedback" (WSDM 2020).
///
/// A click is Y = O · R (observed and relevant); the ideal loss is over relevance R. With θ_i the probability that
/// item i is observed, eq. (9)'s estimator
///
///     (1/|D|) Σ_{(u,i) ∈ D} [ (Y_ui / θ_i) δ⁺(R̂_ui) + (1 − Y_ui / θ_i) δ⁻(R̂_ui) ]
///
/// is unbiased for it; R̂_ui = σ(⟨e_u, e_i⟩), and the local losses are the log loss δ⁺ = −log R̂, δ⁻ = −log(1 − R̂)
/// (`local_loss=log`, the paper's semi-synthetic code) or the squared loss δ⁺ = (1 − R̂)², δ⁻ = R̂²
/// (`local_loss=squared`, its real-data code). Clicked pairs (Y = 1) thus weigh δ⁺ by 1/θ and δ⁻ by 1 − 1/θ ≤ 0;
/// unclicked pairs (Y = 0) weigh δ⁻ by 1.
///
/// The sum over D is estimated from the shared trainer's samples: every clicked pair once per epoch, each with one
/// unclicked item drawn uniformly from the same user's n − |O_u| unclicked items. Weighing that draw's δ⁻ by
/// (n − |O_u|) / |O_u| (`unclicked_weight=all`, the default) makes the sampled terms an unbiased estimate of the sum
/// over all of u's unclicked pairs, so the batch loss (the mean of its 2B terms) estimates eq. (9) up to a constant.
/// This balance matters: with weight 1 (`unclicked_weight=1`, the equal-sized batches of Saito et al.'s real-data
/// code) the clicked pairs' negative δ⁻ weights outweigh the ~19× under-sampled unclicked pairs on ml-100k, the
/// scores of clicked items grow without check, and validation peaks within 5–10 epochs far below plain MF
/// (`Benchmarks/relmf_mnar.sh` and its notes).
///
/// Propensities come from popularity (`PopularityPropensity`, §5.2): θ_i = max((n_i / max n)^η, clip) with n_i
/// the item's training users, η = `propensity_power` (0.5), and the clipped estimator of §4.3 bounding the
/// weights 1/θ by 1/`propensity_clip`. `propensity_clip=1` sets every θ to 1: plain pointwise (logistic) MF.
///
/// With the log loss and 1/θ > 1 a clicked pair's loss keeps falling as its score grows (gradient σ(x) − 1/θ < 0),
/// so `reg_weight` (½ reg · (‖e_u‖² + ‖e_i‖² + ‖e_j‖²) / batch on the batch's embeddings, as BPR-MF) bounds it in
/// principle; in practice the unclicked terms do, and 1e-4 and 0 train alike on ml-100k.
public final class RelMF: GradientModel, EmbeddingModel {
    public static let name = "relmf"
    public static let summary = "MF with the unbiased (inverse-propensity) pointwise loss for MNAR implicit feedback (Saito et al. 2020)"

    public let dimension: Int
    public let regularization: Float
    public let propensityPower: Double
    public let propensityClip: Double
    public let squaredLoss: Bool
    public let training: TrainerSettings
    /// The weight of a sampled unclicked pair's δ⁻: nil for the per-user factor that makes the sampled terms an
    /// unbiased estimate of eq. (9)'s sum over all unclicked pairs, else this constant.
    public let unclickedWeight: Double?

    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    /// 1/θ_i for every item, set by `fit`.
    public private(set) var inversePropensity: [Float] = []
    /// Each user's weight on a sampled unclicked pair, set by `fit`.
    public private(set) var unclickedWeights: [Float] = []
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [userTable, itemTable] }
    public var userEmbeddings: Matrix { userTable.value }
    public var itemEmbeddings: Matrix { itemTable.value }

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        propensityPower = try h.float("propensity_power", default: 0.5)
        propensityClip = try h.float("propensity_clip", default: 0.1)
        squaredLoss = try h.string("local_loss", default: "log", allowed: ["log", "squared"]) == "squared"
        training = try TrainerSettings(&h)
        let unclicked = try h.string("unclicked_weight", default: "all")
        if unclicked == "all" { unclickedWeight = nil } else {
            guard let w = Double(unclicked), w > 0 else {
                throw HyperparameterError.invalid("unclicked_weight", unclicked, "'all' or a positive number")
            }
            unclickedWeight = w
        }
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
        guard regularization >= 0 else { throw HyperparameterError.outOfRange("reg_weight", "must be ≥ 0") }
        guard propensityPower >= 0 else { throw HyperparameterError.outOfRange("propensity_power", "must be ≥ 0") }
        guard propensityClip > 0 && propensityClip <= 1 else { throw HyperparameterError.outOfRange("propensity_clip", "must be in (0, 1]") }
    }

    /// The loss weights 1/θ_i for items with `popularity` training users: each in [1, 1/clip].
    public static func inversePropensities(popularity: [Int], power: Double, clip: Double) -> [Float] {
        PopularityPropensity(power: power, clip: clip).propensities(popularity: popularity).map { Float(1 / $0) }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        userTable = Tensor(parameter: xavierNormal(rows: data.userCount, cols: dimension, rng: &rng), sparseGradients: true)
        itemTable = Tensor(parameter: xavierNormal(rows: data.itemCount, cols: dimension, rng: &rng), sparseGradients: true)
        let popularity = (0..<data.itemCount).map { data.itemUsers.count(ofRow: $0) }
        inversePropensity = Self.inversePropensities(popularity: popularity, power: propensityPower, clip: propensityClip)
        unclickedWeights = (0..<data.userCount).map { u in
            if let unclickedWeight { return Float(unclickedWeight) }
            let clicked = data.userItems.count(ofRow: u)
            return clicked == 0 ? 0 : Float(data.itemCount - clicked) / Float(clicked)
        }
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let b = users.count
        let u = Tensor.gather(userTable, rows: users + users)
        let items = Tensor.gather(itemTable, rows: positives + negatives)
        let logits = Tensor.rowDot(u, items)
        // Per-term weights of δ⁺ and δ⁻: clicked pairs (1/θ, 1 − 1/θ), then sampled unclicked pairs (0, 1).
        var positiveWeight = [Float](repeating: 0, count: 2 * b)
        var negativeWeight = [Float](repeating: 0, count: 2 * b)
        for (k, i) in positives.enumerated() {
            positiveWeight[k] = inversePropensity[Int(i)]
            negativeWeight[k] = 1 - inversePropensity[Int(i)]
            negativeWeight[b + k] = unclickedWeights[Int(users[k])]
        }
        let wPositive = Tensor(Matrix(rows: 2 * b, cols: 1, values: positiveWeight))
        let wNegative = Tensor(Matrix(rows: 2 * b, cols: 1, values: negativeWeight))
        let local: Tensor
        if squaredLoss {
            let p = Tensor.sigmoid(logits)
            let one = Tensor(Matrix(rows: 2 * b, cols: 1, repeating: 1))
            local = wPositive * Tensor.square(one - p) + wNegative * Tensor.square(p)
        } else {
            // −log σ(x) = softplus(−x), −log(1 − σ(x)) = softplus(x).
            local = wPositive * Tensor.softplus(-logits) + wNegative * Tensor.softplus(logits)
        }
        let loss = Tensor.mean(local)
        guard regularization > 0 else { return loss }
        let penalty = Loss.embeddingPenalty([Tensor.gather(userTable, rows: users), Tensor.gather(itemTable, rows: positives),
                                             Tensor.gather(itemTable, rows: negatives)], batchSize: b, squared: true)
        return loss + Tensor.scale(penalty, regularization)
    }
}
