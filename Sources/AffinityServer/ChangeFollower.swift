import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import AffinityServing

/// Keeps a service in step with what other processes write to a shared store: it polls the store's change feed
/// and applies deletions, then events, to the service's state (seen items, fold-in). A replica's own writes are
/// not in its feed: it applied them when it stored them.
///
/// Bound: an event acknowledged by one replica is visible to fold-in on the others within one polling interval
/// plus one poll's duration, once every transaction that started before it has ended.
public final class ChangeFollower: Service, Sendable {
    public let service: RecommendationService
    public let interval: Duration
    private let cursor: NIOLockedValueBox<ChangeCursor>

    /// `from` must be taken before the service read the store (before its initialiser ran), so that nothing
    /// committed in between is missed; an event stored in that gap may be applied twice, which only repeats an
    /// item in the user's fold-in.
    public init(service: RecommendationService, from start: ChangeCursor, interval: Duration = .milliseconds(200)) {
        self.service = service
        self.interval = interval
        cursor = NIOLockedValueBox(start)
    }

    /// Reads and applies one batch of changes; returns how many deletions and events it applied.
    @discardableResult
    public func poll() throws -> (deletions: Int, events: Int) {
        try cursor.withLockedValue { position in
            let changes = try service.store.changes(after: position)
            for user in changes.deletedUsers { try service.forgetDeletedElsewhere(user: user) }
            if !changes.events.isEmpty { service.applyStoredElsewhere(changes.events) }
            position = changes.next
            try followRegistry()
            return (changes.deletedUsers.count, changes.events.count)
        }
    }

    /// When a worker trains: swaps to the registry's live version once it differs from the one served.
    private func followRegistry() throws {
        guard service.workerTrains, let registry = service.store as? any ModelVersionStore,
              let live = try registry.liveModelVersion(), live.version != service.registryVersion else { return }
        let artifact = try ModelArtifact.decode(registry.modelBytes(live), path: "model version \(live.version)")
        try service.installLive(version: live.version, artifact: artifact)
    }

    /// Polls until graceful shutdown (or cancellation); a failed poll (the store unreachable) is logged and retried.
    public func run() async {
        await cancelWhenGracefulShutdown { await self.follow() }
    }

    private func follow() async {
        var failing = false
        while !Task.isCancelled {
            do {
                let applied = try poll()
                if failing { service.logger.info("change feed reachable again") }
                failing = false
                if applied.deletions + applied.events > 0 {
                    service.logger.debug("applied changes from other processes",
                                         metadata: ["deletions": "\(applied.deletions)", "events": "\(applied.events)"])
                }
            } catch {
                if !failing { service.logger.error("change feed poll failed", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await Task.sleep(for: interval)
        }
    }
}
