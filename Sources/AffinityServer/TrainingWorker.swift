import Foundation
import Logging
import AffinityCore
import AffinityData
import AffinityServing
import AffinityApplication

/// Fits the served model again on every event a store holds: what the server's in-process retrain and
/// `affinity worker` both run, so the two cannot drift apart.
public enum StoreRefit {
    public struct Result {
        public var artifact: ModelArtifact
        /// The newest event id the fit saw; later events are folded in by the replicas.
        public var watermark: Int64
        /// The interactions it trained on, by the ids of `users` (unlearning of late deletions reads them).
        public var interactions: Interactions
        public var users: IDMap
    }

    /// The model `header` describes, fitted on the store's events up to its current last id.
    /// `beforeFit` runs once the events are read (tests hold a fit in flight with it).
    public static func refit(store: any EventStore, like header: ModelArtifact.Header, version: Int, logger: Logger,
                             beforeFit: (() -> Void)? = nil, isCancelled: (@Sendable () -> Bool)? = nil) throws -> Result {
        let watermark = try store.lastID()
        var users = IDMap(), items = IDMap()
        var interactions = Interactions()
        try store.forEachInteraction { id, user, item in
            guard id <= watermark else { return }
            interactions.users.append(users.intern(user))
            interactions.items.append(items.intern(item))
        }
        guard interactions.count > 0 else { throw ServiceError.invalid("no stored events to train on") }
        logger.info("retraining", metadata: ["model": "\(header.model)", "events": "\(interactions.count)"])
        beforeFit?()
        do {
            let artifact = try TrainingRun.refit(like: header, on: Dataset(name: header.dataset, users: users, items: items, interactions: interactions),
                                                 dataFingerprint: fingerprint(watermark: watermark), version: version, isCancelled: isCancelled)
            return Result(artifact: artifact, watermark: watermark, interactions: interactions, users: users)
        } catch let error as TrainingRunError {
            throw ServiceError.invalid("retrain: \(error)")
        }
    }

    /// The data fingerprint of a model fitted on the events with ids ≤ `watermark`.
    public static func fingerprint(watermark: Int64) -> String { "events<=\(watermark)" }

    /// The watermark a refit model records in its fingerprint; nil for a model trained outside the store.
    public static func watermark(of header: ModelArtifact.Header) -> Int64? {
        header.dataFingerprint.hasPrefix("events<=") ? Int64(header.dataFingerprint.dropFirst("events<=".count)) : nil
    }
}

/// Retrain requests kept in the store, so that any replica can ask and the one worker answers.
public enum RetrainRequests {
    static let requestedKey = "retrain_requested"
    static let servedKey = "retrain_served"

    /// Records a request (a fresh token); the worker trains when the newest token is not the one it served.
    public static func request(in store: any EventStore) throws {
        try store.setMeta(requestedKey, UUID().uuidString)
    }

    /// The newest unserved request's token, nil when none is pending.
    public static func pending(in store: any EventStore) throws -> String? {
        guard let requested = try store.meta(requestedKey) else { return nil }
        return requested == (try store.meta(servedKey)) ? nil : requested
    }

    static func markServed(_ token: String, in store: any EventStore) throws { try store.setMeta(servedKey, token) }
}

/// The lock that lets exactly one worker train at a time; released by `release()` or by the holder's death.
public protocol TrainingLease: Sendable {
    func release()
}

/// `affinity worker`: trains off the request path and publishes to the store's model registry, which every replica
/// follows. One fit at a time across all workers (`acquireLock` waits for the store's training lock).
public final class TrainingWorker: Sendable {
    public let store: any AffinityStore
    public let logger: Logger
    private let acquireLock: @Sendable () throws -> any TrainingLease

    public init(store: any AffinityStore, logger: Logger, acquireLock: @escaping @Sendable () throws -> any TrainingLease) {
        self.store = store
        self.logger = logger
        self.acquireLock = acquireLock
    }

    /// Makes `artifact` the live version when the registry has none yet (the first deployment); returns the live record.
    @discardableResult
    public func publishInitial(_ artifact: ModelArtifact) throws -> ModelVersionRecord {
        let lease = try acquireLock()
        defer { lease.release() }
        if let live = try store.liveModelVersion() { return live }
        var initial = artifact
        initial.header.modelVersion = 1
        let record = try store.publishModel(.bytes(initial.encoded()), note: "\(artifact.header.model), initial", makeLive: true)
        logger.info("published the initial model", metadata: ["model_version": "\(record.version)"])
        return record
    }

    /// Takes the lock, fits the live model again on every stored event, publishes the result as the live version
    /// and marks `request` (if any) served. Returns the new version's record.
    @discardableResult
    public func trainOnce(serving request: String? = nil, beforeFit: (@Sendable () -> Void)? = nil) throws -> ModelVersionRecord {
        let lease = try acquireLock()
        defer { lease.release() }
        guard let (live, current) = try store.liveArtifact() else {
            throw ServiceError.invalid("the store has no live model to retrain (start a replica with --model, or run the worker with --model)")
        }
        let started = Date()
        // The version number is the registry's; the header records it so that the replicas report it.
        let nextVersion = (try store.modelVersions().map(\.version).max() ?? live.version) + 1
        let fitted = try StoreRefit.refit(store: store, like: current.header, version: nextVersion, logger: logger, beforeFit: beforeFit)
        let record = try store.publishModel(.bytes(fitted.artifact.encoded()),
                                            note: "\(current.header.model), \(fitted.artifact.header.dataFingerprint)", makeLive: true)
        if let request { try RetrainRequests.markServed(request, in: store) }
        logger.info("published", metadata: ["model_version": "\(record.version)", "events": "\(fitted.interactions.count)",
                                            "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))"])
        return record
    }

    /// Trains whenever a replica asked for it (polled every `poll`) and, with `every`, on that schedule, until the
    /// task is cancelled. A failed fit is logged and the old version keeps serving.
    public func run(every: Duration?, poll: Duration) async {
        let clock = ContinuousClock()
        var due = every.map { clock.now + $0 }
        while !Task.isCancelled {
            do {
                let request = try RetrainRequests.pending(in: store)
                let scheduled = due.map { clock.now >= $0 } ?? false
                if request != nil || scheduled {
                    _ = try await onThreadOfItsOwn(named: "affinity-train") { try self.trainOnce(serving: request) }
                    due = every.map { clock.now + $0 }
                }
            } catch {
                logger.error("training failed; the live version keeps serving", metadata: ["error": "\(error)"])
                due = every.map { clock.now + $0 }
            }
            try? await Task.sleep(for: poll)
        }
    }
}

/// Runs blocking work (a fit takes minutes; a training lock may wait for another worker) on a thread of its own and
/// awaits it, so that Swift's few cooperative threads stay free to serve requests and handle SIGTERM meanwhile.
func onThreadOfItsOwn<T: Sendable>(named name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, Error>) in
        let thread = Thread { done.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}

/// For a store on one machine (SQLite): an exclusive `flock` on a file beside it; the kernel releases it when the
/// holder dies.
public final class FileTrainingLease: TrainingLease {
    private let descriptor: Int32

    /// Waits for the lock on `path` (created if missing).
    public init(path: String) throws {
        descriptor = open(path, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw ServiceError.invalid("cannot open the training lock file \(path)") }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(descriptor)
                throw ServiceError.invalid("cannot lock \(path) (errno \(errno))")
            }
        }
    }

    public func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
