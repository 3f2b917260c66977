import AffinityCore
import AffinityData

/// FREEDOM (Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for Multimodal
/// Recommendation", ACM MM 2023; MMRec's `FREEDOM`).
///
/// - Frozen item graph: per modality a cosine kNN graph over the raw features (k = `knn_k`, binary edges,
///   symmetric-normalised), mixed with the modality weights (eq. 4–5); built once, never learned.
/// - Denoised user–item graph: each epoch keeps `1 − dropout` of the edges, sampled with probability
///   ∝ 1/√(d_u d_i) (degree-sensitive pruning, §3.2), re-normalised; the full graph is used for scoring.
/// - Item representation ĥ_i = e_i^{LightGCN} + (S^L E_item)_i (eq. 7–8): the LightGCN mean of layers
///   0…`n_ui_layers` plus the ID embeddings propagated `n_mm_layers` times over the item graph.
/// - Loss: BPR on (ê_u, ĥ_i, ĥ_j) + `reg_weight` · Σ_m BPR(ê_u, W_m f_i + b_m, W_m f_j + b_m) (eq. 10), the
///   modality projections aligned with the user embeddings; the raw features are fine-tuned (MMRec's
///   `nn.Embedding.from_pretrained(…, freeze=False)`).
/// Defaults are MMRec's (`dropout` 0.8 and `reg_weight` 1e-4 from its search grid).
public final class FREEDOM: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "freedom"
    public static let summary = "frozen kNN item graphs + degree-sensitive pruning of the user–item graph (Zhou & Shen 2023)"

    public let dimension: Int
    public let knn: Int
    public let itemGraphLayers: Int
    public let graphLayers: Int
    public let pruning: Double
    public let regularization: Float
    public let weightsSetting: String
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var features: [Tensor] = []
    private var projections: [LinearLayer] = []
    private var graph: BipartiteGraph?
    private var itemGraph: SparseOperator?
    private var trainingGraph: SparseOperator?
    private var userItems = SparseMatrix(rows: 0, cols: 0, rowIndices: [], colIndices: [])
    private var seed: UInt64 = 0
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [nodeTable] + features + projections.flatMap(\.parameters) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        knn = try h.int("knn_k", default: 10)
        itemGraphLayers = try h.int("n_mm_layers", default: 1)
        graphLayers = try h.int("n_ui_layers", default: 2)
        pruning = try h.float("dropout", default: 0.8)
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        weightsSetting = try h.string("modality_weights", default: "")
        training = try TrainerSettings(&h)
        guard dimension > 0, knn > 0, itemGraphLayers >= 0, graphLayers >= 0, (0..<1).contains(pruning) else {
            throw HyperparameterError.outOfRange("embedding_size/knn_k/n_mm_layers/n_ui_layers/dropout", "sizes must be positive and dropout in [0, 1)")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        let weights = try modalityWeights(modalities, given: weightsSetting)
        var rng = SeededGenerator(seed: context.seed)
        seed = context.seed
        let graph = BipartiteGraph(data)
        self.graph = graph
        userItems = data.userItems
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        features = modalities.map { Tensor(parameter: $0.features) }
        projections = modalities.map { LinearLayer(inputs: $0.features.cols, outputs: dimension, rng: &rng) }
        let graphs = modalities.map { ItemGraphCache.cosineKNN($0, k: knn, weight: .binary) }
        itemGraph = SparseOperator(ItemGraphs.mix(graphs, weights: weights))
        trainingGraph = graph.adjacency
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func epochWillStart(_ epoch: Int) {
        guard pruning > 0 else { return }
        var rng = SeededGenerator(seed: seed).derived(stream: 0xF4EE_D000 &+ UInt64(epoch))
        let kept = DegreeSensitivePruning.sample(userItems, keep: 1 - pruning, rng: &rng)
        trainingGraph = SparseOperator(GraphNormalization.symmetricBipartite(kept), symmetric: true)
    }

    /// (all nodes' LightGCN embeddings, items' final representations ĥ).
    private func encode(_ table: Tensor, adjacency: SparseOperator) -> (nodes: Tensor, items: Tensor) {
        let graph = graph!
        let nodes = Tensor.meanPropagation(adjacency, table, layers: graphLayers)
        var h = Tensor.sliceRows(table, graph.userCount..<graph.nodeCount)
        for _ in 0..<itemGraphLayers { h = Tensor.spmm(itemGraph!, h) }
        return (nodes, Tensor.sliceRows(nodes, graph.userCount..<graph.nodeCount) + h)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let (nodes, items) = encode(nodeTable, adjacency: trainingGraph!)
        let u = Tensor.gather(nodes, rows: users)
        var loss = Loss.bpr(positive: Tensor.rowDot(u, Tensor.gather(items, rows: positives)),
                            negative: Tensor.rowDot(u, Tensor.gather(items, rows: negatives)))
        guard regularization > 0 else { return loss }
        for (f, projection) in zip(features, projections) {
            let projected = projection(f)
            let term = Loss.bpr(positive: Tensor.rowDot(u, Tensor.gather(projected, rows: positives)),
                                negative: Tensor.rowDot(u, Tensor.gather(projected, rows: negatives)))
            loss = loss + Tensor.scale(term, regularization)
        }
        return loss
    }

    public func parametersDidChange() {
        guard let graph else { return }
        let (nodes, items) = encode(Tensor(nodeTable.value), adjacency: graph.adjacency)
        userEmbeddings = graph.split(nodes.value).users
        itemEmbeddings = items.value
    }
}
