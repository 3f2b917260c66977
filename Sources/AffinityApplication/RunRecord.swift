import Foundation
import AffinityCore
import AffinityData

/// The machine-readable record of one training run (`affinity train --output run.json`).
public struct RunRecord: Codable, Sendable {
    public var model: String
    public var dataset: String
    public var config: [String: String]
    public var seed: UInt64
    public var dataFingerprint: String
    public var timings: [String: Double]
    public var metrics: [String: [String: Double]]
    public var versions: [String: String]
    /// One entry per training epoch of a gradient-trained model (absent for closed-form models).
    public var epochs: [Epoch]? = nil
    /// Test metrics at every cutoff 1…`atKCutoffs`: `"recall" → [recall@1, …, recall@50]`.
    public var metricsAtK: [String: [Double]]? = nil
    /// Exposure of the test lists by item popularity.
    public var exposure: ExposureSummary? = nil

    public init(model: String, dataset: String, config: [String: String], seed: UInt64, dataFingerprint: String,
                timings: [String: Double], metrics: [String: [String: Double]], versions: [String: String],
                epochs: [Epoch]? = nil, metricsAtK: [String: [Double]]? = nil, exposure: ExposureSummary? = nil) {
        self.model = model
        self.dataset = dataset
        self.config = config
        self.seed = seed
        self.dataFingerprint = dataFingerprint
        self.timings = timings
        self.metrics = metrics
        self.versions = versions
        self.epochs = epochs
        self.metricsAtK = metricsAtK
        self.exposure = exposure
    }

    enum CodingKeys: String, CodingKey {
        case model, dataset, config, seed, dataFingerprint = "data_fingerprint", timings, metrics, versions, epochs
        case metricsAtK = "metrics_at_k", exposure
    }

    /// The cutoffs of `metricsAtK`: 1…50.
    public static let atKCutoffs = 50

    public struct Epoch: Codable, Equatable, Sendable {
        /// 1-based.
        public var epoch: Int
        public var loss: Double
        public var seconds: Double
        /// Validation metrics, when the epoch was validated.
        public var valid: [String: Double]?
        /// Learning-curve test metrics (`--curve`), when measured at this epoch.
        public var curve: [String: Double]?

        public init(epoch: Int, loss: Double, seconds: Double, valid: [String: Double]?, curve: [String: Double]?) {
            self.epoch = epoch
            self.loss = loss
            self.seconds = seconds
            self.valid = valid
            self.curve = curve
        }
    }

    public struct ExposureSummary: Codable, Equatable, Sendable {
        /// The list length the figures are taken at (the largest `topk`).
        public var k: Int
        /// Share of all top-k slots that go to each decile of the catalogue by training popularity, least
        /// popular decile first (sums to 1).
        public var popularityDeciles: [Double]
        /// Mean training interaction count of the recommended items.
        public var averagePopularity: Double
        /// Share of the catalogue recommended to at least one user.
        public var itemCoverage: Double

        public init(k: Int, popularityDeciles: [Double], averagePopularity: Double, itemCoverage: Double) {
            self.k = k
            self.popularityDeciles = popularityDeciles
            self.averagePopularity = averagePopularity
            self.itemCoverage = itemCoverage
        }

        enum CodingKeys: String, CodingKey {
            case k, popularityDeciles = "popularity_deciles", averagePopularity = "average_popularity", itemCoverage = "item_coverage"
        }
    }

    /// The versions a record is made with: Affinity's, the BLAS core's, the Swift compiler's.
    public static var versions: [String: String] {
        var v = ["affinity": AffinityVersion.current, "blas": BLAS.coreName]
        #if swift(>=6.3)
        v["swift"] = "6.3"
        #elseif swift(>=6.0)
        v["swift"] = "6.x"
        #endif
        return v
    }

    /// A metric that could not be computed is NaN; JSON has no NaN, so it is written as the string "nan".
    private static let nonFinite = (
        encoding: JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan"),
        decoding: JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan"))

    /// Reads a run record file: one record or an array of them (what `write` produces).
    public static func read(from path: String) throws -> [RunRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, .fileNotFound) }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = nonFinite.decoding
        let isArray = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "[")
        do {
            return isArray ? try decoder.decode([RunRecord].self, from: data) : [try decoder.decode(RunRecord.self, from: data)]
        } catch {
            throw DataError(file: path, .unreadable("not an affinity run record (\(error))"))
        }
    }

    /// Writes one record as an object, several as an array; atomically (temporary file, then rename).
    public static func write(_ records: [RunRecord], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = nonFinite.encoding
        let data = records.count == 1 ? try encoder.encode(records[0]) : try encoder.encode(records)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Affinity's release version (the `--version` of the command line, the run records' `versions.affinity`).
public enum AffinityVersion {
    public static let current = "0.1.0"
}
