import Foundation
import GRDB

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

/// The durable event log: an embedded SQLite database (GRDB, write-ahead log, `synchronous=FULL`, so a
/// committed batch survives a process kill and a power cut). An append returns only after its transaction
/// has committed; a batch is one transaction, so it is stored whole or not at all.
public final class EventStore: Sendable {
    public let path: String
    private let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS events (
                    id INTEGER PRIMARY KEY,
                    user TEXT NOT NULL,
                    item TEXT NOT NULL,
                    type TEXT,
                    value REAL,
                    timestamp REAL,
                    source TEXT NOT NULL DEFAULT 'api'
                );
                CREATE INDEX IF NOT EXISTS events_by_user ON events(user);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """)
        }
    }

    /// Appends a batch in one transaction; returns the id range it was given.
    @discardableResult
    public func append(_ events: [Event], source: String = "api") async throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try await pool.write { db in try Self.insert(events, source: source, db: db) }
    }

    /// Synchronous form, for seeding and tools.
    @discardableResult
    public func appendNow(_ events: [Event], source: String = "api") throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try pool.write { db in try Self.insert(events, source: source, db: db) }
    }

    private static func insert(_ events: [Event], source: String, db: Database) throws -> ClosedRange<Int64> {
        let statement = try db.makeStatement(sql: "INSERT INTO events (user, item, type, value, timestamp, source) VALUES (?, ?, ?, ?, ?, ?)")
        var first: Int64 = -1
        for e in events {
            try statement.execute(arguments: [e.user, e.item, e.type, e.value, e.timestamp, source])
            if first < 0 { first = db.lastInsertedRowID }
        }
        return first...db.lastInsertedRowID
    }

    /// Deletes every event of `user`; returns how many were deleted.
    public func deleteUser(_ user: String) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM events WHERE user = ?", arguments: [user])
            return db.changesCount
        }
    }

    public func count() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }

    public func count(user: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE user = ?", arguments: [user]) ?? 0 }
    }

    /// The highest event id (0 when empty): a watermark for "events after this point".
    public func lastID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM events") ?? 0 }
    }

    /// Calls `body(id, user, item)` for every event with id > `after`, in id order, from one consistent snapshot.
    public func forEachInteraction(after: Int64 = 0, _ body: (Int64, String, String) throws -> Void) throws {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, user, item FROM events WHERE id > ? ORDER BY id", arguments: [after])
            while let row = try rows.next() {
                try body(row[0], row[1], row[2])
            }
        }
    }

    /// The events of one user, in id order.
    public func events(of user: String) throws -> [Event] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT user, item, type, value, timestamp FROM events WHERE user = ? ORDER BY id", arguments: [user])
                .map { Event(user: $0[0], item: $0[1], type: $0[2], value: $0[3], timestamp: $0[4]) }
        }
    }

    public func meta(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           arguments: [key, value])
        }
    }

    /// Checkpoints the write-ahead log and closes the database (graceful shutdown).
    public func close() throws {
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try pool.close()
    }
}
