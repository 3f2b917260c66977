import Foundation
import GRDB

/// The embedded store: one SQLite database (GRDB, write-ahead log, `synchronous=FULL`, so a committed batch
/// survives a process kill and a power cut). An append returns only after its transaction has committed; a
/// batch is one transaction, so it is stored whole or not at all. Writes are serialised by SQLite, so ids commit
/// in order and the change feed is a pair of id watermarks.
public final class SQLiteEventStore: EventStore, ModelVersionStore {
    public let path: String
    public var location: String { path }
    /// Marks the rows this handle writes, so that its own change feed leaves them out.
    private let origin = UUID().uuidString
    private let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// The schema's history. The first step keeps `IF NOT EXISTS` because databases written before migrations
    /// were recorded already have those tables.
    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1 events and meta") { db in
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
        migrator.registerMigration("2 origins and deletions") { db in
            try db.execute(sql: """
                ALTER TABLE events ADD COLUMN origin TEXT NOT NULL DEFAULT '';
                CREATE TABLE deletions (
                    id INTEGER PRIMARY KEY,
                    user TEXT NOT NULL,
                    events INTEGER NOT NULL,
                    origin TEXT NOT NULL,
                    deleted_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("3 model registry") { db in
            try db.execute(sql: """
                CREATE TABLE model_versions (
                    version INTEGER PRIMARY KEY AUTOINCREMENT,
                    checksum TEXT NOT NULL,
                    byte_count INTEGER NOT NULL,
                    path TEXT,
                    bytes BLOB,
                    created_at TEXT NOT NULL,
                    note TEXT NOT NULL
                );
                """)
        }
        return migrator
    }

    // MARK: Events

    @discardableResult
    public func append(_ events: [Event], source: String) async throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try await pool.write { [origin] db in try Self.insert(events, source: source, origin: origin, db: db) }
    }

    @discardableResult
    public func appendNow(_ events: [Event], source: String) throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try pool.write { db in try Self.insert(events, source: source, origin: origin, db: db) }
    }

    private static func insert(_ events: [Event], source: String, origin: String, db: Database) throws -> ClosedRange<Int64> {
        let statement = try db.makeStatement(sql: "INSERT INTO events (user, item, type, value, timestamp, source, origin) VALUES (?, ?, ?, ?, ?, ?, ?)")
        var first: Int64 = -1
        for e in events {
            try statement.execute(arguments: [e.user, e.item, e.type, e.value, e.timestamp, source, origin])
            if first < 0 { first = db.lastInsertedRowID }
        }
        return first...db.lastInsertedRowID
    }

    public func deleteUser(_ user: String) async throws -> Int {
        try await pool.write { [origin] db in
            try db.execute(sql: "DELETE FROM events WHERE user = ?", arguments: [user])
            let deleted = db.changesCount
            try db.execute(sql: "INSERT INTO deletions (user, events, origin, deleted_at) VALUES (?, ?, ?, ?)",
                           arguments: [user, deleted, origin, Date().timeIntervalSince1970])
            return deleted
        }
    }

    public func count() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }

    public func count(user: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE user = ?", arguments: [user]) ?? 0 }
    }

    public func lastID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM events") ?? 0 }
    }

    public func forEachInteraction(after: Int64, _ body: (Int64, String, String) throws -> Void) throws {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, user, item FROM events WHERE id > ? ORDER BY id", arguments: [after])
            while let row = try rows.next() {
                try body(row[0], row[1], row[2])
            }
        }
    }

    public func events(of user: String) throws -> [Event] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT user, item, type, value, timestamp FROM events WHERE user = ? ORDER BY id", arguments: [user])
                .map { Event(user: $0[0], item: $0[1], type: $0[2], value: $0[3], timestamp: $0[4]) }
        }
    }

    public func events(of user: String, newest limit: Int) throws -> [Event] {
        try pool.read { db in
            // events_by_user orders each user's rows by rowid (= id), so the newest are read without a sort.
            try Row.fetchAll(db, sql: """
                SELECT user, item, type, value, timestamp FROM
                  (SELECT id, user, item, type, value, timestamp FROM events WHERE user = ? ORDER BY id DESC LIMIT ?)
                ORDER BY id
                """, arguments: [user, max(0, limit)])
                .map { Event(user: $0[0], item: $0[1], type: $0[2], value: $0[3], timestamp: $0[4]) }
        }
    }

    public func meta(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try pool.write { db in try Self.upsertMeta(key, value, db: db) }
    }

    private static func upsertMeta(_ key: String, _ value: String, db: Database) throws {
        try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [key, value])
    }

    // MARK: Change feed

    public func changeCursor() throws -> ChangeCursor {
        try pool.read { db in try Self.cursor(db) }
    }

    private static func cursor(_ db: Database) throws -> ChangeCursor {
        ChangeCursor(events: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM events") ?? 0,
                     deletions: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM deletions") ?? 0)
    }

    public func changes(after cursor: ChangeCursor) throws -> StoreChanges {
        try pool.read { db in
            let deleted = try String.fetchAll(db, sql: "SELECT user FROM deletions WHERE id > ? AND origin <> ? ORDER BY id",
                                              arguments: [cursor.deletions, origin])
            let events = try Row.fetchAll(db, sql: """
                SELECT user, item, type, value, timestamp FROM events WHERE id > ? AND origin <> ? ORDER BY id
                """, arguments: [cursor.events, origin])
                .map { Event(user: $0[0], item: $0[1], type: $0[2], value: $0[3], timestamp: $0[4]) }
            var next = try Self.cursor(db)
            // A deletion can remove the newest events: the feed never moves backwards.
            next.events = max(next.events, cursor.events)
            return StoreChanges(deletedUsers: deleted, events: events, next: next)
        }
    }

    // MARK: Model registry

    private static let liveKey = "live_model_version"

    public func publishModel(_ payload: ModelPayload, note: String, makeLive: Bool) throws -> ModelVersionRecord {
        let contents = try Self.contents(of: payload)
        let createdAt = ISO8601DateFormatter().string(from: Date())
        return try pool.write { db in
            try db.execute(sql: "INSERT INTO model_versions (checksum, byte_count, path, bytes, created_at, note) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [contents.checksum, contents.count, contents.path, contents.bytes.map { Data($0) }, createdAt, note])
            let version = Int(db.lastInsertedRowID)
            if makeLive { try Self.upsertMeta(Self.liveKey, String(version), db: db) }
            return ModelVersionRecord(version: version, checksum: contents.checksum, byteCount: contents.count, path: contents.path,
                                      createdAt: createdAt, note: note)
        }
    }

    public func makeLive(version: Int) throws {
        try pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM model_versions WHERE version = ?", arguments: [version]) == 1 else {
                throw ModelRegistryError("no model version \(version)")
            }
            try Self.upsertMeta(Self.liveKey, String(version), db: db)
        }
    }

    public func liveModelVersion() throws -> ModelVersionRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT version, checksum, byte_count, path, created_at, note FROM model_versions
                WHERE version = (SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?)
                """, arguments: [Self.liveKey]).map(Self.record)
        }
    }

    public func modelVersions() throws -> [ModelVersionRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT version, checksum, byte_count, path, created_at, note FROM model_versions ORDER BY version")
                .map(Self.record)
        }
    }

    private static func record(_ row: Row) -> ModelVersionRecord {
        ModelVersionRecord(version: row[0], checksum: row[1], byteCount: row[2], path: row[3], createdAt: row[4], note: row[5])
    }

    public func storedModelBytes(version: Int) throws -> [UInt8]? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT bytes FROM model_versions WHERE version = ?", arguments: [version]).map { [UInt8]($0) }
        }
    }

    // MARK: Shutdown

    /// Checkpoints the write-ahead log and closes the database.
    public func close() throws {
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try pool.close()
    }
}
