import Foundation
import NIOCore
import PostgresNIO

/// The schema's history. Each migration runs once, in its own transaction, and is recorded in
/// `schema_migrations`; replicas starting together take an advisory lock so that only one of them migrates.
/// Append new migrations at the end; never edit one that has shipped.
enum PostgresMigrations {
    struct Migration {
        let version: Int
        let name: String
        let statements: [String]
    }

    static let all: [Migration] = [
        Migration(version: 1, name: "events, deletions and meta", statements: [
            """
            CREATE TABLE events (
                id BIGSERIAL PRIMARY KEY,
                user_id TEXT NOT NULL,
                item TEXT NOT NULL,
                type TEXT,
                value DOUBLE PRECISION,
                event_time DOUBLE PRECISION,
                source TEXT NOT NULL DEFAULT 'api',
                origin TEXT NOT NULL DEFAULT '',
                tx xid8 NOT NULL DEFAULT pg_current_xact_id()
            )
            """,
            "CREATE INDEX events_by_user ON events (user_id)",
            // The change feed reads by transaction id.
            "CREATE INDEX events_by_transaction ON events (tx)",
            """
            CREATE TABLE deletions (
                id BIGSERIAL PRIMARY KEY,
                user_id TEXT NOT NULL,
                events BIGINT NOT NULL,
                origin TEXT NOT NULL,
                deleted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                tx xid8 NOT NULL DEFAULT pg_current_xact_id()
            )
            """,
            "CREATE INDEX deletions_by_transaction ON deletions (tx)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]),
        Migration(version: 2, name: "model registry", statements: [
            """
            CREATE TABLE model_versions (
                version BIGSERIAL PRIMARY KEY,
                checksum TEXT NOT NULL,
                byte_count BIGINT NOT NULL,
                path TEXT,
                bytes BYTEA,
                created_at TEXT NOT NULL,
                note TEXT NOT NULL,
                CHECK ((path IS NULL) <> (bytes IS NULL))
            )
            """,
        ]),
    ]

    /// Any constant shared by every Affinity process: the advisory-lock key that serialises migrations.
    static let lockKey: Int64 = 0x4166_6669_6E69_7479  // "Affinity"

    /// Brings the database up to the newest migration.
    static func apply(_ connections: PostgresConnections) throws {
        let connection = try connections.dedicated().wait()
        defer { try? connection.close().wait() }
        let logger = connections.logger
        func run(_ query: PostgresQuery) throws -> PostgresQueryResult { try connection.query(query, logger: logger).wait() }
        // Session-level: held until unlocked or the connection closes, whatever happens in between.
        _ = try run("SELECT pg_advisory_lock(\(lockKey))")
        defer { _ = try? run("SELECT pg_advisory_unlock(\(lockKey))") }
        _ = try run("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """)
        let applied = Set(try run("SELECT version FROM schema_migrations").rows.map { Int(try $0.decode(Int32.self)) })
        if let newest = applied.max(), newest > all.last!.version {
            throw PostgresStoreError("the database's schema (version \(newest)) is newer than this program's (\(all.last!.version))")
        }
        for migration in all where !applied.contains(migration.version) {
            _ = try run("BEGIN")
            do {
                for statement in migration.statements { _ = try run(PostgresQuery(unsafeSQL: statement)) }
                _ = try run("INSERT INTO schema_migrations (version, name) VALUES (\(Int32(migration.version)), \(migration.name))")
                _ = try run("COMMIT")
            } catch {
                _ = try? run("ROLLBACK")
                throw PostgresStoreError("migration \(migration.version) (\(migration.name)) failed: \(PostgresStoreError.describe(error))")
            }
            logger.info("applied schema migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
    }
}
