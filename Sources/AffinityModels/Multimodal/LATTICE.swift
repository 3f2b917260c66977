import AffinityCore
import AffinityData

/// LATTICE (Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM 2021; MMRec's
/// `LATTICE`).
///
/// Per modality m, the initial graph Ã_m is the cosine kNN graph of the raw features with similarity
/// weights, normalised D^{-1/2} A D^{-1/2} (eq. 1–3). Once per epoch (first batch, with gradients; later
/// batches reuse it detached, as MMRec's `build_item_graph` flag) the learned graph is rebuilt from the
/// projected features f_m = W_m x_m + b_m: S_m = cos(f_m, f_m) kept at each row's top k (values keep their
/// gradient), mixed with softmax-normalised modality weights α (eq. 4–6), normalised, and combined with the
/// initial graphs: A = (1 − λ) · norm(Σ α_m S_m) + λ · Σ α_m Ã_m (eq. 7, λ = `lambda_coeff`). The item
/// representation is the LightGCN item embedding + normalize(A^L E_item) (eq. 8–10); loss BPR +
/// `reg_weight` · ½(‖u‖² + ‖i‖² + ‖j‖²)/batch on the final embeddings.
///
/// The learned graph is dense items × items, like the reference: memory grows with items², the cost FREEDOM
/// was designed to remove. `max_items` (default 20,000: ~1.6 GB per dense matrix) refuses larger catalogues.
/// MMRec's learning-rate schedule (×0.96 every 50 epochs) is not applied.
public final class LATTICE: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "lattice"
    public static let summary = "learned item–item graphs from modality features, mixed with kNN graphs (Zhang et al. 2021)"

    public let dimension: Int
    public let knn: Int
    public let lambda: Float
    public let itemGraphLayers: Int
    public let graphLayers: Int
    public let regularization: Float
    public let maxItems: Int
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var features: [Tensor] = []
    private var projections: [LinearLayer] = []
    private var modalityLogits = Tensor(parameter: Matrix(rows: 1, cols: 1))
    private var initialGraphs: [Matrix] = []
    private var itemAdjacency = Matrix(rows: 0, cols: 0)
    private var rebuild = true
    private var graph: BipartiteGraph?
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [nodeTable] + features + projections.flatMap(\.parameters) + (features.count > 1 ? [modalityLogits] : []) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        knn = try h.int("knn_k", default: 10)
        lambda = Float(try h.float("lambda_coeff", default: 0.9))
        itemGraphLayers = try h.int("n_layers", default: 1)
        graphLayers = try h.int("n_ui_layers", default: 2)
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        maxItems = try h.int("max_items", default: 20_000)
        training = try TrainerSettings(&h)
        guard dimension > 0, knn > 0, itemGraphLayers >= 0, graphLayers >= 0, (0...1).contains(lambda) else {
            throw HyperparameterError.outOfRange("embedding_size/knn_k/n_layers/n_ui_layers/lambda_coeff", "sizes must be positive, lambda_coeff in [0, 1]")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        guard data.itemCount <= maxItems else {
            throw ModelError.tooLarge("lattice keeps dense items × items graphs (\(data.itemCount)² floats each); raise max_items (now \(maxItems)) if memory allows, or use freedom")
        }
        var rng = SeededGenerator(seed: context.seed)
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        features = modalities.map { Tensor(parameter: $0.features) }
        projections = modalities.map { LinearLayer(inputs: $0.features.cols, outputs: dimension, rng: &rng) }
        modalityLogits = Tensor(parameter: Matrix(rows: 1, cols: modalities.count, repeating: 0.5))
        initialGraphs = modalities.map { dense(ItemGraphCache.cosineKNN($0, k: knn, weight: .similarity)) }
        rebuild = true
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    private func dense(_ s: SparseMatrix) -> Matrix {
        var m = Matrix(rows: s.rows, cols: s.cols)
        for r in 0..<s.rows { for p in s.rowStart[r]..<s.rowStart[r + 1] { m.storage[r * s.cols + Int(s.colIndex[p])] = s.values[p] } }
        return m
    }

    /// A = (1 − λ) · norm(Σ α_m topk(cos(f_m, f_m))) + λ · Σ α_m Ã_m, differentiable in the projections,
    /// the fine-tuned features and the modality weights.
    private func learnedAdjacency(features: [Tensor], logits: Tensor) -> Tensor {
        let alpha = Tensor.softmaxRows(logits)
        var learned: Tensor? = nil, initial: Tensor? = nil
        for (m, (f, projection)) in zip(features, projections).enumerated() {
            let unit = Tensor.normalizeRows(projection(f))
            let similarity = Tensor.matmul(unit, unit, transposeB: true)
            let neighbours = similarity * Tensor(topKRowMask(similarity.value, k: knn))
            let weight = Tensor.sliceColumns(alpha, m..<(m + 1))
            let l = Tensor.scaled(neighbours, by: weight), i = Tensor.scaled(Tensor(initialGraphs[m]), by: weight)
            learned = learned.map { $0 + l } ?? l
            initial = initial.map { $0 + i } ?? i
        }
        return Tensor.scale(Tensor.symmetricNormalizeDense(learned!), 1 - lambda) + Tensor.scale(initial!, lambda)
    }

    public func epochWillStart(_ epoch: Int) { rebuild = true }

    private func encode(_ table: Tensor, adjacency: Tensor) -> (nodes: Tensor, items: Tensor) {
        let graph = graph!
        let nodes = Tensor.meanPropagation(graph.adjacency, table, layers: graphLayers)
        var h = Tensor.sliceRows(table, graph.userCount..<graph.nodeCount)
        for _ in 0..<itemGraphLayers { h = Tensor.matmul(adjacency, h) }
        return (nodes, Tensor.sliceRows(nodes, graph.userCount..<graph.nodeCount) + Tensor.normalizeRows(h))
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let adjacency: Tensor
        if rebuild {
            adjacency = learnedAdjacency(features: features, logits: modalityLogits)
            itemAdjacency = adjacency.value
            rebuild = false
        } else {
            adjacency = Tensor(itemAdjacency)
        }
        let (nodes, items) = encode(nodeTable, adjacency: adjacency)
        let u = Tensor.gather(nodes, rows: users), i = Tensor.gather(items, rows: positives), j = Tensor.gather(items, rows: negatives)
        let bpr = Loss.bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j))
        guard regularization > 0 else { return bpr }
        return bpr + Tensor.scale(Loss.embeddingPenalty([u, i, j], batchSize: users.count, squared: true), regularization)
    }

    public func parametersDidChange() {
        guard let graph else { return }
        // Scoring rebuilds the learned graph from the current parameters (MMRec's full_sort_predict does too).
        let adjacency = learnedAdjacency(features: features.map { Tensor($0.value) }, logits: Tensor(modalityLogits.value))
        let (nodes, items) = encode(Tensor(nodeTable.value), adjacency: Tensor(adjacency.value))
        userEmbeddings = graph.split(nodes.value).users
        itemEmbeddings = items.value
    }
}
