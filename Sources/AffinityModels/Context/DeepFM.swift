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

extension DeepFM: CandidateScoring {
    /// The same logit as `forward`, split for one user's candidates: the user's first-order weights, FM sums and
    /// share of the first MLP layer (its rows of W₁ times the user's embeddings, plus b₁) once; then per candidate
    /// the FM term ½ Σ_c [(s_u + s_i)_c² − (q_u + q_i)_c] with s the field embeddings' sum and q their squares' sum,
    /// and the MLP over the candidates as one batch: [candidates, item fields · d] · W₁[item rows] + user share.
    public func candidateLogits(user: EmbeddingBags, items: EmbeddingBags, count n: Int) -> [Float] {
        guard n > 0 else { return [] }
        let e = embeddings!, mlp = mlp!, output = output!, d = dimension
        let userFields = user.count, itemFields = e.fieldCount - userFields, hidden = mlp.weights[0].cols
        precondition(items.count == n * itemFields, "candidateLogits: \(items.count) item bags for \(n) candidates")
        let (u, userWeights) = e.pooledValues(user), (v, itemWeights) = e.pooledValues(items)
        let userFirstOrder = userWeights.reduce(e.bias.value.storage[0], +)
        var userSum = [Float](repeating: 0, count: d), userSquares: Float = 0
        for f in 0..<userFields { for c in 0..<d { let x = u.storage[f * d + c]; userSum[c] += x; userSquares += x * x } }
        let w1 = mlp.weights[0].value
        var userHidden = mlp.biases[0].value.storage
        for r in 0..<(userFields * d) { let x = u.storage[r]; for c in 0..<hidden { userHidden[c] += x * w1.storage[r * hidden + c] } }

        var layer = BLAS.batchMatmul(Matrix(rows: n, cols: itemFields * d, values: v.storage),
                                     rowSlice(w1, (userFields * d)..<(e.fieldCount * d)))
        Tensor.addBiasAndActivation(&layer, bias: userHidden, relu: true)
        for (w, b) in zip(mlp.weights.dropFirst(), mlp.biases.dropFirst()) {
            layer = BLAS.batchMatmul(layer, w.value)
            Tensor.addBiasAndActivation(&layer, bias: b.value.storage, relu: true)
        }
        let deep = BLAS.batchMatmul(layer, output.weight.value).storage, deepBias = output.bias.value.storage[0]
        var logits = [Float](repeating: 0, count: n)
        var sum = [Float](repeating: 0, count: d)
        v.storage.withUnsafeBufferPointer { vs in
        sum.withUnsafeMutableBufferPointer { sum in
            for i in 0..<n {
                var firstOrder = userFirstOrder, squares = userSquares
                for c in 0..<d { sum[c] = userSum[c] }
                for f in 0..<itemFields {
                    firstOrder += itemWeights[i * itemFields + f]
                    let row = (i * itemFields + f) * d
                    for c in 0..<d { let x = vs[row + c]; sum[c] += x; squares += x * x }
                }
                var pairwise: Float = 0
                for c in 0..<d { pairwise += sum[c] * sum[c] }
                logits[i] = firstOrder + 0.5 * (pairwise - squares) + deep[i] + deepBias
            }
        } }
        return logits
    }
}
