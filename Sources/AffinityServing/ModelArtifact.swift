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
/// Framed as `FramedFile` (atomic write; magic, version, sizes and checksum checked before anything is used).
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

    static let frame = FramedFile(magic: magic, formatVersion: formatVersion, kind: "model")

    // MARK: Writing

    public func write(to path: String) throws {
        let bytes = try encoded()
        try bytes.withUnsafeBytes { try DurableFile.write($0, to: path) }
    }

    /// The file's bytes (what a model registry stores).
    public func encoded() throws -> [UInt8] {
        let body = 4 * (userEmbeddings.storage.count + itemEmbeddings.storage.count + 2 * training.count)
        return try Self.frame.encode(header: header, bodyBytes: body) { bytes in
            appendArray(userEmbeddings.storage, to: &bytes)
            appendArray(itemEmbeddings.storage, to: &bytes)
            appendArray(training.users, to: &bytes)
            appendArray(training.items, to: &bytes)
        }
    }

    // MARK: Reading

    public static func read(from path: String) throws -> ModelArtifact {
        try decode(FramedFile.read(path), path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> ModelArtifact {
        func fail(_ why: String) -> ArtifactError { ArtifactError(path: path, reason: why) }
        var (header, cursor) = try frame.decode(bytes, path: path, as: Header.self) { header in
            let d = header.dimension, n = header.interactionCount
            guard d > 0, n >= 0 else { throw fail("corrupted header (dimension \(d), interactions \(n))") }
            return 4 * (header.userIDs.count * d + header.itemIDs.count * d + 2 * n)
        }
        let d = header.dimension, users = header.userIDs.count, items = header.itemIDs.count, n = header.interactionCount
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
