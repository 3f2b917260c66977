import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityServing

/// One training run: load → preprocess → split → fit each model → evaluate on validation and test → the run
/// record's values. `affinity train` is this with a table printed; a model it fits can be saved with
/// `ArtifactBuilder`. Where the interactions come from is the caller's (`load`): a file, a built-in dataset, or a
/// store's events.
public struct TrainingRun {
    /// A configured model with the settings it read (recorded in the run record, and in a saved artifact).
    public struct Model {
        public let name: String
        public let recommender: any Recommender
        public let settings: [String: String]

        public init(name: String, recommender: any Recommender, settings: [String: String]) {
            self.name = name
            self.recommender = recommender
            self.settings = settings
        }

        /// `name` from the registry, configured with `settings`; keys the model does not read are left in
        /// `hyperparameters` for the caller to check.
        public static func make(_ name: String, settings: [String: String]) throws -> (Model, Hyperparameters) {
            let type = try ModelRegistry.type(named: name)
            var hyperparameters = Hyperparameters(settings)
            let recommender = try type.init(&hyperparameters)
            return (Model(name: type.name, recommender: recommender, settings: hyperparameters.effective), hyperparameters)
        }
    }

    /// How the run splits, measures and logs (the general keys of `affinity train`).
    public struct Settings {
        public var seed: UInt64 = 2020
        /// nil: the data's own split if it has one, else RecBole's per-user random 8:1:1.
        public var split: SplitStrategy?
        public var cutoffs: [Int] = [10, 20]
        public var metrics: [RankingMetric] = RankingMetric.standard
        public var propensity: PopularityPropensity = .evaluationDefault
        /// Early stopping may select by the SNIPS metrics.
        public var unbiasedValidation = false
        /// Sequential models skip the items already in the user's history (the others always do).
        public var excludeHistory = false
        public var preprocessing = Preprocessing()
        /// Fraction of random false positives added to the training part.
        public var trainNoise = 0.0
        /// false: the knowledge graph's items without their facts (an ablation).
        public var keepKnowledgeGraph = true
        /// Test metrics logged every N epochs (a learning curve, never used to select).
        public var curve: Int?
        /// A folder of per-model training checkpoints to resume from.
        public var checkpoints: String?
        /// Also measure what `affinity report` plots: the epoch log, metric@K for K = 1…50, exposure.
        public var detailedRecords = false
        public var showProgress = false
        public var log: @Sendable (String) -> Void = { _ in }

        public init() {}
    }

    /// What one model's run produced.
    public struct ModelOutcome {
        public let model: Model
        public var valid: EvaluationResult
        public var test: EvaluationResult
        /// The model cannot rank this split (cold-start items for a model that needs interactions).
        public var unable: Bool
        public var record: RunRecord
        /// The epoch early stopping restored (0-based), when validated.
        public var bestEpoch: Int?
    }

    /// Everything the run saw and measured.
    public struct Outcome {
        public let dataset: Dataset
        public let strategy: SplitStrategy
        public let split: DataSplit
        public let modalities: [Modality]
        /// The metric@K keys of the test results, in table order.
        public let keys: [String]
        /// Cold-start items: only the held-out items were ranked.
        public let coldStart: Bool
        public var models: [ModelOutcome]
        public var records: [RunRecord] { models.map(\.record) }
    }

    public let models: [Model]
    public let settings: Settings

    public init(models: [Model], settings: Settings) {
        self.models = models
        self.settings = settings
    }

    /// Runs every model on the data `load` returns, with the feature modalities `modalities` gives for it.
    public func run(load: () throws -> Dataset, modalities: (Dataset) throws -> [Modality] = { _ in [] }) throws -> Outcome {
        let seed = settings.seed, cutoffs = settings.cutoffs, metrics = settings.metrics, propensity = settings.propensity
        let log = settings.log
        let (loaded, loadSeconds) = try timed(load)
        let preprocessing = settings.preprocessing
        let dataset = try preprocessing.apply(to: loaded)
        let strategy = settings.split ?? (dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]))
        let (cleanSplit, splitSeconds) = try timed { try DataSplit.make(dataset, strategy: strategy, seed: seed) }
        log("\(dataset.name): \(dataset.userCount) users, \(dataset.itemCount) items, \(dataset.interactions.count) interactions; " +
            "split \(strategy): train \(cleanSplit.train.count), valid \(cleanSplit.valid.count), test \(cleanSplit.test.count)")
        // Random false positives in the training part only (the denoising benchmarks' construction).
        let trainNoise = settings.trainNoise
        let noisy = trainNoise > 0 ? cleanSplit.withTrainingNoise(fraction: trainNoise, seed: seed) : (split: cleanSplit, added: 0)
        let split = noisy.split
        if trainNoise > 0 { log("train_noise \(trainNoise): added \(noisy.added) random interactions to the training part") }

        let features = try modalities(dataset)
        for m in features { log("modality \(m.name): \(m.features.cols)-d from \(m.source)") }
        var training = TrainingData(split: split, modalities: features)
        if let graph = dataset.knowledgeGraph {
            let aligned = graph.aligned(to: dataset.items)
            let keep = settings.keepKnowledgeGraph
            training.knowledgeGraph = keep ? aligned : aligned.withoutFacts
            log("knowledge graph: \(aligned.entityCount) entities, \(aligned.relationCount) relations with inverses, " +
                "\(aligned.tripleCount) triples; \(aligned.linkedItems) of \(dataset.itemCount) items linked" + (keep ? "" : " (facts removed)"))
        }
        // Cold-start items: rank only the held-out items of each part; models that cannot score items
        // without interactions are reported as unable.
        var coldCandidates: (valid: [Bool], test: [Bool])? = nil
        if case .coldItems = strategy {
            var valid = [Bool](repeating: false, count: dataset.itemCount), test = valid
            for i in split.valid.items { valid[Int(i)] = true }
            for i in split.test.items { test[Int(i)] = true }
            coldCandidates = (valid, test)
        }
        func restricted(_ scorer: any Scorer, _ candidates: [Bool]?) -> any Scorer {
            candidates.map { CandidateScorer(scorer, candidates: $0) } ?? scorer
        }
        var trainPopularity = [Int](repeating: 0, count: dataset.itemCount)
        for i in split.train.items { trainPopularity[Int(i)] += 1 }
        let evaluator = RankingEvaluator(cutoffs: cutoffs, metrics: metrics, itemPopularity: trainPopularity, propensity: propensity)
        // Detailed records: the one test pass also measures metric@K for K = 1…50 (the report's curves); the
        // reported test metrics stay those of `evaluator`.
        let atKMetrics: [RankingMetric] = [.recall, .ndcg, .precision, .hit, .mrr]
        let testEvaluator = !settings.detailedRecords ? evaluator : RankingEvaluator(
            cutoffs: Array(Set(cutoffs).union(1...RunRecord.atKCutoffs)).sorted(),
            metrics: metrics + atKMetrics.filter { !metrics.contains($0) }, itemPopularity: trainPopularity, propensity: propensity)
        let reportedKeys = Set(evaluator.keys)
        let fingerprint = dataset.fingerprint
        var outcomes: [ModelOutcome] = []
        for entry in models {
            let name = entry.name, model = entry.recommender
            if coldCandidates != nil && !(model is any ColdStartCapable) {
                log("\(name): cannot score items without interactions; reported as unable")
                let record = RunRecord(model: name, dataset: dataset.name, config: ["split": strategy.description, "cold_start": "unable"],
                                       seed: seed, dataFingerprint: fingerprint, timings: ["fit_s": 0], metrics: ["test": [:]],
                                       versions: RunRecord.versions)
                outcomes.append(ModelOutcome(model: entry, valid: .empty, test: .empty, unable: true, record: record, bestEpoch: nil))
                continue
            }
            // Sequential models rank every item by default (RecBole's sequential protocol); the others never re-rank
            // what the user already has.
            let sequential = model is any SequentialRecommender
            let keepHistory = sequential && !settings.excludeHistory
            let validExclude = keepHistory ? [] : [split.trainMatrix]
            let testExclude = keepHistory ? [] : split.valid.count > 0 ? [split.trainMatrix, split.validMatrix] : [split.trainMatrix]
            var context = TrainingContext(seed: seed, showProgress: settings.showProgress, log: log)
            let reports = EpochLog()
            context.onEpoch = { reports.entries.append($0) }
            if split.valid.count > 0 {
                // Early stopping looks at the validation split; its cutoffs include 10 so RecBole's default
                // valid_metric (mrr@10) is always available, and with unbiased_eval the SNIPS metrics can select.
                let validator = RankingEvaluator(cutoffs: Array(Set(cutoffs + [10])).sorted(),
                                                 metrics: RankingMetric.standard.filter(\.isPerUser) + (settings.unbiasedValidation ? RankingMetric.unbiased : []),
                                                 itemPopularity: trainPopularity, propensity: propensity)
                context.validate = { scorer in
                    validator.evaluate(restricted(scorer, coldCandidates?.valid), target: split.validMatrix, exclude: validExclude).metrics
                }
            }
            if let curve = settings.curve {
                guard curve > 0 else { throw TrainingRunError.invalid("the learning curve needs a positive number of epochs") }
                let curveEvaluator = RankingEvaluator(cutoffs: cutoffs, metrics: [.recall, .ndcg])
                context.monitorStep = curve
                context.monitor = { scorer in
                    curveEvaluator.evaluate(restricted(scorer, coldCandidates?.test), target: split.testMatrix, exclude: testExclude).metrics
                }
            }
            if let checkpoints = settings.checkpoints {
                try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
                // What makes two runs the same run; the epoch budget may grow (the trainer checks the schedule).
                let modelSettings = entry.settings.filter { $0.key != "epochs" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let identity = ["model=\(name)", "seed=\(seed)", "data=\(fingerprint)", "split=\(strategy.description)"]
                    + (trainNoise > 0 ? ["train_noise=\(trainNoise)"] : [])
                    + features.map { "modality \($0.name)=\($0.features.rows)x\($0.features.cols) from \($0.source)" } + modelSettings
                context.checkpoint = CheckpointSettings(path: "\(checkpoints)/\(name).ckpt", fingerprint: identity.joined(separator: " "))
            }
            log("fitting \(name)…")
            let (_, fitSeconds) = try timed { try model.fit(training, context: context) }
            let valid = split.valid.count > 0
                ? evaluator.evaluate(restricted(model, coldCandidates?.valid), target: split.validMatrix, exclude: validExclude) : .empty
            // The test item is predicted from the history including the validation item (RecBole's leave-one-out).
            if let sequential = model as? any SequentialRecommender { sequential.histories.append(split.valid) }
            let testPass = testEvaluator.evaluate(restricted(model, coldCandidates?.test), target: split.testMatrix, exclude: testExclude)
            var test = testPass
            test.metrics = testPass.metrics.filter { reportedKeys.contains($0.key) }
            test.perUser = testPass.perUser.filter { reportedKeys.contains($0.key) }
            log("\(name): fit \(fixed(fitSeconds, 2)) s, test evaluation \(fixed(test.seconds, 2)) s")

            var config = entry.settings
            config["split"] = strategy.description
            config["topk"] = cutoffs.map(String.init).joined(separator: ",")
            config["dedup"] = preprocessing.deduplicate.rawValue
            if trainNoise > 0 { config["train_noise"] = String(trainNoise) }
            if let t = preprocessing.ratingThreshold { config["threshold"] = String(t) }
            var timings = ["load_s": loadSeconds, "split_s": splitSeconds, "fit_s": fitSeconds,
                           "valid_eval_s": valid.seconds, "test_eval_s": test.seconds]
            // Epoch time of the whole run, including epochs of earlier processes a checkpoint resumed from
            // (fit_s counts this process only).
            if !reports.entries.isEmpty { timings["epochs_s"] = reports.entries.reduce(0) { $0 + $1.seconds } }
            var record = RunRecord(
                model: name, dataset: dataset.name, config: config, seed: seed, dataFingerprint: fingerprint, timings: timings,
                metrics: reports.curve.merging(["valid": valid.metrics, "test": test.metrics]) { $1 }, versions: RunRecord.versions)
            if settings.detailedRecords {
                // What `affinity report` plots: the epoch log, metric@K for K = 1…50, exposure by popularity.
                record.epochs = reports.entries.isEmpty ? nil : reports.entries.map {
                    RunRecord.Epoch(epoch: $0.epoch + 1, loss: $0.loss, seconds: $0.seconds, valid: $0.validation, curve: $0.monitored)
                }
                record.metricsAtK = Dictionary(uniqueKeysWithValues: testPass.metrics.isEmpty ? [] : atKMetrics.map { metric in
                    (metric.rawValue, (1...RunRecord.atKCutoffs).map { testPass.metrics["\(metric.rawValue)@\($0)"] ?? .nan })
                })
                let k = cutoffs.last!
                record.exposure = RunRecord.ExposureSummary(
                    k: k, popularityDeciles: Exposure.shareByPopularityBin(lists: test.recommendations, k: k, popularity: trainPopularity),
                    averagePopularity: Exposure.averagePopularity(lists: test.recommendations, k: k, popularity: trainPopularity),
                    itemCoverage: CatalogueMetrics.itemCoverage(lists: test.recommendations, k: k, itemCount: dataset.itemCount))
            }
            let validMetric = entry.settings["valid_metric"] ?? "mrr@10"
            outcomes.append(ModelOutcome(model: entry, valid: valid, test: test, unable: false, record: record,
                                         bestEpoch: reports.bestEpoch(metric: context.validate == nil ? nil : validMetric)))
        }
        return Outcome(dataset: dataset, strategy: strategy, split: split, modalities: features, keys: evaluator.keys,
                       coldStart: coldCandidates != nil, models: outcomes)
    }

    /// The model `header` describes, fitted again on every interaction of `dataset` (no held-out part, no
    /// evaluation): what a retrain publishes. It runs the epochs the original run's best iteration took, with the
    /// original seed, and reloads the items' feature modalities from their recorded sources, aligned to
    /// `dataset`'s items (new items need rows too). `dataset` names its users and items by raw id.
    public static func refit(like header: ModelArtifact.Header, on dataset: Dataset, dataFingerprint: String, version: Int,
                             log: @escaping (String) -> Void = { _ in }, isCancelled: (@Sendable () -> Bool)? = nil) throws -> ModelArtifact {
        guard dataset.interactions.count > 0 else { throw TrainingRunError.invalid("no interactions to train on") }
        var settings = header.hyperparameters
        if let epochs = header.retrainEpochs { settings["epochs"] = String(epochs) }
        let (model, _) = try Model.make(header.model, settings: settings)
        guard let embedding = model.recommender as? any EmbeddingModel else {
            throw TrainingRunError.invalid("model '\(header.model)' is not an embedding model")
        }
        let modalities = try (header.modalities ?? [:]).sorted { $0.key < $1.key }.map { name, source in
            do { return try ModalityLoader.load(name: name, source: source, for: dataset) } catch {
                throw TrainingRunError.invalid("cannot reload modality '\(name)' from \(source): \(error)")
            }
        }
        let data = TrainingData(userCount: dataset.userCount, itemCount: dataset.itemCount, interactions: dataset.interactions,
                                modalities: modalities)
        var context = TrainingContext(seed: header.seed, log: log)
        context.isCancelled = isCancelled
        try embedding.fit(data, context: context)
        if isCancelled?() == true { throw TrainingError.cancelled }  // models that fit in one solve never ask
        // Titles follow the items by id; an item new since the last model has none.
        let oldItems = IDMap(rawIDs: header.itemIDs)
        let titles = header.itemTitles.map { titles in dataset.items.rawIDs.map { oldItems.dense($0).map { titles[Int($0)] } ?? "" } }
        var builder = ArtifactBuilder(model: header.model, settings: header.hyperparameters, seed: header.seed, dataset: dataset)
        builder.retrainEpochs = header.retrainEpochs
        builder.dataFingerprint = dataFingerprint
        builder.itemTitles = titles
        builder.modalitySources = header.modalities
        builder.version = version
        return try builder.artifact(of: embedding, training: dataset.interactions)
    }
}

public enum TrainingRunError: Error, CustomStringConvertible, Sendable {
    case invalid(String)
    case notServable(model: String)

    public var description: String {
        switch self {
        case .invalid(let why): return why
        case .notServable(let model):
            return "model '\(model)' is neither an embedding model nor a sequential one; servable models: " +
                ModelRegistry.models.filter { $0 is any EmbeddingModel.Type || $0 is any SequenceNetwork.Type }
                    .map { $0.name }.joined(separator: ", ")
        }
    }
}

/// Epoch reports collected during a fit (the `onEpoch` hook).
public final class EpochLog {
    public var entries: [EpochReport] = []

    public init() {}

    /// The learning curve (`--curve`), keyed `curve_epoch_N` (1-based epochs), for the run record.
    public var curve: [String: [String: Double]] {
        Dictionary(uniqueKeysWithValues: entries.compactMap { e in e.monitored.map { ("curve_epoch_\(e.epoch + 1)", $0) } })
    }

    /// The epoch with the best validation value of `metric` (the one the trainer restored: of equal values the
    /// later, as ties count as improvements), if validated.
    public func bestEpoch(metric: String?) -> Int? {
        guard let metric else { return nil }
        var best: (epoch: Int, value: Double)?
        for e in entries {
            guard let v = e.validation?[metric] else { continue }
            if best == nil || v >= best!.value { best = (e.epoch, v) }
        }
        return best?.epoch
    }
}

/// Seconds elapsed while running `body`.
public func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try body()
    return (value, (ContinuousClock.now - start).inSeconds)
}

/// `x` with exactly `digits` decimals ('-' when not finite): how tables and logs print figures.
public func fixed(_ x: Double, _ digits: Int = 4) -> String {
    guard x.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (x * scale).rounded() / scale
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else { s += "." + String(repeating: "0", count: digits) }
    return s
}
