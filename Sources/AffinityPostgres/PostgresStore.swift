import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import AffinityServer

/// The shared store of several serving replicas: the event log, deletions, meta values and the model registry in
/// one PostgreSQL database (postgres-nio). Every write is one SQL statement, so it is atomic without holding a
/// connection for a transaction, and acknowledged after PostgreSQL committed it.
///
/// The change feed follows transactions, not ids: ids come from a sequence, and a transaction that drew a lower
/// id can commit after one that drew a higher id, so "id > watermark" could skip an event. Every row records the
/// id of the transaction that wrote it (`pg_current_xact_id()`); a poll reads the oldest transaction still running
/// (`pg_snapshot_xmin`), and returns the rows of transactions between the previous poll's value and this one. All
/// of those have ended, so each row is returned once, after it committed.
public final class PostgresEventStore: EventStore, ModelVersionStore {
    public let location: String
    /// Marks the rows this handle writes, so that its own change feed leaves them out.
    private let origin = UUID().uuidString
    private let connections: PostgresConnections

    /// Opens `url` (`postgres://user[:password]@host[:port]/database`, or `?host=/socket/dir` for a Unix socket),
    /// and brings the schema up to date.
    public init(url: String, connectionCount: Int = 4, logger: Logger = Logger(label: "affinity.postgres")) throws {
        let target = try PostgresLocation(url: url)
        location = target.redacted
        connections = PostgresConnections(configuration: target.configuration, count: max(1, connectionCount), logger: logger)
        do {
            try PostgresMigrations.apply(connections)
        } catch {
            connections.close()
            throw PostgresStoreError("cannot open \(location): \(PostgresStoreError.describe(error))")
        }
    }

    // MARK: Events

    @discardableResult
    public func append(_ events: [Event], source: String) async throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try Self.idRange(try await connections.runAsync(insert(events, source: source)))
    }

    @discardableResult
    public func appendNow(_ events: [Event], source: String) throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        return try Self.idRange(try connections.run(insert(events, source: source)))
    }

    /// One statement for the whole batch: the columns go as arrays and `unnest` turns them into rows. Optional
    /// columns travel as a value array and a presence array (postgres-nio encodes arrays without NULLs).
    private func insert(_ events: [Event], source: String) -> PostgresQuery {
        let users = events.map(\.user), items = events.map(\.item)
        let types = events.map { $0.type ?? "" }, hasType = events.map { $0.type != nil }
        let values = events.map { $0.value ?? 0 }, hasValue = events.map { $0.value != nil }
        let times = events.map { $0.timestamp ?? 0 }, hasTime = events.map { $0.timestamp != nil }
        return """
            INSERT INTO events (user_id, item, type, value, event_time, source, origin)
            SELECT u, i, CASE WHEN ht THEN t END, CASE WHEN hv THEN v END, CASE WHEN hs THEN s END, \(source), \(origin)
            FROM unnest(\(users)::text[], \(items)::text[], \(types)::text[], \(hasType)::bool[],
                        \(values)::float8[], \(hasValue)::bool[], \(times)::float8[], \(hasTime)::bool[])
                 WITH ORDINALITY AS batch(u, i, t, ht, v, hv, s, hs, n)
            ORDER BY n
            RETURNING id
            """
    }

    private static func idRange(_ result: PostgresQueryResult) throws -> ClosedRange<Int64>? {
        let ids = try result.rows.map { try $0.decode(Int64.self) }
        guard let low = ids.min(), let high = ids.max() else { return nil }
        return low...high
    }

    /// Deletes the user's events and records the deletion, in one statement.
    public func deleteUser(_ user: String) async throws -> Int {
        let result = try await connections.runAsync("""
            WITH gone AS (DELETE FROM events WHERE user_id = \(user) RETURNING 1),
                 logged AS (INSERT INTO deletions (user_id, events, origin) SELECT \(user), COUNT(*), \(origin) FROM gone RETURNING events)
            SELECT events FROM logged
            """)
        return Int(try result.rows.first?.decode(Int64.self) ?? 0)
    }

    public func count() throws -> Int {
        try scalar("SELECT COUNT(*) FROM events")
    }

    public func count(user: String) throws -> Int {
        try scalar("SELECT COUNT(*) FROM events WHERE user_id = \(user)")
    }

    public func lastID() throws -> Int64 {
        Int64(try scalar("SELECT COALESCE(MAX(id), 0) FROM events"))
    }

    private func scalar(_ query: PostgresQuery) throws -> Int {
        Int(try connections.run(query).rows.first?.decode(Int64.self) ?? 0)
    }

    public func forEachInteraction(after: Int64, _ body: (Int64, String, String) throws -> Void) throws {
        for row in try connections.run("SELECT id, user_id, item FROM events WHERE id > \(after) ORDER BY id").rows {
            let (id, user, item) = try row.decode((Int64, String, String).self)
            try body(id, user, item)
        }
    }

    public func events(of user: String) throws -> [Event] {
        try Self.events(connections.run("SELECT user_id, item, type, value, event_time FROM events WHERE user_id = \(user) ORDER BY id"))
    }

    private static func events(_ result: PostgresQueryResult) throws -> [Event] {
        try result.rows.map { row in
            let (user, item, type, value, time) = try row.decode((String, String, String?, Double?, Double?).self)
            return Event(user: user, item: item, type: type, value: value, timestamp: time)
        }
    }

    public func meta(_ key: String) throws -> String? {
        try connections.run("SELECT value FROM meta WHERE key = \(key)").rows.first?.decode(String.self)
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try connections.run("INSERT INTO meta (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }

    // MARK: Change feed

    public func changeCursor() throws -> ChangeCursor {
        let horizon = try oldestRunningTransaction()
        return ChangeCursor(events: horizon, deletions: horizon)
    }

    /// Every transaction with a lower id has ended.
    private func oldestRunningTransaction() throws -> Int64 {
        let text = try connections.run("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").rows.first?.decode(String.self)
        guard let text, let value = Int64(text) else { throw PostgresStoreError("unreadable transaction horizon '\(text ?? "")'") }
        return value
    }

    public func changes(after cursor: ChangeCursor) throws -> StoreChanges {
        let horizon = try oldestRunningTransaction()
        let deleted = try connections.run("""
            SELECT user_id FROM deletions
            WHERE tx >= \(String(cursor.deletions))::xid8 AND tx < \(String(horizon))::xid8 AND origin <> \(origin) ORDER BY id
            """).rows.map { try $0.decode(String.self) }
        let events = try Self.events(connections.run("""
            SELECT user_id, item, type, value, event_time FROM events
            WHERE tx >= \(String(cursor.events))::xid8 AND tx < \(String(horizon))::xid8 AND origin <> \(origin) ORDER BY id
            """))
        return StoreChanges(deletedUsers: deleted, events: events, next: ChangeCursor(events: horizon, deletions: horizon))
    }

    // MARK: Model registry

    public func publishModel(_ payload: ModelPayload, note: String, makeLive: Bool) throws -> ModelVersionRecord {
        let contents = try Self.contents(of: payload)
        let createdAt = ISO8601DateFormatter().string(from: Date())
        let bytes = contents.bytes.map { ByteBuffer(bytes: $0) }
        // One statement: the version and, when asked, the live pointer are stored together or not at all.
        let result = try connections.run("""
            WITH published AS (
                INSERT INTO model_versions (checksum, byte_count, path, bytes, created_at, note)
                VALUES (\(contents.checksum), \(Int64(contents.count)), \(contents.path), \(bytes), \(createdAt), \(note))
                RETURNING version
            ), live AS (
                INSERT INTO meta (key, value) SELECT 'live_model_version', version::text FROM published WHERE \(makeLive)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
            )
            SELECT version FROM published
            """)
        guard let version = try result.rows.first?.decode(Int64.self) else { throw PostgresStoreError("publishing a model returned no version") }
        return ModelVersionRecord(version: Int(version), checksum: contents.checksum, byteCount: contents.count, path: contents.path,
                                  createdAt: createdAt, note: note)
    }

    public func makeLive(version: Int) throws {
        let result = try connections.run("""
            INSERT INTO meta (key, value) SELECT 'live_model_version', version::text FROM model_versions WHERE version = \(Int64(version))
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """)
        guard result.metadata.rows == 1 else { throw ModelRegistryError("no model version \(version)") }
    }

    public func liveModelVersion() throws -> ModelVersionRecord? {
        try connections.run("""
            SELECT version, checksum, byte_count, path, created_at, note FROM model_versions
            WHERE version = (SELECT value::bigint FROM meta WHERE key = 'live_model_version')
            """).rows.first.map(Self.record)
    }

    public func modelVersions() throws -> [ModelVersionRecord] {
        try connections.run("SELECT version, checksum, byte_count, path, created_at, note FROM model_versions ORDER BY version")
            .rows.map(Self.record)
    }

    private static func record(_ row: PostgresRow) throws -> ModelVersionRecord {
        let (version, checksum, count, path, createdAt, note) = try row.decode((Int64, String, Int64, String?, String, String).self)
        return ModelVersionRecord(version: Int(version), checksum: checksum, byteCount: Int(count), path: path, createdAt: createdAt, note: note)
    }

    public func storedModelBytes(version: Int) throws -> [UInt8]? {
        let row = try connections.run("SELECT bytes FROM model_versions WHERE version = \(Int64(version))").rows.first
        return try row?.decode(ByteBuffer?.self).map { Array($0.readableBytesView) }
    }

    // MARK: Shutdown

    public func close() throws {
        connections.close()
    }

    /// A connection outside the shared set (advisory locks live as long as their session).
    func dedicatedConnection() -> EventLoopFuture<PostgresConnection> { connections.dedicated() }
    var logger: Logger { connections.logger }
}

public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// The error a failed query becomes: `StoreUnavailableError` (answered 503) when the server cannot be reached
    /// or is shutting down or starting up, a `PostgresStoreError` (a fault: 500) otherwise.
    static func classify(_ error: any Error) -> any Error {
        if error is StoreUnavailableError { return error }
        if isUnreachable(error) { return StoreUnavailableError("PostgreSQL: \(describe(error))") }
        return PostgresStoreError(describe(error))
    }

    /// Connection failures, a connection the server closed, and the server's own "operator intervention" (SQLSTATE
    /// class 57: shutting down, starting up, terminated by the administrator) and "connection exception" (class 08).
    private static func isUnreachable(_ error: any Error) -> Bool {
        if let psql = error as? PSQLError {
            switch psql.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown: return true
            case .server:
                let state = psql.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("57") || state.hasPrefix("08")
            default: return false
            }
        }
        return error is IOError || error is ChannelError || error is NIOConnectionError
    }

    /// postgres-nio's errors print a generic text; their reflection carries the server's message.
    static func describe(_ error: any Error) -> String {
        if let known = error as? PostgresStoreError { return known.description }
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] { return message }
            if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
            return "\(psql.code)"
        }
        return String(describing: error)
    }
}

/// Where a PostgreSQL database is, from a `postgres://` URL.
public struct PostgresLocation: Sendable {
    public let host: String
    public let port: Int
    public let user: String
    public let password: String?
    public let database: String
    /// A directory holding the server's Unix socket (`?host=/dir`), used instead of TCP.
    public let socketDirectory: String?

    public init(url: String) throws {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw PostgresStoreError("'\(url)' is not a postgres://user@host:port/database URL")
        }
        let database = String(parts.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresStoreError("'\(url)' names no database (postgres://user@host:port/DATABASE)") }
        guard let user = parts.user, !user.isEmpty else { throw PostgresStoreError("'\(url)' names no user (postgres://USER@host:port/database)") }
        self.user = user
        self.database = database
        password = parts.password
        host = parts.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = parts.port ?? 5432
        socketDirectory = parts.queryItems?.first { $0.name == "host" }?.value
    }

    /// The URL without its password, for logs.
    public var redacted: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(socketDirectory == nil ? host : "")\(socketDirectory == nil ? ":\(port)" : "")/\(database)"
            + (socketDirectory.map { "?host=\($0)" } ?? "")
    }

    /// A request waits at most `connectTimeout` for a connection before it is answered 503 (postgres-nio's default
    /// is 10 s; an unreachable host should not hold requests that long).
    var configuration: PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        }
        configuration.options.connectTimeout = Self.connectTimeout
        return configuration
    }

    static let connectTimeout = TimeAmount.seconds(3)
}

/// A fixed set of connections used in turn; a closed one (the server restarted) is replaced on next use.
/// postgres-nio queues the queries sent on one connection, so sharing them between callers is safe as long as no
/// caller needs a multi-statement transaction (the store never does).
final class PostgresConnections: Sendable {
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    private let slots: NIOLockedValueBox<(connections: [PostgresConnection?], turn: Int)>

    init(configuration: PostgresConnection.Configuration, count: Int, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        slots = NIOLockedValueBox((Array(repeating: nil, count: count), 0))
    }

    /// A connection of its own, outside the set (migrations hold a session-level advisory lock on it).
    func dedicated() -> EventLoopFuture<PostgresConnection> {
        PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: -1, logger: logger)
    }

    func connection() -> EventLoopFuture<PostgresConnection> {
        let (index, existing) = slots.withLockedValue { state -> (Int, PostgresConnection?) in
            let index = state.turn
            state.turn = (state.turn + 1) % state.connections.count
            return (index, state.connections[index])
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        if let existing, !existing.isClosed { return loop.makeSucceededFuture(existing) }
        return PostgresConnection.connect(on: loop, configuration: configuration, id: index, logger: logger).map { [slots] fresh in
            // Two callers may reconnect the same slot at once: the first stored wins, the other is closed.
            let (chosen, surplus) = slots.withLockedValue { state -> (PostgresConnection, PostgresConnection?) in
                if let current = state.connections[index], current !== existing, !current.isClosed { return (current, fresh) }
                state.connections[index] = fresh
                return (fresh, nil)
            }
            if let surplus { surplus.close().whenComplete { _ in } }
            return chosen
        }
    }

    func query(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        connection().flatMap { [logger] in $0.query(query, logger: logger) }
    }

    /// Runs a query and waits for its result (the store's synchronous reads; never called on an event loop).
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        do { return try self.query(query).wait() } catch {
            throw PostgresStoreError.classify(error)
        }
    }

    /// Runs a query without blocking (the request path: appends and deletions).
    @discardableResult
    func runAsync(_ query: PostgresQuery) async throws -> PostgresQueryResult {
        do { return try await self.query(query).get() } catch {
            throw PostgresStoreError.classify(error)
        }
    }

    func close() {
        let open = slots.withLockedValue { state -> [PostgresConnection] in
            defer { state.connections = state.connections.map { _ in nil } }
            return state.connections.compactMap { $0 }
        }
        for connection in open { try? connection.close().wait() }
    }
}
