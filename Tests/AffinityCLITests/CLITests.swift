import Testing
import Foundation
import ArgumentParser
@testable import AffinityCLI
import AffinityModels
import AffinityCore
import AffinityData
import AffinityTestSupport

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
                     ["train", "--data", csv, "--model", "mostpop", "--split", "sideways", "--quiet"]] {
            do {
                try run(args)
                Issue.record("expected failure for \(args)")
            } catch {
                #expect(AffinityCommand.exitCode(for: error) != .success, "\(args)")
            }
        }
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
                _ = try ModelRegistry.make(model, hyperparameters: &h)  // throws on an unknown model or setting
            }
            _ = try run.cutoffs
        }
    }
}
