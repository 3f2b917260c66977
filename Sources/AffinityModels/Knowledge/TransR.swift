import AffinityCore
import AffinityData

/// A batch of knowledge-graph triples with a corrupted tail each, sorted by relation so that each relation's
/// projection is one matrix product.
public struct TripleBatch: Sendable {
    public var heads: [Int32] = []
    public var relations: [Int32] = []
    public var positiveTails: [Int32] = []
    public var negativeTails: [Int32] = []

    public init(heads: [Int32], relations: [Int32], positiveTails: [Int32], negativeTails: [Int32]) {
        let order = relations.indices.sorted { (relations[$0], $0) < (relations[$1], $1) }
        self.heads = order.map { heads[$0] }
        self.relations = order.map { relations[$0] }
        self.positiveTails = order.map { positiveTails[$0] }
        self.negativeTails = order.map { negativeTails[$0] }
    }

    public var count: Int { heads.count }

    /// The triples at `positions` of the graph, each with a tail drawn uniformly among the entities that do not
    /// complete a known fact (RecBole's `KGSampler`; after 20 rejections the last draw is kept, which only
    /// happens for a head related to nearly every entity).
    public init(_ graph: ItemKnowledgeGraph, positions: [Int], rng: inout SeededGenerator) {
        var negatives: [Int32] = []
        negatives.reserveCapacity(positions.count)
        for p in positions {
            var t = Int32(rng.nextInt(below: graph.entityCount))
            for _ in 0..<20 where graph.contains(head: graph.heads[p], relation: graph.relations[p], tail: t) {
                t = Int32(rng.nextInt(below: graph.entityCount))
            }
            negatives.append(t)
        }
        self.init(heads: positions.map { graph.heads[$0] }, relations: positions.map { graph.relations[$0] },
                  positiveTails: positions.map { graph.tails[$0] }, negativeTails: negatives)
    }
}

/// TransR (Lin et al., AAAI 2015) as CKE and KGAT train it: relation r has an embedding e_r (`[1, k]`) and a
/// projection W_r (`[d, k]`); a triple's distance is ‖e_h W_r + e_r − e_t W_r‖², and the loss ranks a true tail
/// closer than a corrupted one: mean softplus(d(h, r, t) − d(h, r, t′)) = −mean log σ(d′ − d) (CKE eq. 4,
/// KGAT eq. 2).
public final class TransR {
    /// `[relations, k]`.
    public let relationTable: Tensor
    /// One `[d, k]` projection per relation.
    public let projections: [Tensor]

    public init(relations: Int, dimension d: Int, relationDimension k: Int, rng: inout SeededGenerator) {
        relationTable = Tensor(parameter: xavierNormal(rows: max(relations, 1), cols: k, rng: &rng), sparseGradients: true)
        // RecBole keeps W_r as an embedding row of d·k entries, Xavier-initialised as a [relations, d·k] table.
        let std = (2 / Float(max(relations, 1) + d * k)).squareRoot()
        projections = (0..<relations).map { _ in Tensor(parameter: gaussianTable(rows: d, cols: k, std: std, rng: &rng)) }
    }

    public var parameters: [Tensor] { [relationTable] + projections }

    /// Projected head, relation, true tail and corrupted tail embeddings (`[n, k]` each, in the batch's order).
    public func embeddings(_ entityTable: Tensor, _ batch: TripleBatch) -> (head: Tensor, relation: Tensor, positive: Tensor, negative: Tensor) {
        var heads: [Tensor] = [], positives: [Tensor] = [], negatives: [Tensor] = []
        var start = 0
        while start < batch.count {
            let r = batch.relations[start]
            var end = start
            while end < batch.count && batch.relations[end] == r { end += 1 }
            let w = projections[Int(r)]
            // One product for the three entity lists of this relation.
            let rows = Array(batch.heads[start..<end]) + Array(batch.positiveTails[start..<end]) + Array(batch.negativeTails[start..<end])
            let projected = Tensor.matmul(Tensor.gather(entityTable, rows: rows), w)
            let n = end - start
            heads.append(Tensor.sliceRows(projected, 0..<n))
            positives.append(Tensor.sliceRows(projected, n..<(2 * n)))
            negatives.append(Tensor.sliceRows(projected, (2 * n)..<(3 * n)))
            start = end
        }
        func joined(_ parts: [Tensor]) -> Tensor { parts.count == 1 ? parts[0] : Tensor.concatRows(parts) }
        return (joined(heads), Tensor.gather(relationTable, rows: batch.relations), joined(positives), joined(negatives))
    }

    /// The ranking loss plus `regularization` · RecBole's `EmbLoss` (Σ of the four batch tables' norms / n).
    public func loss(_ entityTable: Tensor, _ batch: TripleBatch, regularization: Float) -> Tensor {
        let (h, r, t, t2) = embeddings(entityTable, batch)
        let translated = h + r
        let near = translated - t, far = translated - t2
        let ranking = Loss.bpr(positive: Tensor.rowDot(far, far), negative: Tensor.rowDot(near, near))
        guard regularization > 0 else { return ranking }
        return ranking + Tensor.scale(Loss.embeddingPenalty([h, r, t, t2], batchSize: batch.count, squared: false), regularization)
    }
}
