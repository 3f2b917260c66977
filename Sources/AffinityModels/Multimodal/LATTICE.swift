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
/// The reference builds the learned graph as dense items × items matrices. Everything after the top-k is
/// sparse, though — each row keeps k learned and k initial entries, normalising keeps zeros, and the
/// gradient of a masked entry is zero — so by default (`dense_graph=false`) Affinity finds each row's top k
/// in blocks (as `CosineNeighbours`, O(block · items) memory) and builds the graph on that pattern, the
/// similarities of kept pairs recomputed as row dots so their gradient flows: the same function and
/// gradient (up to summation order and tie-breaking), in O(items · k) memory. `dense_graph=true` runs the
/// reference's dense formulation (kept to measure what it costs; `max_items`, default 20,000, ~1.6 GB per
/// dense matrix, guards it). MMRec's learning-rate schedule (×0.96 every 50 epochs) is not applied.
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
    public let denseGraph: Bool
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var features: [Tensor] = []
    private var projections: [LinearLayer] = []
    private var modalityLogits = Tensor(parameter: Matrix(rows: 1, cols: 1))
    private var initialGraphs: [SparseMatrix] = []
    /// The epoch's graph, detached, in CSR: both kNN graphs keep k entries per row and normalising keeps
    /// zeros, so A has at most 2k entries per row and the later batches' A·E is a sparse product (the same
    /// math as MMRec's dense `torch.mm`, without the items² work).
    private var itemAdjacency: SparseOperator?
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
        denseGraph = try h.bool("dense_graph", default: false)
        training = try TrainerSettings(&h)
        guard dimension > 0, knn > 0, itemGraphLayers >= 0, graphLayers >= 0, (0...1).contains(lambda) else {
            throw HyperparameterError.outOfRange("embedding_size/knn_k/n_layers/n_ui_layers/lambda_coeff", "sizes must be positive, lambda_coeff in [0, 1]")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        guard !denseGraph || data.itemCount <= maxItems else {
            throw ModelError.tooLarge("lattice keeps dense items × items graphs (\(data.itemCount)² floats each); raise max_items (now \(maxItems)) if memory allows, or use freedom")
        }
        var rng = SeededGenerator(seed: context.seed)
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        features = modalities.map { Tensor(parameter: $0.features) }
        projections = modalities.map { LinearLayer(inputs: $0.features.cols, outputs: dimension, rng: &rng) }
        modalityLogits = Tensor(parameter: Matrix(rows: 1, cols: modalities.count, repeating: 0.5))
        initialGraphs = modalities.map { ItemGraphCache.cosineKNN($0, k: knn, weight: .similarity) }
        rebuild = true
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    private func dense(_ s: SparseMatrix) -> Matrix {
        var m = Matrix(rows: s.rows, cols: s.cols)
        for r in 0..<s.rows { for p in s.rowStart[r]..<s.rowStart[r + 1] { m.storage[r * s.cols + Int(s.colIndex[p])] = s.values[p] } }
        return m
    }

    /// The learned graph on a sparse pattern: (pattern, values `[nnz, 1]` with their gradient).
    private func sparseLearnedAdjacency(features: [Tensor], logits: Tensor) -> (SparsePattern, Tensor) {
        let n = features[0].rows
        let alpha = Tensor.softmaxRows(logits)
        let units = zip(features, projections).map { Tensor.normalizeRows($0.1($0.0)) }
        // Per modality, each row's top k of the learned similarities (itself plus k − 1 others).
        let learnedPatterns: [SparseMatrix] = units.map { unit in
            let others = min(knn - 1, n - 1)
            let (index, _) = others > 0 ? CosineNeighbours.compute(unit.value, k: others) : ([], [])
            var rows: [Int32] = [], cols: [Int32] = []
            for r in 0..<n {
                rows.append(Int32(r)); cols.append(Int32(r))
                for j in 0..<others where index[r * others + j] >= 0 { rows.append(Int32(r)); cols.append(index[r * others + j]) }
            }
            return SparseMatrix(rows: n, cols: n, rowIndices: rows, colIndices: cols)
        }
        // The union of every learned and initial pattern.
        var rows: [Int32] = [], cols: [Int32] = []
        for g in learnedPatterns + initialGraphs { for r in 0..<n { for p in g.rowStart[r]..<g.rowStart[r + 1] { rows.append(Int32(r)); cols.append(g.colIndex[p]) } } }
        let union = SparseMatrix(rows: n, cols: n, rowIndices: rows, colIndices: cols)
        let pattern = SparsePattern(union)
        var rowOf = [Int32](repeating: 0, count: union.nonZeros)
        for r in 0..<n { for p in union.rowStart[r]..<union.rowStart[r + 1] { rowOf[p] = Int32(r) } }
        let colOf = union.colIndex
        func onUnion(_ g: SparseMatrix, ones: Bool) -> Matrix {
            var v = Matrix(rows: union.nonZeros, cols: 1)
            for r in 0..<n {
                var q = union.rowStart[r]
                for p in g.rowStart[r]..<g.rowStart[r + 1] {
                    while union.colIndex[q] != g.colIndex[p] { q += 1 }
                    v.storage[q] = ones ? 1 : g.values[p]
                }
            }
            return v
        }
        var learned: Tensor? = nil, initial: Tensor? = nil
        for m in 0..<units.count {
            let similarity = Tensor.edgeDots(pattern, units[m])
            let weight = Tensor.sliceColumns(alpha, m..<(m + 1))
            let l = Tensor.scaled(similarity * Tensor(onUnion(learnedPatterns[m], ones: true)), by: weight)
            let i = Tensor.scaled(Tensor(onUnion(initialGraphs[m], ones: false)), by: weight)
            learned = learned.map { $0 + l } ?? l
            initial = initial.map { $0 + i } ?? i
        }
        // norm(L): l_p · d_r^{-1/2} · d_c^{-1/2}, d = row sums (a sparse product with the row-membership matrix).
        let membership = SparseOperator(SparseMatrix(rows: n, cols: union.nonZeros, rowIndices: rowOf, colIndices: (0..<Int32(union.nonZeros)).map { $0 }))
        let degree = Tensor.spmm(membership, learned!)
        let inverseRoot = Tensor.exp(Tensor.scale(Tensor.log(Tensor.clamp(degree, lower: 1e-12, upper: .greatestFiniteMagnitude)), -0.5))
        let normalized = learned! * Tensor.gather(inverseRoot, rows: rowOf) * Tensor.gather(inverseRoot, rows: colOf)
        return (pattern, Tensor.scale(normalized, 1 - lambda) + Tensor.scale(initial!, lambda))
    }

    /// A = (1 − λ) · norm(Σ α_m topk(cos(f_m, f_m))) + λ · Σ α_m Ã_m, differentiable in the projections,
    /// the fine-tuned features and the modality weights (the reference's dense formulation).
    private func learnedAdjacency(features: [Tensor], logits: Tensor) -> Tensor {
        let alpha = Tensor.softmaxRows(logits)
        var learned: Tensor? = nil, initial: Tensor? = nil
        for (m, (f, projection)) in zip(features, projections).enumerated() {
            let unit = Tensor.normalizeRows(projection(f))
            let similarity = Tensor.matmul(unit, unit, transposeB: true)
            let neighbours = similarity * Tensor(topKRowMask(similarity.value, k: knn))
            let weight = Tensor.sliceColumns(alpha, m..<(m + 1))
            let l = Tensor.scaled(neighbours, by: weight), i = Tensor.scaled(Tensor(dense(initialGraphs[m])), by: weight)
            learned = learned.map { $0 + l } ?? l
            initial = initial.map { $0 + i } ?? i
        }
        return Tensor.scale(Tensor.symmetricNormalizeDense(learned!), 1 - lambda) + Tensor.scale(initial!, lambda)
    }

    public func epochWillStart(_ epoch: Int) { rebuild = true }

    /// Stores `a` without its zeros.
    private static func sparse(_ a: Matrix) -> SparseOperator {
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        for r in 0..<a.rows { for c in 0..<a.cols where a.storage[r * a.cols + c] != 0 { rows.append(Int32(r)); cols.append(Int32(c)); values.append(a.storage[r * a.cols + c]) } }
        return SparseOperator(SparseMatrix(rows: a.rows, cols: a.cols, rowIndices: rows, colIndices: cols, values: values))
    }

    /// The item-graph product with a differentiable dense graph (an epoch's first batch) or the epoch's
    /// detached sparse one.
    private enum ItemGraph { case learned(Tensor), learnedSparse(SparsePattern, Tensor), fixed(SparseOperator) }

    /// The current learned graph, differentiable (dense or sparse per `dense_graph`), and its detached CSR form.
    private func currentGraph(features: [Tensor], logits: Tensor) -> (ItemGraph, SparseOperator) {
        if denseGraph {
            let learned = learnedAdjacency(features: features, logits: logits)
            return (.learned(learned), Self.sparse(learned.value))
        }
        let (pattern, values) = sparseLearnedAdjacency(features: features, logits: logits)
        return (.learnedSparse(pattern, values), SparseOperator(pattern.matrix.withValues(values.value.storage)))
    }

    private func encode(_ table: Tensor, adjacency: ItemGraph) -> (nodes: Tensor, items: Tensor) {
        let graph = graph!
        let nodes = Tensor.meanPropagation(graph.adjacency, table, layers: graphLayers)
        var h = Tensor.sliceRows(table, graph.userCount..<graph.nodeCount)
        for _ in 0..<itemGraphLayers {
            switch adjacency {
            case .learned(let a): h = Tensor.matmul(a, h)
            case .learnedSparse(let pattern, let values): h = Tensor.sparseProduct(pattern, values: values, h)
            case .fixed(let a): h = Tensor.spmm(a, h)
            }
        }
        return (nodes, Tensor.sliceRows(nodes, graph.userCount..<graph.nodeCount) + Tensor.normalizeRows(h))
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let adjacency: ItemGraph
        if rebuild || itemAdjacency == nil {
            (adjacency, itemAdjacency) = currentGraph(features: features, logits: modalityLogits)
            rebuild = false
        } else {
            adjacency = .fixed(itemAdjacency!)
        }
        let (nodes, items) = encode(nodeTable, adjacency: adjacency)
        return Loss.bpr(users: Tensor.gather(nodes, rows: users), positives: Tensor.gather(items, rows: positives),
                        negatives: Tensor.gather(items, rows: negatives), penalty: regularization, squared: true)
    }

    public func parametersDidChange() {
        guard let graph else { return }
        // Scoring rebuilds the learned graph from the current parameters (MMRec's full_sort_predict does too).
        let (_, adjacency) = currentGraph(features: features.map { Tensor($0.value) }, logits: Tensor(modalityLogits.value))
        let (nodes, items) = encode(Tensor(nodeTable.value), adjacency: .fixed(adjacency))
        userEmbeddings = graph.split(nodes.value).users
        itemEmbeddings = items.value
    }
}
