import Foundation
import AffinityCore
import AffinityData

/// Where the trainer keeps a run's checkpoint, and what identifies the run: a checkpoint is only resumed by
/// the run it was written for (same model, hyperparameters other than the epoch budget, seed and data).
public struct CheckpointSettings: Sendable {
    public var path: String
    public var fingerprint: String

    public init(path: String, fingerprint: String) {
        self.path = path
        self.fingerprint = fingerprint
    }
}

/// A gradient-trained run's state after an epoch: parameters, optimizer state, the model's own carried state,
/// the epoch reports and the early-stopping bookkeeping. Resuming from it ends exactly where the uninterrupted
/// run ends, since every other random choice is keyed by (seed, epoch).
///
/// File: the magic `AFFCKPT1`, a little-endian UInt64 header length, a JSON header, then the Float32 values
/// (parameters, optimizer slots, best-epoch parameters) in header order (`ByteRecords.swift`, as model
/// artifacts). Written whole or not at all (`DurableFile`).
public struct TrainingCheckpoint {
    public struct Header: Codable, Equatable {
        public var fingerprint: String
        /// The epoch budget of the run that wrote it (a budget-dependent schedule cannot change it).
        public var epochs: Int
        /// The last completed epoch (0-based).
        public var epoch: Int
        public var reports: [EpochReport]
        public var shapes: [[Int]]
        public var optimizerSteps: Int
        public var slotCounts: [Int]
        public var modelState: [UInt64]
        public var bestScore: Double?
        public var bestEpoch: Int?
        public var sinceBest: Int
    }

    public static let magic = Array("AFFCKPT1".utf8)

    public var header: Header
    public var parameters: [Matrix]
    public var optimizer: OptimizerState
    public var bestValues: [Matrix]?

    public init(header: Header, parameters: [Matrix], optimizer: OptimizerState, bestValues: [Matrix]?) {
        self.header = header
        self.parameters = parameters
        self.optimizer = optimizer
        self.bestValues = bestValues
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let json = try encoder.encode(header)
        var bytes = Self.magic
        appendLittleEndian(UInt64(json.count), to: &bytes)
        bytes += json
        for block in parameters.map(\.storage) + optimizer.slots + (bestValues?.map(\.storage) ?? []) { appendArray(block, to: &bytes) }
        try bytes.withUnsafeBytes { try DurableFile.write($0, to: path) }
    }

    public static func read(from path: String) throws -> TrainingCheckpoint {
        func fail(_ why: String) -> CheckpointError { CheckpointError(path: path, reason: why) }
        let bytes = try DurableFile.read(path)
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw fail("not an Affinity training checkpoint") }
        var cursor = ByteCursor(bytes: bytes, offset: 8)
        let length: UInt64 = cursor.scalar()
        guard length <= UInt64(bytes.count - 16) else { throw fail("truncated header") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let header: Header
        do { header = try decoder.decode(Header.self, from: Data(bytes[cursor.offset..<(cursor.offset + Int(length))])) } catch {
            throw fail("unreadable header: \(error)")
        }
        guard header.shapes.allSatisfy({ $0.count == 2 && $0[0] >= 0 && $0[1] >= 0 }), header.slotCounts.count == header.shapes.count else {
            throw fail("malformed header")
        }
        let sizes = header.shapes.map { $0[0] * $0[1] }
        let hasBest = header.bestEpoch != nil
        let floats = sizes.reduce(0, +) * (hasBest ? 2 : 1) + header.slotCounts.reduce(0, +)
        cursor.offset += Int(length)
        guard bytes.count - cursor.offset == floats * 4 else {
            throw fail("expected \(floats * 4) bytes of values after the header, found \(bytes.count - cursor.offset) (truncated or corrupt)")
        }
        func matrices() -> [Matrix] { zip(header.shapes, sizes).map { Matrix(rows: $0[0], cols: $0[1], values: cursor.array($1)) } }
        let parameters = matrices()
        let slots: [[Float]] = header.slotCounts.map { cursor.array($0) }
        let best = hasBest ? matrices() : nil
        return TrainingCheckpoint(header: header, parameters: parameters, optimizer: OptimizerState(steps: header.optimizerSteps, slots: slots),
                                  bestValues: best)
    }
}

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String

    public var description: String { "\(path): \(reason)" }
}
