import AffinityCore

/// LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
/// Recommendation", SIGIR 2020; official code gusye1234/LightGCN-PyTorch, RecBole's `LightGCN`).
///
/// E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾ with Â = D^{-1/2} A D^{-1/2} over the user+item bipartite graph (eq. 7), no weights and
/// no nonlinearity; the final embedding is the mean of layers 0…K (eq. 8, α_k = 1/(K+1)); score ⟨e_u, e_i⟩;
/// loss BPR + `reg_weight` · ½(‖e⁰_u‖² + ‖e⁰_i‖² + ‖e⁰_j‖²) / batch on the layer-0 embeddings of the batch
/// (eq. 15). `require_pow=false` uses RecBole's default form, (‖e⁰_u‖ + ‖e⁰_i‖ + ‖e⁰_j‖) / batch.
/// `loss=bce` and `denoise=tce|rce` change the ranking term (`PairLossSettings`).
public final class LightGCN: GradientModel, EmbeddingModel {
    public static let name = "lightgcn"
    public static let summary = "linear graph propagation over the user–item graph, mean of layers (He et al. 2020)"

    public let dimension: Int
    public let layers: Int
    public let regularization: Float
    public let squaredPenalty: Bool
    public let training: TrainerSettings
    public let lossSettings: PairLossSettings
    /// Batches trained so far (T-CE's schedule).
    private var iteration = 0

    /// Layer-0 embeddings of all nodes, users first then items: one table, so propagation needs no
    /// concatenation per batch.
    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var history: [EpochReport] = []
    private var graph: BipartiteGraph?

    public var parameters: [Tensor] { [nodeTable] }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        layers = try h.int("n_layers", default: 3)
        regularization = Float(try h.float("reg_weight", default: 1e-4))
        squaredPenalty = try h.bool("require_pow", default: true)
        // lr 1e-2, not RecBole's 1e-3: at 1e-3 RecBole's early stopping (valid MRR@10, patience 10) ends ml-100k
        // runs on a plateau ~0.10 Recall@20 below the model's level (docs/benchmarks.md, "Graph models").
        training = try TrainerSettings(&h, learningRate: 1e-2)
        lossSettings = try PairLossSettings(&h)
        guard dimension > 0, layers >= 0 else { throw HyperparameterError.outOfRange("embedding_size/n_layers", "must be positive") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        let graph = BipartiteGraph(data)
        self.graph = graph
        // Xavier-uniform per table, as RecBole initialises its user and item embeddings.
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierUniform(rows: $0, cols: $1, rng: &$2) }
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// Mean of layers 0…K of the propagated embeddings (eq. 8), as one fused op.
    private func propagate(_ e0: Tensor) -> Tensor {
        guard let graph else { return e0 }
        return Tensor.meanPropagation(graph.adjacency, e0, layers: layers)
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let itemRows = graph?.nodes(ofItems: positives) ?? positives, negativeRows = graph?.nodes(ofItems: negatives) ?? negatives
        // The batch reads only its own rows of the propagated table, so the last hop is computed for them alone.
        let n = users.count
        let batch = graph.map { Tensor.meanPropagation($0.adjacency, nodeTable, layers: layers, at: users + itemRows + negativeRows) }
            ?? Tensor.gather(nodeTable, rows: users + itemRows + negativeRows)
        let u = Tensor.sliceRows(batch, 0..<n), i = Tensor.sliceRows(batch, n..<(2 * n)), j = Tensor.sliceRows(batch, (2 * n)..<(3 * n))
        let ranking = lossSettings.loss(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j), iteration: iteration)
        guard regularization > 0 else { return ranking }
        let ego = [users, itemRows, negativeRows].map { Tensor.gather(nodeTable, rows: $0) }
        return ranking + Tensor.scale(Loss.embeddingPenalty(ego, batchSize: users.count, squared: squaredPenalty), regularization)
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    /// Scores under the current layer-0 table, for samplers that consult the model (PLD): the propagation of
    /// every batch, as PLD's official code runs its forward pass, with the last hop at the pairs' rows alone.
    public func trainingScores(users: [Int32], items: [Int32]) -> [Float] {
        guard let graph else { return Matrix.pairDots(userEmbeddings, rows: users, itemEmbeddings, rows: items) }
        let n = users.count
        let propagated = Tensor.meanPropagation(graph.adjacency, Tensor(nodeTable.value), layers: layers,
                                                at: users + graph.nodes(ofItems: items)).value
        return Matrix.pairDots(propagated, rows: Array(0..<Int32(n)), propagated, rows: Array(Int32(n)..<Int32(2 * n)))
    }

    public func parametersDidChange() {
        // Final embeddings for scoring: one propagation outside the graph.
        guard let graph else { return }
        (userEmbeddings, itemEmbeddings) = graph.split(propagate(Tensor(nodeTable.value)).value)
    }
}
