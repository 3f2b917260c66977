import Foundation
import AffinityCore

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

    enum CodingKeys: String, CodingKey {
        case model, dataset, config, seed, dataFingerprint = "data_fingerprint", timings, metrics, versions
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

    /// Writes one record as an object, several as an array; atomically (temporary file, then rename).
    static func write(_ records: [RunRecord], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = records.count == 1 ? try encoder.encode(records[0]) : try encoder.encode(records)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Seconds elapsed while running `body`.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try body()
    let d = ContinuousClock.now - start
    return (value, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
}
