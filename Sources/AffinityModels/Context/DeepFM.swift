import AffinityCore
import AffinityData

/// DeepFM (Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction", IJCAI 2017),
/// as RecBole's `DeepFM`: the FM logit (first-order weights and pairwise interactions, eq. 2) plus a deep part
/// reading the same field embeddings concatenated (eq. 3–4): an MLP of `mlp_hidden_size` ReLU layers with dropout
/// `dropout_prob`, then a linear map to one logit. ŷ = σ(y_FM + y_DNN).
public final class DeepFM: ContextNetwork {
    public static let name = "deepfm"
    public static let summary = "DeepFM: FM plus an MLP over the concatenated field embeddings, sharing the embeddings (Guo et al. 2017)"

    public let dimension: Int
    public let hiddenSizes: [Int]
    public let dropoutRate: Float
    public let trainerSettings: ContextTrainerSettings
    private var embeddings: FieldEmbeddings?
    private var mlp: MultilayerPerceptron?
    private var output: DenseLayer?

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 10)
        hiddenSizes = try positiveIntegers(&h, "mlp_hidden_size", default: [128, 128, 128])
        dropoutRate = Float(try h.float("dropout_prob", default: 0.2))
        trainerSettings = try ContextTrainerSettings(&h)
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
        guard dropoutRate >= 0 && dropoutRate < 1 else { throw HyperparameterError.outOfRange("dropout_prob", "must be in [0, 1)") }
    }

    public func build(schema: FeatureSchema, rng: inout SeededGenerator) {
        let e = FieldEmbeddings(schema: schema, dimension: dimension, rng: &rng)
        embeddings = e
        mlp = MultilayerPerceptron(sizes: [e.fieldCount * dimension] + hiddenSizes, dropout: dropoutRate, rng: &rng)
        output = DenseLayer(hiddenSizes.last!, 1, rng: &rng)
    }

    public var parameters: [Tensor] {
        guard let embeddings, let mlp, let output else { return [] }
        return embeddings.parameters + mlp.parameters + output.parameters
    }

    public func forward(_ bags: EmbeddingBags, rows: Int, dropout: inout SeededGenerator?) -> Tensor {
        let e = embeddings!
        let fields = Tensor.reshaped(e.embed(bags), rows: rows, cols: e.fieldCount * dimension)
        let fm = e.firstOrder(bags, rows: rows) + Tensor.factorizationMachine(fields, fields: e.fieldCount)
        return fm + output!(mlp!(fields, dropout: &dropout))
    }
}
