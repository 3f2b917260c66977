import Foundation
import AffinityServing

/// One interaction event as posted to the service.
public struct Event: Sendable, Equatable {
    public var user: String
    public var item: String
    public var type: String?
    public var value: Double?
    public var timestamp: Double?

    public init(user: String, item: String, type: String? = nil, value: Double? = nil, timestamp: Double? = nil) {
        self.user = user
        self.item = item
        self.type = type
        self.value = value
        self.timestamp = timestamp
    }
}

/// The durable state a serving process keeps: the event log, deletions, a few meta values and the model
/// registry. `SQLiteEventStore` is the embedded default; `PostgresEventStore` (target AffinityPostgres) is the
/// shared store of several replicas.
///
/// An append or a deletion returns only after it is durable, and a batch is stored whole or not at all. The
/// synchronous reads are what start-up, retraining and status use; appends and deletions, on the request
/// path, are asynchronous.
public protocol EventStore: AnyObject, Sendable {
    /// Where the store is, for logs (a path, or a URL without its password).
    var location: String { get }

    /// Appends a batch in one transaction; returns the lowest and highest id it was given (nil for an empty batch).
    @discardableResult
    func append(_ events: [Event], source: String) async throws -> ClosedRange<Int64>?

    /// Synchronous form of `append`, for seeding and tools.
    @discardableResult
    func appendNow(_ events: [Event], source: String) throws -> ClosedRange<Int64>?

    /// Deletes every event of `user` and records the deletion (so other processes following the store's changes
    /// forget the user too); returns how many events were deleted.
    func deleteUser(_ user: String) async throws -> Int

    func count() throws -> Int
    func count(user: String) throws -> Int

    /// The highest event id (0 when empty): a watermark for "events after this point".
    func lastID() throws -> Int64

    /// Calls `body(id, user, item)` for every event with id > `after`, in id order, from one consistent snapshot.
    func forEachInteraction(after: Int64, _ body: (Int64, String, String) throws -> Void) throws

    /// The events of one user, in id order.
    func events(of user: String) throws -> [Event]

    func meta(_ key: String) throws -> String?
    func setMeta(_ key: String, _ value: String) throws

    /// The point of the change feed that is now: `changes(after:)` from it returns what is stored later.
    func changeCursor() throws -> ChangeCursor

    /// Events and deletions that other store handles (other processes) made after `cursor`, and the cursor to
    /// continue from. Nothing is returned twice, and nothing committed is skipped.
    func changes(after cursor: ChangeCursor) throws -> StoreChanges

    /// Flushes and closes the store (graceful shutdown).
    func close() throws
}

/// The store cannot be reached (its server is down or restarting): the request may succeed if retried later, so
/// the HTTP layer answers 503 rather than 500. A write that fails with it was not acknowledged.
public struct StoreUnavailableError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension EventStore {
    @discardableResult
    public func append(_ events: [Event]) async throws -> ClosedRange<Int64>? { try await append(events, source: "api") }

    @discardableResult
    public func appendNow(_ events: [Event]) throws -> ClosedRange<Int64>? { try appendNow(events, source: "api") }

    public func forEachInteraction(_ body: (Int64, String, String) throws -> Void) throws {
        try forEachInteraction(after: 0, body)
    }
}

/// A position in a store's change feed. Its numbers mean something only to the store that made them (event
/// and deletion ids in SQLite, transaction ids in PostgreSQL).
public struct ChangeCursor: Sendable, Hashable, Codable {
    public var events: Int64
    public var deletions: Int64
    public init(events: Int64, deletions: Int64) {
        self.events = events
        self.deletions = deletions
    }
}

/// What other processes changed in a store since a cursor.
public struct StoreChanges: Sendable, Equatable {
    /// Users deleted: apply these first; the events below are the ones that outlived any deletion.
    public var deletedUsers: [String]
    /// Events still stored, in id order.
    public var events: [Event]
    public var next: ChangeCursor
    public init(deletedUsers: [String], events: [Event], next: ChangeCursor) {
        self.deletedUsers = deletedUsers
        self.events = events
        self.next = next
    }
}

// MARK: Model registry

/// One published model version.
public struct ModelVersionRecord: Sendable, Equatable {
    /// Assigned by the store: 1, 2, 3… in publication order.
    public var version: Int
    /// CRC-32 of the artifact's bytes, as 8 hex digits.
    public var checksum: String
    public var byteCount: Int
    /// Where the artifact is when the store holds a path instead of the bytes.
    public var path: String?
    /// When it was published, ISO 8601.
    public var createdAt: String
    /// Free text: what produced it (model name, data watermark).
    public var note: String

    public init(version: Int, checksum: String, byteCount: Int, path: String?, createdAt: String, note: String) {
        self.version = version
        self.checksum = checksum
        self.byteCount = byteCount
        self.path = path
        self.createdAt = createdAt
        self.note = note
    }
}

/// What is published: the artifact's bytes kept in the store, or a path every process can read.
public enum ModelPayload: Sendable {
    case bytes([UInt8])
    case path(String)
}

public struct ModelRegistryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The versions of the served model, with which one is live: every replica loads the live one, so all serve
/// the same model.
public protocol ModelVersionStore: AnyObject, Sendable {
    /// Stores a new version (its checksum computed here) and, when `makeLive`, makes it the live one.
    func publishModel(_ payload: ModelPayload, note: String, makeLive: Bool) throws -> ModelVersionRecord

    /// Makes an existing version live.
    func makeLive(version: Int) throws

    /// The live version, nil before one is published.
    func liveModelVersion() throws -> ModelVersionRecord?

    /// Every version, oldest first.
    func modelVersions() throws -> [ModelVersionRecord]

    /// The stored bytes of a version (nil when it is stored by path, or unknown), unchecked.
    func storedModelBytes(version: Int) throws -> [UInt8]?
}

extension ModelVersionStore {
    /// The artifact bytes of a version, from the store or its path, checked against the recorded checksum.
    public func modelBytes(_ record: ModelVersionRecord) throws -> [UInt8] {
        let bytes: [UInt8]
        if let path = record.path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ModelRegistryError("model version \(record.version): cannot read \(path)")
            }
            bytes = [UInt8](data)
        } else {
            guard let stored = try storedModelBytes(version: record.version) else {
                throw ModelRegistryError("model version \(record.version) has no stored bytes")
            }
            bytes = stored
        }
        let checksum = Self.checksum(bytes)
        guard bytes.count == record.byteCount, checksum == record.checksum else {
            throw ModelRegistryError("model version \(record.version): checksum \(checksum) (\(bytes.count) bytes) does not match the registry's \(record.checksum) (\(record.byteCount) bytes)")
        }
        return bytes
    }

    /// The live model, decoded; nil before one is published.
    public func liveArtifact() throws -> (record: ModelVersionRecord, artifact: ModelArtifact)? {
        guard let record = try liveModelVersion() else { return nil }
        return (record, try ModelArtifact.decode(modelBytes(record), path: "model version \(record.version)"))
    }

    /// The bytes, checksum and size of a payload, as the registry records them.
    public static func contents(of payload: ModelPayload) throws -> (bytes: [UInt8]?, path: String?, checksum: String, count: Int) {
        switch payload {
        case .bytes(let bytes):
            return (bytes, nil, checksum(bytes), bytes.count)
        case .path(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ModelRegistryError("cannot read the model artifact at \(path)")
            }
            let bytes = [UInt8](data)
            return (nil, path, checksum(bytes), bytes.count)
        }
    }

    public static func checksum(_ bytes: [UInt8]) -> String {
        let value = bytes.withUnsafeBytes { CRC32.checksum($0) }
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// Both halves: what a serving process opens.
public typealias AffinityStore = EventStore & ModelVersionStore
