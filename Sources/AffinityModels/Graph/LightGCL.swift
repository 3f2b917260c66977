import AffinityCore

/// LightGCL (Cai, Huang, Xia & Ren, "LightGCL: Simple Yet Effective Graph Contrastive Learning for
/// Recommendation", ICLR 2023; official code HKUDS/LightGCL `model.py`).
///
/// Local view: parameter-free propagation on Â = D_u^{-1/2} R D_i^{-1/2}, E_u⁽ˡ⁾ = Â E_i⁽ˡ⁻¹⁾ and
/// E_i⁽ˡ⁾ = Âᵀ E_u⁽ˡ⁻¹⁾ (eq. 1; edge dropout is 0 in the official defaults and not implemented), summed over
/// layers 0…L: E = Σ_l E⁽ˡ⁾. Global view: the rank-q truncated SVD Â ≈ U S Vᵀ (computed once, never
/// reconstructed densely) propagates the *local* previous layer, G_u⁽ˡ⁾ = U S Vᵀ E_i⁽ˡ⁻¹⁾ and
/// G_i⁽ˡ⁾ = V S Uᵀ E_u⁽ˡ⁻¹⁾ (eq. 5–6), G = E⁽⁰⁾ + Σ_{l≥1} G⁽ˡ⁾. Only the batch rows of G are formed:
/// (U S)[rows] · (Vᵀ Σ_{l<L} E_i⁽ˡ⁾).
///
/// Loss (official code): BPR on E over the batch triples + λ₁ · L_s + λ₂ · ‖E⁽⁰⁾‖², where for the batch's
/// users (and, likewise, for its positive and negative items against all items)
/// L_s = −mean clamp(⟨g_u, e_u⟩/τ, −5, 5) + mean log Σ_{v ∈ all users} exp(⟨g_u, e_v⟩/τ) (eq. 7, unnormalised
/// embeddings as in the code). That is InfoNCE over all users plus mean(x − clamp(x)) for the positive logit x.
/// Defaults are the official ones: d 64, q 5, 2 layers, τ 0.2, λ₁ 0.2, λ₂ 1e-7, batch 4096, lr 1e-3.
public final class LightGCL: GradientModel, EmbeddingModel {
    public static let name = "lightgcl"
    public static let summary = "graph contrastive learning with an SVD-based global view (Cai et al. 2023)"

    public let dimension: Int
    public let layers: Int
    public let rank: Int
    public let temperature: Float
    public let lambda1: Float
    public let lambda2: Float
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var history: [EpochReport] = []
    private var graph: BipartiteGraph?
    /// U S `[users, q]`, V S `[items, q]`, U `[users, q]`, V `[items, q]` of the normalised interaction matrix.
    private var us = Tensor(Matrix(rows: 0, cols: 0)), vs = Tensor(Matrix(rows: 0, cols: 0))
    private var u = Tensor(Matrix(rows: 0, cols: 0)), v = Tensor(Matrix(rows: 0, cols: 0))

    public var parameters: [Tensor] { [nodeTable] }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        layers = try h.int("n_layers", default: 2)
        rank = try h.int("svd_q", default: 5)
        temperature = Float(try h.float("temp", default: 0.2))
        lambda1 = Float(try h.float("lambda1", default: 0.2))
        lambda2 = Float(try h.float("lambda2", default: 1e-7))
        training = try TrainerSettings(&h, batchSize: 4096)
        guard dimension > 0, layers > 0, rank > 0, temperature > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/n_layers/svd_q/temp", "must be positive")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        let graph = BipartiteGraph(data)
        self.graph = graph
        // Â as a users × items matrix: the user rows of the normalised bipartite adjacency, item columns.
        let normalized = GraphNormalization.symmetricBipartite(data.userItems)
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        for r in 0..<data.userCount {
            for p in normalized.rowStart[r]..<normalized.rowStart[r + 1] {
                rows.append(Int32(r)); cols.append(normalized.colIndex[p] - Int32(data.userCount)); values.append(normalized.values[p])
            }
        }
        let a = SparseMatrix(rows: data.userCount, cols: data.itemCount, rowIndices: rows, colIndices: cols, values: values)
        let q = min(rank, data.userCount, data.itemCount)
        let (left, s, right) = try Decompositions.randomizedSVD(SparseOperator(a), rank: q, seed: context.seed)
        var leftS = left, rightS = right
        for r in 0..<leftS.rows { for c in 0..<q { leftS[r, c] *= s[c] } }
        for r in 0..<rightS.rows { for c in 0..<q { rightS[r, c] *= s[c] } }
        (u, v, us, vs) = (Tensor(left), Tensor(right), Tensor(leftS), Tensor(rightS))
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// Layers 0…L of the local view.
    private func localLayers(_ e0: Tensor) -> [Tensor] {
        guard let graph else { return [e0] }
        var out = [e0]
        for _ in 0..<layers { out.append(Tensor.spmm(graph.adjacency, out.last!)) }
        return out
    }

    private func sum(_ xs: [Tensor]) -> Tensor { xs.dropFirst().reduce(xs[0]) { $0 + $1 } }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        guard let graph else { return Tensor(Matrix(rows: 1, cols: 1)) }
        let local = localLayers(nodeTable)
        let e = sum(local)
        let eUsers = Tensor.sliceRows(e, 0..<graph.userCount)
        let eItems = Tensor.sliceRows(e, graph.userCount..<graph.nodeCount)
        let itemRows = graph.nodes(ofItems: positives), negativeRows = graph.nodes(ofItems: negatives)

        // BPR on the local view's final embeddings.
        let eu = Tensor.gather(e, rows: users), ei = Tensor.gather(e, rows: itemRows), ej = Tensor.gather(e, rows: negativeRows)
        let bpr = Loss.bpr(positive: Tensor.rowDot(eu, ei), negative: Tensor.rowDot(eu, ej))

        // Global view for the batch rows only: G = E⁽⁰⁾ + (U S)[rows] · Vᵀ Σ_{l<L} E_i⁽ˡ⁾ (and symmetrically).
        let previous = sum(Array(local.prefix(layers)))
        let vtItems = Tensor.matmul(v, Tensor.sliceRows(previous, graph.userCount..<graph.nodeCount), transposeA: true)  // [q, d]
        let utUsers = Tensor.matmul(u, Tensor.sliceRows(previous, 0..<graph.userCount), transposeA: true)                 // [q, d]
        // Each batch node once, weighted by how often the batch lists it: the official means over uids / iids.
        let batchUsers = DistinctRows(users, bound: graph.userCount)
        let batchItems = DistinctRows(positives + negatives, bound: graph.itemCount)
        let gUsers = Tensor.gather(nodeTable, rows: batchUsers.rows) + Tensor.matmul(Tensor.gather(us, rows: batchUsers.rows), vtItems)
        let gItems = Tensor.gather(nodeTable, rows: graph.nodes(ofItems: batchItems.rows))
            + Tensor.matmul(Tensor.gather(vs, rows: batchItems.rows), utUsers)
        let contrastive = contrast(gUsers, all: eUsers, rows: batchUsers) + contrast(gItems, all: eItems, rows: batchItems)

        let penalty = Tensor.scale(Tensor.sumOfSquares(nodeTable), lambda2)
        return bpr + Tensor.scale(contrastive, lambda1) + penalty
    }

    /// −mean clamp(⟨g_r, e_r⟩/τ, −5, 5) + mean log Σ_v exp(⟨g_r, e_v⟩/τ), as InfoNCE over all rows of `all`
    /// plus the clamp's correction mean(x − clamp(x)); means weighted by each row's multiplicity in the batch.
    private func contrast(_ g: Tensor, all: Tensor, rows: DistinctRows) -> Tensor {
        let weights = rows.multiplicities
        let infoNCE = Loss.infoNCE(anchors: g, candidates: all, positives: rows.rows, weights: weights, temperature: temperature)
        let x = Tensor.scale(Tensor.rowDot(g, Tensor.gather(all, rows: rows.rows)), 1 / temperature)
        let weightColumn = Tensor(Matrix(rows: weights.count, cols: 1, values: weights))
        let correction = Tensor.sum((x - Tensor.clamp(x, lower: -5, upper: 5)) * weightColumn)
        return infoNCE + Tensor.scale(correction, 1 / Float(rows.slots.count))
    }

    public func parametersDidChange() {
        guard let graph else { return }
        (userEmbeddings, itemEmbeddings) = graph.split(sum(localLayers(Tensor(nodeTable.value))).value)
    }
}
