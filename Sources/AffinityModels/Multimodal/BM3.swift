import AffinityCore
import AffinityData

/// BM3 (Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023; MMRec's
/// `BM3`). No negative sampling: a LightGCN encoder (mean of layers 0…`n_layers`) gives u and i (plus the
/// item's ID embedding, as MMRec's forward returns i_g + h); the target views are the same
/// representations with dropout and no gradient (§3.2), the online views go through one shared predictor
/// (a linear layer). Loss (eq. 9–12):
/// [1 − cos(p(u), ĩ)] + [1 − cos(p(i), ũ)]  (the graph reconstruction loss, both directions)
/// + `cl_weight` · Σ_m [1 − cos(p(f_m), ĩ)] + [1 − cos(p(f_m), f̃_m)]  (inter- and intra-modality alignment)
/// + `reg_weight` · (‖U‖ + ‖I‖) / items  (RecBole's EmbLoss over the whole online tables, as MMRec),
/// with f_m = W_m x_m + b_m the projected (fine-tuned) features and ~ the dropped-out detached targets.
/// Score ⟨p(u), p(i)⟩. The trainer's sampled negatives are ignored.
///
/// Defaults: MMRec's (`n_layers` 1, `dropout` 0.5, `reg_weight` 0.1, `cl_weight` 2.0). Scoring uses only ID
/// and graph embeddings, so BM3 cannot rank items without interactions (it is not cold-start capable).
public final class BM3: GradientModel, EmbeddingModel {
    public static let name = "bm3"
    public static let summary = "self-supervised bootstrapping with modality alignment, no negatives (Zhou et al. 2023)"

    public let dimension: Int
    public let layers: Int
    public let dropout: Float
    public let regularization: Float
    public let alignmentWeight: Float
    public let training: TrainerSettings

    public private(set) var nodeTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var predictor: LinearLayer?
    private var features: [Tensor] = []
    private var projections: [LinearLayer] = []
    private var graph: BipartiteGraph?
    private var seed: UInt64 = 0
    /// Target-view sources frozen by `freezeTargets()` (users, items, projected features).
    private var frozenTargets: (users: Matrix, items: Matrix, features: [Matrix])?
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [nodeTable] + (predictor?.parameters ?? []) + features + projections.flatMap(\.parameters) }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        layers = try h.int("n_layers", default: 1)
        dropout = Float(try h.float("dropout", default: 0.5))
        regularization = Float(try h.float("reg_weight", default: 0.1))
        alignmentWeight = Float(try h.float("cl_weight", default: 2.0))
        training = try TrainerSettings(&h)
        guard dimension > 0, layers >= 0, (0..<1).contains(dropout) else {
            throw HyperparameterError.outOfRange("embedding_size/n_layers/dropout", "sizes must be positive and dropout in [0, 1)")
        }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let modalities = try data.requireModalities(for: Self.name)
        var rng = SeededGenerator(seed: context.seed)
        seed = context.seed
        let graph = BipartiteGraph(data)
        self.graph = graph
        nodeTable = graph.nodeTable(dimension: dimension, rng: &rng) { xavierNormal(rows: $0, cols: $1, rng: &$2) }
        predictor = LinearLayer(inputs: dimension, outputs: dimension, rng: &rng, xavierNormalWeight: true)
        features = modalities.map { Tensor(parameter: $0.features) }
        projections = modalities.map { LinearLayer(inputs: $0.features.cols, outputs: dimension, rng: &rng, xavierNormalWeight: true) }
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    /// Online user and item representations: LightGCN mean, items plus their ID embedding.
    private func encode(_ table: Tensor) -> (users: Tensor, items: Tensor) {
        let graph = graph!
        let nodes = Tensor.meanPropagation(graph.adjacency, table, layers: layers)
        let items = Tensor.sliceRows(nodes, graph.userCount..<graph.nodeCount) + Tensor.sliceRows(table, graph.userCount..<graph.nodeCount)
        return (Tensor.sliceRows(nodes, 0..<graph.userCount), items)
    }

    /// The detached, dropped-out target view of `rows` of `x`.
    private func target(_ x: Matrix, rows: [Int32], rng: inout SeededGenerator) -> Tensor {
        Tensor.dropout(Tensor(Tensor.gather(Tensor(x), rows: rows).value), rate: dropout, rng: &rng)
    }

    /// Takes the target views from the current parameters from now on. The stop-gradient makes BM3's loss
    /// differ from the function its gradient describes; with frozen targets the two agree, which is what a
    /// finite-difference check needs.
    public func freezeTargets() {
        let (u, i) = encode(Tensor(nodeTable.value))
        frozenTargets = (u.value, i.value, zip(features, projections).map { $0.1(Tensor($0.0.value)).value })
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        let predictor = predictor!
        var rng = SeededGenerator(seed: seed).derived(stream: UInt64(epoch) << 32 ^ UInt64(UInt32(bitPattern: users.first ?? 0)) ^ UInt64(users.count))
        let (u, i) = encode(nodeTable)
        let uTarget = target(frozenTargets?.users ?? u.value, rows: users, rng: &rng)
        let iTarget = target(frozenTargets?.items ?? i.value, rows: positives, rng: &rng)
        let uOnline = predictor(Tensor.gather(u, rows: users)), iOnline = predictor(Tensor.gather(i, rows: positives))
        var loss = Loss.cosineAlignment(uOnline, iTarget) + Loss.cosineAlignment(iOnline, uTarget)
        for (m, (f, projection)) in zip(features, projections).enumerated() {
            let projected = projection(f)
            let online = predictor(Tensor.gather(projected, rows: positives))
            let featureTarget = target(frozenTargets?.features[m] ?? projected.value, rows: positives, rng: &rng)
            loss = loss + Tensor.scale(Loss.cosineAlignment(online, iTarget) + Loss.cosineAlignment(online, featureTarget), alignmentWeight)
        }
        if regularization > 0 {
            let penalty = Tensor.frobeniusNorm(u) + Tensor.frobeniusNorm(i)
            loss = loss + Tensor.scale(penalty, regularization / Float(i.rows))
        }
        return loss
    }

    public func parametersDidChange() {
        guard let predictor else { return }
        let (u, i) = encode(Tensor(nodeTable.value))
        userEmbeddings = predictor(u).value
        itemEmbeddings = predictor(i).value
    }
}
