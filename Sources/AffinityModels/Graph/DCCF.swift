import AffinityCore

/// DCCF (Ren et al., "Disentangled Contrastive Collaborative Filtering", SIGIR 2023; official code
/// HKUDS/DCCF `model.py`).
///
/// Layer l → l+1 over all nodes E_l (users then items):
/// - graph message passing Z = Ĝ E_l, Ĝ = D^{-1/2} A D^{-1/2} (eq. 1);
/// - intent-aware aggregation R = softmax(E_l,u C_u) C_uᵀ for users (C_u: d × K global intent prototypes;
///   items alike with C_i) (eq. 2–4);
/// - adaptive augmentation: each edge (h, t) gets α = (cos(z_h, z_t) + 1)/2 from the graph view and from
///   the intent view, row-normalised over the head's edges (D^{-1} of the α-weighted adjacency), giving two
///   learned masks M_Z and M_R; H = M_Z E_l, S = M_R E_l (eq. 6–8; the masks are differentiable);
/// - E_{l+1} = Z + R + H + S + E_l.
/// The final embedding is the *sum* of E_0…E_L. Loss: mean softplus(s_uj − s_ui) (BPR) + `emb_reg` ·
/// (‖e⁰_u‖² + ‖e⁰_i‖² + ‖e⁰_j‖²) summed over the batch (not averaged, as the official code) + `cen_reg` ·
/// (‖C_u‖² + ‖C_i‖²) + `ssl_reg` · Σ_l [InfoNCE(Z, R) + InfoNCE(Z, H) + InfoNCE(Z, S)] over the batch's unique
/// users and (positive) items, cosine similarity at temperature `temp`, in-batch negatives (eq. 10–12).
/// Defaults are the official ones (d 32, 2 layers, 128 intents, τ 1, emb_reg 2.5e-5, cen_reg 5e-3,
/// ssl_reg 0.1, batch 10,240).
public final class DCCF: GradientModel, EmbeddingModel {
    public static let name = "dccf"
    public static let summary = "disentangled intents + adaptive edge masks + cross-view contrast (Ren et al. 2023)"

    public let dimension: Int
    public let layers: Int
    public let intents: Int
    public let temperature: Float
    public let embeddingRegularization: Float
    public let prototypeRegularization: Float
    public let contrastWeight: Float
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var userIntents = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var itemIntents = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var history: [EpochReport] = []
    private var graph: BipartiteGraph?
    /// The unnormalised bipartite adjacency (both directions): the edges (h, t) the masks weigh.
    private var edges: SparsePattern?

    public var parameters: [Tensor] { [nodeTable, userIntents, itemIntents] }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 32)
        layers = try h.int("n_layers", default: 2)
        intents = try h.int("n_intents", default: 128)
        temperature = Float(try h.float("temp", default: 1))
        embeddingRegularization = Float(try h.float("emb_reg", default: 2.5e-5))
        prototypeRegularization = Float(try h.float("cen_reg", default: 5e-3))
        contrastWeight = Float(try h.float("ssl_reg", default: 0.1))
        training = try TrainerSettings(&h, batchSize: 10_240)
        guard dimension > 0, layers > 0, intents > 0, temperature > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/n_layers/n_intents/temp", "must be positive")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierNormal(rows: $0, cols: $1, rng: &$2) }
        userIntents = Tensor(parameter: xavierNormal(rows: dimension, cols: intents, rng: &rng))
        itemIntents = Tensor(parameter: xavierNormal(rows: dimension, cols: intents, rng: &rng))
        edges = SparsePattern(GraphNormalization.bipartite(data.userItems))
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// The learned mask of eq. 6–7 from a view `v` of every node: α_e = (cos(v_h, v_t) + 1)/2, divided by
    /// the sum of α over the head's edges. Fused edge ops: no `[edges, d]` endpoint tables.
    private func adaptiveMask(_ v: Tensor) -> Tensor {
        let cosine = Tensor.edgeDots(edges!, Tensor.normalizeRows(v))
        let alpha = Tensor.scale(cosine + Tensor(Matrix(rows: cosine.rows, cols: 1, repeating: 1)), 0.5)
        return Tensor.normalizeWithinRows(edges!, values: alpha)
    }

    private struct Views { var final: Tensor; var graph: [Tensor], intent: [Tensor], graphMasked: [Tensor], intentMasked: [Tensor] }

    private func encode(_ table: Tensor, intents: (Tensor, Tensor)) -> Views {
        let graph = graph!
        var current = table, total = table
        var views = Views(final: table, graph: [], intent: [], graphMasked: [], intentMasked: [])
        for _ in 0..<layers {
            let z = Tensor.spmm(graph.adjacency, current)
            let users = Tensor.sliceRows(current, 0..<graph.userCount), items = Tensor.sliceRows(current, graph.userCount..<graph.nodeCount)
            let r = Tensor.concatRows([
                Tensor.matmul(Tensor.softmaxRows(Tensor.matmul(users, intents.0)), intents.0, transposeB: true),
                Tensor.matmul(Tensor.softmaxRows(Tensor.matmul(items, intents.1)), intents.1, transposeB: true),
            ])
            let h = Tensor.sparseProduct(edges!, values: adaptiveMask(z), current)
            let s = Tensor.sparseProduct(edges!, values: adaptiveMask(r), current)
            views.graph.append(z); views.intent.append(r); views.graphMasked.append(h); views.intentMasked.append(s)
            current = z + r + h + s + current
            total = total + current
        }
        views.final = total
        return views
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let graph = graph!
        let v = encode(nodeTable, intents: (userIntents, itemIntents))
        let itemRows = graph.nodes(ofItems: positives), negativeRows = graph.nodes(ofItems: negatives)
        let u = Tensor.gather(v.final, rows: users)
        var loss = Loss.bpr(positive: Tensor.rowDot(u, Tensor.gather(v.final, rows: itemRows)),
                            negative: Tensor.rowDot(u, Tensor.gather(v.final, rows: negativeRows)))
        if embeddingRegularization > 0 {
            let ego = [users, itemRows, negativeRows].map { Tensor.sumOfSquares(Tensor.gather(nodeTable, rows: $0)) }
            loss = loss + Tensor.scale(ego[0] + ego[1] + ego[2], embeddingRegularization)
        }
        if prototypeRegularization > 0 {
            loss = loss + Tensor.scale(Tensor.sumOfSquares(userIntents) + Tensor.sumOfSquares(itemIntents), prototypeRegularization)
        }
        if contrastWeight > 0 {
            let uniqueUsers = Array(Set(users)).sorted(), uniqueItems = Array(Set(itemRows)).sorted()
            var contrast: Tensor? = nil
            for l in 0..<layers {
                for rows in [uniqueUsers, uniqueItems] {
                    let anchor = Tensor.normalizeRows(Tensor.gather(v.graph[l], rows: rows))
                    for other in [v.intent[l], v.graphMasked[l], v.intentMasked[l]] {
                        let term = Loss.infoNCE(anchors: anchor, candidates: Tensor.normalizeRows(Tensor.gather(other, rows: rows)),
                                                positives: (0..<Int32(rows.count)).map { $0 }, temperature: temperature)
                        contrast = contrast.map { $0 + term } ?? term
                    }
                }
            }
            loss = loss + Tensor.scale(contrast!, contrastWeight)
        }
        return loss
    }

    public func parametersDidChange() {
        guard let graph else { return }
        let v = encode(Tensor(nodeTable.value), intents: (Tensor(userIntents.value), Tensor(itemIntents.value)))
        (userEmbeddings, itemEmbeddings) = graph.split(v.final.value)
    }
}
