import AffinityCore

/// NGCF: Neural Graph Collaborative Filtering (Wang et al., SIGIR 2019; RecBole's `NGCF` is the reference
/// for the details below).
///
/// Layer l (eq. 7, as RecBole's `BiGNNLayer`): with L = D^{-1/2} A D^{-1/2} and side = L E,
/// E' = LeakyReLU_{0.2}( W₁ (E + side) + b₁ + W₂ (E ⊙ side) + b₂ ), then message dropout and row L2
/// normalisation. The final embedding concatenates layers 0…L (eq. 9). Node dropout removes each edge of L
/// with probability p per batch (kept edges scaled by 1/(1−p)). Loss: BPR + `reg_weight` ·
/// (‖e_u‖ + ‖e_i‖ + ‖e_j‖) / batch on the batch's final embeddings (RecBole's `EmbLoss`; `require_pow=true`
/// gives ½‖·‖² instead). Embeddings and weights are Xavier-normal initialised, biases zero.
public final class NGCF: GradientModel, EmbeddingModel {
    public static let name = "ngcf"
    public static let summary = "graph propagation with feature transforms and the element-wise interaction term (Wang et al. 2019)"

    public let dimension: Int
    public let hiddenSizes: [Int]
    public let nodeDropout: Float
    public let messageDropout: Float
    public let regularization: Float
    public let squaredPenalty: Bool
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var weights: [(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor)] = []
    public private(set) var history: [EpochReport] = []
    private var graph: BipartiteGraph?
    private var dropoutRNG = SeededGenerator(seed: 0)

    public var parameters: [Tensor] { [nodeTable] + weights.flatMap { [$0.w1, $0.b1, $0.w2, $0.b2] } }
    /// The dropout generator runs on from batch to batch, so checkpoints carry it.
    public var trainingState: [UInt64] {
        get { dropoutRNG.state }
        set { dropoutRNG = SeededGenerator(state: newValue) ?? dropoutRNG }
    }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        let sizes = try h.string("hidden_size_list", default: "64,64,64")
        hiddenSizes = sizes.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) }
        guard !hiddenSizes.isEmpty, hiddenSizes.count == sizes.split(separator: ",").count, hiddenSizes.allSatisfy({ $0 > 0 }) else {
            throw HyperparameterError.invalid("hidden_size_list", sizes, "a list of positive integers, e.g. 64,64,64")
        }
        nodeDropout = Float(try h.float("node_dropout", default: 0))
        messageDropout = Float(try h.float("message_dropout", default: 0.1))
        regularization = Float(try h.float("reg_weight", default: 1e-5))
        squaredPenalty = try h.bool("require_pow", default: false)
        training = try TrainerSettings(&h)
        guard (0..<1).contains(nodeDropout), (0..<1).contains(messageDropout) else {
            throw HyperparameterError.outOfRange("node_dropout/message_dropout", "must be in [0, 1)")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        dropoutRNG = rng.derived(stream: 77)
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierNormal(rows: $0, cols: $1, rng: &$2) }
        weights = []
        var input = dimension
        for output in hiddenSizes {
            // nn.Linear(in, out) stores [out, in]; we multiply E [n, in] by W [in, out], the same map.
            weights.append((Tensor(parameter: xavierNormal(rows: input, cols: output, rng: &rng)),
                            Tensor(parameter: Matrix(rows: 1, cols: output)),
                            Tensor(parameter: xavierNormal(rows: input, cols: output, rng: &rng)),
                            Tensor(parameter: Matrix(rows: 1, cols: output))))
            input = output
        }
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// The final embeddings (concatenated layers) of all nodes, `[users + items, d + Σ hidden]`, or with `rows`
    /// only of those nodes (`[rows.count, ·]`): a batch reads nothing else, so the last layer — its
    /// propagation, transforms and dropout — runs on those rows alone.
    private func forward(training: Bool, rows: [Int32]? = nil) -> Tensor {
        guard let graph else { return rows.map { Tensor.gather(nodeTable, rows: $0) } ?? nodeTable }
        var op = graph.adjacency
        if training && nodeDropout > 0 {
            // Drop edges independently, rescale the kept ones (RecBole's SparseDropout).
            let keep = 1 / (1 - nodeDropout)
            let values = op.matrix.values.map { v in dropoutRNG.nextFloat() < nodeDropout ? 0 : v * keep }
            op = SparseOperator(op.matrix.withValues(values))
        }
        var e: Tensor = nodeTable
        var layers = [e]
        for (index, layer) in weights.enumerated() {
            let batchRows = index == weights.count - 1 ? rows : nil
            let input = batchRows.map { Tensor.gather(e, rows: $0) } ?? e
            let side = batchRows.map { Tensor.spmm(op, e, at: $0) } ?? Tensor.spmm(op, e)
            // LeakyReLU((x + s)·W1 + b1 + (x ⊙ s)·W2 + b2), message dropout, row normalisation: one fused op.
            e = Tensor.ngcfLayer(input: input, side: side, w1: layer.w1, b1: layer.b1, w2: layer.w2, b2: layer.b2,
                                 slope: 0.2, dropout: training ? messageDropout : 0, rng: &dropoutRNG)
            layers.append(e)
        }
        if let rows {
            // Earlier layers are full tables: read the batch rows of each.
            for k in 0..<(layers.count - 1) { layers[k] = Tensor.gather(layers[k], rows: rows) }
        }
        return Tensor.concatColumns(layers)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let itemRows = graph?.nodes(ofItems: positives) ?? positives, negativeRows = graph?.nodes(ofItems: negatives) ?? negatives
        // Each node once (its dropout mask is shared by all its occurrences, as in the full forward pass).
        let rows = DistinctRows(users + itemRows + negativeRows, bound: nodeTable.rows)
        let n = users.count
        let batch = forward(training: true, rows: rows.rows)
        let u = Tensor.gather(batch, rows: Array(rows.slots[0..<n]))
        let i = Tensor.gather(batch, rows: Array(rows.slots[n..<(2 * n)]))
        let j = Tensor.gather(batch, rows: Array(rows.slots[(2 * n)...]))
        let bpr = Loss.bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j))
        guard regularization > 0 else { return bpr }
        return bpr + Tensor.scale(Loss.embeddingPenalty([u, i, j], batchSize: users.count, squared: squaredPenalty), regularization)
    }

    public func parametersDidChange() {
        guard let graph else { return }
        (userEmbeddings, itemEmbeddings) = graph.split(forward(training: false).value)
    }
}

