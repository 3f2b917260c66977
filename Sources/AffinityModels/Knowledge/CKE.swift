import AffinityCore
import AffinityData

/// CKE (Zhang et al., "Collaborative Knowledge Base Embedding for Recommender Systems", KDD 2016), its
/// structural part as RecBole runs it: matrix factorisation whose item vector is the item's own embedding plus
/// its knowledge-graph entity's (e_i = η_i + v_i, eq. 6), the entity table trained jointly by TransR on the
/// graph's facts (eq. 4).
///
/// Each batch of (user, positive, negative) pairs comes with as many facts drawn uniformly from the graph (the
/// forward relations, as RecBole loads `.kg` without inverses), each with a corrupted tail. Loss: BPR on the
/// pairs + TransR's ranking loss + `reg_weight` · EmbLoss(u, e_i, e_j) + `kg_reg_weight` · EmbLoss(TransR's
/// four projected tables) (RecBole's `reg_weights: [0.01, 0.01]`). Items with no linked entity keep an entity
/// row that only the pairs train, i.e. a second id embedding. An item with no training interaction is scored by
/// its entity embedding alone (its id embedding, never trained, is zeroed), so the facts rank cold items.
public final class CKE: GradientModel, EmbeddingModel, ColdStartCapable {
    public static let name = "cke"
    public static let summary = "matrix factorisation plus TransR item knowledge-graph embeddings (Zhang et al. 2016)"

    public let dimension: Int
    public let relationDimension: Int
    public let regularization: Float
    public let knowledgeRegularization: Float
    public let training: TrainerSettings

    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    /// Items first (row i is item i's entity), then the other entities.
    public private(set) var entityTable = Tensor(parameter: Matrix(rows: 0, cols: 0), sparseGradients: true)
    public private(set) var transR: TransR?
    public private(set) var history: [EpochReport] = []
    private var graph: ItemKnowledgeGraph?
    /// The positions of the forward (non-inverse) facts.
    private var forwardFacts: [Int] = []
    /// Items with no training interaction.
    private var cold: [Bool] = []
    private var seed: UInt64 = 0
    private var iteration = 0

    public var parameters: [Tensor] { [userTable, itemTable, entityTable] + (transR?.parameters ?? []) }
    public var userEmbeddings: Matrix { userTable.value }
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        relationDimension = try h.int("kg_embedding_size", default: 64)
        regularization = Float(try h.float("reg_weight", default: 1e-2))
        knowledgeRegularization = Float(try h.float("kg_reg_weight", default: 1e-2))
        training = try TrainerSettings(&h)
        guard dimension > 0, relationDimension > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/kg_embedding_size", "must be positive")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let graph = try data.requireKnowledgeGraph(for: Self.name)
        self.graph = graph
        cold = coldItems(data)
        forwardFacts = graph.relations.indices.filter { Int(graph.relations[$0]) < graph.relationCount / 2 }
        seed = context.seed
        var rng = SeededGenerator(seed: context.seed)
        userTable = Tensor(parameter: xavierNormal(rows: data.userCount, cols: dimension, rng: &rng), sparseGradients: true)
        itemTable = Tensor(parameter: xavierNormal(rows: data.itemCount, cols: dimension, rng: &rng), sparseGradients: true)
        entityTable = Tensor(parameter: xavierNormal(rows: graph.entityCount, cols: dimension, rng: &rng), sparseGradients: true)
        transR = TransR(relations: graph.relationCount, dimension: dimension, relationDimension: relationDimension, rng: &rng)
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    public func parametersDidChange() {
        guard graph != nil else { return }
        // η_i + v_i for every item (the item rows of the entity table come first); v_i alone for cold items.
        var sum = itemTable.value
        zeroRows(&sum, cold)
        for k in 0..<sum.storage.count { sum.storage[k] += entityTable.value.storage[k] }
        itemEmbeddings = sum
    }

    /// The batch's facts: drawn uniformly, keyed by (seed, batch clock), so a run is reproducible.
    func factBatch(count: Int) -> TripleBatch? {
        guard let graph, !forwardFacts.isEmpty else { return nil }
        var rng = SeededGenerator(seed: seed ^ 0xC4E).derived(stream: UInt64(iteration))
        let positions = (0..<count).map { _ in forwardFacts[rng.nextInt(below: forwardFacts.count)] }
        return TripleBatch(graph, positions: positions, rng: &rng)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let u = Tensor.gather(userTable, rows: users)
        let i = Tensor.gather(itemTable, rows: positives) + Tensor.gather(entityTable, rows: positives)
        let j = Tensor.gather(itemTable, rows: negatives) + Tensor.gather(entityTable, rows: negatives)
        var loss = Loss.bpr(users: u, positives: i, negatives: j, penalty: regularization, squared: false)
        if let transR, let facts = factBatch(count: users.count) {
            loss = loss + transR.loss(entityTable, facts, regularization: knowledgeRegularization)
        }
        return loss
    }
}
