import Foundation
import AffinityCore
import AffinityEval

/// What the shared trainer needs from a gradient-trained model.
public protocol GradientModel: Recommender {
    /// Trainable parameters.
    var parameters: [Tensor] { get }
    /// The loss of one batch of (user, positive item, negative item) triples; builds the graph.
    func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor
    /// Called before each epoch (e.g. to re-sample a graph view).
    func epochWillStart(_ epoch: Int)
    /// Called before scoring after parameters changed (e.g. to propagate final embeddings).
    func parametersDidChange()
    /// State besides `parameters` that training carries from batch to batch (e.g. a running dropout
    /// generator), saved in checkpoints; empty for models whose randomness is keyed by (seed, epoch).
    var trainingState: [UInt64] { get set }
    /// Called before each batch's loss with the number of batches trained before it, over all epochs (the clock
    /// of schedules inside the loss, such as T-CE's drop rate).
    func batchWillStart(iteration: Int)
    /// Scores of the pairs (users[k], items[k]) under the current parameters, outside the graph: what a sampler
    /// that consults the model needs (`sampling=pld`).
    func trainingScores(users: [Int32], items: [Int32]) -> [Float]
}

extension GradientModel {
    public func epochWillStart(_ epoch: Int) {}
    public func parametersDidChange() {}
    public var trainingState: [UInt64] {
        get { [] }
        set {}
    }
    public func batchWillStart(iteration: Int) {}
}

extension GradientModel where Self: EmbeddingModel {
    /// ⟨user embedding, item embedding⟩ from the embeddings the model scores with: current for models that train
    /// them directly (BPR-MF); models that compute them from their parameters refresh them after each epoch
    /// (`parametersDidChange`), so they score with the epoch's starting point unless they override this
    /// (LightGCN propagates its current table).
    public func trainingScores(users: [Int32], items: [Int32]) -> [Float] {
        Matrix.pairDots(userEmbeddings, rows: users, itemEmbeddings, rows: items)
    }
}

/// Training-loop settings, read from hyperparameters with RecBole's defaults.
public struct TrainerSettings: Sendable {
    public var epochs: Int
    public var learningRate: Float
    public var batchSize: Int
    /// Validate every this many epochs (0: never).
    public var evalStep: Int
    /// Stop after this many validations without improvement.
    public var stoppingStep: Int
    /// The validation metric to maximise, e.g. `mrr@10`.
    public var validMetric: String
    public var weightDecay: Float
    public var optimizer: String
    public var schedule: LearningRateSchedule
    /// `pairs` (RecBole): every training pair once per epoch, shuffled. `users` (LightGCN's official code):
    /// as many samples, each a uniformly drawn user and one of their items. `pld`: as `users`, then from epoch
    /// `begin_adv` on each user's positive is chosen from a pool by its loss (`PersonalizedDenoisingSampling`).
    public var sampling: String
    /// PLD's settings when `sampling` is `pld`.
    public var personalizedDenoising: PersonalizedDenoisingSampling?

    public init(_ h: inout Hyperparameters, epochs: Int = 300, learningRate: Double = 1e-3, batchSize: Int = 2048,
                stoppingStep: Int = 10) throws {
        self.epochs = try h.int("epochs", default: epochs)
        self.learningRate = Float(try h.float("learning_rate", default: learningRate))
        self.batchSize = try h.int("train_batch_size", default: batchSize)
        self.evalStep = try h.int("eval_step", default: 1)
        self.stoppingStep = try h.int("stopping_step", default: stoppingStep)
        self.validMetric = try h.string("valid_metric", default: "mrr@10").lowercased()
        self.weightDecay = Float(try h.float("weight_decay", default: 0))
        self.optimizer = try h.string("optimizer", default: "adam", allowed: ["adam", "sgd"])
        self.schedule = try LearningRateSchedule(&h)
        self.sampling = try h.string("sampling", default: "pairs", allowed: ["pairs", "users", "pld"])
        if sampling == "pld" { personalizedDenoising = try PersonalizedDenoisingSampling(&h) }
        guard self.epochs >= 0, self.batchSize > 0, self.learningRate > 0 else {
            throw HyperparameterError.outOfRange("epochs/train_batch_size/learning_rate", "must be positive")
        }
    }
}

/// One epoch's outcome, passed to `TrainingContext.onEpoch`.
public struct EpochReport: Sendable, Codable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var seconds: Double
    public var validation: [String: Double]?
    /// The learning curve's metrics at this epoch (`TrainingContext.monitor`), if measured.
    public var monitored: [String: Double]? = nil
}

/// Epochs of shuffled mini-batches with sampled negatives, optimizer steps, periodic validation, early
/// stopping on a metric, and restoring the best parameters at the end (RecBole's trainer semantics).
public struct Trainer {
    public let settings: TrainerSettings

    public init(settings: TrainerSettings) { self.settings = settings }

    public func fit(_ model: some GradientModel, data: TrainingData, context: TrainingContext) throws -> [EpochReport] {
        let sampler = InteractionSampler(userItems: data.userItems, seed: context.seed)
        let optimizer: Optimizer = settings.optimizer == "sgd"
            ? SGD(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
            : Adam(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        var bookkeeping = EpochBookkeeping<[Matrix]>(evalStep: settings.evalStep, stoppingStep: settings.stoppingStep,
                                                     validMetric: settings.validMetric)
        var reports: [EpochReport] = []
        var firstEpoch = 0
        if let checkpoint = context.checkpoint, FileManager.default.fileExists(atPath: checkpoint.path) {
            let saved = try resume(from: checkpoint, model: model, optimizer: optimizer)
            (bookkeeping.best, bookkeeping.sinceBest, reports, firstEpoch) = (saved.best, saved.sinceBest, saved.reports, saved.epoch + 1)
            for report in reports { context.onEpoch?(report) }
            context.log("resumed from \(checkpoint.path) after epoch \(saved.epoch)")
        }
        let batches = (sampler.count + settings.batchSize - 1) / settings.batchSize
        for epoch in firstEpoch..<settings.epochs {
            if bookkeeping.shouldStop { break }
            let start = ContinuousClock.now
            model.epochWillStart(epoch)
            // PLD's batches consult the model as it trains, so they are drawn batch by batch; other epochs are
            // drawn whole up front.
            let personalized = settings.personalizedDenoising.flatMap { epoch >= $0.beginEpoch ? $0 : nil }
            let order = personalized != nil ? []
                : settings.sampling == "pairs" ? sampler.epochOrder(epoch: epoch) : sampler.userUniformOrder(epoch: epoch)
            // All of the epoch's negatives in one parallel pass (one generator per fixed-size chunk).
            let epochUsers = order.map { sampler.users[Int($0)] }
            let epochNegatives = sampler.negatives(for: epochUsers, epoch: epoch, batch: 0)
            var lossSum = 0.0
            let progress = context.progress("epoch \(epoch)", total: batches)
            for b in 0..<batches {
                var users: [Int32], positives: [Int32], negatives: [Int32]
                if let personalized {
                    (users, positives, negatives) = sampler.personalizedBatch(
                        size: min(settings.batchSize, sampler.count - b * settings.batchSize), settings: personalized,
                        epoch: epoch, batch: b, score: model.trainingScores)
                } else {
                    let slice = order[(b * settings.batchSize)..<min((b + 1) * settings.batchSize, order.count)]
                    let range = slice.startIndex..<slice.endIndex
                    users = Array(epochUsers[range])
                    positives = slice.map { sampler.items[Int($0)] }
                    negatives = Array(epochNegatives[range])
                }
                if negatives.contains(-1) {  // users with every item: nothing to contrast, drop them
                    let keep = negatives.indices.filter { negatives[$0] >= 0 }
                    users = keep.map { users[$0] }; positives = keep.map { positives[$0] }; negatives = keep.map { negatives[$0] }
                }
                if settings.schedule != .constant {
                    optimizer.learningRate = settings.schedule.rate(base: settings.learningRate, epoch: epoch, batch: b,
                                                                    batches: batches, epochs: settings.epochs)
                }
                model.batchWillStart(iteration: epoch * batches + b)
                let loss = model.batchLoss(users: users, positives: positives, negatives: negatives, epoch: epoch)
                guard loss.scalar.isFinite else {
                    throw TrainingError.diverged(epoch: epoch, batch: b)
                }
                lossSum += Double(loss.scalar)
                loss.backward()
                optimizer.step(model.parameters)
                progress.update(b + 1)
            }
            model.parametersDidChange()
            let elapsed = ContinuousClock.now - start
            var report = EpochReport(epoch: epoch, loss: lossSum / Double(max(batches, 1)),
                                     seconds: elapsed.inSeconds)
            try bookkeeping.finish(&report, headline: String(format: "epoch %d: loss %.4f, %.2f s", epoch, report.loss, report.seconds),
                                   scorer: model, context: context, snapshot: { model.parameters.map(\.value) })
            reports.append(report)
            if let checkpoint = context.checkpoint {
                try save(to: checkpoint, epoch: epoch, model: model, optimizer: optimizer, reports: reports,
                         best: bookkeeping.best, sinceBest: bookkeeping.sinceBest)
            }
        }
        if let best = bookkeeping.best {
            for (p, v) in zip(model.parameters, best.snapshot) { p.assign(v) }
            model.parametersDidChange()
            context.log("restored best epoch \(best.epoch) (valid \(settings.validMetric) \(String(format: "%.4f", best.score)))")
        }
        return reports
    }
}

extension Trainer {
    private func save(to checkpoint: CheckpointSettings, epoch: Int, model: some GradientModel, optimizer: Optimizer,
                      reports: [EpochReport], best: (score: Double, epoch: Int, snapshot: [Matrix])?, sinceBest: Int) throws {
        let parameters = model.parameters
        let state = optimizer.state(for: parameters)
        let header = TrainingCheckpoint.Header(
            fingerprint: checkpoint.fingerprint, epochs: settings.epochs, epoch: epoch, reports: reports,
            shapes: parameters.map { [$0.rows, $0.cols] }, optimizerSteps: state.steps, slotCounts: state.slots.map(\.count),
            modelState: model.trainingState, bestScore: best?.score, bestEpoch: best?.epoch, sinceBest: sinceBest)
        try TrainingCheckpoint(header: header, parameters: parameters.map(\.value), optimizer: state, bestValues: best?.snapshot)
            .write(to: checkpoint.path)
    }

    /// Loads a checkpoint into the model and the optimizer after checking that it belongs to this run.
    private func resume(from checkpoint: CheckpointSettings, model: some GradientModel, optimizer: Optimizer) throws
        -> (epoch: Int, reports: [EpochReport], best: (score: Double, epoch: Int, snapshot: [Matrix])?, sinceBest: Int) {
        let saved = try TrainingCheckpoint.read(from: checkpoint.path)
        let header = saved.header
        func fail(_ why: String) -> CheckpointError { CheckpointError(path: checkpoint.path, reason: why) }
        guard header.fingerprint == checkpoint.fingerprint else {
            throw fail("written by another run (model, settings, seed or data differ); remove it to start over")
        }
        guard header.epochs == settings.epochs || settings.schedule == .constant else {
            throw fail("written for \(header.epochs) epochs, and the learning-rate schedule depends on the budget; resume with epochs=\(header.epochs)")
        }
        guard header.epoch < settings.epochs else {
            throw fail("already has \(header.epoch + 1) epochs, more than epochs=\(settings.epochs)")
        }
        let parameters = model.parameters
        guard header.shapes == parameters.map({ [$0.rows, $0.cols] }) else { throw fail("its parameter shapes do not match the model's") }
        guard header.modelState.count == model.trainingState.count else { throw fail("its model state does not match the model's") }
        do { try optimizer.restore(saved.optimizer, for: parameters) } catch { throw fail("\(error)") }
        for (p, value) in zip(parameters, saved.parameters) { p.assign(value) }
        model.trainingState = header.modelState
        model.parametersDidChange()
        var best: (score: Double, epoch: Int, snapshot: [Matrix])? = nil
        if let score = header.bestScore, let epoch = header.bestEpoch, let values = saved.bestValues { best = (score, epoch, values) }
        return (header.epoch, header.reports, best, header.sinceBest)
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case diverged(epoch: Int, batch: Int)
    case unknownMetric(String, [String])
    /// `TrainingContext.isCancelled` said stop.
    case cancelled

    public var description: String {
        switch self {
        case .diverged(let e, let b): return "training diverged (non-finite loss) at epoch \(e), batch \(b); lower learning_rate"
        case .unknownMetric(let m, let known): return "valid_metric '\(m)' is not computed (available: \(known.joined(separator: ", ")))"
        case .cancelled: return "training was cancelled"
        }
    }
}
