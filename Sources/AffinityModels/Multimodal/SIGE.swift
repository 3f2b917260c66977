import AffinityCore
import AffinityData

/// SIGE — Semantic Item Graph Enhancement (Zhang, Zhou, Zeng, Niyato & Shen, arXiv 2508.06154, 2025).
/// No official code is public; this follows the abstract as read in `../shared/notes/SIGE.md`, in the
/// vocabulary of FREEDOM, SimGCL and BM3. Choices the paper leaves open are marked [choice].
///
/// 1. Collaborative signals in each modality's item graph: S'_m = norm((1 − β) S_m + β C), with S_m the
///    frozen cosine kNN graph of modality m (FREEDOM's, binary, k = `knn_k`) and C the item co-occurrence
///    graph of the training interactions (RᵀR without the diagonal, top `knn_k` per item, count-weighted),
///    both symmetric-normalised. [choice: a convex mix of the two normalised graphs, re-normalised]
/// 2. Semantic representations: h_m = S'_m^L (W_m x_m + b_m) per modality (L = `n_mm_layers`, features
///    frozen [choice]), fused h = mean_m h_m; a user's semantic vector is the mean of their training items'
///    h. Behaviour representations e come from LightGCN (mean of layers 0…`n_ui_layers`). Final user
///    e_u + h_u, item e_i + h_i; score their inner product.
/// 3. Modulus-based personalised perturbation: two views v = h + ε ‖h‖ · normalize(Δ) ⊙ sign(h),
///    Δ ~ U(0, 1)^d per row, i.e. SimGCL's noise scaled by each row's own norm so every node is perturbed in
///    proportion to its scale [choice: the raw row norm, differentiated like the rest]; InfoNCE between
///    the views of the batch's unique items and users, weight `view_weight`.
/// 4. Dual alignment: the anchor-based InfoNCE takes each batch item's behaviour vector e_i as anchor and
///    every modality's h_m,i as positive, averaged over modalities (weight `anchor_weight`); then the
///    standard InfoNCE between behaviour and fused semantics, e vs h, for items and users (`fuse_weight`).
///    In-batch negatives, cosine similarity at temperature τ.
/// Loss: BPR + the three InfoNCE terms + `reg_weight` · ½‖e⁰‖²/batch on the batch's layer-0 embeddings.
///
/// Cold items have no behaviour signal: their e_i is zeroed for scoring and they are ranked by h_i.
public final class SIGE: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "sige"
    public static let summary = "semantic item graphs enhanced with collaborative signals, perturbed views, dual alignment (Zhang et al. 2025)"

    public let dimension: Int
    public let knn: Int
    public let beta: Float
    public let itemGraphLayers: Int
    public let graphLayers: Int
    public let epsilon: Float
    public let temperature: Float
    public let viewWeight: Float
    public let anchorWeight: Float
    public let fuseWeight: Float
    public let regularization: Float
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var features: [Tensor] = []
    private var projections: [LinearLayer] = []
    private var semanticGraphs: [SparseOperator] = []
    private var userMean: SparseOperator?
    private var graph: BipartiteGraph?
    private var cold: [Bool] = []
    private var seed: UInt64 = 0
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [nodeTable] + projections.flatMap(\.parameters) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        knn = try h.int("knn_k", default: 10)
        beta = Float(try h.float("beta", default: 0.5))
        itemGraphLayers = try h.int("n_mm_layers", default: 1)
        graphLayers = try h.int("n_ui_layers", default: 2)
        epsilon = Float(try h.float("eps", default: 0.1))
        temperature = Float(try h.float("cl_tau", default: 0.2))
        viewWeight = Float(try h.float("view_weight", default: 0.1))
        anchorWeight = Float(try h.float("anchor_weight", default: 0.01))
        fuseWeight = Float(try h.float("fuse_weight", default: 0.01))
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        training = try TrainerSettings(&h)
        guard dimension > 0, knn > 0, itemGraphLayers >= 0, graphLayers >= 0, (0...1).contains(beta), temperature > 0, epsilon >= 0 else {
            throw HyperparameterError.outOfRange("sige", "sizes must be positive, beta in [0, 1], cl_tau > 0, eps ≥ 0")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        var rng = SeededGenerator(seed: context.seed)
        seed = context.seed
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        features = modalities.map { Tensor($0.features) }
        projections = modalities.map { LinearLayer(inputs: $0.features.cols, outputs: dimension, rng: &rng) }
        let collaborative = ItemGraphs.cooccurrence(data.userItems, k: knn)
        semanticGraphs = modalities.map { m in
            SparseOperator(Self.enhancedGraph(semantic: ItemGraphCache.cosineKNN(m, k: knn, weight: .binary), collaborative: collaborative, beta: beta))
        }
        userMean = SparseOperator(GraphNormalization.rowNormalized(data.userItems))
        cold = coldItems(data)
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    private struct Encoded {
        var users: Tensor, items: Tensor            // behaviour (LightGCN)
        var perModality: [Tensor]                   // h_m
        var semanticItems: Tensor, semanticUsers: Tensor
    }

    private func encode(_ table: Tensor) -> Encoded {
        let graph = graph!
        let nodes = Tensor.meanPropagation(graph.adjacency, table, layers: graphLayers)
        let perModality = zip(zip(features, projections), semanticGraphs).map { pair, s in
            var h = pair.1(pair.0)
            for _ in 0..<itemGraphLayers { h = Tensor.spmm(s, h) }
            return h
        }
        var fused = perModality[0]
        for h in perModality.dropFirst() { fused = fused + h }
        fused = Tensor.scale(fused, 1 / Float(perModality.count))
        return Encoded(users: Tensor.sliceRows(nodes, 0..<graph.userCount),
                       items: Tensor.sliceRows(nodes, graph.userCount..<graph.nodeCount),
                       perModality: perModality, semanticItems: fused, semanticUsers: Tensor.spmm(userMean!, fused))
    }

    /// The modulus-based personalised perturbation: h + ε‖h_r‖ · normalize(Δ_r) ⊙ sign(h) per row r,
    /// Δ ~ U(0, 1)^d. The direction is a constant given h's signs; the modulus is differentiated.
    public static func modulusPerturbation(_ h: Tensor, epsilon: Float, rng: inout SeededGenerator) -> Tensor {
        let d = h.cols
        var direction = Matrix(rows: h.rows, cols: d)
        for r in 0..<h.rows {
            var norm: Float = 0
            for c in 0..<d { let u = rng.nextFloat(); direction.storage[r * d + c] = u; norm += u * u }
            let scale = 1 / max(norm.squareRoot(), 1e-12)
            for c in 0..<d {
                let x = h.value[r, c]
                direction.storage[r * d + c] *= x > 0 ? scale : (x < 0 ? -scale : 0)
            }
        }
        return Tensor.perturbedByRowNorm(h, direction: direction, epsilon: epsilon)
    }

    /// The collaborative-enhanced semantic graph S' = norm((1 − β) S + β C) of step 1.
    public static func enhancedGraph(semantic: SparseMatrix, collaborative: SparseMatrix, beta: Float) -> SparseMatrix {
        ItemGraphs.symmetricNormalized(ItemGraphs.mix([semantic, collaborative], weights: [1 - beta, beta]))
    }

    private func contrast(_ a: Tensor, _ b: Tensor) -> Tensor {
        Loss.infoNCE(anchors: Tensor.normalizeRows(a), candidates: Tensor.normalizeRows(b),
                     positives: (0..<Int32(a.rows)).map { $0 }, temperature: temperature)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let e = encode(nodeTable)
        let finalItems = e.items + e.semanticItems, finalUsers = e.users + e.semanticUsers
        let u = Tensor.gather(finalUsers, rows: users)
        var loss = Loss.bpr(positive: Tensor.rowDot(u, Tensor.gather(finalItems, rows: positives)),
                            negative: Tensor.rowDot(u, Tensor.gather(finalItems, rows: negatives)))
        let batchUsers = Array(Set(users)).sorted(), batchItems = Array(Set(positives)).sorted()
        if viewWeight > 0 {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for x in users.prefix(64) + positives.prefix(64) { h = (h ^ UInt64(UInt32(bitPattern: x))) &* 0x100_0000_01B3 }
            var rng = SeededGenerator(seed: seed).derived(stream: UInt64(epoch) &* 0x9E37_79B9 ^ h)
            let items = Tensor.gather(e.semanticItems, rows: batchItems), usersH = Tensor.gather(e.semanticUsers, rows: batchUsers)
            let views = contrast(Self.modulusPerturbation(items, epsilon: epsilon, rng: &rng), Self.modulusPerturbation(items, epsilon: epsilon, rng: &rng))
                + contrast(Self.modulusPerturbation(usersH, epsilon: epsilon, rng: &rng), Self.modulusPerturbation(usersH, epsilon: epsilon, rng: &rng))
            loss = loss + Tensor.scale(views, viewWeight)
        }
        let anchors = Tensor.gather(e.items, rows: batchItems)
        if anchorWeight > 0 {
            var anchor = contrast(anchors, Tensor.gather(e.perModality[0], rows: batchItems))
            for h in e.perModality.dropFirst() { anchor = anchor + contrast(anchors, Tensor.gather(h, rows: batchItems)) }
            loss = loss + Tensor.scale(anchor, anchorWeight / Float(e.perModality.count))
        }
        if fuseWeight > 0 {
            let fuse = contrast(anchors, Tensor.gather(e.semanticItems, rows: batchItems))
                + contrast(Tensor.gather(e.users, rows: batchUsers), Tensor.gather(e.semanticUsers, rows: batchUsers))
            loss = loss + Tensor.scale(fuse, fuseWeight)
        }
        if regularization > 0, let graph {
            let ego = [users, graph.nodes(ofItems: positives), graph.nodes(ofItems: negatives)].map { Tensor.gather(nodeTable, rows: $0) }
            loss = loss + Tensor.scale(Loss.embeddingPenalty(ego, batchSize: users.count, squared: true), regularization)
        }
        return loss
    }

    public func parametersDidChange() {
        guard graph != nil else { return }
        let e = encode(Tensor(nodeTable.value))
        var behaviour = e.items.value
        zeroRows(&behaviour, cold)
        userEmbeddings = (e.users + e.semanticUsers).value
        itemEmbeddings = (Tensor(behaviour) + e.semanticItems).value
    }
}
