import AffinityCore
import AffinityData

/// SGL: Self-supervised Graph Learning for recommendation (Wu et al., SIGIR 2021), edge-dropout variant
/// (SGL-ED) on a LightGCN encoder; RecBole's `SGL` is the reference for the details.
///
/// Every epoch two views of the interaction graph are drawn by keeping a random (1 − `drop_ratio`) share of
/// the training interactions (each view symmetric-normalised on its own degrees). The loss is
/// Σ_batch −log σ(ŷ_ui − ŷ_uj) on the full graph (a sum, as RecBole and the official code), plus
/// `ssl_weight` · InfoNCE between the two views' normalised embeddings (eq. 10: for each batch user,
/// the positive is the same user in the other view and the negatives are all users of that view; the same
/// for the batch's positive items), with temperature `ssl_tau`, summed over the batch, plus
/// `reg_weight` · (‖e⁰_u‖ + ‖e⁰_i‖ + ‖e⁰_j‖) / batch.
public final class SGL: GradientModel, EmbeddingModel {
    public static let name = "sgl"
    public static let summary = "LightGCN + contrastive learning between edge-dropout graph views (Wu et al. 2021)"

    public let dimension: Int
    public let layers: Int
    public let dropRatio: Double
    public let temperature: Float
    public let sslWeight: Float
    public let regularization: Float
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var history: [EpochReport] = []
    private var graph: BipartiteGraph?
    private var views: (SparseOperator, SparseOperator)?
    private var interactions = Interactions()
    private var seed: UInt64 = 0

    public var parameters: [Tensor] { [nodeTable] }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        layers = try h.int("n_layers", default: 3)
        dropRatio = try h.float("drop_ratio", default: 0.1)
        temperature = Float(try h.float("ssl_tau", default: 0.5))
        sslWeight = Float(try h.float("ssl_weight", default: 0.05))
        regularization = Float(try h.float("reg_weight", default: 1e-5))
        _ = try h.string("type", default: "ED", allowed: ["ED"])
        // Patience 30, not RecBole's 10: with 10, some ml-100k seeds stop on an early plateau (Recall@20 0.33
        // against 0.37; docs/benchmarks.md, "Graph models").
        training = try TrainerSettings(&h, stoppingStep: 30)
        guard (0..<1).contains(dropRatio), temperature > 0 else {
            throw HyperparameterError.outOfRange("drop_ratio/ssl_tau", "drop_ratio must be in [0, 1) and ssl_tau positive")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        seed = context.seed
        // The distinct training pairs (rows of the CSR), which the views subsample.
        let m = data.userItems
        interactions = Interactions(users: (0..<m.rows).flatMap { u in Array(repeating: Int32(u), count: m.count(ofRow: u)) }, items: m.colIndex)
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// A view: a random (1 − drop_ratio) share of the interactions, normalised on its own degrees.
    private func edgeDropoutView(_ graph: BipartiteGraph, _ rng: inout SeededGenerator) -> SparseOperator {
        var positions = Array(0..<interactions.count)
        positions.seededShuffle(using: &rng)
        let keep = positions.prefix(Int(Double(interactions.count) * (1 - dropRatio)))
        let kept = interactions.subset(Array(keep))
        return SparseOperator(GraphNormalization.symmetricBipartite(kept.matrix(users: graph.userCount, items: graph.itemCount)), symmetric: true)
    }

    public func epochWillStart(_ epoch: Int) {
        guard let graph else { return }
        var rng = SeededGenerator(seed: seed).derived(stream: 0x5617 &+ UInt64(epoch))
        views = (edgeDropoutView(graph, &rng), edgeDropoutView(graph, &rng))
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        guard let graph, let views else { return Tensor(Matrix(rows: 1, cols: 1)) }
        let n = Float(users.count)
        let itemRows = graph.nodes(ofItems: positives), negativeRows = graph.nodes(ofItems: negatives)
        // The main graph and the first view are read at the batch rows only (last hop restricted to them).
        let batch = users.count
        func part(_ t: Tensor, _ k: Int) -> Tensor { Tensor.sliceRows(t, (k * batch)..<((k + 1) * batch)) }
        let main = Tensor.meanPropagation(graph.adjacency, nodeTable, layers: layers, at: users + itemRows + negativeRows)
        let u = part(main, 0), i = part(main, 1), j = part(main, 2)
        let bpr = Tensor.scale(Loss.bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j)), n)  // summed
        // Contrastive term between the two views (InfoNCE over all users / all items of the second view). A node
        // listed k times in the batch is one anchor of weight k: the same sum, ~8% fewer rows on Gowalla.
        let batchUsers = DistinctRows(users, bound: graph.userCount), batchItems = DistinctRows(positives, bound: graph.itemCount)
        let view1 = Tensor.meanPropagation(views.0, nodeTable, layers: layers, at: batchUsers.rows + graph.nodes(ofItems: batchItems.rows))
        let view2 = Tensor.meanPropagation(views.1, nodeTable, layers: layers)
        let users2 = Tensor.normalizeRows(Tensor.sliceRows(view2, 0..<graph.userCount))
        let items2 = Tensor.normalizeRows(Tensor.sliceRows(view2, graph.userCount..<graph.nodeCount))
        let sslUsers = Loss.infoNCE(anchors: Tensor.normalizeRows(Tensor.sliceRows(view1, 0..<batchUsers.rows.count)),
                                    candidates: users2, positives: batchUsers.rows, weights: batchUsers.multiplicities,
                                    temperature: temperature)
        let sslItems = Loss.infoNCE(anchors: Tensor.normalizeRows(Tensor.sliceRows(view1, batchUsers.rows.count..<view1.rows)),
                                    candidates: items2, positives: batchItems.rows, weights: batchItems.multiplicities,
                                    temperature: temperature)
        let ssl = Tensor.scale(sslUsers + sslItems, sslWeight * n)  // infoNCE is a mean; RecBole sums
        let ego = [users, itemRows, negativeRows].map { Tensor.gather(nodeTable, rows: $0) }
        let reg = Tensor.scale(Loss.embeddingPenalty(ego, batchSize: users.count, squared: false), regularization)
        return bpr + ssl + reg
    }

    public func parametersDidChange() {
        guard let graph else { return }
        (userEmbeddings, itemEmbeddings) = graph.split(Tensor.meanPropagation(graph.adjacency, Tensor(nodeTable.value), layers: layers).value)
    }
}
