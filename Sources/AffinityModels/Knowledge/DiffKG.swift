import AffinityCore
import AffinityData
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// DiffKG (Jiang et al., "DiffKG: Knowledge Graph Diffusion Model for Recommendation", WSDM 2024; official
/// code HKUDS/DiffKG, `Model.py` and `Main.py`).
///
/// - Knowledge encoder, a relation-aware attention over the facts (the official `RGAT`, eq. 2–3): for a fact
///   (h, r, t), π = LeakyReLU(⟨[e_h ‖ e_t] W, e_r⟩), softmax over h's facts, e_h ← normalise(dropout(Σ_t π e_t + e_h)),
///   and the output is λ · (the running output) + e_h after each of `layer_num_kg` layers (`res_lambda`). The
///   original graph it reads keeps at most `triplet_num` facts per head, drawn once at fit time.
/// - Collaborative knowledge graph convolution (CKGC, eq. 10): the encoder's item rows stand in for the items'
///   embeddings in a LightGCN-style propagation over the user–item graph, the final embeddings being the sum of
///   layers 0…`gnn_layer` (the official `sum(embedsLst)`); score ⟨e_u, e_i⟩.
/// - Diffusion over the knowledge graph (eq. 4–9, the DiffRec-style Gaussian process): x₀ is an item's row of
///   the item–entity adjacency. Forward, q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I) with 1 − ᾱ_t linear from
///   `noise_scale·noise_min` to `noise_scale·noise_max` over `steps` steps (`DiffusionSchedule`). The denoiser is
///   an MLP on [normalise(x_t) ‖ Linear(sinusoidal step embedding)] (one tanh hidden layer of width `dims`)
///   predicting x₀, trained with the SNR-weighted MSE of the ELBO (eq. 8: weight SNR(t−1) − SNR(t), 1 at t = 0)
///   plus the collaborative term of eq. 11, ‖(x̂₀ restricted to items) · Rᵀ · E_users − e_item‖², mixed by `e_loss`.
///   It has its own Adam and trains once per epoch on every item row before the epoch's batches (as the official
///   trainer does); then each item row is denoised by the `steps` reverse steps from x₀ (posterior means,
///   `sampling_steps` = 0), its top `rebuild_k` entities that are facts of the item are kept with their relation,
///   with the inverse facts, and each resulting fact is kept with probability `keepRate`: the denoised graph.
/// - Contrastive alignment (eq. 12): InfoNCE between the CKGC embeddings over the denoised graph and over the
///   original graph, for the batch's users and positive items against every user / item (the official
///   `contrastLoss`), normalised rows, temperature `temp`, weight `ssl_reg`.
/// - Loss: mean BPR on the denoised-graph view + `reg` · Σ‖θ‖² over the recommender's parameters (the official
///   `calcRegLoss`) + the contrastive term.
///
/// Where this differs from the official code: the official versions disagree on which graph the ranking view
/// reads (one passes the denoised graph as the positional `mess_dropout` argument, so both views read the original
/// graph; the latest rebuilds the graph, then trains and evaluates on the original one with half its facts
/// dropped); here the ranking view reads the denoised graph and the other view the original one, as the paper
/// describes (eq. 12) and as the version that reads its rebuilt graph does. The diffusion runs over the items' rows only (the official code diffuses every entity's row,
/// ~34,600 of them on ml-100k, where only the item rows feed the recommender). The user–item graph has no
/// self-loops (the shared `BipartiteGraph`). `diffusion=false` drops the diffusion and the contrastive term (the
/// ablation): the model is then the knowledge encoder plus CKGC on the original graph.
public final class DiffKG: GradientModel, EmbeddingModel {
    public static let name = "diffkg"
    public static let summary = "knowledge graph diffusion: denoised item–entity graph, relation-aware encoder, contrastive alignment (Jiang et al. 2024)"

    public let dimension: Int
    public let graphLayers: Int
    public let knowledgeLayers: Int
    public let messageDropout: Float
    public let residual: Float
    public let factsPerHead: Int
    public let regularization: Float
    public let contrastWeight: Float
    public let temperature: Float
    public let useDiffusion: Bool
    public let denoiserWidth: Int
    public let stepEmbeddingSize: Int
    public let schedule: DiffusionSchedule
    public let rebuildK: Int
    public let collaborativeWeight: Float
    public let keepRate: Float
    public let diffusionBatchSize: Int
    public let training: TrainerSettings
    /// LeakyReLU's negative slope in the attention (the official `nn.LeakyReLU(0.2)`).
    static let slope: Float = 0.2
    /// The denoiser's input dropout while training (the official `Denoise(dropout=0.5)`).
    static let denoiserDropout: Float = 0.5

    public private(set) var userTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// Items first, then the other entities.
    public private(set) var entityTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var relationTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    /// W of the attention, `[2d, d]`.
    public private(set) var attentionWeight = Tensor(parameter: Matrix(rows: 0, cols: 0))
    public private(set) var denoiser: Denoiser?
    /// The original graph (at most `triplet_num` facts per head) and the latest denoised one.
    public private(set) var originalFacts: FactList?
    public private(set) var denoisedFacts: FactList?
    private var knowledgeGraph: ItemKnowledgeGraph?
    private var graph: BipartiteGraph?
    private var itemUsers: SparseOperator?
    private var diffusionOptimizer = Adam()
    private var itemTotal = 0
    private var seed: UInt64 = 0
    private var iteration = 0
    private var lastDiffusionEpoch = -1
    public private(set) var history: [EpochReport] = []

    public var parameters: [Tensor] { [userTable, entityTable, relationTable, attentionWeight] }
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 64)
        graphLayers = try h.int("gnn_layer", default: 2)
        knowledgeLayers = try h.int("layer_num_kg", default: 1)
        messageDropout = Float(try h.float("mess_dropout_rate", default: 0.1))
        residual = Float(try h.float("res_lambda", default: 0.5))
        factsPerHead = try h.int("triplet_num", default: 10)
        regularization = Float(try h.float("reg", default: 1e-7))
        contrastWeight = Float(try h.float("ssl_reg", default: 0.1))
        temperature = Float(try h.float("temp", default: 0.1))
        useDiffusion = try h.bool("diffusion", default: true)
        // 100, not the official 1000: the denoiser maps whole entity rows (~34,600 wide on ml-100k), and at 1000
        // an epoch's reverse chain alone costs ~1 TFLOP on a CPU (configs/diffkg.yaml).
        denoiserWidth = try h.int("dims", default: 100)
        stepEmbeddingSize = try h.int("d_emb_size", default: 10)
        let steps = try h.int("steps", default: 5)
        let scale = try h.float("noise_scale", default: 0.1)
        let low = try h.float("noise_min", default: 1e-4), high = try h.float("noise_max", default: 0.02)
        rebuildK = try h.int("rebuild_k", default: 1)
        collaborativeWeight = Float(try h.float("e_loss", default: 0.5))
        keepRate = Float(try h.float("keepRate", default: 0.5))
        diffusionBatchSize = try h.int("diffusion_batch_size", default: 1024)
        training = try TrainerSettings(&h, batchSize: 1024)
        guard dimension > 0, graphLayers >= 0, knowledgeLayers >= 0, denoiserWidth > 0, stepEmbeddingSize > 1,
              rebuildK > 0, diffusionBatchSize > 0, temperature > 0 else {
            throw HyperparameterError.outOfRange("embedding_size/dims/d_emb_size/rebuild_k/diffusion_batch_size/temp", "must be positive")
        }
        guard steps > 0, scale > 0, low > 0, high >= low, scale * high < 1 else {
            throw HyperparameterError.outOfRange("steps/noise_scale/noise_min/noise_max", "steps ≥ 1 and 0 < noise_scale·noise_min ≤ noise_scale·noise_max < 1")
        }
        guard (0..<1).contains(messageDropout), keepRate > 0, keepRate <= 1, (0...1).contains(collaborativeWeight) else {
            throw HyperparameterError.outOfRange("mess_dropout_rate/keepRate/e_loss", "mess_dropout_rate in [0, 1), keepRate in (0, 1], e_loss in [0, 1]")
        }
        schedule = DiffusionSchedule(steps: steps, noiseScale: scale, noiseMin: low, noiseMax: high)
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let kg = try data.requireKnowledgeGraph(for: Self.name)
        knowledgeGraph = kg
        itemTotal = data.itemCount
        seed = context.seed
        lastDiffusionEpoch = -1
        denoisedFacts = nil
        graph = BipartiteGraph(data)
        itemUsers = SparseOperator(data.itemUsers)
        var rng = SeededGenerator(seed: context.seed)
        userTable = Tensor(parameter: xavierUniform(rows: data.userCount, cols: dimension, rng: &rng))
        entityTable = Tensor(parameter: xavierUniform(rows: kg.entityCount, cols: dimension, rng: &rng))
        relationTable = Tensor(parameter: xavierUniform(rows: max(kg.relationCount, 1), cols: dimension, rng: &rng))
        // xavier_uniform with the ReLU gain √2 (the official RGAT's W).
        var w = xavierUniform(rows: 2 * dimension, cols: dimension, rng: &rng)
        for k in 0..<w.storage.count { w.storage[k] *= Float(2).squareRoot() }
        attentionWeight = Tensor(parameter: w)
        originalFacts = FactList.sampled(kg, perHead: factsPerHead, rng: &rng)
        denoiser = useDiffusion && kg.tripleCount > 0
            ? Denoiser(entities: kg.entityCount, width: denoiserWidth, stepEmbedding: stepEmbeddingSize, rng: &rng) : nil
        diffusionOptimizer = Adam(learningRate: training.learningRate)
        parametersDidChange()
        history = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    public func batchWillStart(iteration: Int) { self.iteration = iteration }

    /// The diffusion phase and the graph rebuild, once per epoch before its batches.
    public func epochWillStart(_ epoch: Int) {
        guard epoch > lastDiffusionEpoch, let denoiser, let kg = knowledgeGraph, let itemUsers else { return }
        lastDiffusionEpoch = epoch
        var rng = SeededGenerator(seed: seed ^ 0xD1FF).derived(stream: UInt64(epoch))
        var order = Array(0..<itemTotal)
        for k in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(k, rng.nextInt(below: k + 1)) }
        // Eq. 11's collaborative target: Rᵀ E_users per item, and the entity rows, both constants here.
        let usersOfItems = Tensor.spmm(itemUsers, Tensor(userTable.value)).value
        for start in stride(from: 0, to: itemTotal, by: diffusionBatchSize) {
            let batch = Array(order[start..<min(start + diffusionBatchSize, itemTotal)])
            diffusionLoss(denoiser, kg, items: batch, usersOfItems: usersOfItems, rng: &rng).backward()
            diffusionOptimizer.step(denoiser.parameters)
        }
        denoisedFacts = rebuild(denoiser, kg, rng: &rng)
    }

    /// (1 − e_loss) · mean SNR-weighted MSE (eq. 8) + e_loss · the collaborative MSE (eq. 11) on a batch of item rows.
    func diffusionLoss(_ denoiser: Denoiser, _ kg: ItemKnowledgeGraph, items: [Int], usersOfItems: Matrix,
                       rng: inout SeededGenerator) -> Tensor {
        let n = kg.entityCount, b = items.count
        // Rows grouped by their step, so each group's weight scales one slice.
        let steps = items.map { _ in rng.nextInt(below: schedule.steps) }
        let ordered = items.indices.sorted { (steps[$0], $0) < (steps[$1], $1) }
        let x0 = Self.adjacencyRows(kg, items: ordered.map { items[$0] })
        var xt = x0
        for (row, k) in ordered.enumerated() {
            let t = steps[k], a = Float(schedule.sqrtAlphaBar[t]), s = Float(schedule.sqrtOneMinusAlphaBar[t])
            for c in 0..<n { xt.storage[row * n + c] = a * x0.storage[row * n + c] + s * rng.nextGaussian() }
        }
        let sortedSteps = ordered.map { steps[$0] }
        let output = denoiser.predict(xt, steps: sortedSteps, dropout: Self.denoiserDropout, rng: &rng)
        let residual = Tensor(x0) - output
        var diffusion: Tensor? = nil
        var lower = 0
        while lower < b {
            let t = sortedSteps[lower]
            var upper = lower
            while upper < b && sortedSteps[upper] == t { upper += 1 }
            let part = Tensor.scale(Tensor.sumOfSquares(Tensor.sliceRows(residual, lower..<upper)),
                                    Float(schedule.lossWeight(step: t)) / Float(n * b))
            diffusion = diffusion.map { $0 + part } ?? part
            lower = upper
        }
        let viaUsers = Tensor.matmul(Tensor.sliceColumns(output, 0..<itemTotal), Tensor(usersOfItems))
        let target = Tensor.gather(Tensor(entityTable.value), rows: ordered.map { Int32(items[$0]) })
        let collaborative = Tensor.scale(Tensor.sumOfSquares(viaUsers - target), 1 / Float(b * dimension))
        return Tensor.scale(diffusion!, 1 - collaborativeWeight) + Tensor.scale(collaborative, collaborativeWeight)
    }

    /// Each item's row denoised by the reverse chain from x₀, its top `rebuild_k` entries that are facts kept
    /// (with the inverse facts), then each fact kept with probability `keepRate` (the official `Main.py`).
    func rebuild(_ denoiser: Denoiser, _ kg: ItemKnowledgeGraph, rng: inout SeededGenerator) -> FactList {
        let n = kg.entityCount
        var triples: [(Int32, Int32, Int32)] = []
        var unused = SeededGenerator(seed: 0)  // no dropout at inference
        for start in stride(from: 0, to: itemTotal, by: diffusionBatchSize) {
            let items = Array(start..<min(start + diffusionBatchSize, itemTotal))
            let denoised = schedule.reverse(from: Self.adjacencyRows(kg, items: items)) { x, t in
                denoiser.predict(x, steps: [Int](repeating: t, count: items.count), dropout: 0, rng: &unused).value
            }
            for (row, item) in items.enumerated() {
                let values = denoised.storage[(row * n)..<((row + 1) * n)]
                for column in topIndices(values, k: rebuildK) {
                    let head = Int32(item), tail = Int32(column)
                    guard let r = Self.relation(kg, head: head, tail: tail) else { continue }
                    triples.append((head, r, tail))
                    if let inverse = Self.relation(kg, head: tail, tail: head) { triples.append((tail, inverse, head)) }
                }
            }
        }
        triples.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        var unique: [(Int32, Int32, Int32)] = []
        for t in triples where unique.last.map({ $0 != t }) ?? true { unique.append(t) }
        let kept = unique.filter { _ in rng.nextFloat() < keepRate }
        return FactList(nodeCount: n, heads: kept.map(\.0), relations: kept.map(\.1), tails: kept.map(\.2))
    }

    /// The first relation of a fact (head, r, tail), as the official `relation_dict` keeps the first.
    static func relation(_ kg: ItemKnowledgeGraph, head: Int32, tail: Int32) -> Int32? {
        for p in kg.headStart[Int(head)]..<kg.headStart[Int(head) + 1] where kg.tails[p] == tail { return kg.relations[p] }
        return nil
    }

    /// Dense 0/1 rows of the item–entity adjacency for `items`, `[items, entities]`.
    static func adjacencyRows(_ kg: ItemKnowledgeGraph, items: [Int]) -> Matrix {
        let n = kg.entityCount
        var m = Matrix(rows: items.count, cols: n)
        for (row, item) in items.enumerated() {
            for p in kg.headStart[item]..<kg.headStart[item + 1] { m.storage[row * n + Int(kg.tails[p])] = 1 }
        }
        return m
    }

    /// The encoder's entity representations over `facts` (eq. 2–3); the table itself when there are no facts.
    func encode(_ facts: FactList, dropout rate: Float, rng: inout SeededGenerator) -> Tensor {
        guard facts.count > 0, knowledgeLayers > 0 else { return entityTable }
        let d = dimension
        let top = Tensor.sliceRows(attentionWeight, 0..<d), bottom = Tensor.sliceRows(attentionWeight, d..<(2 * d))
        let relations = Tensor.gather(relationTable, rows: facts.relations)
        var e = entityTable, output = entityTable
        for _ in 0..<knowledgeLayers {
            // [e_h ‖ e_t] W = e_h W_top + e_t W_bottom, computed per entity then gathered per fact.
            let projected = Tensor.gather(Tensor.matmul(e, top), rows: facts.heads) + Tensor.gather(Tensor.matmul(e, bottom), rows: facts.tails)
            let scores = Tensor.leakyRelu(Tensor.rowDot(projected, relations), slope: Self.slope)
            let attention = Tensor.segmentSoftmax(scores, start: facts.headStart)
            let aggregated = Tensor.sparseProduct(facts.pattern, values: attention, e) + e
            e = Tensor.normalizeRows(Tensor.dropout(aggregated, rate: rate, rng: &rng))
            output = Tensor.scale(output, residual) + e
        }
        return output
    }

    /// Users then items, `[users + items, d]`: the sum of layers 0…K of the propagation whose item rows at layer 0
    /// are the encoder's (CKGC, eq. 10).
    func propagate(_ facts: FactList?, dropout rate: Float, rng: inout SeededGenerator) -> Tensor {
        var entities = entityTable
        if let facts { entities = encode(facts, dropout: rate, rng: &rng) }
        let e0 = Tensor.concatRows([userTable, Tensor.sliceRows(entities, 0..<itemTotal)])
        guard let graph, graphLayers > 0 else { return e0 }
        return Tensor.scale(Tensor.meanPropagation(graph.adjacency, e0, layers: graphLayers), Float(graphLayers + 1))
    }

    public func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        var rng = SeededGenerator(seed: seed ^ 0xD1FC).derived(stream: UInt64(iteration))
        let userCount = userTable.rows, offset = Int32(userCount)
        let main = propagate(denoisedFacts ?? originalFacts, dropout: messageDropout, rng: &rng)
        let u = Tensor.gather(main, rows: users)
        let i = Tensor.gather(main, rows: positives.map { $0 + offset }), j = Tensor.gather(main, rows: negatives.map { $0 + offset })
        var loss = Loss.bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j))
        if regularization > 0 {
            let squares = parameters.map { Tensor.sumOfSquares($0) }.reduce(Tensor(Matrix(rows: 1, cols: 1))) { $0 + $1 }
            loss = loss + Tensor.scale(squares, regularization)
        }
        guard denoisedFacts != nil, contrastWeight > 0 else { return loss }
        // Eq. 12: the original-graph view's batch rows against every row of the denoised-graph view, a mean over
        // the batch's entries (the official `contrastLoss`); each distinct row is passed once, weighted by how
        // often the batch lists it (the same loss and gradients, for a fraction of the logits).
        let other = Tensor.normalizeRows(propagate(originalFacts, dropout: messageDropout, rng: &rng))
        let denoised = Tensor.normalizeRows(main)
        let batchUsers = DistinctRows(users, bound: userCount), batchItems = DistinctRows(positives, bound: itemTotal)
        let userPart = Loss.infoNCE(anchors: Tensor.gather(other, rows: batchUsers.rows),
                                    candidates: Tensor.sliceRows(denoised, 0..<userCount),
                                    positives: batchUsers.rows, weights: batchUsers.multiplicities, temperature: temperature)
        let itemPart = Loss.infoNCE(anchors: Tensor.gather(other, rows: batchItems.rows.map { $0 + offset }),
                                    candidates: Tensor.sliceRows(denoised, userCount..<(userCount + itemTotal)),
                                    positives: batchItems.rows, weights: batchItems.multiplicities, temperature: temperature)
        return loss + Tensor.scale(userPart + itemPart, contrastWeight)
    }

    /// Scoring embeddings over the latest denoised graph (the original one before the first rebuild), no dropout.
    public func parametersDidChange() {
        guard graph != nil, let facts = denoisedFacts ?? originalFacts else { return }
        var rng = SeededGenerator(seed: seed)
        let all = propagate(facts, dropout: 0, rng: &rng).value
        userEmbeddings = rowSlice(all, 0..<userTable.rows)
        itemEmbeddings = rowSlice(all, userTable.rows..<all.rows)
    }
}

/// Indices of the `k` largest values (ties to the lower index), largest first.
private func topIndices(_ values: ArraySlice<Float>, k: Int) -> [Int] {
    var best: [(Float, Int)] = []
    for (offset, v) in values.enumerated() {
        guard best.count < k || v > best[best.count - 1].0 else { continue }
        let at = best.firstIndex { v > $0.0 } ?? best.count
        best.insert((v, offset), at: at)
        if best.count > k { best.removeLast() }
    }
    return best.map(\.1)
}

/// Facts sorted by head with their CSR pattern, for the attention's segment softmax and its weighted sum.
public struct FactList: Sendable {
    public let heads: [Int32]
    public let relations: [Int32]
    public let tails: [Int32]
    public let headStart: [Int]
    let pattern: SparsePattern

    public init(nodeCount: Int, heads: [Int32], relations: [Int32], tails: [Int32]) {
        self.heads = heads
        self.relations = relations
        self.tails = tails
        let start = ItemKnowledgeGraph.headStarts(heads, entityCount: nodeCount)
        headStart = start
        pattern = SparsePattern(SparseMatrix(rows: nodeCount, cols: nodeCount, rowStart: start, colIndex: tails,
                                             values: [Float](repeating: 1, count: tails.count)))
    }

    public var count: Int { heads.count }

    /// At most `perHead` facts of each head drawn without replacement (all when −1 or fewer), in graph order.
    static func sampled(_ kg: ItemKnowledgeGraph, perHead: Int, rng: inout SeededGenerator) -> FactList {
        var keep: [Int] = []
        for h in 0..<kg.entityCount {
            var range = Array(kg.headStart[h]..<kg.headStart[h + 1])
            if perHead >= 0 && range.count > perHead {
                for k in 0..<perHead { range.swapAt(k, k + rng.nextInt(below: range.count - k)) }
                range = Array(range[0..<perHead]).sorted()
            }
            keep += range
        }
        return FactList(nodeCount: kg.entityCount, heads: keep.map { kg.heads[$0] }, relations: keep.map { kg.relations[$0] },
                        tails: keep.map { kg.tails[$0] })
    }
}

/// The Gaussian diffusion's schedule (DiffRec-style, as DiffKG's `GaussianDiffusion`): the variances 1 − ᾱ_t
/// grow linearly from `noiseScale·noiseMin` to `noiseScale·noiseMax`, β_t = 1 − ᾱ_t/ᾱ_{t−1} (capped at 0.999),
/// and β₀ fixed to 1e-4 (`beta_fixed`). Computed in Double.
public struct DiffusionSchedule: Sendable {
    public let steps: Int
    public let betas: [Double]
    /// ᾱ_t = Π_{s ≤ t} (1 − β_s).
    public let alphaBar: [Double]
    public let sqrtAlphaBar: [Double]
    public let sqrtOneMinusAlphaBar: [Double]
    /// The posterior q(x_{t−1} | x_t, x₀) mean's coefficients on x₀ and x_t.
    public let posteriorX0: [Double]
    public let posteriorXt: [Double]

    public init(steps: Int, noiseScale: Double, noiseMin: Double, noiseMax: Double) {
        self.steps = steps
        let start = noiseScale * noiseMin, end = noiseScale * noiseMax
        let variance = (0..<steps).map { steps == 1 ? start : start + (end - start) * Double($0) / Double(steps - 1) }
        var b = [variance[0]]
        for t in 1..<steps { b.append(min(1 - (1 - variance[t]) / (1 - variance[t - 1]), 0.999)) }
        b[0] = 1e-4
        betas = b
        var bars: [Double] = [], product = 1.0
        for beta in b {
            product *= 1 - beta
            bars.append(product)
        }
        alphaBar = bars
        sqrtAlphaBar = bars.map { $0.squareRoot() }
        sqrtOneMinusAlphaBar = bars.map { (1 - $0).squareRoot() }
        var x0Coefficients: [Double] = [], xtCoefficients: [Double] = []
        for t in 0..<steps {
            let previous: Double = t == 0 ? 1 : bars[t - 1]
            let denominator: Double = 1 - bars[t]
            x0Coefficients.append(b[t] * previous.squareRoot() / denominator)
            xtCoefficients.append((1 - previous) * (1 - b[t]).squareRoot() / denominator)
        }
        posteriorX0 = x0Coefficients
        posteriorXt = xtCoefficients
    }

    /// SNR(t) = ᾱ_t / (1 − ᾱ_t).
    public func snr(_ t: Int) -> Double { alphaBar[t] / (1 - alphaBar[t]) }

    /// The ELBO's weight of step t's x₀-MSE: SNR(t − 1) − SNR(t), and 1 at t = 0 (eq. 8; the official `where`).
    public func lossWeight(step t: Int) -> Double { t == 0 ? 1 : snr(t - 1) - snr(t) }

    /// The reverse chain without noise: x ← posteriorX0[t] · predictX0(x, t) + posteriorXt[t] · x for t = T−1…0,
    /// starting from x (the official `p_sample` with `sampling_steps` = 0).
    public func reverse(from x0: Matrix, predictX0: (Matrix, Int) -> Matrix) -> Matrix {
        var x = x0
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let predicted = predictX0(x, t)
            let a = Float(posteriorX0[t]), c = Float(posteriorXt[t])
            for k in 0..<x.storage.count { x.storage[k] = a * predicted.storage[k] + c * x.storage[k] }
        }
        return x
    }
}

/// DiffKG's denoiser (the official `Denoise`): x̂₀ = tanh([normalise(x_t) ‖ Linear(step embedding)] W_in + b_in) W_out
/// + b_out, with the sinusoidal step embedding [cos(t f_k) ‖ sin(t f_k)], f_k = 10000^{−k/(m/2)}.
public final class Denoiser {
    public let stepEmbeddingSize: Int
    let stepWeight: Tensor, stepBias: Tensor, inWeight: Tensor, inBias: Tensor, outWeight: Tensor, outBias: Tensor
    public var parameters: [Tensor] { [stepWeight, stepBias, inWeight, inBias, outWeight, outBias] }

    /// Weights N(0, 2/(fan_in + fan_out)), biases N(0, 0.001²) (the official `init_weights`).
    init(entities: Int, width: Int, stepEmbedding m: Int, rng: inout SeededGenerator) {
        stepEmbeddingSize = m
        stepWeight = Tensor(parameter: xavierNormal(rows: m, cols: m, rng: &rng))
        stepBias = Tensor(parameter: gaussianTable(rows: 1, cols: m, std: 0.001, rng: &rng))
        inWeight = Tensor(parameter: xavierNormal(rows: entities + m, cols: width, rng: &rng))
        inBias = Tensor(parameter: gaussianTable(rows: 1, cols: width, std: 0.001, rng: &rng))
        outWeight = Tensor(parameter: xavierNormal(rows: width, cols: entities, rng: &rng))
        outBias = Tensor(parameter: gaussianTable(rows: 1, cols: entities, std: 0.001, rng: &rng))
    }

    /// The sinusoidal embedding of each row's step, `[rows, m]` (a zero column pads an odd m).
    func stepEmbedding(_ steps: [Int]) -> Matrix {
        let m = stepEmbeddingSize, half = m / 2
        var out = Matrix(rows: steps.count, cols: m)
        for (row, t) in steps.enumerated() {
            for k in 0..<half {
                let angle = Float(t) * expf(-logf(10000) * Float(k) / Float(half))
                out.storage[row * m + k] = cosf(angle)
                out.storage[row * m + half + k] = sinf(angle)
            }
        }
        return out
    }

    func predict(_ x: Matrix, steps: [Int], dropout rate: Float, rng: inout SeededGenerator) -> Tensor {
        let step = Tensor.matmul(Tensor(stepEmbedding(steps)), stepWeight) + stepBias
        let input = rate > 0 ? Tensor.dropout(Tensor.normalizeRows(Tensor(x)), rate: rate, rng: &rng) : Tensor.normalizeRows(Tensor(x))
        let hidden = Tensor.tanh(Tensor.matmul(Tensor.concatColumns([input, step]), inWeight) + inBias)
        return Tensor.matmul(hidden, outWeight) + outBias
    }
}
