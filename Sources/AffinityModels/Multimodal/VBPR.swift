import AffinityCore
import AffinityData

/// VBPR (He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016),
/// as MMRec implements it: the item vector is [γ_i ; E·f_i] — an ID embedding next to a linear projection
/// of the item's content features (all modalities concatenated) — and the user vector [γ_u ; θ_u] is twice
/// as wide, so score = ⟨γ_u, γ_i⟩ + ⟨θ_u, E f_i + b⟩ (eq. 2 without the bias terms). Loss BPR +
/// `reg_weight` · (‖u‖ + ‖i‖ + ‖j‖)/batch (RecBole's EmbLoss, as MMRec).
///
/// Cold items: an item without training interactions never received a positive signal, so its γ_i is
/// zeroed for scoring and it is ranked by its content part alone (the VBPR paper's cold-start setting).
public final class VBPR: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "vbpr"
    public static let summary = "BPR with a linear projection of item content features (He & McAuley 2016)"

    public let dimension: Int
    public let regularization: Float
    public let training: TrainerSettings

    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var projection: LinearLayer?
    private var features = Tensor(Matrix(rows: 0, cols: 0))
    private var cold: [Bool] = []
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [userTable, itemTable] + (projection?.parameters ?? []) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        training = try TrainerSettings(&h)
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        var rng = SeededGenerator(seed: context.seed)
        userTable = Tensor(parameter: xavierUniform(rows: data.userCount, cols: 2 * dimension, rng: &rng))
        itemTable = Tensor(parameter: xavierUniform(rows: data.itemCount, cols: dimension, rng: &rng))
        // MMRec: torch.cat((t_feat, v_feat), -1) then one nn.Linear.
        let width = modalities.reduce(0) { $0 + $1.features.cols }
        var concatenated = Matrix(rows: data.itemCount, cols: width)
        var offset = 0
        for m in modalities {
            for r in 0..<data.itemCount { for c in 0..<m.features.cols { concatenated[r, offset + c] = m.features[r, c] } }
            offset += m.features.cols
        }
        features = Tensor(concatenated)
        projection = LinearLayer(inputs: width, outputs: dimension, rng: &rng)
        cold = coldItems(data)
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    private func items() -> Tensor { Tensor.concatColumns([itemTable, projection!(features)]) }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let all = items()
        return Loss.bpr(users: Tensor.gather(userTable, rows: users), positives: Tensor.gather(all, rows: positives),
                        negatives: Tensor.gather(all, rows: negatives), penalty: regularization, squared: false)
    }

    public func parametersDidChange() {
        guard let projection else { return }
        userEmbeddings = userTable.value
        var ids = itemTable.value
        zeroRows(&ids, cold)
        itemEmbeddings = Tensor.concatColumns([Tensor(ids), projection(features)]).value
    }
}
