import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing
import AffinityApplication

/// Where a user's recommendations came from.
public enum RecommendationSource: String, Codable, Sendable {
    /// The trained embedding.
    case model
    /// An embedding solved from the user's events since training (fold-in).
    case foldIn = "fold-in"
    /// The user is unknown to the model and has no events (or was deleted): most popular items.
    case popularity
}

public struct Recommendations: Sendable {
    public var source: RecommendationSource
    public var items: [(id: String, score: Float)]
    public var modelVersion: Int
    /// The items' titles, when the model has them.
    public var titles: [String]?

    /// A ranked list from `model`, with raw ids and titles.
    init(_ top: [ScoredItem], model: ServingModel, version: Int, source: RecommendationSource) {
        self.source = source
        items = top.map { (model.items.raw($0.item), $0.score) }
        modelVersion = version
        titles = model.header.itemTitles.map { titles in top.map { titles[Int($0.item)] } }
    }
}

public struct ServiceStatus: Codable, Sendable {
    public var modelVersion: Int
    public var model: String
    public var dataset: String
    public var users: Int
    public var items: Int
    public var dimension: Int
    public var eventsStored: Int
    public var lastTraining: String
    public var retraining: Bool
    public var lastRetrainError: String?
    /// The model registry's version being served, when `affinity worker` trains.
    public var registryVersion: Int?
}

public enum ServiceError: Error, CustomStringConvertible, Sendable {
    case unknownItem(String)
    case invalid(String)
    public var description: String {
        switch self {
        case .unknownItem(let id): return "unknown item '\(id)'"
        case .invalid(let why): return why
        }
    }
}

/// The service's mutable state. It is reachable only inside `state.withLockedValue`, so the compiler, not a
/// comment, keeps every read and write under the lock; the mutating helpers below can only run there.
struct ServiceState: Sendable {
    var model: ServingModel
    var version: Int
    /// The registry version the model came from, when a worker trains (`installLive`).
    var registryVersion: Int?
    var lastTraining: String
    /// Items each user has interacted with, as item indices of the current model (items the model does not
    /// know are kept in the store and picked up by the next retrain).
    var seen: [String: [Int32]] = [:]
    /// Interaction counts per item over the stored events (the popularity fallback).
    var itemCounts: [Int32]
    var folded: [String: [Float]] = [:]
    var retraining = false
    var deletedDuringRetrain: Set<String> = []
    var retrainPending = false
    var lastRetrainError: String?
    /// Graceful shutdown has begun: no retrain starts, one in flight stops at its next epoch and publishes nothing.
    var stopping = false
    /// Called on the retrain's thread just before it fits (tests hold a retrain in flight with it).
    var beforeRetrainFit: (@Sendable () -> Void)?
    /// While a new snapshot's per-user state is rebuilt off the lock: the writes applied meanwhile, in order, to be
    /// replayed onto it at the swap (`rebuildAndSwap`). Nil when no rebuild runs.
    var writesDuringRebuild: [WriteDuringRebuild]?

    /// Records the events' items as seen and re-solves the touched users' fold-in; returns how many users changed.
    mutating func apply(_ events: [Event]) -> Int {
        var touched = Set<String>()
        for e in events {
            guard let i = model.items.dense(e.item) else { continue }
            seen[e.user, default: []].append(i)
            itemCounts[Int(i)] += 1
            touched.insert(e.user)
        }
        for user in touched { refold(user) }
        return touched.count
    }

    /// Solves the user's embedding from all their items, anchored at the trained one.
    mutating func refold(_ user: String) {
        folded[user] = Self.foldIn(user, items: seen[user] ?? [], on: model)
    }

    /// `user`'s fold-in from `items` on `model`, anchored at their trained row when the model has one.
    static func foldIn(_ user: String, items: [Int32], on model: ServingModel) -> [Float] {
        model.foldIn(items: items, prior: model.users.dense(user).map { model.userVector($0) })
    }

    mutating func dropUserState(_ user: String) {
        writesDuringRebuild?.append(.deletion(user))
        if let items = seen[user] { for i in items { itemCounts[Int(i)] -= 1 } }
        seen[user] = nil
        folded[user] = nil
    }

    /// Installs `next` with the per-user state rebuilt for it, then replays the writes that landed during the
    /// rebuild, so that the model, seen items, counts and fold-ins change in one step.
    mutating func swap(to next: ServingModel, rebuilt: RebuiltUserState) {
        let writes = writesDuringRebuild ?? []
        writesDuringRebuild = nil
        model = next
        seen = rebuilt.seen
        itemCounts = rebuilt.counts
        folded = rebuilt.folded
        for write in writes {
            switch write {
            case .deletion(let user):
                dropUserState(user)
            case .events(let events, let ids):
                // A batch is one transaction: the scan read all of it (it is in `rebuilt`) or none of it.
                if let ids, rebuilt.scanned(ids.lowerBound) { continue }
                _ = apply(events)
            }
        }
    }

    /// The stored interactions of every user other than `user` known to `snapshot`, in its index space.
    func retainedInteractions(excluding user: String, snapshot: ServingModel) -> Interactions {
        var pairs = Interactions()
        for (raw, items) in seen where raw != user {
            guard let u = snapshot.users.dense(raw) else { continue }
            for i in items { pairs.users.append(u); pairs.items.append(i) }
        }
        return pairs
    }
}

/// A write applied to the served state while a new snapshot's state was being rebuilt.
enum WriteDuringRebuild: Sendable {
    /// Stored events; `ids` when this process stored them (nil: read from another replica's change feed).
    case events([Event], ids: ClosedRange<Int64>?)
    case deletion(String)
}

/// Seen items, popularity counts and fold-ins for a snapshot, computed from the store without holding the lock.
struct RebuiltUserState: Sendable {
    var seen: [String: [Int32]] = [:]
    var counts: [Int32]
    var folded: [String: [Float]] = [:]
    /// The ids of the events the scan read, ascending. Kept whole, not as a high-water mark: PostgreSQL commits
    /// ids out of order, so a batch stored during the scan can have a lower id than one the scan read.
    var scannedIDs: [Int64] = []

    func scanned(_ id: Int64) -> Bool {
        var low = 0, high = scannedIDs.count
        while low < high {
            let middle = (low + high) / 2
            if scannedIDs[middle] < id { low = middle + 1 } else { high = middle }
        }
        return low < scannedIDs.count && scannedIDs[low] == id
    }
}

/// The recommendation service without HTTP: a model snapshot, the event store, and the per-user state that
/// events and deletions change at once (seen items, folded-in embeddings). Reads copy what they need under a
/// short lock and compute outside it; a retrain builds a new snapshot on its own thread and swaps it in under
/// the lock, so requests are served throughout. Retrains and the scoring threads are run and stopped by
/// `backgroundServices` (swift-service-lifecycle), which `runServer` starts beside the HTTP server.
public final class RecommendationService: Sendable {
    public let store: any EventStore
    public let modelPath: String?
    public let logger: Logger
    public let foldInSettings: FoldInSettings
    public let unlearningSettings: UnlearningSettings
    /// A separate `affinity worker` trains: a retrain request is recorded in the store for it, never run here, and
    /// new versions arrive from the store's model registry (`installLive`).
    public let workerTrains: Bool
    private let scoring: ScoringQueue
    private let state: NIOLockedValueBox<ServiceState>
    /// Retrain requests, consumed one at a time by `RetrainService`.
    private let retrainRequests: AsyncStream<Void>
    private let retrainRequested: AsyncStream<Void>.Continuation

    public init(artifact: ModelArtifact, store: any EventStore, modelPath: String? = nil, logger: Logger = Logger(label: "affinity"),
                foldIn: FoldInSettings = FoldInSettings(), unlearning: UnlearningSettings = UnlearningSettings(),
                scoringThreads: Int = 1, workerTrains: Bool = false, registryVersion: Int? = nil) throws {
        self.store = store
        self.workerTrains = workerTrains
        self.modelPath = modelPath
        self.logger = logger
        foldInSettings = foldIn
        unlearningSettings = unlearning
        scoring = ScoringQueue(workers: scoringThreads, maxBatch: 32)
        state = NIOLockedValueBox(ServiceState(
            model: ServingModel(artifact: artifact, foldIn: foldIn), version: artifact.header.modelVersion ?? 1,
            registryVersion: registryVersion,
            lastTraining: artifact.header.createdAt, itemCounts: [Int32](repeating: 0, count: artifact.itemEmbeddings.rows)))
        (retrainRequests, retrainRequested) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

        // A new store starts with the model's training data, so that retraining and deletion see everything.
        if try store.count() == 0 && (try store.meta("seeded_from")) == nil {
            let h = artifact.header
            var events: [Event] = []
            events.reserveCapacity(artifact.training.count)
            for p in 0..<artifact.training.count {
                events.append(Event(user: h.userIDs[Int(artifact.training.users[p])], item: h.itemIDs[Int(artifact.training.items[p])]))
            }
            try store.appendNow(events, source: "training")
            try store.setMeta("seeded_from", h.dataFingerprint)
            try store.setMeta("model_watermark", "\(h.dataFingerprint)@\(try store.lastID())")
            logger.info("seeded the event store with the model's training data", metadata: ["events": "\(events.count)"])
        }
        // Events newer than the model's training snapshot (recorded with the model's fingerprint) are folded in.
        var watermark: Int64 = 0
        if let mark = try store.meta("model_watermark"), let at = mark.lastIndex(of: "@"),
           mark[..<at] == artifact.header.dataFingerprint, let id = Int64(mark[mark.index(after: at)...]) {
            watermark = id
        }
        try rebuildAndSwap(to: currentModel, after: watermark) { _ in }
    }

    /// What runs beside the HTTP server and stops on graceful shutdown: the retrain loop, then the scoring
    /// threads (a service group shuts its services down in reverse order, so list these before the server).
    public var backgroundServices: [any Service] { [ScoringService(queue: scoring), RetrainService(service: self)] }

    // MARK: Reads

    public var currentModel: ServingModel { state.withLockedValue { $0.model } }
    public var modelVersion: Int { state.withLockedValue { $0.version } }

    /// The user's top-k, computed on the calling thread.
    public func recommendations(user: String, k: Int, excludeSeen: Bool) -> Recommendations {
        let plan = plan(user: user, excludeSeen: excludeSeen)
        let top = plan.vector.map { plan.model.recommend($0, k: k, exclude: plan.exclude) } ?? popular(plan, k: k)
        return finish(plan, top)
    }

    /// The user's top-k, ranked in a batch with concurrent requests (the HTTP route's path).
    public func recommendations(user: String, k: Int, excludeSeen: Bool) async -> Recommendations {
        let plan = plan(user: user, excludeSeen: excludeSeen)
        let top: [ScoredItem]
        if let vector = plan.vector {
            top = await scoring.rank(ScoringQueue.Request(model: plan.model, vector: vector, exclude: plan.exclude, k: k))
        } else {
            top = popular(plan, k: k)
        }
        return finish(plan, top)
    }

    private struct Plan {
        let model: ServingModel
        let version: Int
        let vector: [Float]?
        let source: RecommendationSource
        let exclude: [Int32]
        let counts: [Int32]?
    }

    /// What ranking a user needs, copied out under the lock.
    private func plan(user: String, excludeSeen: Bool) -> Plan {
        state.withLockedValue { s in
            let exclude = excludeSeen ? (s.seen[user] ?? []) : []
            if let f = s.folded[user] { return Plan(model: s.model, version: s.version, vector: f, source: .foldIn, exclude: exclude, counts: nil) }
            if let u = s.model.users.dense(user) {
                return Plan(model: s.model, version: s.version, vector: s.model.userVector(u), source: .model, exclude: exclude, counts: nil)
            }
            return Plan(model: s.model, version: s.version, vector: nil, source: .popularity, exclude: exclude, counts: s.itemCounts)
        }
    }

    private func popular(_ plan: Plan, k: Int) -> [ScoredItem] {
        var scores = plan.counts!.map { Float($0) }
        for i in plan.exclude { scores[Int(i)] = -.infinity }
        return scores.withUnsafeMutableBufferPointer { ServingModel.top($0, k: k) }
    }

    private func finish(_ plan: Plan, _ top: [ScoredItem]) -> Recommendations {
        Recommendations(top, model: plan.model, version: plan.version, source: plan.source)
    }

    public func similarItems(item: String, k: Int) async throws -> Recommendations {
        let (snapshot, v) = state.withLockedValue { ($0.model, $0.version) }
        guard let i = snapshot.items.dense(item) else { throw ServiceError.unknownItem(item) }
        let top = await scoring.rank(ScoringQueue.Request(model: snapshot, vector: snapshot.unitVector(i), exclude: [i], k: k, table: .unitItems))
        return Recommendations(top, model: snapshot, version: v, source: .model)
    }

    public func status() throws -> ServiceStatus {
        let stored = try store.count()
        return state.withLockedValue { s in
            ServiceStatus(modelVersion: s.version, model: s.model.header.model, dataset: s.model.header.dataset,
                          users: s.model.users.count, items: s.model.itemCount, dimension: s.model.dimension,
                          eventsStored: stored, lastTraining: s.lastTraining, retraining: s.retraining,
                          lastRetrainError: s.lastRetrainError, registryVersion: s.registryVersion)
        }
    }

    /// Mean number of recommendation requests ranked per pass over the item table.
    public var meanScoringBatch: Double { scoring.meanBatchSize }

    // MARK: Writes

    /// Stores a batch durably, then updates the users' state at once (seen items, fold-in).
    /// Returns the stored ids and the number of users whose recommendations changed.
    @discardableResult
    public func ingest(_ events: [Event]) async throws -> (ids: ClosedRange<Int64>?, usersUpdated: Int) {
        let ids = try await store.append(events)
        return (ids, state.withLockedValue { s in
            s.writesDuringRebuild?.append(.events(events, ids: ids))
            return s.apply(events)
        })
    }

    /// Applies events another process stored (read from the store's change feed): the state update `ingest`
    /// makes after its append. Returns the number of users whose recommendations changed.
    @discardableResult
    public func applyStoredElsewhere(_ events: [Event]) -> Int {
        state.withLockedValue { s in
            s.writesDuringRebuild?.append(.events(events, ids: nil))
            return s.apply(events)
        }
    }

    /// Forgets a user another process deleted from the store: their state and row at once, the items'
    /// embeddings by the approximate unlearning step.
    public func forgetDeletedElsewhere(user: String) throws { _ = try unlearnAndSwap(user: user, items: nil) }

    /// How a deletion removed the user's influence on the model.
    public enum Unlearned: String, Codable, Sendable {
        /// The approximate unlearning step ran on the item embeddings (see `Unlearning`).
        case approximate
        /// A background retrain without the user's events was started.
        case retrain
        /// The model never trained on this user (they were served by fold-in or popularity): nothing to undo.
        case notNeeded = "not-needed"
    }

    /// Deletes the user's events and removes their influence: their embedding at once, the items' either by
    /// the approximate unlearning step or by a background retrain.
    public func forget(user: String, retrain: Bool) async throws -> (eventsDeleted: Int, unlearning: Unlearned, modelVersion: Int) {
        let deleted = try await store.deleteUser(user)
        // The user's own row goes at once either way; the items' embeddings are unlearned now or by the retrain.
        let (mode, version) = try unlearnAndSwap(user: user, items: nil, approximate: !retrain)
        if mode == .retrain { startRetrain() }
        state.withLockedValue { s in if s.retraining { s.deletedDuringRetrain.insert(user) } }
        logger.info("forgot user", metadata: ["events": "\(deleted)", "unlearning": "\(mode.rawValue)", "model_version": "\(version)"])
        return (deleted, mode, version)
    }

    /// Unlearns `user` (with `items`, or the items the service has for them) from the current snapshot and
    /// swaps the result in; retries if another swap happened meanwhile.
    private func unlearnAndSwap(user: String, items explicit: [Int32]?, approximate: Bool = true) throws -> (Unlearned, Int) {
        while true {
            let (snapshot, v, items) = state.withLockedValue { s in (s.model, s.version, explicit ?? s.seen[user] ?? []) }
            guard snapshot.users.dense(user) != nil else {
                return state.withLockedValue { s in s.dropUserState(user); return (.notNeeded, s.version) }
            }
            let retained = state.withLockedValue { $0.retainedInteractions(excluding: user, snapshot: snapshot) }
            let updated = try removing(user: user, items: items, retained: retained, from: snapshot, approximate: approximate, version: v + 1)
            let swapped = state.withLockedValue { s -> Int? in
                guard s.version == v else { return nil }
                s.model = updated
                s.version += 1
                let refold = Array(s.folded.keys)
                s.dropUserState(user)
                s.folded.removeAll()  // fold-ins were solved against the old item embeddings
                for u in refold where u != user { s.refold(u) }
                return s.version
            }
            if let swapped { return (approximate ? .approximate : .retrain, swapped) }
        }
    }

    /// A snapshot without `user`: their row is removed from the user table and, when `approximate`, the item
    /// embeddings no longer carry their interactions with `items` (see `Unlearning`). The result is also written
    /// to the model file, so a restart cannot bring the user back.
    private func removing(user: String, items: [Int32], retained: Interactions, from snapshot: ServingModel, approximate: Bool,
                          version: Int) throws -> ServingModel {
        guard let u = snapshot.users.dense(user) else { return snapshot }
        var users = snapshot.userEmbeddings
        var itemTable = snapshot.itemEmbeddings
        if approximate && !items.isEmpty {
            let retainedByUser = retained.matrix(users: snapshot.users.count, items: snapshot.itemCount)
            let result = Unlearning.forget(users: users, items: itemTable, forget: items.map { (u, $0) },
                                           retainedByUser: retainedByUser, retainedByItem: retainedByUser.transposed(),
                                           settings: unlearningSettings)
            users = result.users
            itemTable = result.items
        }
        // Drop the user's row and id; the others keep their order, shifted past the removed row.
        let d = users.cols
        var keptIDs = snapshot.header.userIDs
        keptIDs.remove(at: Int(u))
        users.storage.removeSubrange((Int(u) * d)..<((Int(u) + 1) * d))
        let shift: (Int32) -> Int32 = { $0 > u ? $0 - 1 : $0 }
        let training = Interactions(users: retained.users.map(shift), items: retained.items)
        var header = snapshot.header
        header.userIDs = keptIDs
        header.interactionCount = training.count
        header.modelVersion = version
        let artifact = try ModelArtifact(header: header, userEmbeddings: Matrix(rows: keptIDs.count, cols: d, values: users.storage),
                                         itemEmbeddings: itemTable, training: training)
        if let modelPath { try artifact.write(to: modelPath) }
        return ServingModel(artifact: artifact, foldIn: foldInSettings)
    }

    // MARK: Retraining

    /// Asks `RetrainService` for a retrain on every stored event unless one is running (then one more follows
    /// it); returns false if one was running or the service is stopping.
    @discardableResult
    public func startRetrain() -> Bool {
        if workerTrains {
            do { try RetrainRequests.request(in: store) } catch {
                logger.error("could not record the retrain request for the worker", metadata: ["error": "\(error)"])
                return false
            }
            return true
        }
        let started = state.withLockedValue { s -> Bool in
            if s.stopping { return false }
            if s.retraining { s.retrainPending = true; return false }
            s.retraining = true
            s.deletedDuringRetrain = []
            return true
        }
        if started { retrainRequested.yield() }
        return started
    }

    /// Runs one requested retrain on the calling thread, recording a failure instead of throwing.
    fileprivate func retrainRequestedNow() {
        do {
            try retrainNow()
        } catch TrainingError.cancelled {
            logger.info("retrain stopped: shutting down")
            state.withLockedValue { $0.retraining = false }
        } catch {
            logger.error("retrain failed", metadata: ["error": "\(error)"])
            state.withLockedValue { $0.lastRetrainError = "\(error)"; $0.retraining = false }
        }
    }

    /// Graceful shutdown: no new retrain; one in flight stops at its next epoch without publishing.
    fileprivate func stopRetraining() {
        state.withLockedValue { $0.stopping = true }
        retrainRequested.finish()
    }

    /// Whether graceful shutdown has reached the retrain loop.
    var isStopping: Bool { state.withLockedValue { $0.stopping } }

    fileprivate var retrainRequestStream: AsyncStream<Void> { retrainRequests }

    /// Sets the hook called on the retrain's thread just before it fits.
    func setBeforeRetrainFit(_ hook: (@Sendable () -> Void)?) { state.withLockedValue { $0.beforeRetrainFit = hook } }

    /// Retrains synchronously (`RetrainService` runs it on a thread of its own; tests call it directly).
    public func retrainNow() throws {
        defer {
            let again = state.withLockedValue { s -> Bool in
                s.retraining = false
                defer { s.retrainPending = false }
                return s.retrainPending && !s.stopping
            }
            if again { startRetrain() }
        }
        let header = currentModel.header
        let started = Date()
        let (nextVersion, hook) = state.withLockedValue { ($0.version + 1, $0.beforeRetrainFit) }
        let fitted = try StoreRefit.refit(store: store, like: header, version: nextVersion, logger: logger, beforeFit: hook,
                                          isCancelled: { [state] in state.withLockedValue { $0.stopping } })
        let (artifact, watermark, interactions, users) = (fitted.artifact, fitted.watermark, fitted.interactions, fitted.users)
        let newHeader = artifact.header
        if let modelPath { try artifact.write(to: modelPath) }
        let next = ServingModel(artifact: artifact, foldIn: foldInSettings)
        try store.setMeta("model_watermark", "\(newHeader.dataFingerprint)@\(watermark)")
        var lateDeletes = Set<String>()
        try rebuildAndSwap(to: next, after: watermark) { s in
            s.version = max(s.version + 1, nextVersion)
            s.lastTraining = newHeader.createdAt
            s.lastRetrainError = nil
            lateDeletes = s.deletedDuringRetrain
        }
        // Users deleted while training ran were in its snapshot: unlearn them from the new model too.
        for user in lateDeletes {
            guard let u = users.dense(user) else { continue }
            let items = (0..<interactions.count).filter { interactions.users[$0] == u }.map { interactions.items[$0] }
            _ = try unlearnAndSwap(user: user, items: items)
        }
        logger.info("retrained", metadata: ["seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))",
                                            "model_version": "\(modelVersion)"])
    }

    /// Serves a version of the store's model registry (a worker published it): the new snapshot, its seen items
    /// and its fold-ins are built off the lock and swapped in together under it. Requests are served throughout,
    /// each by the old or the new version.
    public func installLive(version: Int, artifact: ModelArtifact) throws {
        let started = Date()
        let next = ServingModel(artifact: artifact, foldIn: foldInSettings)
        let watermark = StoreRefit.watermark(of: artifact.header) ?? 0
        try rebuildAndSwap(to: next, after: watermark) { s in
            s.version += 1
            s.registryVersion = version
            s.lastTraining = artifact.header.createdAt
        }
        // A user deleted while the worker trained is in the new model but has no stored events: forget them again.
        let deleted = state.withLockedValue { s in s.model.users.rawIDs.filter { s.seen[$0] == nil } }
        for user in deleted { _ = try unlearnAndSwap(user: user, items: nil) }
        logger.info("now serving the registry's live version", metadata: [
            "registry_version": "\(version)", "deleted_since": "\(deleted.count)",
            "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))"])
    }

    /// The registry version being served (nil unless a worker trains).
    public var registryVersion: Int? { state.withLockedValue { $0.registryVersion } }

    /// Makes `next` the served snapshot together with its seen items, counts and fold-ins, rebuilt from the store
    /// off the lock (events with id > `watermark` arrived after its training snapshot and are folded in). Writes
    /// that land meanwhile are recorded and replayed at the swap, which also runs `update` under the same lock.
    /// One rebuild at a time: the in-process retrain, a registry swap (the change follower's thread) and the
    /// initialiser never overlap.
    private func rebuildAndSwap(to next: ServingModel, after watermark: Int64, _ update: (inout ServiceState) -> Void) throws {
        state.withLockedValue { $0.writesDuringRebuild = [] }
        let rebuilt: RebuiltUserState
        do {
            rebuilt = try rebuiltUserState(for: next, after: watermark)
        } catch {
            state.withLockedValue { $0.writesDuringRebuild = nil }
            throw error
        }
        state.withLockedValue { s in
            s.swap(to: next, rebuilt: rebuilt)
            update(&s)
        }
    }

    private func rebuiltUserState(for snapshot: ServingModel, after watermark: Int64) throws -> RebuiltUserState {
        var rebuilt = RebuiltUserState(counts: [Int32](repeating: 0, count: snapshot.itemCount))
        var late = Set<String>()
        try store.forEachInteraction { id, user, item in
            rebuilt.scannedIDs.append(id)  // the stores read in id order
            guard let i = snapshot.items.dense(item) else { return }
            rebuilt.seen[user, default: []].append(i)
            rebuilt.counts[Int(i)] += 1
            if id > watermark { late.insert(user) }
        }
        // A user with stored events the model has no row for (or, after a restart, any events newer than the
        // model) is served by fold-in, solved from all their items and anchored at the trained row.
        for (user, items) in rebuilt.seen where snapshot.users.dense(user) == nil || late.contains(user) {
            rebuilt.folded[user] = ServiceState.foldIn(user, items: items, on: snapshot)
        }
        return rebuilt
    }
}

/// Runs requested retrains one at a time, each on a thread of its own (a fit is minutes of blocking numeric
/// work, which must not occupy Swift's cooperative threads). On graceful shutdown it takes no new request and
/// waits for one in flight, which stops at its next epoch without publishing.
struct RetrainService: Service {
    let service: RecommendationService

    func run() async {
        await withGracefulShutdownHandler {
            for await _ in service.retrainRequestStream {
                try? await onThreadOfItsOwn(named: "affinity-retrain") { [service] in service.retrainRequestedNow() }
            }
        } onGracefulShutdown: { [service] in
            service.stopRetraining()
        }
    }
}

/// Stops the scoring threads on graceful shutdown, after the requests they were given are ranked.
struct ScoringService: Service {
    let queue: ScoringQueue

    func run() async {
        try? await gracefulShutdown()
        queue.stop()
    }
}
