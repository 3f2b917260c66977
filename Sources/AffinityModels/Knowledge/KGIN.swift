import AffinityCore
import AffinityData

/// KGIN (Wang et al., "Learning Intents behind Interactions with Knowledge Graph for Recommendation", WWW 2021;
/// official code huangtinglin/Knowledge_Graph_based_Intent_Network).
///
/// - Intents: P intents, each an attentive combination of the relation embeddings, e_p = Σ_r α(r, p) e_r with
///   α(·, p) = softmax of the learned logits w_p (eq. 1–2).
/// - Entities, relational path-aware aggregation (eq. 6–7): e_h ← mean over h's facts (h, r, t) of e_r ⊙ e_t,
///   over the knowledge graph alone (with inverse relations), items being the first entities
///   (`Tensor.relationalAggregation`).
/// - Users, intent-aware aggregation (eq. 4–5): with m_u the mean of u's items' embeddings and β(u, ·) the softmax
///   of ⟨e_u, q_p⟩ over intents, e_u ← m_u ⊙ Σ_p β(u, p) e_p + m_u. As in the official code, the attention reads
///   the user's current embedding against a separate learned table q_p (`latent_emb`), and keeps the residual m_u.
/// - Each layer's outputs get message dropout and L2 normalisation; the final embeddings are the sum of layer 0
///   and every layer's output (eq. 11; no transformation matrices).
/// - Loss: BPR + `reg_weight` · ½(‖u‖² + ‖i‖² + ‖j‖²)/batch on the final embeddings + `sim_regularity` · the
///   intent independence loss (eq. 3) over the intents' relation logits: distance correlation (the official
///   default) or squared cosine, summed over intent pairs (`Tensor.pairwiseDependence`).
/// - Node dropout, redrawn every batch as the official code does: a random `1 − node_dropout_rate` share of the
///   facts is kept (each head averaging over its kept facts), and each interaction is kept with probability
///   `1 − node_dropout_rate` and scaled by 1/(1 − rate).
/// The whole graph is propagated for each batch (the official code's forward pass). Items with no interactions
/// but linked facts are scored through their entity's aggregated neighbours (the cold-start protocol).
public final class KGIN: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "kgin"
    public static let summary = "knowledge graph intent network: relation-based user intents, relational path aggregation (Wang et al. 2021)"

    public let dimension: Int
    public let intentCount: Int
    public let hops: Int
    public let regularization: Float
    public let independenceWeight: Float
    public let independence: DependenceMeasure
    public let nodeDropout: Float
    public let messageDropout: Float
    public let training: TrainerSettings

    /// Dense gradients: every batch propagates over the whole graph, as the official code does.
    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// Items first, then the other entities.
    public private(set) var entityTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// e_r, `[relations, d]` (inverse relations included).
    public private(set) var relationTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// w_p, the intents' logits over relations, `[intents, relations]` (`disen_weight_att`).
    public private(set) var intentLogits = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// q_p, what users attend to when choosing intents, `[intents, d]` (`latent_emb`).
    public private(set) var intentKeys = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var edges: RelationalEdges?
    /// Each user's items as a row-stochastic `[users, entities]` matrix (the mean over the user's items).
    private var interactionMean: SparseMatrix?
    private var itemTotal = 0
    private var seed: UInt64 = 0
    private var iteration = 0
    public private(set) var history: [EpochReport] = []

    /// Without facts there are no relations: no intents and no independence loss, only the tables.
    private var hasRelations: Bool { relationTable.rows > 0 }
    public var parameters: [Tensor] {
        [userTable, entityTable] + (hasRelations ? [relationTable, intentLogits, intentKeys] : [])
    }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        intentCount = try h.int("n_factors", default: 4)
        hops = try h.int("context_hops", default: 3)
        regularization = Float(try h.float("reg_weight", default: 1e-5))
        independenceWeight = Float(try h.float("sim_regularity", default: 1e-4))
        let measure = try h.string("ind", default: "distance", allowed: DependenceMeasure.allCases.map(\.rawValue))
        independence = DependenceMeasure(rawValue: measure)!
        nodeDropout = Float(try h.float("node_dropout_rate", default: 0.5))
        messageDropout = Float(try h.float("mess_dropout_rate", default: 0.1))
        training = try TrainerSettings(&h)
        guard dimension > 0, intentCount > 0, hops > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/n_factors/context_hops", "must be positive")
        }
        guard (0..<1).contains(nodeDropout), (0..<1).contains(messageDropout) else {
            throw HyperparameterError.outOfRange("node_dropout_rate/mess_dropout_rate", "must be in [0, 1)")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let graph = try data.requireKnowledgeGraph(for: Self.name)
        itemTotal = data.itemCount
        seed = context.seed
        edges = RelationalEdges(nodeCount: graph.entityCount, heads: graph.heads, relations: graph.relations, tails: graph.tails)
        // Row u: 1/|N_u| at each of u's items (the official `_si_norm_lap` of the interactions).
        let m = data.userItems
        let values = (0..<m.rows).flatMap { u in
            [Float](repeating: 1 / Float(max(m.count(ofRow: u), 1)), count: m.count(ofRow: u))
        }
        interactionMean = SparseMatrix(rows: m.rows, cols: graph.entityCount, rowStart: m.rowStart, colIndex: m.colIndex, values: values)
        var rng = SeededGenerator(seed: context.seed)
        // One Xavier-uniform table over users and entities (the official `all_embed`), split in two.
        let nodes = xavierUniform(rows: data.userCount + graph.entityCount, cols: dimension, rng: &rng)
        userTable = Tensor(parameter: rowSlice(nodes, 0..<data.userCount))
        entityTable = Tensor(parameter: rowSlice(nodes, data.userCount..<nodes.rows))
        relationTable = Tensor(parameter: xavierUniform(rows: graph.relationCount, cols: dimension, rng: &rng))
        intentLogits = Tensor(parameter: xavierUniform(rows: intentCount, cols: graph.relationCount, rng: &rng))
        intentKeys = Tensor(parameter: xavierUniform(rows: intentCount, cols: dimension, rng: &rng))
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    /// The final user and entity embeddings (sums over layers), from the given tables. `factWeights` are the
    /// aggregation weights of the facts and `interactions` the users' item means, both after node dropout.
    func propagate(users u0: Tensor, entities e0: Tensor, factWeights: [Float], interactions: SparseOperator,
                   dropout rate: Float, rng: inout SeededGenerator) -> (users: Tensor, entities: Tensor) {
        guard let edges else { return (u0, e0) }
        // e_p = Σ_r softmax(w_p)_r e_r (eq. 1–2), shared by all layers.
        let intents = hasRelations ? Tensor.matmul(Tensor.softmaxRows(intentLogits), relationTable) : nil
        var users = u0, entities = e0, userSum = u0, entitySum = e0
        for _ in 0..<hops {
            let entityMessages = Tensor.relationalAggregation(edges, weights: factWeights, entities: entities, relations: relationTable)
            var userMessages = Tensor.spmm(interactions, entities)
            if let intents {
                // β(u, p) = softmax_p ⟨e_u, q_p⟩ (eq. 5); m_u ⊙ Σ_p β(u, p) e_p + m_u (eq. 4).
                let attention = Tensor.softmaxRows(Tensor.matmul(users, intentKeys, transposeB: true))
                userMessages = userMessages * Tensor.matmul(attention, intents) + userMessages
            }
            entities = Tensor.normalizeRows(Tensor.dropout(entityMessages, rate: rate, rng: &rng))
            users = Tensor.normalizeRows(Tensor.dropout(userMessages, rate: rate, rng: &rng))
            entitySum = entitySum + entities
            userSum = userSum + users
        }
        return (userSum, entitySum)
    }

    /// This batch's node dropout: the kept facts' aggregation weights and the kept interactions, rescaled.
    public func droppedGraph(rng: inout SeededGenerator) -> (factWeights: [Float], interactions: SparseOperator) {
        guard let edges, let mean = interactionMean else { preconditionFailure("KGIN is not fitted") }
        guard nodeDropout > 0 else { return (edges.meanWeights(), SparseOperator(mean)) }
        // Exactly ⌊(1 − rate) · facts⌋ facts, drawn without replacement (partial Fisher–Yates).
        let kept = Int(Float(edges.count) * (1 - nodeDropout))
        var order = Array(0..<edges.count)
        var keep = [Bool](repeating: false, count: edges.count)
        for k in 0..<kept {
            order.swapAt(k, k + rng.nextInt(below: edges.count - k))
            keep[order[k]] = true
        }
        // Each interaction kept with probability 1 − rate, scaled by 1/(1 − rate) (`_sparse_dropout`).
        var rowStart = [Int](repeating: 0, count: mean.rows + 1), cols: [Int32] = [], values: [Float] = []
        let scale = 1 / (1 - nodeDropout)
        for u in 0..<mean.rows {
            for p in mean.rowStart[u]..<mean.rowStart[u + 1] where rng.nextFloat() >= nodeDropout {
                cols.append(mean.colIndex[p])
                values.append(mean.values[p] * scale)
            }
            rowStart[u + 1] = cols.count
        }
        return (edges.meanWeights(keep: keep),
                SparseOperator(SparseMatrix(rows: mean.rows, cols: mean.cols, rowStart: rowStart, colIndex: cols, values: values)))
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        var rng = SeededGenerator(seed: seed ^ 0x4B91).derived(stream: UInt64(iteration))
        let (weights, interactions) = droppedGraph(rng: &rng)
        let (u, e) = propagate(users: userTable, entities: entityTable, factWeights: weights, interactions: interactions,
                               dropout: messageDropout, rng: &rng)
        var loss = Loss.bpr(users: Tensor.gather(u, rows: users), positives: Tensor.gather(e, rows: positives),
                            negatives: Tensor.gather(e, rows: negatives), penalty: regularization, squared: true)
        if hasRelations && independenceWeight > 0 && intentCount > 1 {
            loss = loss + Tensor.scale(Tensor.pairwiseDependence(intentLogits, measure: independence), independenceWeight)
        }
        return loss
    }

    /// Scoring embeddings: the whole graph, no dropout.
    public func parametersDidChange() {
        guard let edges, let mean = interactionMean else { return }
        var rng = SeededGenerator(seed: seed)
        let (u, e) = propagate(users: Tensor(userTable.value), entities: Tensor(entityTable.value), factWeights: edges.meanWeights(),
                               interactions: SparseOperator(mean), dropout: 0, rng: &rng)
        userEmbeddings = u.value
        itemEmbeddings = rowSlice(e.value, 0..<itemTotal)
    }
}
