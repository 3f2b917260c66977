import ArgumentParser
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityServing
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `affinity train`: load, split, fit one or more models, evaluate on validation and test, print a table.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train and evaluate models (full ranking, RecBole's protocol by default).",
        discussion: """
        Defaults follow RecBole's general-recommendation protocol: per-user random 8:1:1 split (or the
        data's own split), full ranking with training items excluded (and validation items when testing),
        topk 10 and 20, seed 2020. Settings: --config FILE.yaml, then --set key=value (highest precedence).
        General keys: seed, split, topk, metrics, fairness, unbiased_eval, unbiased_eval_power, unbiased_eval_clip,
        threshold, dedup, user_core, item_core, train_noise; any other key is a model hyperparameter (MODEL.key scopes
        it to one model).
        """)

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Model name, or several separated by commas (see `affinity models`).")
    var model: String

    @Option(name: .long, help: "ranking (top-K from interactions, the default) | ctr (click-through prediction on user and item features: labels from threshold=rating:V, AUC and LogLoss).")
    var task: String = "ranking"

    @Option(name: .long, help: "YAML file of settings.")
    var config: String?

    @Option(name: .customLong("set"), help: "key=value setting (repeatable; lists as topk=10,20).")
    var settings: [String] = []

    @Option(name: .long, help: "Random seed for splitting, sampling and initialisation (default 2020).")
    var seed: UInt64?

    @Option(name: .long, help: "ratio:0.8,0.1,0.1 | loo | temporal:0.8,0.1,0.1 | fixed.")
    var split: String?

    @Option(name: .long, help: "Write the run record (JSON) here.")
    var output: String?

    @Option(name: .long, help: "Write per-user test metrics (CSV) here.")
    var perUser: String?

    @Option(name: .long, help: "Save the trained model (one embedding model) as a servable artifact (see `affinity serve`).")
    var save: String?

    @Option(name: .long, help: ArgumentHelp("Log test metrics every N epochs: a learning curve, never used to select or stop (for data without a validation split).", valueName: "N"))
    var curve: Int?

    @Option(name: .long, help: ArgumentHelp("Keep a checkpoint of each gradient-trained model in DIR (DIR/MODEL.ckpt), written after every epoch; a run finds its own checkpoint there and resumes from it, ending as the uninterrupted run would.", valueName: "DIR"))
    var checkpoints: String?

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        var overrides = settings
        if let seed { overrides.append("seed=\(seed)") }
        if let split { overrides.append("split=\(split)") }
        let run = try RunConfiguration(configFile: config, overrides: overrides)
        switch task {
        case "ctr": return try executeContext(run: run)
        case "ranking":
            for key in RunConfiguration.contextKeys where run.values[key] != nil {
                throw ValidationError("setting '\(key)' applies to --task ctr only")
            }
        default: throw ValidationError("--task: '\(task)' is not ranking or ctr")
        }
        let modelNames = model.split(separator: ",").map { $0.trimmingCharacters(in: " ") }
        let types = try modelNames.map { try ModelRegistry.type(named: $0) }
        let names = types.map { $0.name }
        if save != nil && types.count != 1 { throw ValidationError("--save takes exactly one model") }
        // Before any work: an hours-long run must not end unable to write its results.
        for (option, path) in [("--output", output), ("--per-user", perUser), ("--save", save)] {
            guard let path else { continue }
            let directory = (path as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("\(option) \(path): directory '\(directory)' does not exist")
            }
        }

        // Configure every model before any work, so a bad setting fails fast.
        var read = Set<String>()
        var hyper: [Hyperparameters] = []
        var models: [any Recommender] = []
        for type in types {
            var h = Hyperparameters(run.hyperparameters(for: type.name))
            models.append(try type.init(&h))
            read.formUnion(h.effective.keys)
            for key in run.values.keys where key.hasPrefix(type.name + ".") {
                let bare = String(key.dropFirst(type.name.count + 1))
                if h.effective[bare] == nil {
                    throw ValidationError("unknown setting '\(key)' for model '\(type.name)'")
                }
            }
            hyper.append(h)
        }
        try run.checkUsed(models: names, read: read)
        let seedValue = UInt64(try run.int("seed", default: 2020))
        let cutoffs = try run.cutoffs
        let metrics = try run.metrics
        let trainNoise = try run.trainNoise
        let propensity = try run.propensity
        let unbiased = try run.unbiasedEvaluation
        let excludeHistory = try run.excludeHistory

        let (loaded, loadSeconds) = try timed { try data.load() }
        let preprocessing = try run.preprocessing
        let dataset = try preprocessing.apply(to: loaded)
        let strategy = try run.string("split").map(SplitStrategy.init(parsing:))
            ?? (dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]))
        let (cleanSplit, splitSeconds) = try timed { try DataSplit.make(dataset, strategy: strategy, seed: seedValue) }
        let verbose = !quiet
        let log: @Sendable (String) -> Void = { message in if verbose { writeStandardError(message + "\n") } }
        log("\(dataset.name): \(dataset.userCount) users, \(dataset.itemCount) items, \(dataset.interactions.count) interactions; " +
            "split \(strategy): train \(cleanSplit.train.count), valid \(cleanSplit.valid.count), test \(cleanSplit.test.count)")
        // Random false positives in the training part only (the denoising benchmarks' construction).
        let noisy = trainNoise > 0 ? cleanSplit.withTrainingNoise(fraction: trainNoise, seed: seedValue) : (split: cleanSplit, added: 0)
        let split = noisy.split
        if trainNoise > 0 { log("train_noise \(trainNoise): added \(noisy.added) random interactions to the training part") }

        let modalities = try data.modalities(for: dataset, settings: run.modalities)
        for m in modalities { log("modality \(m.name): \(m.features.cols)-d from \(m.source)") }
        var training = TrainingData(split: split, modalities: modalities)
        if let graph = dataset.knowledgeGraph {
            let aligned = graph.aligned(to: dataset.items)
            // knowledge_graph=false: the same items with every fact removed (the ablation of what the graph adds).
            let keep = try run.bool("knowledge_graph", default: true)
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
        // With --output the one test pass also measures metric@K for K = 1…50 (the report's curves); the printed and
        // recorded test metrics stay those of `evaluator`.
        let atKMetrics: [RankingMetric] = [.recall, .ndcg, .precision, .hit, .mrr]
        let testEvaluator = output == nil ? evaluator : RankingEvaluator(
            cutoffs: Array(Set(cutoffs).union(1...RunRecord.atKCutoffs)).sorted(),
            metrics: metrics + atKMetrics.filter { !metrics.contains($0) }, itemPopularity: trainPopularity, propensity: propensity)
        let reportedKeys = Set(evaluator.keys)
        let fingerprint = dataset.fingerprint
        var records: [RunRecord] = []
        var testResults: [EvaluationResult] = []
        var unable = Set<Int>()
        for (index, model) in models.enumerated() {
            let name = names[index]
            if coldCandidates != nil && !(model is any ColdStartCapable) {
                log("\(name): cannot score items without interactions; reported as unable")
                testResults.append(.empty)
                unable.insert(index)
                records.append(RunRecord(model: name, dataset: dataset.name, config: ["split": strategy.description, "cold_start": "unable"],
                                         seed: seedValue, dataFingerprint: fingerprint, timings: ["fit_s": 0], metrics: ["test": [:]],
                                         versions: RunRecord.versions))
                continue
            }
            // Sequential models rank every item by default (RecBole's sequential protocol); the others never re-rank
            // what the user already has.
            let sequential = model is any SequentialRecommender
            let validExclude = sequential && !excludeHistory ? [] : [split.trainMatrix]
            let testExclude = sequential && !excludeHistory ? [] : split.valid.count > 0 ? [split.trainMatrix, split.validMatrix] : [split.trainMatrix]
            var context = TrainingContext(seed: seedValue, showProgress: !quiet, log: log)
            let reports = EpochLog()
            context.onEpoch = { reports.entries.append($0) }
            if split.valid.count > 0 {
                // Early stopping looks at the validation split; its cutoffs include 10 so RecBole's default
                // valid_metric (mrr@10) is always available, and with unbiased_eval the SNIPS metrics can select.
                let validator = RankingEvaluator(cutoffs: Array(Set(cutoffs + [10])).sorted(),
                                                 metrics: RankingMetric.standard.filter(\.isPerUser) + (unbiased ? RankingMetric.unbiased : []),
                                                 itemPopularity: trainPopularity, propensity: propensity)
                context.validate = { scorer in
                    validator.evaluate(restricted(scorer, coldCandidates?.valid), target: split.validMatrix, exclude: validExclude).metrics
                }
            }
            if let curve {
                guard curve > 0 else { throw ValidationError("--curve must be a positive number of epochs") }
                let curveEvaluator = RankingEvaluator(cutoffs: cutoffs, metrics: [.recall, .ndcg])
                let exclude = testExclude
                context.monitorStep = curve
                context.monitor = { scorer in
                    curveEvaluator.evaluate(restricted(scorer, coldCandidates?.test), target: split.testMatrix, exclude: exclude).metrics
                }
            }
            if let checkpoints {
                try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
                // What makes two runs the same run; the epoch budget may grow (the trainer checks the schedule).
                let settings = hyper[index].effective.filter { $0.key != "epochs" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let identity = ["model=\(name)", "seed=\(seedValue)", "data=\(fingerprint)", "split=\(strategy.description)"]
                    + (trainNoise > 0 ? ["train_noise=\(trainNoise)"] : [])
                    + modalities.map { "modality \($0.name)=\($0.features.rows)x\($0.features.cols) from \($0.source)" } + settings
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
            if let save {
                try saveArtifact(model, name: name, settings: hyper[index].effective, seed: seedValue, dataset: dataset, modalities: modalities,
                                 split: split, bestEpoch: reports.bestEpoch(metric: context.validate == nil ? nil : validMetric(hyper[index])),
                                 path: save)
                log("saved \(name) to \(save)")
            }
            testResults.append(test)
            var config = hyper[index].effective
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
                model: name, dataset: dataset.name, config: config, seed: seedValue, dataFingerprint: fingerprint,
                timings: timings,
                metrics: reports.curve.merging(["valid": valid.metrics, "test": test.metrics]) { $1 }, versions: RunRecord.versions)
            if output != nil {
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
            records.append(record)
        }

        // Metrics table: one row per metric@k, one column per model (test set).
        var table = TextTable(["test"] + names)
        for key in evaluator.keys {
            table.add([key] + testResults.enumerated().map { unable.contains($0.offset) ? "unable" : fixed($0.element.metrics[key] ?? .nan) })
        }
        if coldCandidates != nil { print("cold-start items: ranking only the \(Set(split.test.items).count) test items, which have no training interactions") }
        print("\(dataset.name) — \(split.test.count) test interactions, \(testResults.first?.users.count ?? 0) users evaluated, split \(strategy), seed \(seedValue)")
        print(table.render())

        if let output { try RunRecord.write(records, to: output) }
        if let perUser, let last = testResults.last {
            try writePerUser(last, dataset: dataset, keys: evaluator.keys.filter { last.perUser[$0] != nil }, path: perUser)
        }
    }

    private func validMetric(_ h: Hyperparameters) -> String { h.effective["valid_metric"] ?? "mrr@10" }

    private func saveArtifact(_ model: any Recommender, name: String, settings: [String: String], seed: UInt64, dataset: Dataset, modalities: [Modality],
                              split: DataSplit, bestEpoch: Int?, path: String) throws {
        if let sequential = model as? any SequenceNetwork {
            try SequentialArtifact(model: sequential, name: name, settings: settings, seed: seed, dataset: dataset).write(to: path)
            return
        }
        guard let embedding = model as? any EmbeddingModel else {
            throw ValidationError("--save: model '\(name)' is neither an embedding model nor a sequential one; servable models: " +
                                  ModelRegistry.models.filter { $0 is any EmbeddingModel.Type || $0 is any SequenceNetwork.Type }
                                      .map { $0.name }.joined(separator: ", "))
        }
        let header = ModelArtifact.Header(
            // A retrain runs as many epochs as it took to reach the best one (epochs are counted from 0).
            model: name, hyperparameters: settings, retrainEpochs: bestEpoch.map { $0 + 1 }, seed: seed, dataset: dataset.name,
            dataFingerprint: dataset.fingerprint, createdAt: ISO8601DateFormatter().string(from: Date()),
            userIDs: dataset.users.rawIDs, itemIDs: dataset.items.rawIDs, itemTitles: dataset.itemTitles,
            dimension: embedding.itemEmbeddings.cols, interactionCount: split.train.count,
            modalities: modalities.isEmpty ? nil : Dictionary(uniqueKeysWithValues: modalities.map { ($0.name, $0.source) }))
        let artifact = try ModelArtifact(header: header, userEmbeddings: embedding.userEmbeddings,
                                         itemEmbeddings: embedding.itemEmbeddings, training: split.train)
        try artifact.write(to: path)
    }

    private func writePerUser(_ result: EvaluationResult, dataset: Dataset, keys: [String], path: String) throws {
        var text = "user," + keys.joined(separator: ",") + "\n"
        for (i, u) in result.users.enumerated() {
            text += dataset.users.raw(u) + "," + keys.map { String(result.perUser[$0]![i]) }.joined(separator: ",") + "\n"
        }
        guard let f = fopen(path, "w") else { throw DataError(file: path, .unreadable("cannot open for writing")) }
        defer { fclose(f) }
        fputs(text, f)
    }
}

/// Epoch reports collected during a fit (the `onEpoch` hook).
final class EpochLog {
    var entries: [EpochReport] = []

    /// The learning curve (`--curve`), keyed `curve_epoch_N` (1-based epochs), for the run record.
    var curve: [String: [String: Double]] {
        Dictionary(uniqueKeysWithValues: entries.compactMap { e in e.monitored.map { ("curve_epoch_\(e.epoch + 1)", $0) } })
    }

    /// The epoch with the best validation value of `metric` (the one the trainer restored: of equal values the
    /// later, as ties count as improvements), if validated.
    func bestEpoch(metric: String?) -> Int? {
        guard let metric else { return nil }
        var best: (epoch: Int, value: Double)?
        for e in entries {
            guard let v = e.validation?[metric] else { continue }
            if best == nil || v >= best!.value { best = (e.epoch, v) }
        }
        return best?.epoch
    }
}
