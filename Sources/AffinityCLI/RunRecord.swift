import Foundation
import AffinityCore
import AffinityData

/// The machine-readable record of one training run (`--output run.json`).
struct RunRecord: Codable {
    var model: String
    var dataset: String
    var config: [String: String]
    var seed: UInt64
    var dataFingerprint: String
    var timings: [String: Double]
    var metrics: [String: [String: Double]]
    var versions: [String: String]
    /// One entry per training epoch of a gradient-trained model (absent for closed-form models).
    var epochs: [Epoch]? = nil
    /// Test metrics at every cutoff 1…`atKCutoffs`: `"recall" → [recall@1, …, recall@50]`.
    var metricsAtK: [String: [Double]]? = nil
    /// Exposure of the test lists by item popularity.
    var exposure: ExposureSummary? = nil

    enum CodingKeys: String, CodingKey {
        case model, dataset, config, seed, dataFingerprint = "data_fingerprint", timings, metrics, versions, epochs
        case metricsAtK = "metrics_at_k", exposure
    }

    /// The cutoffs of `metricsAtK`: 1…50.
    static let atKCutoffs = 50

    struct Epoch: Codable, Equatable {
        /// 1-based.
        var epoch: Int
        var loss: Double
        var seconds: Double
        /// Validation metrics, when the epoch was validated.
        var valid: [String: Double]?
        /// Learning-curve test metrics (`--curve`), when measured at this epoch.
        var curve: [String: Double]?
    }

    struct ExposureSummary: Codable, Equatable {
        /// The list length the figures are taken at (the largest `topk`).
        var k: Int
        /// Share of all top-k slots that go to each decile of the catalogue by training popularity, least
        /// popular decile first (sums to 1).
        var popularityDeciles: [Double]
        /// Mean training interaction count of the recommended items.
        var averagePopularity: Double
        /// Share of the catalogue recommended to at least one user.
        var itemCoverage: Double

        enum CodingKeys: String, CodingKey {
            case k, popularityDeciles = "popularity_deciles", averagePopularity = "average_popularity", itemCoverage = "item_coverage"
        }
    }

    static var versions: [String: String] {
        var v = ["affinity": AffinityCommand.version, "blas": BLAS.coreName]
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
    static func read(from path: String) throws -> [RunRecord] {
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
    static func write(_ records: [RunRecord], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = nonFinite.encoding
        let data = records.count == 1 ? try encoder.encode(records[0]) : try encoder.encode(records)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Seconds elapsed while running `body`.
public func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try body()
    return (value, (ContinuousClock.now - start).inSeconds)
}
