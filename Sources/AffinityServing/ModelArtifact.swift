import Foundation
import AffinityCore
import AffinityData

/// A trained embedding model as a file: what `affinity train --save` writes and `affinity serve` loads.
///
/// Layout (little-endian), version 1:
///
///     "AFFMODEL"            8 bytes   magic
///     format version        UInt32
///     header length         UInt32    bytes of the JSON header that follows
///     header                JSON      `ModelArtifact.Header` (model, settings, ids, shapes, fingerprint)
///     user embeddings       Float32   users × dimension, row-major
///     item embeddings       Float32   items × dimension, row-major
///     training users        Int32     interactions
///     training items        Int32     interactions
///     CRC-32                UInt32    over every byte before it
///
/// The file is written atomically (temporary file, fsync, rename). Reading checks magic, version, sizes
/// and checksum before anything is used, so a truncated or corrupted file is an error, never a crash.
public struct ModelArtifact: Sendable {
    public static let magic: [UInt8] = Array("AFFMODEL".utf8)
    public static let formatVersion: UInt32 = 1

    public struct Header: Codable, Sendable, Equatable {
        /// Registry name of the model (`bpr`, `lightgcn`, …), used to retrain it.
        public var model: String
        /// The settings in effect when it was trained (retraining uses them).
        public var hyperparameters: [String: String]
        /// Epochs a retrain runs (the epoch early stopping chose; nil: the settings' `epochs`).
        public var retrainEpochs: Int?
        public var seed: UInt64
        public var dataset: String
        /// `Dataset.fingerprint` of the data the model was trained on.
        public var dataFingerprint: String
        /// ISO-8601 time of training.
        public var createdAt: String
        public var userIDs: [String]
        public var itemIDs: [String]
        public var itemTitles: [String]?
        public var dimension: Int
        public var interactionCount: Int
        /// Item features the model was trained with, by modality name → source (`PATH.npy` or `builtin:…`);
        /// a retrain loads them again. Absent in files of models without features.
        public var modalities: [String: String]?
        /// The serving version this file holds: the server increments it on every model swap (deletion,
        /// retrain) and writes it with the new file, so a restart serves the version it stopped at. Absent in
        /// files written by `affinity train`, which are version 1.
        public var modelVersion: Int?

        public init(model: String, hyperparameters: [String: String], retrainEpochs: Int?, seed: UInt64, dataset: String,
                    dataFingerprint: String, createdAt: String, userIDs: [String], itemIDs: [String], itemTitles: [String]?,
                    dimension: Int, interactionCount: Int, modalities: [String: String]? = nil) {
            self.model = model
            self.modalities = modalities
            self.hyperparameters = hyperparameters
            self.retrainEpochs = retrainEpochs
            self.seed = seed
            self.dataset = dataset
            self.dataFingerprint = dataFingerprint
            self.createdAt = createdAt
            self.userIDs = userIDs
            self.itemIDs = itemIDs
            self.itemTitles = itemTitles
            self.dimension = dimension
            self.interactionCount = interactionCount
        }
    }

    public var header: Header
    public var userEmbeddings: Matrix
    public var itemEmbeddings: Matrix
    /// The training interactions (dense user and item indices), so a service can seed its event store
    /// and know what each user has already seen.
    public var training: Interactions

    public init(header: Header, userEmbeddings: Matrix, itemEmbeddings: Matrix, training: Interactions) throws {
        guard userEmbeddings.cols == header.dimension, itemEmbeddings.cols == header.dimension,
              userEmbeddings.rows == header.userIDs.count, itemEmbeddings.rows == header.itemIDs.count,
              training.count == header.interactionCount else {
            throw ArtifactError(path: "", reason: "shapes disagree with the header")
        }
        self.header = header
        self.userEmbeddings = userEmbeddings
        self.itemEmbeddings = itemEmbeddings
        self.training = Interactions(users: training.users, items: training.items)
    }

    // MARK: Writing

    public func write(to path: String) throws {
        let json = try JSONEncoder().encode(header)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24 + json.count + 4 * (userEmbeddings.storage.count + itemEmbeddings.storage.count + 2 * training.count))
        bytes += Self.magic
        appendLittleEndian(Self.formatVersion, to: &bytes)
        appendLittleEndian(UInt32(json.count), to: &bytes)
        bytes += json
        appendArray(userEmbeddings.storage, to: &bytes)
        appendArray(itemEmbeddings.storage, to: &bytes)
        appendArray(training.users, to: &bytes)
        appendArray(training.items, to: &bytes)
        let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
        appendLittleEndian(crc, to: &bytes)
        try bytes.withUnsafeBytes { try DurableFile.write($0, to: path) }
    }

    // MARK: Reading

    public static func read(from path: String) throws -> ModelArtifact {
        let bytes: [UInt8]
        do { bytes = try DurableFile.read(path) } catch let error as DataError {
            throw ArtifactError(path: path, reason: error.reasonText)
        }
        return try decode(bytes, path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> ModelArtifact {
        func fail(_ why: String) -> ArtifactError { ArtifactError(path: path, reason: why) }
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw fail("not an Affinity model file (bad magic bytes)")
        }
        var cursor = ByteCursor(bytes: bytes, offset: 8)
        let version: UInt32 = cursor.scalar()
        guard version == formatVersion else {
            throw fail("unsupported model format version \(version) (this build reads version \(formatVersion))")
        }
        let headerLength = Int(cursor.scalar() as UInt32)
        guard headerLength <= bytes.count - cursor.offset else {
            throw fail("truncated: header needs \(headerLength) bytes, file has \(bytes.count - cursor.offset) left")
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes[cursor.offset..<(cursor.offset + headerLength)])) } catch {
            throw fail("corrupted header (\(error))")
        }
        cursor.offset += headerLength
        let d = header.dimension, users = header.userIDs.count, items = header.itemIDs.count, n = header.interactionCount
        guard d > 0, n >= 0 else { throw fail("corrupted header (dimension \(d), interactions \(n))") }
        let expected = cursor.offset + 4 * (users * d + items * d + 2 * n) + 4
        guard bytes.count == expected else {
            throw fail(bytes.count < expected
                ? "truncated: expected \(expected) bytes, found \(bytes.count)"
                : "expected \(expected) bytes, found \(bytes.count) (trailing data)")
        }
        let stored = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: expected - 4, as: UInt32.self) }
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(expected - 4)])) }
        guard UInt32(littleEndian: stored) == computed else {
            throw fail("checksum mismatch (stored \(hex(stored)), computed \(hex(computed))): the file is corrupted")
        }
        let userValues: [Float] = cursor.array(users * d)
        let itemValues: [Float] = cursor.array(items * d)
        let trainUsers: [Int32] = cursor.array(n)
        let trainItems: [Int32] = cursor.array(n)
        guard trainUsers.allSatisfy({ $0 >= 0 && Int($0) < users }), trainItems.allSatisfy({ $0 >= 0 && Int($0) < items }) else {
            throw fail("training interactions refer to users or items outside the id maps")
        }
        guard Set(header.userIDs).count == users, Set(header.itemIDs).count == items else {
            throw fail("duplicate ids in the header")
        }
        return try ModelArtifact(header: header,
                                 userEmbeddings: Matrix(rows: users, cols: d, values: userValues),
                                 itemEmbeddings: Matrix(rows: items, cols: d, values: itemValues),
                                 training: Interactions(users: trainUsers, items: trainItems))
    }
}

/// A model file that cannot be used, with the reason.
public struct ArtifactError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

private func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
