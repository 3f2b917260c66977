import Foundation
import Logging
import AffinityServer

/// Which store a `--store` value names.
public enum StoreLocation: Sendable, Equatable {
    /// `sqlite:PATH`, or a bare path: the embedded SQLite store.
    case sqlite(path: String)
    /// `postgres://…` or `postgresql://…`: a shared PostgreSQL database.
    case postgres(url: String)

    public init(_ text: String) {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if text.hasPrefix("sqlite:") {
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Whether several processes are expected to share the store (and so follow each other's changes).
    public var isShared: Bool {
        if case .postgres = self { return true }
        return false
    }

    public func open(logger: Logger = Logger(label: "affinity")) throws -> any AffinityStore {
        switch self {
        case .sqlite(let path):
            guard !path.isEmpty else { throw PostgresStoreError("sqlite: needs a path (sqlite:PATH)") }
            return try SQLiteEventStore(path: path)
        case .postgres(let url):
            return try PostgresEventStore(url: url, logger: logger)
        }
    }
}

extension PostgresAdvisoryLease: TrainingLease {}

extension StoreLocation {
    /// How a worker on this store takes the one-trainer-at-a-time lock: PostgreSQL's advisory lock (its session ends
    /// with the process), or for SQLite an exclusive `flock` on `PATH.training-lock` beside the database.
    public func trainingLock(for store: any AffinityStore) -> @Sendable () throws -> any TrainingLease {
        switch self {
        case .sqlite(let path):
            return { try FileTrainingLease(path: path + ".training-lock") }
        case .postgres:
            guard let postgres = store as? PostgresEventStore else { return { throw PostgresStoreError("not a PostgreSQL store") } }
            return { try postgres.waitForAdvisoryLock() }
        }
    }
}
