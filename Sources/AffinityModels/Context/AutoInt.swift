import AffinityCore
import AffinityData

/// AutoInt (Song et al., "AutoInt: Automatic Feature Interaction Learning via Self-Attentive Neural Networks",
/// CIKM 2019), as RecBole's `AutoInt`: the field embeddings are projected to `attention_size`, then pass
/// `n_layers` interacting layers of multi-head self-attention over the fields (eq. 5–7; each layer PyTorch's
/// `nn.MultiheadAttention`: query, key and value projections, `num_heads` heads, dropout on the attention
/// weights, an output projection), a residual projection of the embeddings is added and ReLU applied (eq. 8);
/// the flattened result maps linearly to a logit (eq. 9). RecBole adds the first-order term and an MLP over the
/// embeddings (`mlp_hidden_size`, the AutoInt+ variant of the paper), which this follows.
public final class AutoInt: ContextNetwork {
    public static let name = "autoint"
    public static let summary = "AutoInt: multi-head self-attention over field embeddings with residual connections (Song et al. 2019)"

    public let dimension: Int
    public let attentionSize: Int
    public let layers: Int
    public let heads: Int
    /// Dropout of the attention weights, of the MLP, and (unused, as in RecBole) of the output.
    public let dropoutRates: [Float]
    public let hiddenSizes: [Int]
    public let residual: Bool
    public let trainerSettings: ContextTrainerSettings

    private struct AttentionLayer {
        let query: DenseLayer, key: DenseLayer, value: DenseLayer, output: DenseLayer
        var parameters: [Tensor] { query.parameters + key.parameters + value.parameters + output.parameters }
    }

    private var embeddings: FieldEmbeddings?
    private var projection: DenseLayer?
    private var attention: [AttentionLayer] = []
    private var residualProjection: DenseLayer?
    private var attentionOutput: DenseLayer?
    private var mlp: MultilayerPerceptron?
    private var deepOutput: DenseLayer?

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 10)
        attentionSize = try h.int("attention_size", default: 16)
        layers = try h.int("n_layers", default: 3)
        heads = try h.int("num_heads", default: 2)
        let rates = try h.string("dropout_probs", default: "0.2,0.2,0.2").split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard rates.count == 3, rates.allSatisfy({ $0 != nil && $0! >= 0 && $0! < 1 }) else {
            throw HyperparameterError.invalid("dropout_probs", rates.description, "three rates in [0, 1)")
        }
        dropoutRates = rates.map { $0! }
        hiddenSizes = try positiveIntegers(&h, "mlp_hidden_size", default: [128, 128])
        residual = try h.bool("has_residual", default: true)
        trainerSettings = try ContextTrainerSettings(&h)
        guard dimension > 0, layers > 0, heads > 0, attentionSize > 0, attentionSize % heads == 0 else {
            throw HyperparameterError.outOfRange("attention_size/num_heads/n_layers", "must be positive, attention_size a multiple of num_heads")
        }
    }

    public func build(schema: FeatureSchema, rng: inout SeededGenerator) {
        let e = FieldEmbeddings(schema: schema, dimension: dimension, rng: &rng)
        embeddings = e
        projection = DenseLayer(dimension, attentionSize, rng: &rng)
        // PyTorch initialises the packed [3a, a] input projection Xavier-uniform (bound √(6 / 4a)); RecBole's Xavier-normal
        // init reaches only the output projection, an `nn.Linear`.
        let a = attentionSize, bound = (6 / Float(4 * a)).squareRoot()
        func inputProjection() -> DenseLayer {
            var w = Matrix(rows: a, cols: a)
            for i in 0..<w.storage.count { w.storage[i] = (2 * rng.nextFloat() - 1) * bound }
            return DenseLayer(weight: w)
        }
        attention = (0..<layers).map { _ in
            AttentionLayer(query: inputProjection(), key: inputProjection(), value: inputProjection(), output: DenseLayer(a, a, rng: &rng))
        }
        residualProjection = residual ? DenseLayer(dimension, attentionSize, rng: &rng) : nil
        attentionOutput = DenseLayer(e.fieldCount * attentionSize, 1, rng: &rng)
        mlp = MultilayerPerceptron(sizes: [e.fieldCount * dimension] + hiddenSizes, dropout: dropoutRates[1], rng: &rng)
        deepOutput = DenseLayer(hiddenSizes.last!, 1, rng: &rng)
    }

    public var parameters: [Tensor] {
        guard let embeddings, let projection, let attentionOutput, let mlp, let deepOutput else { return [] }
        return embeddings.parameters + projection.parameters + attention.flatMap(\.parameters) + (residualProjection?.parameters ?? [])
            + attentionOutput.parameters + mlp.parameters + deepOutput.parameters
    }

    public func forward(_ bags: EmbeddingBags, rows: Int, dropout: inout SeededGenerator?) -> Tensor {
        let e = embeddings!, fields = e.fieldCount
        let embedded = e.embed(bags)  // [rows · fields, d]: each row's fields form one sequence
        var cross = projection!(embedded)
        for layer in attention {
            let seed = dropout?.next() ?? 0
            let attended = Tensor.multiHeadAttention(query: layer.query(cross), key: layer.key(cross), value: layer.value(cross),
                                                     length: fields, heads: heads, dropout: dropout == nil ? 0 : dropoutRates[0], seed: seed)
            cross = layer.output(attended)
        }
        if let residualProjection { cross = cross + residualProjection(embedded) }
        let interacting = Tensor.reshaped(Tensor.relu(cross), rows: rows, cols: fields * attentionSize)
        let flat = Tensor.reshaped(embedded, rows: rows, cols: fields * dimension)
        return e.firstOrder(bags, rows: rows) + attentionOutput!(interacting) + deepOutput!(mlp!(flat, dropout: &dropout))
    }
}
