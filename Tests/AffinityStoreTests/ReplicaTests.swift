import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityServing
import AffinityServer
import AffinityPostgres
import AffinityTestSupport

/// Two serving replicas on one store: what one stores, the other folds in; whom one deletes, the other forgets.
@Suite("Replicas on one store")
struct ReplicaTests {
    /// Stated bound of visibility: the polling interval plus one poll, with generous slack for a loaded machine and
    /// for the whole suite's tests sharing the cooperative threads the followers poll on (measured visibility is
    /// printed below; a change that never arrives still fails).
    static let interval = Duration.milliseconds(50)
    static let bound = Duration.seconds(60)

    /// A small model: 5 users with trained rows, 6 items, d = 3.
    static func artifact() throws -> ModelArtifact {
        var rng = SeededGenerator(seed: 5)
        let users = 5, items = 6, d = 3
        let header = ModelArtifact.Header(
            model: "bpr", hyperparameters: ["embedding_size": "3"], retrainEpochs: 1, seed: 2, dataset: "replicas",
            dataFingerprint: "replicas-1", createdAt: "2026-12-05T00:00:00Z",
            userIDs: (0..<users).map { "r\($0)" }, itemIDs: (0..<items).map { "m\($0)" }, itemTitles: nil,
            dimension: d, interactionCount: 7)
        return try ModelArtifact(
            header: header,
            userEmbeddings: Matrix(rows: users, cols: d, values: (0..<(users * d)).map { _ in rng.nextGaussian() }),
            itemEmbeddings: Matrix(rows: items, cols: d, values: (0..<(items * d)).map { _ in rng.nextGaussian() }),
            training: Interactions(users: [0, 0, 1, 2, 3, 4, 4], items: [0, 1, 2, 3, 4, 5, 0]))
    }

    /// Waits until `condition` holds; how long that took, or nil past the bound.
    static func waitUntil(_ condition: () throws -> Bool) async throws -> Duration? {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < bound {
            if try condition() { return clock.now - start }
            try await Task.sleep(for: .milliseconds(10))
        }
        // A last look: while the parallel suite keeps the cooperative threads busy, this task (or the follower's)
        // may resume only after the bound has passed.
        return try condition() ? clock.now - start : nil
    }

    @Test("an event stored through one replica is folded in on the other, and a deletion reaches both",
          arguments: StoreKind.allCases)
    func eventsAndDeletionsCross(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let artifact = try Self.artifact()
        let storeA = try location.open(), storeB = try location.open()
        defer { try? storeA.close(); try? storeB.close() }
        let serviceA = try RecommendationService(artifact: artifact, store: storeA)  // seeds the shared store
        let cursorA = try storeA.changeCursor()
        let cursorB = try storeB.changeCursor()
        let serviceB = try RecommendationService(artifact: artifact, store: storeB)
        #expect(try storeB.count() == 7)  // seeded once, by the first replica
        let followers = [ChangeFollower(service: serviceA, from: cursorA, interval: Self.interval),
                         ChangeFollower(service: serviceB, from: cursorB, interval: Self.interval)]
        let running = followers.map { follower in Task { await follower.run() } }
        defer { for task in running { task.cancel() } }

        // A newcomer's events go to A; B serves the newcomer by fold-in, without the items already seen.
        #expect(await serviceB.recommendations(user: "newcomer", k: 3, excludeSeen: true).source == .popularity)
        try await serviceA.ingest([Event(user: "newcomer", item: "m2"), Event(user: "newcomer", item: "m3")])
        let seenOnB = try await Self.waitUntil { serviceB.recommendations(user: "newcomer", k: 3, excludeSeen: true).source == .foldIn }
        #expect(seenOnB != nil, "B did not fold in A's event within \(Self.bound)")
        let onB = await serviceB.recommendations(user: "newcomer", k: 6, excludeSeen: true)
        #expect(Set(onB.items.map(\.id)).isDisjoint(with: ["m2", "m3"]))
        #expect(onB.items.count == 4)
        // Both replicas solved the same fold-in from the same events and model.
        let onA = await serviceA.recommendations(user: "newcomer", k: 6, excludeSeen: true)
        #expect(onA.items.map(\.id) == onB.items.map(\.id))

        // The other direction.
        try await serviceB.ingest([Event(user: "r1", item: "m5")])
        let seenOnA = try await Self.waitUntil { serviceA.recommendations(user: "r1", k: 3, excludeSeen: true).source == .foldIn }
        #expect(seenOnA != nil, "A did not fold in B's event within \(Self.bound)")

        // A trained user deleted through B: gone from the store, and from A's model and state.
        #expect(serviceA.currentModel.users.dense("r0") != nil)
        let deleted = try await serviceB.forget(user: "r0", retrain: false)
        #expect(deleted.eventsDeleted == 2)
        let forgottenOnA = try await Self.waitUntil { serviceA.currentModel.users.dense("r0") == nil }
        #expect(forgottenOnA != nil, "A did not forget the user B deleted within \(Self.bound)")
        #expect(await serviceA.recommendations(user: "r0", k: 3, excludeSeen: true).source == .popularity)
        #expect(try storeA.count(user: "r0") == 0)

        // A folded-in user deleted through A disappears from B's fold-ins too.
        _ = try await serviceA.forget(user: "newcomer", retrain: false)
        let newcomerGone = try await Self.waitUntil { serviceB.recommendations(user: "newcomer", k: 3, excludeSeen: true).source == .popularity }
        #expect(newcomerGone != nil, "B kept serving the deleted newcomer by fold-in")
        print("replica visibility (\(kind.rawValue), polling every \(Self.interval)): event A→B \(seenOnB.map { "\($0)" } ?? "-"), B→A \(seenOnA.map { "\($0)" } ?? "-"), deletion B→A \(forgottenOnA.map { "\($0)" } ?? "-")")
    }
}
