import Foundation
import NIOCore
import PostgresNIO
import Logging

/// A PostgreSQL session-level advisory lock, held on a connection of its own for as long as the lease lives.
/// The server releases it when that connection ends, so a process that is killed while holding it (a worker
/// in the middle of training) cannot keep others out.
public final class PostgresAdvisoryLease: Sendable {
    public let key: Int64
    private let connection: PostgresConnection
    private let logger: Logger

    init(key: Int64, connection: PostgresConnection, logger: Logger) {
        self.key = key
        self.connection = connection
        self.logger = logger
    }

    /// Whether the session still holds the lock (false once the connection was lost).
    public var isHeld: Bool { !connection.isClosed }

    /// Releases the lock, then ends its session. The explicit unlock makes the lock free when this returns: the
    /// server ends a closed session's backend (and so its locks) only a moment after the socket closes.
    public func release() {
        _ = try? connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger).wait()
        try? connection.close().wait()
    }

    deinit { connection.close().whenComplete { _ in } }
}

extension PostgresEventStore {
    /// The key every Affinity process uses for "one trainer at a time".
    public static let trainingLockKey: Int64 = 0x4166_6669_5472_6e67  // "AffiTrng"

    /// The lock if no other session holds it (`pg_try_advisory_lock`), else nil at once.
    public func tryAdvisoryLock(_ key: Int64 = trainingLockKey) throws -> PostgresAdvisoryLease? {
        try advisoryLock(key, waiting: false)
    }

    /// The lock, waiting for it as long as another session holds it (`pg_advisory_lock`).
    public func waitForAdvisoryLock(_ key: Int64 = trainingLockKey) throws -> PostgresAdvisoryLease {
        try advisoryLock(key, waiting: true)!
    }

    private func advisoryLock(_ key: Int64, waiting: Bool) throws -> PostgresAdvisoryLease? {
        let connection: PostgresConnection
        do { connection = try dedicatedConnection().wait() } catch {
            throw PostgresStoreError("cannot connect for the advisory lock: \(PostgresStoreError.describe(error))")
        }
        do {
            if waiting {
                _ = try connection.query("SELECT pg_advisory_lock(\(key))", logger: logger).wait()
                return PostgresAdvisoryLease(key: key, connection: connection, logger: logger)
            }
            let acquired = try connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger).wait().rows.first?.decode(Bool.self) ?? false
            guard acquired else {
                try? connection.close().wait()
                return nil
            }
            return PostgresAdvisoryLease(key: key, connection: connection, logger: logger)
        } catch {
            try? connection.close().wait()
            throw PostgresStoreError("advisory lock \(key): \(PostgresStoreError.describe(error))")
        }
    }
}
