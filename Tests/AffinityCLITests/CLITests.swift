import Testing
import AffinityApplication
import Foundation
import ArgumentParser
@testable import AffinityCLI
import AffinityModels
import AffinityEval
import AffinityCore
import AffinityData
import AffinityTestSupport
import AffinityServing

@Suite struct ConfigurationTests {
    @Test func setOverridesConfigFileAndListsNormalise() throws {
        let yaml = Fixtures.file("c.yaml", """
        topk: [5, 10]
        seed: 7
        k: 50
        models:
          ease:
            reg_weight: 100
        """)
        let run = try RunConfiguration(configFile: yaml, overrides: ["seed=9", "ease.reg_weight=300", "metrics=[recall, ndcg]"])
        #expect(try run.cutoffs == [5, 10])
        #expect(try run.int("seed", default: 2020) == 9)
        #expect(run.hyperparameters(for: "ease") == ["k": "50", "reg_weight": "300"])
        #expect(run.hyperparameters(for: "itemknn") == ["k": "50"])
        #expect(try run.metrics == [.recall, .ndcg])
    }

    @Test func fairnessAndUnbiasedSwitchesExtendTheMetrics() throws {
        #expect(try RunConfiguration(configFile: nil, overrides: []).metrics == RankingMetric.standard)
        let both = try RunConfiguration(configFile: nil, overrides: ["metrics=recall,jainindex", "fairness=true", "unbiased_eval=true"])
        #expect(try both.metrics == [.recall, .jainIndex] + RankingMetric.fairness.filter { $0 != .jainIndex } + RankingMetric.unbiased)
        #expect(try both.propensity == .evaluationDefault)
        let tuned = try RunConfiguration(configFile: nil, overrides: ["unbiased_eval_power=1", "unbiased_eval_clip=0.2"])
        #expect(try tuned.propensity == PopularityPropensity(power: 1, clip: 0.2))
        #expect(throws: (any Error).self) { _ = try RunConfiguration(configFile: nil, overrides: ["unbiased_eval_clip=0"]).propensity }
        #expect(throws: (any Error).self) { _ = try RunConfiguration(configFile: nil, overrides: ["fairness=maybe"]).metrics }
    }

    @Test func badConfigsAreReported() throws {
        #expect(throws: (any Error).self) { _ = try RunConfiguration(configFile: nil, overrides: ["novalue"]) }
        let broken = Fixtures.file("b.yaml", "topk: [5, 10\n")
        #expect(throws: (any Error).self) { _ = try RunConfiguration(configFile: broken, overrides: []) }
        let run = try RunConfiguration(configFile: nil, overrides: ["shrinkk=3"])
        #expect(throws: (any Error).self) { try run.checkUsed(models: ["itemknn"], read: ["k", "shrink"]) }
        let scoped = try RunConfiguration(configFile: nil, overrides: ["ease.reg_weight=3"])
        #expect(throws: (any Error).self) { try scoped.checkUsed(models: ["itemknn"], read: ["k"]) }
    }
}

@Suite struct CommandTests {
    /// A small implicit-feedback CSV: 30 users with overlapping tastes over 12 items.
    func fixtureCSV() -> String {
        var lines = ["user,item,rating,timestamp"]
        for u in 0..<30 {
            for i in 0..<12 where (u + i) % 3 != 0 || i < 2 { lines.append("u\(u),i\(i),\(1 + (u + i) % 5),\(u * 100 + i)") }
        }
        return Fixtures.file("toy.csv", lines.joined(separator: "\n") + "\n")
    }

    func run(_ args: [String]) throws {
        var command = try AffinityCommand.parseAsRoot(args)
        try command.run()
    }

    @Test func trainWritesARunRecord() throws {
        let out = Fixtures.temporaryFolder() + "/run.json"
        try run(["train", "--data", fixtureCSV(), "--model", "itemknn", "--set", "k=5", "--quiet", "--output", out])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        for key in ["model", "dataset", "config", "seed", "data_fingerprint", "timings", "metrics", "versions"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["model"] as? String == "itemknn")
        #expect(json["seed"] as? Int == 2020)
        let metrics = json["metrics"] as! [String: [String: Double]]
        #expect(metrics["test"]?["recall@20"] != nil && metrics["test"]?["ndcg@10"] != nil && metrics["valid"]?["recall@20"] != nil)
        #expect((json["config"] as! [String: String])["k"] == "5")
    }

    @Test func curveRecordsTestMetricsWithoutChangingTheResult() throws {
        let dir = Fixtures.temporaryFolder(), csv = fixtureCSV()
        let common = ["train", "--data", csv, "--model", "bpr", "--set", "epochs=3", "--set", "embedding_size=8", "--quiet"]
        try run(common + ["--curve", "1", "--output", dir + "/curve.json"])
        try run(common + ["--output", dir + "/plain.json"])
        func metrics(_ name: String) throws -> [String: [String: Double]] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json"))) as! [String: Any]
            return json["metrics"] as! [String: [String: Double]]
        }
        let curve = try metrics("curve"), plain = try metrics("plain")
        #expect(Set(curve.keys) == ["valid", "test", "curve_epoch_1", "curve_epoch_2", "curve_epoch_3"])
        #expect(curve["curve_epoch_2"]?["recall@20"] != nil)
        #expect(curve["test"] == plain["test"])
        #expect(throws: (any Error).self) { try run(common + ["--curve", "0"]) }
    }

    /// `--checkpoints DIR`: a run stopped after 2 of 4 epochs and started again ends as the 4-epoch run does;
    /// a changed setting is refused rather than resumed.
    @Test func checkpointsResumeAnInterruptedRun() throws {
        let dir = Fixtures.temporaryFolder(), csv = fixtureCSV()
        let common = ["train", "--data", csv, "--model", "lightgcn", "--set", "embedding_size=8", "--quiet"]
        try run(common + ["--set", "epochs=4", "--output", dir + "/whole.json"])
        try run(common + ["--set", "epochs=2", "--checkpoints", dir + "/ckpt"])
        #expect(FileManager.default.fileExists(atPath: dir + "/ckpt/lightgcn.ckpt"))
        try run(common + ["--set", "epochs=4", "--checkpoints", dir + "/ckpt", "--output", dir + "/resumed.json"])
        func metrics(_ name: String) throws -> [String: [String: Double]] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json"))) as! [String: Any]
            return json["metrics"] as! [String: [String: Double]]
        }
        #expect(try metrics("whole") == metrics("resumed"))
        // The resumed run's record counts the epochs of both processes.
        let resumed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/resumed.json"))) as! [String: Any]
        let timings = resumed["timings"] as! [String: Double]
        #expect(timings["epochs_s"] != nil && timings["epochs_s"]! > 0)
        #expect(throws: (any Error).self) { try run(common + ["--set", "epochs=4", "--set", "n_layers=2", "--checkpoints", dir + "/ckpt"]) }
        #expect(throws: (any Error).self) { try run(common + ["--output", "/nonexistent-folder/run.json"]) }
    }

    @Test func sameSeedSameMetrics() throws {
        let dir = Fixtures.temporaryFolder()
        let csv = fixtureCSV()
        for name in ["a", "b"] {
            try run(["train", "--data", csv, "--model", "mostpop,ease", "--quiet", "--seed", "3", "--output", "\(dir)/\(name).json"])
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.json")), b = try Data(contentsOf: URL(fileURLWithPath: dir + "/b.json"))
        let ma = (try JSONSerialization.jsonObject(with: a) as! [[String: Any]]).map { $0["metrics"] as! [String: [String: Double]] }
        let mb = (try JSONSerialization.jsonObject(with: b) as! [[String: Any]]).map { $0["metrics"] as! [String: [String: Double]] }
        #expect(ma == mb)
    }

    @Test func errorsExitNonZero() throws {
        let csv = fixtureCSV()
        for args in [["train", "--data", csv, "--model", "nosuch", "--quiet"],
                     ["train", "--data", csv, "--model", "itemknn", "--set", "kk=3", "--quiet"],
                     ["train", "--data", "/nonexistent.csv", "--model", "mostpop", "--quiet"],
                     ["train", "--data", csv, "--model", "mostpop", "--split", "sideways", "--quiet"],
                     ["train", "--data", csv, "--model", "mostpop", "--set", "train_noise=-0.1", "--quiet"],
                     ["train", "--data", csv, "--model", "bpr", "--set", "denoise=rce", "--set", "drop_rate=0.1", "--quiet"]] {
            do {
                try run(args)
                Issue.record("expected failure for \(args)")
            } catch {
                #expect(AffinityCommand.exitCode(for: error) != .success, "\(args)")
            }
        }
    }

    /// `train_noise` adds false positives to the training part alone: recorded in the run record, seeded, and the
    /// test metrics change (MostPop counts the noise) while the test set does not.
    @Test func trainNoiseIsRecordedAndSeeded() throws {
        let dir = Fixtures.temporaryFolder()
        let csv = fixtureCSV()
        for (name, noise) in [("clean", "0"), ("a", "0.4"), ("b", "0.4")] {
            try run(["train", "--data", csv, "--model", "mostpop", "--quiet", "--set", "train_noise=\(noise)", "--output", "\(dir)/\(name).json"])
        }
        func record(_ name: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json"))) as! [String: Any]
        }
        let clean = try record("clean"), a = try record("a"), b = try record("b")
        #expect((a["config"] as! [String: String])["train_noise"] == "0.4" && (clean["config"] as! [String: String])["train_noise"] == nil)
        let metrics = { (r: [String: Any]) in (r["metrics"] as! [String: [String: Double]])["test"]! }
        #expect(metrics(a) == metrics(b))
        #expect(metrics(a) != metrics(clean))
    }

    /// Item features from `--modality`, and the cold-start-items mode: feature-aware models are evaluated on
    /// the held-out items, the others are reported as unable.
    @Test func modalitiesAndColdStartItems() throws {
        let csv = fixtureCSV()
        let dir = Fixtures.temporaryFolder()
        try NPYFile.write(Matrix(rows: 12, cols: 3, values: (0..<36).map { Float(($0 * 7) % 5) }), path: dir + "/f.npy")
        let out = dir + "/cold.json"
        try run(["train", "--data", csv, "--model", "random,bpr,vbpr", "--modality", "content=\(dir)/f.npy", "--split", "cold:0.6,0.2,0.2",
                 "--set", "epochs=2", "--quiet", "--output", out])
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [[String: Any]]
        let byModel = Dictionary(uniqueKeysWithValues: records.map { ($0["model"] as! String, $0) })
        #expect((byModel["bpr"]?["config"] as? [String: String])?["cold_start"] == "unable")
        #expect(((byModel["vbpr"]?["metrics"] as? [String: [String: Double]])?["test"]?["recall@20"]) != nil)
        // The same modality from a YAML config.
        let yaml = Fixtures.file("mm.yaml", "modality:\n  content: \(dir)/f.npy\nmodels:\n  vbpr:\n    epochs: 1\n", in: dir)
        try run(["train", "--data", csv, "--model", "vbpr", "--config", yaml, "--quiet"])
        // A model that needs features, without any; a modality file of the wrong shape; a duplicate name.
        for args in [["train", "--data", csv, "--model", "freedom", "--quiet"],
                     ["train", "--data", csv, "--model", "vbpr", "--modality", "x=\(dir)/missing.npy", "--quiet"],
                     ["train", "--data", csv, "--model", "vbpr", "--modality", "x=\(dir)/f.npy", "--modality", "x=\(dir)/f.npy", "--quiet"]] {
            #expect(throws: (any Error).self, "\(args)") { try run(args) }
        }
    }

    @Test func datasetsAndRecommendRun() throws {
        let csv = fixtureCSV()
        try run(["datasets", "--data", csv])
        try run(["recommend", "--data", csv, "--model", "itemknn", "--user", "u1", "-k", "3"])
        #expect(throws: (any Error).self) { try run(["recommend", "--data", csv, "--model", "itemknn", "--user", "nobody"]) }
        try run(["models"])
    }

    /// `recommend --model-file` answers from the saved model (the serving model's ranking, the user's training
    /// items excluded) without data or training.
    @Test func recommendAnswersFromASavedModel() throws {
        let dir = Fixtures.temporaryFolder(), file = dir + "/bpr.affinity"
        try run(["train", "--data", fixtureCSV(), "--model", "bpr", "--set", "epochs=2", "--set", "embedding_size=8", "--quiet", "--save", file])
        let artifact = try ModelArtifact.read(from: file)
        let (top, interactions) = try RecommendCommand.savedModelRecommendations(artifact, user: "u1", k: 3, includeSeen: false, path: file)
        let model = ServingModel(artifact: artifact)
        let u = try #require(model.users.dense("u1"))
        let seen = (0..<artifact.training.count).filter { artifact.training.users[$0] == u }.map { artifact.training.items[$0] }
        #expect(interactions == seen.count && interactions > 0)
        #expect(top.count == 3 && top.allSatisfy { !seen.contains($0.item) })
        #expect(top == model.recommend(model.userVector(u), k: 3, exclude: seen))
        let withSeen = try RecommendCommand.savedModelRecommendations(artifact, user: "u1", k: 12, includeSeen: true, path: file).top
        #expect(withSeen.count == 12)
        try run(["recommend", "--model-file", file, "--user", "u1", "-k", "3"])
        for args in [["recommend", "--model-file", file, "--user", "nobody"],
                     ["recommend", "--model-file", file, "--model", "bpr", "--user", "u1"],
                     ["recommend", "--model-file", dir + "/missing.affinity", "--user", "u1"],
                     ["recommend", "--user", "u1"]] {
            #expect(throws: (any Error).self, "\(args)") { try run(args) }
        }
    }

    /// A model fitted outside the trainer (iALS validates its own iterations) saves like any embedding model, and its
    /// file tells a retrain to run as many iterations as the best one took.
    @Test func savedModelRecordsTheEpochsOfItsBestIteration() throws {
        let dir = Fixtures.temporaryFolder(), file = dir + "/ials.affinity"
        try run(["train", "--data", fixtureCSV(), "--model", "ials", "--set", "epochs=4", "--set", "embedding_size=8", "--quiet",
                 "--save", file, "--output", dir + "/run.json"])
        let artifact = try ModelArtifact.read(from: file)
        #expect(artifact.header.model == "ials" && artifact.userEmbeddings.cols == 8)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run.json"))) as! [String: Any]
        let epochs = try #require(json["epochs"] as? [[String: Any]])
        let valid = epochs.map { (($0["valid"] as? [String: Double])?["mrr@10"])! }
        let best = valid.indices.last { valid[$0] == valid.max()! }!
        #expect(artifact.header.retrainEpochs == best + 1)
    }

    /// A data file with a header and no rows stops with the file's name, not an empty table and exit 0.
    @Test func headerOnlyDataIsAnError() throws {
        let csv = Fixtures.file("header-only.csv", "user,item,rating\n")
        do {
            try run(["train", "--data", csv, "--model", "mostpop", "--quiet"])
            Issue.record("training on a header-only file succeeded")
        } catch {
            #expect(AffinityCommand.exitCode(for: error) != .success)
        }
        #expect(throws: DataError(file: csv, .noDataRows)) { _ = try DataOptions.parse(["--data", csv]).load() }
    }

    /// The run record carries what `affinity report` plots: the epoch log, metric@K for K = 1…50 (agreeing with
    /// the test metrics at the same K) and exposure by popularity decile.
    @Test func runRecordCarriesEpochsMetricsAtKAndExposure() throws {
        let out = Fixtures.temporaryFolder() + "/run.json"
        try run(["train", "--data", fixtureCSV(), "--model", "bpr", "--set", "epochs=3", "--set", "embedding_size=8",
                 "--set", "stopping_step=100", "--quiet", "--output", out])
        let record = try #require(try RunRecord.read(from: out).first)
        let epochs = try #require(record.epochs)
        #expect(epochs.map(\.epoch) == [1, 2, 3] && epochs.allSatisfy { $0.loss.isFinite && $0.valid?["mrr@10"] != nil })
        let atK = try #require(record.metricsAtK)
        #expect(Set(atK.keys) == ["recall", "ndcg", "precision", "hit", "mrr"] && atK.values.allSatisfy { $0.count == 50 })
        for (metric, k) in [("recall", 10), ("recall", 20), ("ndcg", 10), ("ndcg", 20), ("hit", 10)] {
            #expect(abs(atK[metric]![k - 1] - record.metrics["test"]!["\(metric)@\(k)"]!) < 1e-12, "\(metric)@\(k)")
        }
        #expect(zip(atK["recall"]!, atK["recall"]!.dropFirst()).allSatisfy { $0 <= $1 + 1e-12 })  // recall@K grows with K
        let exposure = try #require(record.exposure)
        #expect(exposure.k == 20 && exposure.popularityDeciles.count == 10)
        #expect(abs(exposure.popularityDeciles.reduce(0, +) - 1) < 1e-9)
        #expect(exposure.itemCoverage > 0 && exposure.itemCoverage <= 1 && exposure.averagePopularity > 0)
    }

    /// `fairness=true` and `unbiased_eval=true` put the fairness, popularity and SNIPS measures in the run record,
    /// and a SNIPS metric can drive early stopping.
    @Test func fairnessAndUnbiasedMetricsReachTheRunRecord() throws {
        let out = Fixtures.temporaryFolder() + "/run.json"
        try run(["train", "--data", fixtureCSV(), "--model", "relmf", "--set", "epochs=2", "--set", "embedding_size=8",
                 "--set", "fairness=true", "--set", "unbiased_eval=true", "--set", "valid_metric=dcg_snips@10", "--quiet", "--output", out])
        let record = try #require(try RunRecord.read(from: out).first)
        let test = try #require(record.metrics["test"])
        for metric in RankingMetric.standard + RankingMetric.fairness + RankingMetric.unbiased {
            for k in [10, 20] { #expect(test["\(metric.rawValue)@\(k)"]?.isFinite == true, "\(metric.rawValue)@\(k)") }
        }
        #expect(record.epochs?.allSatisfy { $0.valid?["dcg_snips@10"] != nil } == true)
    }

    /// Benchmarks live in the separate `affinity-bench` executable: the user CLI has no bench command.
    @Test func userCommandsOnly() {
        let names = AffinityCommand.configuration.subcommands.map { $0.configuration.commandName ?? "" }
        #expect(!names.contains("bench") && names.contains("report") && names.contains("compare"))
        #expect(!AffinityCommand.helpMessage().contains("bench"))
    }

    @Test func exportedSplitIsReadableAsRecBoleFiles() throws {
        let dir = Fixtures.temporaryFolder()
        try run(["datasets", "--data", fixtureCSV(), "--export-split", dir])
        let train = try String(contentsOfFile: dir + "/toy/toy.train.inter", encoding: .utf8)
        #expect(train.hasPrefix("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"))
    }
}

/// Every shipped config in `configs/` parses, scopes its settings to a registered model, and sets only keys
/// that model reads (a typo would otherwise surface only when someone runs it).
@Suite struct ShippedConfigTests {
    @Test func configsNameRealSettings() throws {
        let folder = Fixtures.repositoryRoot + "/configs"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(!files.isEmpty)
        for file in files {
            let run = try RunConfiguration(configFile: folder + "/" + file, overrides: [])
            let scopes = Set(run.values.keys.filter { !RunConfiguration.isGeneral($0) }.compactMap { key in key.firstIndex(of: ".").map { String(key[..<$0]) } })
            #expect(!scopes.isEmpty, "\(file) scopes no model")
            for model in scopes {
                var h = Hyperparameters(run.hyperparameters(for: model))
                if let context = try? ContextModelRegistry.type(named: model) {
                    _ = try context.init(&h)
                    try h.checkAllRead(model: model)
                } else {
                    _ = try ModelRegistry.make(model, hyperparameters: &h)  // throws on an unknown model or setting
                }
            }
            _ = try run.cutoffs
        }
    }
}

/// The docs and `configs/` name exactly what the registry holds, and tests that need ../shared data say so when
/// they are skipped.
@Suite struct DocsMatchTheCodeTests {
    /// The backquoted names in the README bullet that starts with `prefix` (up to the next bullet).
    func readmeNames(bullet prefix: String) throws -> Set<String> {
        let readme = try String(contentsOfFile: Fixtures.repositoryRoot + "/README.md", encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex { $0.hasPrefix(prefix) }, "README has no bullet '\(prefix)'")
        var text = lines[start]
        for line in lines[(start + 1)...] { guard line.hasPrefix("  ") else { break }; text += line }
        // Stop at the first parenthesis or sentence end: what follows is commentary, not the list.
        let list = text.prefix { $0 != "(" && $0 != "." }
        let names = list.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        return Set(names.filter { !$0.hasPrefix("-") })  // drops the option that opens a bullet (`--save`)
    }

    @Test func readmeListsEveryModelAndEveryServableModel() throws {
        let all = Set(ModelRegistry.models.map { $0.name })
        #expect(try readmeNames(bullet: "- Models:") == all)
        let servable = Set(ModelRegistry.models.filter { $0 is any EmbeddingModel.Type }.map { $0.name })
        #expect(try readmeNames(bullet: "- `--save` writes any embedding model") == servable)
        let sequential = Set(ModelRegistry.models.filter { $0 is any SequenceNetwork.Type }.map { $0.name })
        #expect(try readmeNames(bullet: "- `--save` also writes the sequential models") == sequential)
        #expect(try readmeNames(bullet: "- Click-through models") == Set(ContextModelRegistry.names))
    }

    /// Every model with settings has `configs/NAME.yaml`, and every config's file name is a registered model
    /// (variants as `NAME-VARIANT.yaml`).
    @Test func configsMatchTheRegistry() throws {
        let folder = Fixtures.repositoryRoot + "/configs"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
        let names = Set(ModelRegistry.models.map { $0.name } + ContextModelRegistry.names)
        for file in files {
            let model = String(file.dropLast(5).split(separator: "-").first ?? "")
            #expect(names.contains(model), "configs/\(file) names no registered model")
        }
        for type in ModelRegistry.models {
            var h = Hyperparameters([:])
            _ = try type.init(&h)
            guard !h.effective.isEmpty else { continue }  // nothing to configure (MostPop)
            #expect(files.contains(type.name + ".yaml"), "configs/\(type.name).yaml is missing")
        }
        for type in ContextModelRegistry.models {  // every click-through model has settings
            #expect(files.contains(type.name + ".yaml"), "configs/\(type.name).yaml is missing")
        }
    }

    /// A test that returns early when ../shared data is absent passes silently; such tests must be disabled with
    /// a reason instead (`.enabled(if:)`), which the test report shows as skipped.
    @Test func sharedDataTestsAreSkippedVisibly() throws {
        let root = Fixtures.repositoryRoot + "/Tests"
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        var offenders: [String] = []
        while let path = enumerator.nextObject() as? String {
            guard path.hasSuffix(".swift"), !path.hasSuffix("Fixtures.swift") else { continue }
            let lines = try String(contentsOfFile: root + "/" + path, encoding: .utf8).components(separatedBy: "\n")
            let lookup = "shared" + "Data(", early = "else { " + "return"  // split so this line does not match itself
            for (n, line) in lines.enumerated() where line.contains(lookup) && line.contains(early) {
                offenders.append("\(path):\(n + 1)")
            }
        }
        #expect(offenders.isEmpty, "tests that return early without ../shared data: \(offenders)")
    }
}
