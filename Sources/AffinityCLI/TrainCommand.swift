import ArgumentParser
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityServing
import AffinityApplication
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
        var models: [TrainingRun.Model] = []
        for name in names {
            let (model, h) = try TrainingRun.Model.make(name, settings: run.hyperparameters(for: name))
            models.append(model)
            read.formUnion(h.effective.keys)
            for key in run.values.keys where key.hasPrefix(name + ".") {
                let bare = String(key.dropFirst(name.count + 1))
                if h.effective[bare] == nil {
                    throw ValidationError("unknown setting '\(key)' for model '\(name)'")
                }
            }
        }
        try run.checkUsed(models: names, read: read)
        if save != nil, let model = models.first, !(model.recommender is any EmbeddingModel), !(model.recommender is any SequenceNetwork) {
            throw ValidationError("--save: \(TrainingRunError.notServable(model: model.name))")
        }
        if let curve, curve <= 0 { throw ValidationError("--curve must be a positive number of epochs") }
        var runSettings = TrainingRun.Settings()
        runSettings.seed = UInt64(try run.int("seed", default: 2020))
        runSettings.split = try run.string("split").map(SplitStrategy.init(parsing:))
        runSettings.cutoffs = try run.cutoffs
        runSettings.metrics = try run.metrics
        runSettings.trainNoise = try run.trainNoise
        runSettings.propensity = try run.propensity
        runSettings.unbiasedValidation = try run.unbiasedEvaluation
        runSettings.excludeHistory = try run.excludeHistory
        runSettings.preprocessing = try run.preprocessing
        runSettings.keepKnowledgeGraph = try run.bool("knowledge_graph", default: true)
        runSettings.curve = curve
        runSettings.checkpoints = checkpoints
        runSettings.detailedRecords = output != nil
        runSettings.showProgress = !quiet
        let verbose = !quiet
        runSettings.log = { message in if verbose { writeStandardError(message + "\n") } }

        let outcome = try TrainingRun(models: models, settings: runSettings).run(
            load: { try data.load() }, modalities: { try data.modalities(for: $0, settings: run.modalities) })
        if let save, let first = outcome.models.first {
            if first.model.recommender is any SequenceNetwork {
                try ArtifactBuilder.sequentialArtifact(of: first, run: outcome, seed: runSettings.seed).write(to: save)
            } else {
                try ArtifactBuilder.artifact(of: first, run: outcome, seed: runSettings.seed).write(to: save)
            }
            runSettings.log("saved \(first.model.name) to \(save)")
        }

        // Metrics table: one row per metric@k, one column per model (test set).
        var table = TextTable(["test"] + names)
        for key in outcome.keys {
            table.add([key] + outcome.models.map { $0.unable ? "unable" : fixed($0.test.metrics[key] ?? .nan) })
        }
        let split = outcome.split
        if outcome.coldStart { print("cold-start items: ranking only the \(Set(split.test.items).count) test items, which have no training interactions") }
        print("\(outcome.dataset.name) — \(split.test.count) test interactions, \(outcome.models.first?.test.users.count ?? 0) users evaluated, split \(outcome.strategy), seed \(runSettings.seed)")
        print(table.render())

        if let output { try RunRecord.write(outcome.records, to: output) }
        if let perUser, let last = outcome.models.last?.test {
            try writePerUser(last, dataset: outcome.dataset, keys: outcome.keys.filter { last.perUser[$0] != nil }, path: perUser)
        }
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
