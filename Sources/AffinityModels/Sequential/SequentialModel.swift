import Foundation
import AffinityCore
import AffinityData
import AffinityEval

/// Models that rank a user's next item from their ordered history (SASRec, GRU4Rec).
///
/// They score from `histories`, not from the user's row: `fit` sets it to the training sequences (validation
/// predicts the validation item from them); the caller appends the validation item before testing (RecBole's
/// leave-one-out protocol) and a server appends the events it stores. Their rankings do not exclude the history's
/// items (RecBole's sequential protocol: a user may come back to an item).
public protocol SequentialRecommender: Recommender {
    /// Per user, the items the next one is predicted from, oldest first.
    var histories: UserSequences { get set }
    /// Scores of every item as the item after each of `sequences` (oldest first), row-major
    /// `[sequences.count, itemCount]`.
    func nextItemScores(_ sequences: [ArraySlice<Int32>], into out: UnsafeMutableBufferPointer<Float>)
    /// The same with each item's timestamp (`times[s]` parallel to `sequences[s]`): interval-aware models
    /// (TiSASRec) read them, the others ignore them.
    func nextItemScores(_ sequences: [ArraySlice<Int32>], times: [ArraySlice<Double>], into out: UnsafeMutableBufferPointer<Float>)
}

extension SequentialRecommender {
    public func nextItemScores(_ sequences: [ArraySlice<Int32>], times: [ArraySlice<Double>], into out: UnsafeMutableBufferPointer<Float>) {
        nextItemScores(sequences, into: out)
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        let known = users.map { Int($0) < histories.userCount ? Int($0) : nil }
        nextItemScores(known.map { $0.map { histories.items[$0][...] } ?? [] },
                       times: known.map { $0.map { histories.times[$0][...] } ?? [] }, into: out)
    }
}

/// One batch of training sequences, left-padded to `length` positions: position t of sequence s is entry s · length + t.
public struct SequenceBatch: Sendable {
    public let sequences: Int
    public let length: Int
    /// The user of each sequence.
    public let users: [Int32]
    /// Input items, −1 for padding.
    public let inputs: [Int32]
    /// The timestamps of `inputs` (0 at padding).
    public let times: [Double]
    /// The item after each input position, −1 where there is none (padding).
    public let targets: [Int32]
    /// One sampled item per position with a target, never one of the user's training items (empty when the model
    /// does not ask for negatives).
    public let negatives: [Int32]
    /// The flat positions that have targets, in order, and those targets.
    public let targetPositions: [Int32]
    public let targetItems: [Int32]
}

/// What `SequenceTrainer` needs from a sequential model.
public protocol SequenceNetwork: SequentialRecommender {
    var parameters: [Tensor] { get }
    /// Whether batches carry sampled negatives (BCE losses).
    var needsNegatives: Bool { get }
    /// The loss of one batch; `seed` keys its dropout masks.
    func batchLoss(_ batch: SequenceBatch, seed: UInt64) -> Tensor
    /// Positions per input sequence.
    var maxLength: Int { get }
    /// Creates freshly initialised parameters for `itemCount` items (what `fit` starts from; `restore` overwrites them).
    func prepare(itemCount: Int, seed: UInt64)
}

extension SequenceNetwork {
    /// The trained parameters, in `parameters` order (what a model file stores).
    public var parameterValues: [Matrix] { parameters.map(\.value) }

    /// Loads parameters saved from a model of the same settings trained on `itemCount` items; the histories start
    /// empty (a server sets them from its events).
    public func restore(itemCount: Int, parameters values: [Matrix]) throws {
        prepare(itemCount: itemCount, seed: 0)
        let shapes = parameters.map { [$0.value.rows, $0.value.cols] }
        guard shapes == values.map({ [$0.rows, $0.cols] }) else {
            throw HyperparameterError.outOfRange("parameters", "the saved shapes \(values.map { [$0.rows, $0.cols] }) are not this model's \(shapes)")
        }
        for (p, v) in zip(parameters, values) { p.assign(v) }
    }
}

/// Settings every sequential model reads besides the trainer's.
public struct SequenceSettings: Sendable {
    /// Positions per input sequence (RecBole's `MAX_ITEM_LIST_LENGTH`).
    public var maxLength: Int

    public init(_ h: inout Hyperparameters) throws {
        maxLength = try h.int("max_seq_length", default: 50)
        guard maxLength > 0 else { throw HyperparameterError.outOfRange("max_seq_length", "must be positive") }
    }
}

/// Trains a `SequenceNetwork` on every user's training sequence, cut into windows of `maxLength + 1` items from the
/// end backwards (`UserSequences.windows`), so every training item after a user's first is a next-item target once
/// per epoch, predicted from up to `maxLength` items before it (the paper's all-positions training; RecBole instead
/// makes one sample per prefix and trains its last position only). Adam, validation every `eval_step` epochs, early
/// stopping on `valid_metric` with RecBole's rule, best epoch restored.
public struct SequenceTrainer {
    public let settings: TrainerSettings
    public let maxLength: Int

    public init(settings: TrainerSettings, maxLength: Int) {
        self.settings = settings
        self.maxLength = maxLength
    }

    public func fit(_ model: some SequenceNetwork, data: TrainingData, sequences: UserSequences, context: TrainingContext) throws -> [EpochReport] {
        if context.checkpoint != nil { context.log("\(type(of: model).name) keeps no checkpoints; training from the start") }
        let optimizer: Optimizer = settings.optimizer == "sgd"
            ? SGD(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
            : Adam(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        var windows: [(user: Int32, range: Range<Int>)] = []
        for u in 0..<sequences.userCount {
            for w in UserSequences.windows(count: sequences.items[u].count, maxLength: maxLength) { windows.append((Int32(u), w)) }
        }
        let sampler = InteractionSampler(userItems: data.userItems, seed: context.seed)
        let root = SeededGenerator(seed: context.seed)
        let batches = (windows.count + settings.batchSize - 1) / settings.batchSize
        var bookkeeping = EpochBookkeeping<[Matrix]>(evalStep: settings.evalStep, stoppingStep: settings.stoppingStep,
                                                     validMetric: settings.validMetric)
        var reports: [EpochReport] = []
        for epoch in 0..<settings.epochs {
            if bookkeeping.shouldStop { break }
            let start = ContinuousClock.now
            var order = Array(0..<windows.count)
            var shuffler = root.derived(stream: UInt64(epoch) << 32)
            order.seededShuffle(using: &shuffler)
            var lossSum = 0.0
            let progress = context.progress("epoch \(epoch)", total: batches)
            for b in 0..<batches {
                let chosen = order[(b * settings.batchSize)..<min((b + 1) * settings.batchSize, windows.count)].map { windows[$0] }
                let batch = makeBatch(chosen, sequences: sequences, sampler: model.needsNegatives ? sampler : nil, epoch: epoch, batch: b)
                if settings.schedule != .constant {
                    optimizer.learningRate = settings.schedule.rate(base: settings.learningRate, epoch: epoch, batch: b,
                                                                    batches: batches, epochs: settings.epochs)
                }
                let loss = model.batchLoss(batch, seed: root.derived(stream: UInt64(epoch) << 32 | UInt64(b + 1)).state[0])
                guard loss.scalar.isFinite else { throw TrainingError.diverged(epoch: epoch, batch: b) }
                lossSum += Double(loss.scalar)
                loss.backward()
                optimizer.step(model.parameters)
                progress.update(b + 1)
            }
            let elapsed = ContinuousClock.now - start
            var report = EpochReport(epoch: epoch, loss: lossSum / Double(max(batches, 1)),
                                     seconds: elapsed.inSeconds)
            try bookkeeping.finish(&report, headline: String(format: "epoch %d: loss %.4f, %.2f s", epoch, report.loss, report.seconds),
                                   scorer: model, context: context, snapshot: { model.parameters.map(\.value) })
            reports.append(report)
        }
        if let best = bookkeeping.best {
            for (p, v) in zip(model.parameters, best.snapshot) { p.assign(v) }
            context.log("restored best epoch \(best.epoch) (valid \(settings.validMetric) \(String(format: "%.4f", best.score)))")
        }
        return reports
    }

    /// Left-padded inputs and targets of the windows, and one negative per target drawn from `sampler`
    /// (keyed by epoch and batch) when given.
    func makeBatch(_ windows: [(user: Int32, range: Range<Int>)], sequences: UserSequences, sampler: InteractionSampler?,
                   epoch: Int, batch: Int) -> SequenceBatch {
        let length = maxLength
        var inputs = [Int32](repeating: -1, count: windows.count * length), targets = inputs
        var times = [Double](repeating: 0, count: windows.count * length)
        var targetPositions: [Int32] = [], targetItems: [Int32] = [], targetUsers: [Int32] = []
        for (s, window) in windows.enumerated() {
            let items = sequences.items[Int(window.user)], stamps = sequences.times[Int(window.user)]
            let count = window.range.count - 1  // inputs in this window
            let offset = s * length + length - count
            for k in 0..<count {
                inputs[offset + k] = items[window.range.lowerBound + k]
                times[offset + k] = stamps[window.range.lowerBound + k]
                targets[offset + k] = items[window.range.lowerBound + k + 1]
                targetPositions.append(Int32(offset + k))
                targetItems.append(targets[offset + k])
                targetUsers.append(window.user)
            }
        }
        let negatives = sampler.map { $0.negatives(for: targetUsers, epoch: epoch, batch: batch) } ?? []
        return SequenceBatch(sequences: windows.count, length: length, users: windows.map(\.user), inputs: inputs, times: times, targets: targets,
                             negatives: negatives.map { max($0, 0) }, targetPositions: targetPositions, targetItems: targetItems)
    }
}

/// The next-item scores of hidden states: `hidden` `[n, d]` times the item table `[items, d]` transposed, into `out`.
func scoreItems(hidden: Matrix, itemTable: Matrix, into out: UnsafeMutableBufferPointer<Float>) {
    precondition(out.count >= hidden.rows * itemTable.rows)
    hidden.storage.withUnsafeBufferPointer { h in
        itemTable.storage.withUnsafeBufferPointer { e in
            if hidden.rows == 1 {  // one served user: a matrix-vector product, no panel packing of the table
                BLAS.sgemv(rows: itemTable.rows, cols: hidden.cols, a: e.baseAddress!, lda: itemTable.cols, x: h.baseAddress!,
                           y: out.baseAddress!)
                return
            }
            BLAS.sgemm(transA: false, transB: true, m: hidden.rows, n: itemTable.rows, k: hidden.cols, alpha: 1,
                       a: h.baseAddress!, lda: hidden.cols, b: e.baseAddress!, ldb: hidden.cols, beta: 0,
                       c: out.baseAddress!, ldc: itemTable.rows)
        }
    }
}
