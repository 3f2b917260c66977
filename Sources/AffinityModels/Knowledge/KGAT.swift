import AffinityCore
import AffinityData
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// KGAT (Wang et al., "KGAT: Knowledge Graph Attention Network for Recommendation", KDD 2019; official code
/// xiangwang1223/knowledge_graph_attention_network, RecBole's `KGAT`).
///
/// The collaborative knowledge graph joins users to the item graph: nodes are users then entities (items
/// first), edges are the facts with their inverse relations plus (user, interact, item) and its inverse.
/// Training alternates, per epoch, as the official code does with its two optimizers:
/// - a TransR phase over every edge of that graph, shuffled (eq. 1–2; `TransR`), with its own Adam;
/// - the attention update: π(h, r, t) = (W_r e_t)ᵀ tanh(W_r e_h + e_r) (eq. 4), softmax over each head's edges
///   (eq. 5, `SegmentSoftmax`), giving the row-stochastic attentive adjacency A;
/// - the collaborative phase (the trainer's batches): L layers of the bi-interaction aggregator (eq. 8)
///   e ← LeakyReLU((e + A e) W₁ + b₁) + LeakyReLU((e ⊙ A e) W₂ + b₂), message dropout, each layer's output
///   L2-normalised and concatenated with layer 0 (eq. 11); score ⟨e_u, e_i⟩, loss BPR + `reg_weight` ·
///   EmbLoss(e_u, e_i, e_j) on the concatenated embeddings (RecBole's form).
/// Propagation is a sparse product with A (`Tensor.spmm`), so the attention is a constant of the
/// collaborative phase, as in both reference implementations. Each layer is one fused op
/// (`Tensor.biInteractionLayer`). LeakyReLU's slope is the official 0.2. An item with no interactions but linked
/// facts is still a node of the graph, scored through its propagated neighbours (the cold-start protocol).
public final class KGAT: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "kgat"
    public static let summary = "knowledge graph attention network: TransR + attentive bi-interaction propagation (Wang et al. 2019)"

    public let dimension: Int
    public let relationDimension: Int
    public let layerSizes: [Int]
    public let regularization: Float
    public let knowledgeRegularization: Float
    public let messageDropout: Float
    public let knowledgeBatchSize: Int
    public let training: TrainerSettings
    /// LeakyReLU's negative slope (the official code's `tf.nn.leaky_relu`).
    static let slope: Float = 0.2

    struct Layer {
        let w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
        var parameters: [Tensor] { [w1, b1, w2, b2] }
    }

    /// Users, then entities (items first).
    /// Dense gradients: the collaborative phase reads the whole table, as the references' dense Adam updates it.
    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var layers: [Layer] = []
    public private(set) var transR: TransR?
    /// The collaborative knowledge graph (node indices; users are nodes 0..<userCount).
    public private(set) var collaborativeGraph: ItemKnowledgeGraph?
    /// The attentive adjacency A (rows sum to one), rebuilt after each TransR phase.
    public private(set) var attention: SparseOperator?
    /// The edges of each relation, for the per-relation products of the attention scores.
    private var edgesByRelation: [[Int]] = []
    private var knowledgeOptimizer = Adam()
    private var userCount = 0
    private var seed: UInt64 = 0
    private var iteration = 0
    private var lastKnowledgeEpoch = -1
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [nodeTable] + layers.flatMap(\.parameters) + (transR?.parameters ?? []) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        relationDimension = try h.int("kg_embedding_size", default: 64)
        let sizes = try h.string("layers", default: "64,32,16")
        layerSizes = sizes.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) }
        guard !layerSizes.isEmpty, layerSizes.count == sizes.split(separator: ",").count, layerSizes.allSatisfy({ $0 > 0 }) else {
            throw HyperparameterError.invalid("layers", sizes, "a list of positive integers, e.g. 64,32,16")
        }
        regularization = Float(try h.float("reg_weight", default: 1e-5))
        knowledgeRegularization = Float(try h.float("kg_reg_weight", default: 1e-5))
        messageDropout = Float(try h.float("mess_dropout", default: 0.1))
        knowledgeBatchSize = try h.int("kg_batch_size", default: 2048)
        training = try TrainerSettings(&h)
        guard dimension > 0, relationDimension > 0, knowledgeBatchSize > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/kg_embedding_size/kg_batch_size", "must be positive")
        }
        guard messageDropout >= 0, messageDropout < 1 else { throw HyperparameterError.outOfRange("mess_dropout", "must be in [0, 1)") }
    }

    /// The knowledge graph with the users joined in: entity e becomes node userCount + e, and every training
    /// interaction adds (u, interact, i) and (i, interacted-by, u) as relations R and R + 1.
    public static func collaborativeGraph(_ data: TrainingData, _ graph: ItemKnowledgeGraph) -> ItemKnowledgeGraph {
        let offset = Int32(data.userCount), interact = Int32(graph.relationCount)
        var triples: [(Int32, Int32, Int32)] = []
        triples.reserveCapacity(graph.tripleCount + 2 * data.interactions.count)
        for k in 0..<graph.tripleCount {
            triples.append((graph.heads[k] + offset, graph.relations[k], graph.tails[k] + offset))
        }
        for (u, i) in zip(data.interactions.users, data.interactions.items) {
            triples.append((u, interact, i + offset))
            triples.append((i + offset, interact + 1, u))
        }
        triples.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        var unique: [(Int32, Int32, Int32)] = []
        unique.reserveCapacity(triples.count)
        for t in triples where unique.last.map({ $0 != t }) ?? true { unique.append(t) }
        return ItemKnowledgeGraph(itemCount: data.userCount + graph.itemCount, entityCount: data.userCount + graph.entityCount,
                                  relationCount: graph.relationCount + 2, linkedItems: graph.linkedItems,
                                  heads: unique.map(\.0), relations: unique.map(\.1), tails: unique.map(\.2))
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let graph = try data.requireKnowledgeGraph(for: Self.name)
        let ckg = Self.collaborativeGraph(data, graph)
        collaborativeGraph = ckg
        userCount = data.userCount
        seed = context.seed
        lastKnowledgeEpoch = -1
        edgesByRelation = [[Int]](repeating: [], count: ckg.relationCount)
        for (p, r) in ckg.relations.enumerated() { edgesByRelation[Int(r)].append(p) }
        var rng = SeededGenerator(seed: context.seed)
        nodeTable = Tensor(parameter: xavierNormal(rows: ckg.entityCount, cols: dimension, rng: &rng))
        var input = dimension
        layers = layerSizes.map { output in
            defer { input = output }
            return Layer(w1: Tensor(parameter: xavierUniform(rows: input, cols: output, rng: &rng)), b1: Tensor(parameter: Matrix(rows: 1, cols: output)),
                         w2: Tensor(parameter: xavierUniform(rows: input, cols: output, rng: &rng)), b2: Tensor(parameter: Matrix(rows: 1, cols: output)))
        }
        transR = TransR(relations: ckg.relationCount, dimension: dimension, relationDimension: relationDimension, rng: &rng)
        knowledgeOptimizer = Adam(learningRate: training.learningRate)
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// The TransR phase and the attention update, once per epoch before its collaborative batches.
    public func epochWillStart(_ epoch: Int) {
        guard epoch > lastKnowledgeEpoch, let ckg = collaborativeGraph, let transR else { return }
        lastKnowledgeEpoch = epoch
        var rng = SeededGenerator(seed: seed ^ 0x6A7).derived(stream: UInt64(epoch))
        var order = Array(0..<ckg.tripleCount)
        for k in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(k, rng.nextInt(below: k + 1)) }
        let parameters = [nodeTable] + transR.parameters
        for start in stride(from: 0, to: order.count, by: knowledgeBatchSize) {
            let batch = TripleBatch(ckg, positions: Array(order[start..<min(start + knowledgeBatchSize, order.count)]), rng: &rng)
            transR.loss(nodeTable, batch, regularization: knowledgeRegularization).backward()
            knowledgeOptimizer.step(parameters)
        }
        updateAttention()
    }

    /// Unnormalised attention scores π(h, r, t) = (W_r e_t)ᵀ tanh(W_r e_h + e_r) of every edge (eq. 4).
    public func attentionScores() -> [Float] {
        guard let ckg = collaborativeGraph, let transR else { return [] }
        var scores = [Float](repeating: 0, count: ckg.tripleCount)
        let nodes = Tensor(nodeTable.value), k = relationDimension
        for (r, edges) in edgesByRelation.enumerated() where !edges.isEmpty {
            let w = Tensor(transR.projections[r].value)
            let n = edges.count
            let projected = Tensor.matmul(Tensor.gather(nodes, rows: edges.map { ckg.heads[$0] } + edges.map { ckg.tails[$0] }), w).value
            let relation = Array(transR.relationTable.value.storage[(r * k)..<((r + 1) * k)])
            projected.storage.withUnsafeBufferPointer { p in
                for (row, edge) in edges.enumerated() {
                    var s: Float = 0
                    for c in 0..<k { s += p[(n + row) * k + c] * tanhf(p[row * k + c] + relation[c]) }
                    scores[edge] = s
                }
            }
        }
        return scores
    }

    /// A ← softmax over each head's edges of the attention scores (eq. 5).
    public func updateAttention() {
        guard let ckg = collaborativeGraph else { return }
        let weights = SegmentSoftmax.forward(attentionScores(), start: ckg.headStart)
        attention = SparseOperator(SparseMatrix(rows: ckg.entityCount, cols: ckg.entityCount, rowStart: ckg.headStart,
                                                colIndex: ckg.tails, values: weights))
    }

    /// Layer 0 and each layer's normalised output, `[nodes, d_l]` each (eq. 8, 11), or their rows `at` when given.
    func propagate(_ e0: Tensor, dropout rate: Float, at rows: [Int32]? = nil) -> [Tensor] {
        guard let attention else { return [e0] }
        var rng = SeededGenerator(seed: seed ^ 0xD40).derived(stream: UInt64(iteration))
        var ego = e0
        var outputs = [rows.map { Tensor.gather(e0, rows: $0) } ?? e0]
        for layer in layers {
            ego = Tensor.biInteractionLayer(input: ego, side: Tensor.spmm(attention, ego), w1: layer.w1, b1: layer.b1,
                                            w2: layer.w2, b2: layer.b2, slope: Self.slope, dropout: rate, rng: &rng)
            outputs.append(Tensor.normalizeRows(rows.map { Tensor.gather(ego, rows: $0) } ?? ego))
        }
        return outputs
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let offset = Int32(userCount), n = users.count
        let rows = users + positives.map { $0 + offset } + negatives.map { $0 + offset }
        let batch = Tensor.concatColumns(propagate(nodeTable, dropout: messageDropout, at: rows))
        let u = Tensor.sliceRows(batch, 0..<n), i = Tensor.sliceRows(batch, n..<(2 * n)), j = Tensor.sliceRows(batch, (2 * n)..<(3 * n))
        return Loss.bpr(users: u, positives: i, negatives: j, penalty: regularization, squared: false)
    }

    /// The scoring embeddings; the attention is recomputed first, so they are a function of the parameters alone
    /// (the trainer restores the best epoch's parameters at the end).
    public func parametersDidChange() {
        guard let ckg = collaborativeGraph else { return }
        updateAttention()
        let all = Tensor.concatColumns(propagate(Tensor(nodeTable.value), dropout: 0)).value
        userEmbeddings = rowSlice(all, 0..<userCount)
        itemEmbeddings = rowSlice(all, userCount..<(ckg.itemCount))
    }
}
