import Foundation
import AffinityCore
import AffinityData

/// OptInter (Lyu et al., "Memorize, Factorize, or be Naïve: Learning Optimal Feature Interaction Methods for CTR
/// Prediction", ICDE 2022). Every pair of fields (i, j) is modelled by one of three methods:
/// - **memorize**: the pair's value combination is a feature of its own, with an embedding looked up by hashing
///   (field pair, value of i, value of j) into `hash_buckets` rows (multi-value fields cross each token, weighted
///   as in their mean);
/// - **factorize**: the element-wise product e_i ⊙ e_j of the fields' embeddings;
/// - **naïve**: no interaction term.
/// The field embeddings and the chosen interaction embeddings, concatenated, feed an MLP classifier (with the
/// first-order term RecBole's context models share). The method per pair is learned in two stages:
/// 1. **search** (`search_epochs`): each pair mixes all three with weights softmax((α_p + G)/τ), G Gumbel noise
///    drawn per batch and τ annealed from `temperature` to `temperature_min`. As in DARTS' first-order bi-level
///    scheme, the network's weights step on training batches and α (its own Adam, `architecture_learning_rate`)
///    on validation batches, one after each training batch: the choice follows what generalises, not what the
///    training rows reward (memorising every cross wins on training loss alone);
/// 2. **re-train**: argmax_p α fixes each pair's method; a new network with only those interactions is trained
///    from scratch with early stopping on the validation metric. `architecture` (`memorize,factorize,naive,…` in
///    pair order) skips the search with a given choice; the run records the chosen one there.
/// Memorised crosses are limited as the paper's cross-product features are (rare ones share an out-of-vocabulary
/// embedding): a cross bucket seen fewer than `cross_min_count` times in the training rows reads one shared
/// row, and the cross table has its own L2 weight decay (`cross_weight_decay`). After training the shared row is
/// copied into every rare bucket, so a model file needs no vocabulary: any cross outside the training rows' frequent
/// ones scores with the shared row.
public final class OptInter: ContextNetwork {
    public static let name = "optinter"
    public static let summary = "OptInter: per field pair, memorize (hashed cross embedding), factorize (e_i ⊙ e_j) or nothing, searched by Gumbel-softmax then re-trained (Lyu et al. 2022)"

    public enum Method: String, CaseIterable, Sendable { case memorize, factorize, naive }

    public let dimension: Int
    public let hiddenSizes: [Int]
    public let dropoutRate: Float
    public let hashBuckets: Int
    public let searchEpochs: Int
    public let temperature: Float
    public let minimumTemperature: Float
    public let architectureLearningRate: Float
    public let minimumCrossCount: Int
    public let crossWeightDecay: Float
    public let trainerSettings: ContextTrainerSettings
    /// The method of every field pair (pairs (0,1), (0,2), …, (F−2,F−1)); nil while searching.
    public private(set) var architecture: [Method]?
    private let givenArchitecture: [Method]?

    private var schema: FeatureSchema?
    private var pairs: [(Int, Int)] = []
    private var embeddings: FieldEmbeddings?
    private var crossTable: Tensor?
    private var alpha: Tensor?
    private var mlp: MultilayerPerceptron?
    private var output: DenseLayer?
    private var currentTemperature: Float = 1
    /// Per cross bucket, whether the training rows have it fewer than `minimumCrossCount` times (read as the shared
    /// row `hashBuckets`); nil outside `fit`.
    private var rareBuckets: [Bool]?
    /// The search's validation side: α's optimizer, the rows, a shuffled order and the next position in it.
    private var architectureSearch: (optimizer: Adam, valid: ContextData, order: [Int], next: Int, rng: SeededGenerator, bags: EmbeddingBags)?

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 10)
        hiddenSizes = try positiveIntegers(&h, "mlp_hidden_size", default: [128, 128, 128])
        dropoutRate = Float(try h.float("dropout_prob", default: 0.2))
        hashBuckets = try h.int("hash_buckets", default: 1 << 18)
        searchEpochs = try h.int("search_epochs", default: 10)
        temperature = Float(try h.float("temperature", default: 1))
        minimumTemperature = Float(try h.float("temperature_min", default: 0.1))
        architectureLearningRate = Float(try h.float("architecture_learning_rate", default: 0.01))
        minimumCrossCount = try h.int("cross_min_count", default: 5)
        crossWeightDecay = Float(try h.float("cross_weight_decay", default: 1e-5))
        let given = try h.string("architecture", default: "search")
        if given == "search" {
            givenArchitecture = nil
        } else {
            let parsed = given.split(separator: ",").map { Method(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
            guard parsed.allSatisfy({ $0 != nil }) else {
                throw HyperparameterError.invalid("architecture", given, "search, or memorize|factorize|naive per field pair")
            }
            givenArchitecture = parsed.map { $0! }
        }
        architecture = givenArchitecture
        trainerSettings = try ContextTrainerSettings(&h)
        guard dimension > 0, hashBuckets > 0, searchEpochs >= 0, temperature > 0, minimumTemperature > 0, minimumCrossCount >= 1,
              crossWeightDecay >= 0 else {
            throw HyperparameterError.outOfRange("embedding_size/hash_buckets/search_epochs/temperature/cross_min_count", "must be positive")
        }
        guard dropoutRate >= 0 && dropoutRate < 1 else { throw HyperparameterError.outOfRange("dropout_prob", "must be in [0, 1)") }
    }

    public var learnedSettings: [String: String] {
        architecture.map { ["architecture": $0.map(\.rawValue).joined(separator: ",")] } ?? [:]
    }

    /// The field pairs in order, with their names (`user_id×item_id`).
    public var pairNames: [String] {
        guard let schema else { return [] }
        return pairs.map { "\(schema.fields[$0.0].name)×\(schema.fields[$0.1].name)" }
    }

    public func fit(_ train: ContextData, valid: ContextData?, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        defer { rareBuckets = nil; architectureSearch = nil }
        if let givenArchitecture {
            architecture = givenArchitecture
        } else {
            architecture = nil
            build(schema: train.schema, rng: &rng)
            rareBuckets = rareCrossBuckets(train)
            let searchRows = valid ?? train
            var order = Array(0..<searchRows.count)
            var shuffler = SeededGenerator(seed: context.seed).derived(stream: 2)
            order.seededShuffle(using: &shuffler)
            architectureSearch = (Adam(learningRate: architectureLearningRate), searchRows, order, 0, shuffler, EmbeddingBags())
            var search = trainerSettings
            search.epochs = searchEpochs
            context.log("\(Self.name): searching the interaction method of \(pairs.count) field pairs for \(searchEpochs) epochs (α on \(valid == nil ? "training" : "validation") rows)")
            try ContextTrainer(settings: search).fit(self, train: train, valid: nil, context: context)
            architectureSearch = nil
            let weights = alpha!.value
            architecture = pairs.indices.map { p in
                let row = (0..<3).map { weights[p, $0] }
                return Method.allCases[row.indices.max { row[$0] < row[$1] }!]
            }
            context.log("\(Self.name): chosen " + zip(pairNames, architecture!).map { "\($0) \($1.rawValue)" }.joined(separator: ", "))
        }
        var retrain = SeededGenerator(seed: context.seed).derived(stream: 1)
        build(schema: train.schema, rng: &retrain)
        rareBuckets = rareCrossBuckets(train)
        try ContextTrainer(settings: trainerSettings).fit(self, train: train, valid: valid, context: context)
        foldRareBuckets()
    }

    /// Which cross buckets the training rows hold fewer than `minimumCrossCount` times (every pair counted).
    private func rareCrossBuckets(_ train: ContextData) -> [Bool] {
        var counts = [Int32](repeating: 0, count: hashBuckets)
        var bags = EmbeddingBags()
        let saved = rareBuckets
        rareBuckets = nil
        defer { rareBuckets = saved }
        for start in stride(from: 0, to: train.count, by: 8192) {
            let end = min(start + 8192, train.count)
            train.bags(start..<end, into: &bags)
            for r in crossBags(bags, rows: end - start, pairs: Array(pairs.indices)).rows { counts[Int(r)] += 1 }
        }
        return counts.map { Int($0) < minimumCrossCount }
    }

    /// Copies the shared row into every rare bucket and forgets which were rare: afterwards plain hashing reads
    /// what training read (model files hold no vocabulary).
    private func foldRareBuckets() {
        guard let rareBuckets, let crossTable else { return }
        let d = dimension, shared = hashBuckets
        crossTable.updateValue { t in
            for b in 0..<hashBuckets where rareBuckets[b] { for c in 0..<d { t[b * d + c] = t[shared * d + c] } }
        }
        self.rareBuckets = nil
    }

    /// After each search batch: one validation batch steps α (with Gumbel noise and dropout, as in training); the
    /// gradients it leaves on the network are dropped, and α's from the training batch before it too.
    public func batchDidStep() {
        guard architecture == nil, var search = architectureSearch, let alpha else { return }
        architectureSearch = nil  // owned locally while the batch runs
        alpha.zeroGrad()
        let size = min(trainerSettings.batchSize, search.order.count)
        if search.next + size > search.order.count {
            search.order.seededShuffle(using: &search.rng)
            search.next = 0
        }
        let positions = search.order[search.next..<(search.next + size)]
        search.next += size
        search.valid.bags(positions, into: &search.bags)
        var noise: SeededGenerator? = SeededGenerator(seed: search.rng.next())
        let loss = Loss.sigmoidCrossEntropy(logits: forward(search.bags, rows: size, dropout: &noise), labels: positions.map { search.valid.labels[$0] })
        loss.backward()
        search.optimizer.step([alpha])
        for p in parameters where p !== alpha { p.zeroGrad() }
        architectureSearch = search
    }

    public func build(schema: FeatureSchema, rng: inout SeededGenerator) {
        self.schema = schema
        let fields = schema.fields.count
        pairs = (0..<fields).flatMap { i in ((i + 1)..<fields).map { (i, $0) } }
        if let architecture { precondition(architecture.count == pairs.count, "optinter: \(architecture.count) methods for \(pairs.count) field pairs") }
        let e = FieldEmbeddings(schema: schema, dimension: dimension, rng: &rng)
        embeddings = e
        let memorized = architecture?.filter { $0 == .memorize }.count ?? pairs.count
        let factorized = architecture?.filter { $0 == .factorize }.count ?? pairs.count
        // Xavier-normal as RecBole's embeddings; row-sparse gradients, since a batch reads a few of many rows.
        // One row per bucket and the shared row of rare crosses (last).
        crossTable = memorized > 0 ? Tensor(parameter: gaussianTable(rows: hashBuckets + 1, cols: dimension,
                                                                     std: (2 / Float(hashBuckets + dimension)).squareRoot(), rng: &rng),
                                            sparseGradients: true) : nil
        alpha = architecture == nil ? Tensor(parameter: Matrix(rows: pairs.count, cols: 3)) : nil
        let interactionWidth = architecture == nil ? pairs.count * dimension : (memorized + factorized) * dimension
        mlp = MultilayerPerceptron(sizes: [fields * dimension + interactionWidth] + hiddenSizes, dropout: dropoutRate, rng: &rng)
        output = DenseLayer(hiddenSizes.last!, 1, rng: &rng)
    }

    public var parameters: [Tensor] {
        guard let embeddings, let mlp, let output else { return [] }
        return embeddings.parameters + (crossTable.map { [$0] } ?? []) + mlp.parameters + output.parameters + (alpha.map { [$0] } ?? [])
    }

    /// The network at the trainer's rate and weight decay, the cross table with `cross_weight_decay`; α (searching)
    /// is stepped by `batchDidStep` on validation rows, not by the trainer.
    public func parameterGroups(learningRate: Float, weightDecay: Float) -> [ParameterGroup] {
        let network = parameters.filter { $0 !== alpha && $0 !== crossTable }
        return [ParameterGroup(network, learningRate: learningRate, weightDecay: weightDecay)]
            + (crossTable.map { [ParameterGroup([$0], learningRate: learningRate, weightDecay: crossWeightDecay)] } ?? [])
    }

    public func epochWillStart(_ epoch: Int) {
        // Exponential annealing over the search epochs: τ_e = τ₀ (τ_min/τ₀)^(e / (E − 1)).
        let span = Float(max(searchEpochs - 1, 1))
        currentTemperature = temperature * powf(minimumTemperature / temperature, Float(min(epoch, searchEpochs - 1)) / span)
    }

    /// The cross bags of `pairs` for the samples of `bags` (F bags per sample): every (token of i, token of j)
    /// combination hashed with the pair's index, weighted by the product of the tokens' weights; rare buckets
    /// (while fitting) read the shared row.
    func crossBags(_ bags: EmbeddingBags, rows: Int, pairs selected: [Int]) -> EmbeddingBags {
        let fields = schema!.fields.count
        var out = EmbeddingBags()
        out.offsets.reserveCapacity(rows * selected.count + 1)
        for r in 0..<rows {
            for p in selected {
                let (i, j) = pairs[p]
                let bi = r * fields + i, bj = r * fields + j
                for a in Int(bags.offsets[bi])..<Int(bags.offsets[bi + 1]) {
                    for b in Int(bags.offsets[bj])..<Int(bags.offsets[bj + 1]) {
                        let bucket = hashedBucket(pair: p, bags.rows[a], bags.rows[b])
                        out.rows.append(Int32(truncatingIfNeeded: rareBuckets?[bucket] == true ? hashBuckets : bucket))
                        out.weights.append(bags.weights[a] * bags.weights[b])
                    }
                }
                out.offsets.append(Int32(out.rows.count))
            }
        }
        return out
    }

    /// SplitMix64's finaliser of (pair, row a, row b): a fixed hash, so model files score the same everywhere.
    private func hashedBucket(pair: Int, _ a: Int32, _ b: Int32) -> Int {
        var z = UInt64(pair) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(UInt32(bitPattern: a)) << 32 ^ UInt64(UInt32(bitPattern: b))
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % UInt64(hashBuckets))
    }

    public func forward(_ bags: EmbeddingBags, rows: Int, dropout: inout SeededGenerator?) -> Tensor {
        let e = embeddings!, fields = e.fieldCount
        let flat = Tensor.reshaped(e.embed(bags), rows: rows, cols: fields * dimension)
        var parts = [flat]
        if let architecture {
            let memorized = pairs.indices.filter { architecture[$0] == .memorize }
            let factorized = pairs.indices.filter { architecture[$0] == .factorize }
            if !memorized.isEmpty {
                let cross = Tensor.embeddingBags(crossTable!, crossBags(bags, rows: rows, pairs: memorized))
                parts.append(Tensor.reshaped(cross, rows: rows, cols: memorized.count * dimension))
            }
            if !factorized.isEmpty { parts.append(Tensor.pairwiseProducts(flat, fields: fields, pairs: factorized.map { pairs[$0] })) }
        } else {
            // Search: per pair, softmax((α + G) / τ) over (memorize, factorize, naive); G ~ Gumbel(0, 1) while training.
            var noise = Matrix(rows: pairs.count, cols: 3)
            if dropout != nil {
                for k in 0..<noise.storage.count { noise.storage[k] = -logf(-logf(max(dropout!.nextFloat(), 1e-10)) + 1e-10) }
            }
            let mix = Tensor.softmaxRows(Tensor.scale(alpha! + Tensor(noise), 1 / currentTemperature))
            func weights(_ k: Int) -> Tensor { Tensor.reshaped(Tensor.sliceColumns(mix, k..<(k + 1)), rows: 1, cols: pairs.count) }
            let cross = Tensor.reshaped(Tensor.embeddingBags(crossTable!, crossBags(bags, rows: rows, pairs: Array(pairs.indices))),
                                        rows: rows, cols: pairs.count * dimension)
            let products = Tensor.pairwiseProducts(flat, fields: fields, pairs: pairs)
            parts.append(Tensor.scaleBlocks(cross, by: weights(0)) + Tensor.scaleBlocks(products, by: weights(1)))
        }
        let input = parts.count == 1 ? flat : Tensor.concatColumns(parts)
        return e.firstOrder(bags, rows: rows) + output!(mlp!(input, dropout: &dropout))
    }
}
