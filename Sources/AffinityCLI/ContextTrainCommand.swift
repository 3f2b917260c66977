import ArgumentParser
import AffinityApplication
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityServing
import Foundation

/// How `--task ctr` labels rows: `threshold` (`rating:4`, `{rating: 4}` or `4`; in YAML `threshold: {rating: 4}`)
/// gives label 1 to ratings ≥ the value and 0 to the rest, RecBole's `threshold: {rating: 4}`; there it labels
/// rows instead of filtering them as it does for ranking. The default is rating ≥ 4 when the data has ratings.
struct ContextLabelling {
    var ratingThreshold: Float

    init(_ run: RunConfiguration) throws {
        guard let text = run.string("threshold") ?? run.string("threshold.rating").map({ "rating:" + $0 }) else {
            ratingThreshold = 4
            return
        }
        var body = text.trimmingCharacters(in: " ")
        if body.hasPrefix("{") && body.hasSuffix("}") { body = String(body.dropFirst().dropLast()) }
        let parts = body.split(separator: ":").map { $0.trimmingCharacters(in: " ") }
        guard (parts.count == 1 || (parts.count == 2 && parts[0] == "rating")), let value = Float(parts.last!) else {
            throw ValidationError("setting 'threshold': '\(text)' is not rating:VALUE (click-through labels are rating ≥ VALUE)")
        }
        ratingThreshold = value
    }
}

extension TrainCommand {
    /// `--task ctr`: click-through prediction on labelled rows with RecBole's context protocol (random 8:1:1 over
    /// all rows, AUC and LogLoss over all predictions, early stopping on valid AUC).
    func executeContext(run: RunConfiguration) throws {
        let modelNames = model.split(separator: ",").map { $0.trimmingCharacters(in: " ") }
        let types = try modelNames.map { try ContextModelRegistry.type(named: $0) }
        let names = types.map { $0.name }
        if save != nil && types.count != 1 { throw ValidationError("--save takes exactly one model") }
        for (option, path) in [("--output", output), ("--save", save)] {
            guard let path else { continue }
            let directory = (path as NSString).deletingLastPathComponent
            guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory) else {
                throw ValidationError("\(option) \(path): directory '\(directory)' does not exist")
            }
        }
        if perUser != nil || curve != nil || checkpoints != nil {
            throw ValidationError("--per-user, --curve and --checkpoints apply to the ranking task, not --task ctr")
        }
        var read = Set<String>()
        var hyper: [Hyperparameters] = []
        var models: [any ContextModel] = []
        for type in types {
            var h = Hyperparameters(run.hyperparameters(for: type.name))
            models.append(try type.init(&h))
            read.formUnion(h.effective.keys)
            for key in run.values.keys where key.hasPrefix(type.name + ".") && h.effective[String(key.dropFirst(type.name.count + 1))] == nil {
                throw ValidationError("unknown setting '\(key)' for model '\(type.name)'")
            }
            hyper.append(h)
        }
        try run.checkUsed(models: names, read: read)
        let seedValue = UInt64(try run.int("seed", default: 2020))
        let labelling = try ContextLabelling(run)
        var ratios = [0.8, 0.1, 0.1]
        if let text = run.string("split") {
            guard case .userRandomRatio(let r)? = try? SplitStrategy(parsing: text), r.count == 3 else {
                throw ValidationError("setting 'split': --task ctr takes ratio:TRAIN,VALID,TEST (random over all labelled rows)")
            }
            ratios = r
        }

        let (dataset, loadSeconds) = try timed { try data.load() }
        func list(_ key: String) -> [String]? { run.string(key).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: " ") } } }
        let schema = try FeatureSchema.make(dataset, userFields: list("user_fields"), itemFields: list("item_fields"))
        let labels = try ContextData.thresholdLabels(dataset, threshold: labelling.ratingThreshold)
        let all = ContextData(schema: schema, userBags: schema.sideBags(.user, of: dataset), itemBags: schema.sideBags(.item, of: dataset),
                              users: dataset.interactions.users, items: dataset.interactions.items, labels: labels)
        let (parts, splitSeconds) = timed { all.randomSplit(ratios: ratios, seed: seedValue) }
        let (train, valid, test) = (parts[0], parts[1], parts[2])
        let verbose = !quiet
        let log: @Sendable (String) -> Void = { message in if verbose { writeStandardError(message + "\n") } }
        let positives = labels.reduce(0, +)
        log("\(dataset.name): \(all.count) labelled rows (\(Int(positives)) positive: rating ≥ \(labelling.ratingThreshold)); fields " +
            schema.fields.map { "\($0.name) (\($0.type.rawValue))" }.joined(separator: ", ") +
            "; random split \(ratios.map { String($0) }.joined(separator: ",")): train \(train.count), valid \(valid.count), test \(test.count)")

        var records: [RunRecord] = []
        var results: [[String: Double]] = []
        for (index, model) in models.enumerated() {
            let name = names[index]
            var context = TrainingContext(seed: seedValue, showProgress: !quiet, log: log)
            let reports = EpochLog()
            context.onEpoch = { reports.entries.append($0) }
            log("fitting \(name)…")
            let (_, fitSeconds) = try timed { try model.fit(train, valid: valid.count > 0 ? valid : nil, context: context) }
            let (validMetrics, validSeconds) = timed {
                valid.count > 0 ? ClassificationMetrics.evaluate(probabilities: model.predict(valid), labels: valid.labels) : [:]
            }
            let (testMetrics, testSeconds) = timed { ClassificationMetrics.evaluate(probabilities: model.predict(test), labels: test.labels) }
            let epochSeconds = reports.entries.reduce(0) { $0 + $1.seconds }
            if let save {
                try ContextArtifact(model: model, name: name, settings: hyper[index].effective, seed: seedValue, dataset: dataset,
                                    schema: schema).write(to: save)
                log("saved \(name) to \(save)")
            }
            log("\(name): fit \(fixed(fitSeconds, 2)) s (\(fixed(epochSeconds / Double(max(reports.entries.count, 1)), 3)) s/epoch over \(reports.entries.count) epochs)")
            results.append(testMetrics)
            var config = hyper[index].effective.merging(model.learnedSettings) { $1 }
            config["task"] = "ctr"
            config["split"] = "ratio:" + ratios.map { String($0) }.joined(separator: ",")
            config["threshold"] = "rating:\(labelling.ratingThreshold)"
            config["fields"] = schema.fields.map(\.name).joined(separator: ",")
            var record = RunRecord(
                model: name, dataset: dataset.name, config: config, seed: seedValue, dataFingerprint: dataset.fingerprint,
                timings: ["load_s": loadSeconds, "split_s": splitSeconds, "fit_s": fitSeconds, "valid_eval_s": validSeconds,
                          "test_eval_s": testSeconds, "epochs_s": epochSeconds],
                metrics: ["valid": validMetrics, "test": testMetrics], versions: RunRecord.versions)
            record.epochs = reports.entries.isEmpty ? nil : reports.entries.map {
                RunRecord.Epoch(epoch: $0.epoch + 1, loss: $0.loss, seconds: $0.seconds, valid: $0.validation, curve: nil)
            }
            records.append(record)
        }
        var table = TextTable(["test"] + names)
        for key in ["auc", "logloss"] { table.add([key] + results.map { fixed($0[key] ?? .nan) }) }
        print("\(dataset.name) — click-through, \(test.count) test rows, random split, seed \(seedValue)")
        print(table.render())
        if let output { try RunRecord.write(records, to: output) }
    }
}
