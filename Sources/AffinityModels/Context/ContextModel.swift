import Foundation
import AffinityCore
import AffinityData
import AffinityEval

/// A click-through (context-aware) model: it reads the feature fields of a (user, item) row and predicts the
/// probability of a positive label. Trained on labelled rows (`--task ctr`), not on the ranking task's
/// (user, positive, negative) triples, so it is not a `Recommender`.
public protocol ContextModel: AnyObject {
    /// The name used on the command line (`--task ctr --model NAME`).
    static var name: String { get }
    /// One line for `affinity models`.
    static var summary: String { get }
    /// Reads the model's settings; unknown or invalid values throw.
    init(_ hyperparameters: inout Hyperparameters) throws
    /// Learns from labelled `train` rows, validating on `valid` (early stopping on `valid_metric`).
    func fit(_ train: ContextData, valid: ContextData?, context: TrainingContext) throws
    /// Logits of `rows` samples given as `schema.fields.count` bags each (row-major), as `ContextData.bags` makes.
    func logits(_ bags: EmbeddingBags, rows: Int) -> [Float]
    /// The parameters' values in a fixed order (model files), and their restoration into a model built for `schema`.
    var parameterValues: [Matrix] { get }
    func restore(schema: FeatureSchema, parameters: [Matrix]) throws
    /// Settings the fit decided (OptInter's searched architecture), to record and to rebuild the model from.
    var learnedSettings: [String: String] { get }
}

extension ContextModel {
    public var learnedSettings: [String: String] { [:] }

    /// Click probabilities σ(logit) of every row of `data`, in batches.
    public func predict(_ data: ContextData, batchSize: Int = 8192) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(data.count)
        var bags = EmbeddingBags()
        var start = 0
        while start < data.count {
            let end = min(start + batchSize, data.count)
            data.bags(start..<end, into: &bags)
            out += logits(bags, rows: end - start).map(stableSigmoid)
            start = end
        }
        return out
    }
}

/// A click-through model with a serving path for one request: one user against many candidate items, the user's
/// share of the work done once and the candidates batched through each layer, without the autodiff tape.
public protocol CandidateScoring: ContextModel {
    /// Logits of `count` candidates for one user: `user` holds the user's bags (the schema's user fields, which come
    /// first in every schema), `items` each candidate's item-field bags in turn (`count · itemFieldCount` bags).
    /// Equal to `logits` of the joined rows up to rounding.
    func candidateLogits(user: EmbeddingBags, items: EmbeddingBags, count: Int) -> [Float]
}

/// Every click-through model, by command-line name (`affinity train --task ctr`).
public enum ContextModelRegistry {
    nonisolated(unsafe) public static let models: [any ContextModel.Type] = [  // immutable after initialisation
        FM.self,
        DeepFM.self,
        AutoInt.self,
        OptInter.self,
    ]

    public static var names: [String] { models.map { $0.name } }

    public static func type(named name: String) throws -> any ContextModel.Type {
        guard let type = models.first(where: { $0.name == name.lowercased() }) else {
            throw HyperparameterError.invalid("model", name, "a click-through model (\(names.joined(separator: ", ")))")
        }
        return type
    }
}

/// A gradient-trained click-through network: parameters created once the schema is known, a forward pass to
/// logits, and the shared trainer (`ContextTrainer`) for `fit`.
public protocol ContextNetwork: ContextModel {
    var trainerSettings: ContextTrainerSettings { get }
    var parameters: [Tensor] { get }
    /// Creates the parameters for `schema` (RecBole's initialisation), seeded by `rng`.
    func build(schema: FeatureSchema, rng: inout SeededGenerator)
    /// Logits `[rows, 1]` of samples given as bags; `dropout` is the generator of a training batch (nil: inference).
    func forward(_ bags: EmbeddingBags, rows: Int, dropout: inout SeededGenerator?) -> Tensor
    /// The parameters by learning rate and L2 weight decay (one Adam each); by default all at the trainer's.
    func parameterGroups(learningRate: Float, weightDecay: Float) -> [ParameterGroup]
    /// Called before each training epoch.
    func epochWillStart(_ epoch: Int)
    /// Called after each training batch's optimizer step (OptInter's search steps its architecture here).
    func batchDidStep()
}

/// Parameters trained by one Adam.
public struct ParameterGroup {
    public var parameters: [Tensor]
    public var learningRate: Float
    public var weightDecay: Float

    public init(_ parameters: [Tensor], learningRate: Float, weightDecay: Float) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

extension ContextNetwork {
    public func parameterGroups(learningRate: Float, weightDecay: Float) -> [ParameterGroup] {
        [ParameterGroup(parameters, learningRate: learningRate, weightDecay: weightDecay)]
    }
    public func epochWillStart(_ epoch: Int) {}
    public func batchDidStep() {}

    public func fit(_ train: ContextData, valid: ContextData?, context: TrainingContext) throws {
        var rng = SeededGenerator(seed: context.seed)
        build(schema: train.schema, rng: &rng)
        try ContextTrainer(settings: trainerSettings).fit(self, train: train, valid: valid, context: context)
    }

    public func logits(_ bags: EmbeddingBags, rows: Int) -> [Float] {
        var none: SeededGenerator? = nil
        return forward(bags, rows: rows, dropout: &none).value.storage
    }

    public var parameterValues: [Matrix] { parameters.map(\.value) }

    public func restore(schema: FeatureSchema, parameters values: [Matrix]) throws {
        var rng = SeededGenerator(seed: 0)
        build(schema: schema, rng: &rng)
        guard values.count == parameters.count, zip(parameters, values).allSatisfy({ $0.rows == $1.rows && $0.cols == $1.cols }) else {
            throw ModelError.notFitted("\(Self.name): the saved parameters do not match the model's settings and fields")
        }
        for (p, v) in zip(parameters, values) { p.assign(v) }
    }
}

/// Training settings of click-through models, with RecBole's defaults.
public struct ContextTrainerSettings: Sendable {
    public var epochs: Int
    public var learningRate: Float
    public var batchSize: Int
    public var evalStep: Int
    public var stoppingStep: Int
    /// `auc` (maximised) or `logloss` (minimised).
    public var validMetric: String
    public var weightDecay: Float

    public init(_ h: inout Hyperparameters) throws {
        epochs = try h.int("epochs", default: 300)
        learningRate = Float(try h.float("learning_rate", default: 1e-3))
        batchSize = try h.int("train_batch_size", default: 2048)
        evalStep = try h.int("eval_step", default: 1)
        stoppingStep = try h.int("stopping_step", default: 10)
        validMetric = try h.string("valid_metric", default: "auc", allowed: ["auc", "logloss", "AUC", "LogLoss"]).lowercased()
        weightDecay = Float(try h.float("weight_decay", default: 0))
        guard epochs >= 0, batchSize > 0, learningRate > 0 else {
            throw HyperparameterError.outOfRange("epochs/train_batch_size/learning_rate", "must be positive")
        }
    }
}

/// RecBole's trainer for labelled rows: shuffled mini-batches of binary cross-entropy on logits, Adam, validation
/// every `eval_step` epochs, early stopping on `valid_metric` (ties count as improvements; stop after more than
/// `stopping_step` misses) and the best epoch's parameters restored at the end. Shuffles and dropout masks are
/// drawn from generators keyed by (seed, epoch, batch).
public struct ContextTrainer {
    public let settings: ContextTrainerSettings

    public init(settings: ContextTrainerSettings) { self.settings = settings }

    public func fit(_ model: some ContextNetwork, train: ContextData, valid: ContextData?, context: TrainingContext) throws {
        let groups = model.parameterGroups(learningRate: settings.learningRate, weightDecay: settings.weightDecay).map {
            (parameters: $0.parameters, optimizer: Adam(learningRate: $0.learningRate, weightDecay: $0.weightDecay))
        }
        let parameters = model.parameters
        var best: (score: Double, epoch: Int, values: [Matrix])? = nil
        var sinceBest = 0
        let n = train.count, batches = (n + settings.batchSize - 1) / settings.batchSize
        var bags = EmbeddingBags()
        let root = SeededGenerator(seed: context.seed)
        for epoch in 0..<settings.epochs {
            if best != nil && sinceBest > settings.stoppingStep { break }
            let start = ContinuousClock.now
            model.epochWillStart(epoch)
            var order = Array(0..<n)
            var shuffler = root.derived(stream: UInt64(epoch) << 32)
            order.seededShuffle(using: &shuffler)
            var lossSum = 0.0
            let progress = context.progress("epoch \(epoch)", total: batches)
            for b in 0..<batches {
                let positions = order[(b * settings.batchSize)..<min((b + 1) * settings.batchSize, n)]
                train.bags(positions, into: &bags)
                var dropout: SeededGenerator? = root.derived(stream: UInt64(epoch) << 32 | UInt64(b + 1))
                let logits = model.forward(bags, rows: positions.count, dropout: &dropout)
                let loss = Loss.sigmoidCrossEntropy(logits: logits, labels: positions.map { train.labels[$0] })
                loss.backward()
                for group in groups { group.optimizer.step(group.parameters) }
                model.batchDidStep()
                lossSum += Double(loss.scalar) * Double(positions.count)
                progress.update(b + 1)
            }
            var report = EpochReport(epoch: epoch, loss: lossSum / Double(max(n, 1)), seconds: seconds(since: start))
            if let valid, settings.evalStep > 0, (epoch + 1) % settings.evalStep == 0 {
                let metrics = ClassificationMetrics.evaluate(probabilities: model.predict(valid), labels: valid.labels)
                report.validation = metrics
                let value = metrics[settings.validMetric] ?? .nan
                let score = settings.validMetric == "logloss" ? -value : value
                if best == nil || score >= best!.score {
                    best = (score, epoch, parameters.map(\.value))
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
                context.log("epoch \(epoch): loss \(String(format: "%.4f", report.loss)), valid auc \(String(format: "%.4f", metrics["auc"]!)) logloss \(String(format: "%.4f", metrics["logloss"]!)), \(String(format: "%.2f", report.seconds)) s")
            }
            context.onEpoch?(report)
        }
        if let best {
            for (p, v) in zip(parameters, best.values) { p.assign(v) }
        }
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start).inSeconds
    }
}

/// The embedding side every click-through model shares (RecBole's `ContextRecommender`): a `[rows, d]` table of
/// field embeddings, a `[rows, 1]` table of first-order weights and a global bias. Initialised as RecBole does:
/// Xavier-normal per RecBole table, i.e. one table for all categorical fields, one per multi-value field, one for
/// all numeric fields, so each group's standard deviation is √(2 / (its rows + d)); the bias starts at 0.
public struct FieldEmbeddings {
    public let schema: FeatureSchema
    public let dimension: Int
    public let table: Tensor
    public let linear: Tensor
    public let bias: Tensor

    public init(schema: FeatureSchema, dimension: Int, rng: inout SeededGenerator) {
        self.schema = schema
        self.dimension = dimension
        func initialised(width: Int, rng: inout SeededGenerator) -> Matrix {
            var m = Matrix(rows: schema.rowCount, cols: width)
            let tokenRows = schema.fields.filter { $0.type == .token }.reduce(0) { $0 + $1.rowCount }
            let floatRows = schema.fields.filter { $0.type == .float }.reduce(0) { $0 + $1.rowCount }
            for (k, f) in schema.fields.enumerated() {
                let groupRows = f.type == .token ? tokenRows : f.type == .float ? floatRows : f.rowCount
                let std = (2 / Float(groupRows + width)).squareRoot()
                for i in (schema.offsets[k] * width)..<((schema.offsets[k] + f.rowCount) * width) { m.storage[i] = rng.nextGaussian() * std }
            }
            return m
        }
        table = Tensor(parameter: initialised(width: dimension, rng: &rng))
        linear = Tensor(parameter: initialised(width: 1, rng: &rng))
        bias = Tensor(parameter: Matrix(rows: 1, cols: 1))
    }

    public var parameters: [Tensor] { [table, linear, bias] }
    public var fieldCount: Int { schema.fields.count }

    /// The field embeddings of `rows` samples, `[rows · fields, d]` (one row per sample and field).
    public func embed(_ bags: EmbeddingBags) -> Tensor { Tensor.embeddingBags(table, bags) }

    /// Pooled field embeddings `[bags, d]` and first-order weights (one per bag) of `bags`, outside the tape (serving).
    public func pooledValues(_ bags: EmbeddingBags) -> (embeddings: Matrix, weights: [Float]) {
        (Tensor.embeddingBags(Tensor(table.value), bags).value, Tensor.embeddingBags(Tensor(linear.value), bags).value.storage)
    }

    /// The first-order term Σ_fields w + b, `[rows, 1]` (RecBole's `FMFirstOrderLinear`).
    public func firstOrder(_ bags: EmbeddingBags, rows: Int) -> Tensor {
        Tensor.rowSums(Tensor.reshaped(Tensor.embeddingBags(linear, bags), rows: rows, cols: fieldCount)) + bias
    }
}

/// RecBole's `MLPLayers` with ReLU: per layer dropout, then a linear map, then ReLU (after the last layer too).
/// Weights Xavier-normal, biases 0, as the context models initialise them.
public struct MultilayerPerceptron {
    public let weights: [Tensor]
    public let biases: [Tensor]
    public let dropout: Float

    public init(sizes: [Int], dropout: Float, rng: inout SeededGenerator) {
        weights = zip(sizes.dropLast(), sizes.dropFirst()).map { Tensor(parameter: xavierNormal(rows: $0, cols: $1, rng: &rng)) }
        biases = sizes.dropFirst().map { Tensor(parameter: Matrix(rows: 1, cols: $0)) }
        self.dropout = dropout
    }

    public var parameters: [Tensor] { zip(weights, biases).flatMap { [$0, $1] } }

    public func callAsFunction(_ input: Tensor, dropout rng: inout SeededGenerator?) -> Tensor {
        var x = input
        for (w, b) in zip(weights, biases) {
            if dropout > 0, rng != nil { x = Tensor.dropout(x, rate: dropout, rng: &rng!) }
            x = Tensor.linear(x, weight: w, bias: b, relu: true)
        }
        return x
    }
}

/// A linear layer `[in, out]` with bias, Xavier-normal weights and a zero bias (RecBole's `nn.Linear` init).
public struct DenseLayer {
    public let weight: Tensor
    public let bias: Tensor

    public init(_ input: Int, _ output: Int, rng: inout SeededGenerator) {
        self.init(weight: xavierNormal(rows: input, cols: output, rng: &rng))
    }

    /// Given initial weights `[in, out]`, zero bias.
    public init(weight: Matrix) {
        self.weight = Tensor(parameter: weight)
        bias = Tensor(parameter: Matrix(rows: 1, cols: weight.cols))
    }

    public var parameters: [Tensor] { [weight, bias] }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }
}

/// Reads a list setting such as `mlp_hidden_size` (`128,128,128`) of positive integers.
func positiveIntegers(_ h: inout Hyperparameters, _ key: String, default value: [Int]) throws -> [Int] {
    let text = try h.string(key, default: value.map(String.init).joined(separator: ","))
    let parsed = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? 0) > 0 }) else { throw HyperparameterError.invalid(key, text, "a list of positive integers") }
    return parsed.map { $0! }
}
