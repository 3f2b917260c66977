import ArgumentParser
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// Settings for a run, merged from (lowest to highest precedence) built-in defaults, a YAML config
/// file, then `--set key=value` and dedicated flags — RecBole's rule.
///
/// General keys (read here): `seed`, `split`, `topk`, `metrics`, `fairness`, `unbiased_eval`, `unbiased_eval_power`,
/// `unbiased_eval_clip`, `threshold`, `dedup`, `user_core`, `item_core`, `train_noise`, and `modality.NAME` (item
/// features, as `--modality NAME=SOURCE`). Every other key is a model hyperparameter; `MODEL.key` scopes one to a
/// single model.
/// A key that no selected model reads is an error.
struct RunConfiguration {
    var values: [String: String] = [:]

    init(configFile: String?, overrides: [String]) throws {
        if let path = configFile { values = try Self.readYAML(path) }
        for item in overrides {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--set expects key=value, got '\(item)'")
            }
            values[String(item[..<eq]).trimmingCharacters(in: " ")] =
                Self.normaliseList(String(item[item.index(after: eq)...]).trimmingCharacters(in: " "))
        }
    }

    /// Flattens a YAML mapping into `key → text` (lists become comma-separated; nested mappings `a.b`).
    static func readYAML(_ path: String) throws -> [String: String] {
        guard let f = fopen(path, "r") else { throw DataError(file: path, .fileNotFound) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            bytes += buf[0..<n]
            if n < buf.count { break }
        }
        fclose(f)
        let text = String(decoding: bytes, as: UTF8.self)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw DataError(file: path, .invalidFormat("invalid YAML: \(error)"))
        }
        guard let root = node else { return [:] }
        guard case .mapping(let mapping) = root else { throw DataError(file: path, .invalidFormat("the config must be a YAML mapping")) }
        var out: [String: String] = [:]
        func flatten(_ node: Node, prefix: String) throws {
            switch node {
            case .scalar(let s): out[prefix] = s.string
            case .sequence(let seq):
                out[prefix] = try seq.map { n -> String in
                    guard case .scalar(let s) = n else { throw DataError(file: path, .invalidFormat("'\(prefix)': lists may hold only scalars")) }
                    return s.string
                }.joined(separator: ",")
            case .mapping(let m):
                for (k, v) in m {
                    guard case .scalar(let key) = k else { continue }
                    try flatten(v, prefix: prefix.isEmpty ? key.string : prefix + "." + key.string)
                }
            default: break
            }
        }
        for (k, v) in mapping {
            guard case .scalar(let key) = k else { continue }
            // `models:` / `model:` sections scope settings to one model: models.ease.reg_weight → ease.reg_weight.
            if key.string == "models" || key.string == "model_settings", case .mapping = v {
                try flatten(v, prefix: "")
            } else {
                try flatten(v, prefix: key.string)
            }
        }
        return out
    }

    /// `[10, 20]` or `10,20` → `10,20`.
    static func normaliseList(_ s: String) -> String {
        var t = s
        if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
        return t.split(separator: ",").map { $0.trimmingCharacters(in: " ") }.joined(separator: ",")
    }

    static let generalKeys: Set<String> = Set(["seed", "split", "topk", "metrics", "fairness", "unbiased_eval", "unbiased_eval_power",
                                               "unbiased_eval_clip", "threshold", "dedup", "user_core", "item_core", "train_noise",
                                               "knowledge_graph", "exclude_history"])
        .union(contextKeys)
    /// General keys of `--task ctr`: the side fields to use (`user_fields`, `item_fields`); `threshold` labels rows there.
    static let contextKeys: Set<String> = ["user_fields", "item_fields"]
    static let modalityPrefix = "modality."

    /// Keys read by the run itself, not by a model: the general keys and `modality.NAME`.
    static func isGeneral(_ key: String) -> Bool {
        generalKeys.contains(key) || key.hasPrefix(modalityPrefix) || key == "threshold.rating"  // YAML's threshold: {rating: 4}
    }

    /// `modality.NAME: SOURCE` settings as (name, source), by name.
    var modalities: [(name: String, source: String)] {
        values.keys.filter { $0.hasPrefix(Self.modalityPrefix) }.sorted()
            .map { (String($0.dropFirst(Self.modalityPrefix.count)), values[$0]!) }
    }

    func string(_ key: String) -> String? { values[key] }

    func int(_ key: String, default value: Int) throws -> Int {
        guard let s = values[key] else { return value }
        guard let v = Int(s) else { throw ValidationError("setting '\(key)': '\(s)' is not an integer") }
        return v
    }

    func double(_ key: String, default value: Double) throws -> Double {
        guard let s = values[key] else { return value }
        guard let v = Double(s), v.isFinite else { throw ValidationError("setting '\(key)': '\(s)' is not a number") }
        return v
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let s = values[key] else { return value }
        switch s.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw ValidationError("setting '\(key)': '\(s)' is not true or false")
        }
    }

    /// `train_noise`: the fraction of random false positives added to each user's training items (0: none).
    var trainNoise: Double {
        get throws {
            let v = try double("train_noise", default: 0)
            guard v >= 0 else { throw ValidationError("setting 'train_noise': \(v) must be non-negative (a fraction of each user's training items)") }
            return v
        }
    }

    var cutoffs: [Int] {
        get throws {
            let text = values["topk"] ?? "10,20"
            let ks = text.split(separator: ",").map { Int($0.trimmingCharacters(in: " ")) }
            guard !ks.isEmpty, ks.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("setting 'topk': '\(text)' must list positive integers") }
            return ks.map { $0! }
        }
    }

    /// `metrics` (RecBole's list by default), then the item-fairness and popularity measures it lacks when
    /// `fairness=true`, then the propensity-weighted ones when `unbiased_eval=true`.
    var metrics: [RankingMetric] {
        get throws {
            var list = try values["metrics"].map { text in
                try text.split(separator: ",").map { try RankingMetric(parsing: $0.trimmingCharacters(in: " ")) }
            } ?? RankingMetric.standard
            if try bool("fairness", default: false) { list += RankingMetric.fairness.filter { !list.contains($0) } }
            if try unbiasedEvaluation { list += RankingMetric.unbiased.filter { !list.contains($0) } }
            return list
        }
    }

    var unbiasedEvaluation: Bool { get throws { try bool("unbiased_eval", default: false) } }

    /// Whether sequential models' rankings leave out the items of the user's history (false: RecBole's sequential
    /// protocol ranks every item, since users come back to items; other models always leave out training items).
    var excludeHistory: Bool { get throws { try bool("exclude_history", default: false) } }

    /// The propensity model of the SNIPS metrics: `unbiased_eval_power` (η, 0.5) and `unbiased_eval_clip` (0.01).
    var propensity: PopularityPropensity {
        get throws {
            let defaults = PopularityPropensity.evaluationDefault
            let power = try double("unbiased_eval_power", default: defaults.power)
            let clip = try double("unbiased_eval_clip", default: defaults.clip)
            guard power >= 0 else { throw ValidationError("setting 'unbiased_eval_power': must be ≥ 0") }
            guard clip > 0 && clip <= 1 else { throw ValidationError("setting 'unbiased_eval_clip': must be in (0, 1]") }
            return PopularityPropensity(power: power, clip: clip)
        }
    }

    var preprocessing: Preprocessing {
        get throws {
            var p = Preprocessing()
            if let t = values["threshold"] ?? values["threshold.rating"] {
                // `rating:4` and `{rating: 4}` (RecBole's form) mean the same as `4`.
                let bare = t.trimmingCharacters(in: "{").trimmingCharacters(in: "}").replacingOccurrences(of: "rating:", with: "")
                guard let v = Float(bare.trimmingCharacters(in: " ")) else { throw ValidationError("setting 'threshold': '\(t)' is not a number") }
                p.ratingThreshold = v
            }
            if let d = values["dedup"] {
                guard let v = Preprocessing.Deduplication(rawValue: d) else { throw ValidationError("setting 'dedup': use none, first or last") }
                p.deduplicate = v
            }
            p.userCore = try int("user_core", default: 0)
            p.itemCore = try int("item_core", default: 0)
            return p
        }
    }

    /// The model hyperparameters for `model`: unscoped non-general keys plus `model.key` ones.
    func hyperparameters(for model: String) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in values where !Self.isGeneral(k) && !k.contains(".") { out[k] = v }
        for (k, v) in values where k.hasPrefix(model + ".") { out[String(k.dropFirst(model.count + 1))] = v }
        return out
    }

    /// Keys scoped to a model that is not selected, or unscoped keys no selected model read.
    func checkUsed(models: [String], read: Set<String>) throws {
        for key in values.keys.sorted() where !Self.isGeneral(key) {
            if let dot = key.firstIndex(of: ".") {
                let scope = String(key[..<dot])
                if !models.contains(scope) { throw ValidationError("setting '\(key)' is scoped to model '\(scope)', which is not selected") }
            } else if !read.contains(key) {
                throw ValidationError("unknown setting '\(key)': no selected model (\(models.joined(separator: ", "))) uses it")
            }
        }
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}
