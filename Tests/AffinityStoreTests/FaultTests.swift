import Testing
import Foundation
import Hummingbird
import HummingbirdTesting
import AffinityServing
import AffinityServer
import AffinityPostgres
import AffinityTestSupport

/// A PostgreSQL-backed replica when PostgreSQL goes away and comes back, and when the replica itself is killed.
@Suite("Faults of the PostgreSQL-backed deployment", .serialized)
struct FaultTests {
    static let apiKey = "fault-key"
    static let headers: HTTPFields = [.authorization: "Bearer \(apiKey)", .contentType: "application/json"]

    static func eventBody(user: String, item: String) -> ByteBuffer {
        ByteBuffer(string: #"{"events": [{"user": "\#(user)", "item": "\#(item)"}]}"#)
    }

    static func errorMessage(_ response: TestResponse) -> String? {
        let body = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
        return (body?["error"] as? [String: Any])?["message"] as? String
    }

    /// Stops PostgreSQL (`pg_ctl stop -m fast`) under a running replica and starts it again: meanwhile writes and
    /// status answer 503 with a JSON error within a bounded time, and reads are served from memory; afterwards
    /// the same replica (no restart) stores again, each event once, and a second replica's change-feed follower
    /// resumes where it stopped and folds in what was stored after the restart.
    @Test("PostgreSQL restarted under a replica: 503 while it is down, recovery without restarting the replica")
    func postgresRestart() async throws {
        let server = try TestPostgres.dedicated()
        defer { server.stop() }
        let url = try server.makeDatabase()
        let artifact = try ReplicaTests.artifact()
        let store = try PostgresEventStore(url: url), otherStore = try PostgresEventStore(url: url)
        defer { try? store.close(); try? otherStore.close() }
        let service = try RecommendationService(artifact: artifact, store: store)
        let otherCursor = try otherStore.changeCursor()
        let other = try RecommendationService(artifact: artifact, store: otherStore)
        let follower = ChangeFollower(service: other, from: otherCursor, interval: .milliseconds(50))
        let following = Task { await follower.run() }
        defer { following.cancel() }
        var settings = ServerSettings()
        settings.apiKey = Self.apiKey
        let app = Application(router: makeRouter(service: service, settings: settings, metrics: RequestMetrics()))

        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/events", method: .post, headers: Self.headers, body: Self.eventBody(user: "before", item: "m1")) {
                #expect($0.status == .ok)
            }

            let stopped = server.stopServer()
            try #require(stopped.status == 0, "pg_ctl stop failed: \(stopped.output)")
            let clock = ContinuousClock(), downAt = clock.now
            try await client.execute(uri: "/v1/events", method: .post, headers: Self.headers, body: Self.eventBody(user: "during", item: "m2")) {
                #expect($0.status == .serviceUnavailable)
                #expect($0.headers[.retryAfter] != nil)
                #expect(Self.errorMessage($0)?.contains("unreachable") == true, "\(Self.errorMessage($0) ?? "no JSON error")")
            }
            try await client.execute(uri: "/v1/users/r0", method: .delete, headers: Self.headers) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/v1/admin/status", method: .get, headers: Self.headers) { #expect($0.status == .serviceUnavailable) }
            let unavailableFor = clock.now - downAt
            // Three requests, each bounded by the connect timeout (3 s): a refused connection answers at once. The
            // bound leaves room for a parallel suite that keeps the cooperative threads busy; an unbounded connect
            // would take minutes.
            #expect(unavailableFor < .seconds(30), "503s took \(unavailableFor)")
            // Reads rank from the in-memory snapshot and do not need the store.
            try await client.execute(uri: "/v1/users/r1/recommendations?k=3", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await Task.sleep(for: .milliseconds(200))  // the follower's polls fail meanwhile

            let restarted = server.restartServer()
            try #require(restarted.status == 0, "pg_ctl start failed: \(restarted.output)")
            // The same replica stores again: its pool replaces the connections the server closed.
            try await client.execute(uri: "/v1/events", method: .post, headers: Self.headers, body: Self.eventBody(user: "after", item: "m3")) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
            }
            try await client.execute(uri: "/v1/admin/status", method: .get, headers: Self.headers) { #expect($0.status == .ok) }
        }
        #expect(try store.count(user: "before") == 1)
        #expect(try store.count(user: "during") == 0)  // answered 503: not stored
        #expect(try store.count(user: "after") == 1)   // stored once
        #expect(try store.count(user: "r0") == 2)      // the deletion answered 503 deleted nothing
        // The other replica's follower resumed from its cursor: both events reached it, none was lost in the outage.
        let foldedIn = try await ReplicaTests.waitUntil {
            other.recommendations(user: "before", k: 3, excludeSeen: true).source == .foldIn
                && other.recommendations(user: "after", k: 3, excludeSeen: true).source == .foldIn
        }
        #expect(foldedIn != nil, "the other replica did not fold in the events stored around the restart")
    }

    /// `affinity serve --store postgres://…` as a subprocess under concurrent event load, killed with SIGKILL:
    /// every event it acknowledged is in PostgreSQL, and every stored batch is whole.
    @Test("a replica killed with SIGKILL under event load: every acknowledged event is in PostgreSQL")
    func everyAcknowledgedEventSurvivesSIGKILL() async throws {
        let url = try TestPostgres.require().makeDatabase()
        let executable = try #require(Fixtures.affinityExecutable(), "the affinity executable was not built beside the tests")
        let folder = Fixtures.temporaryFolder("pg-durability")
        try ReplicaTests.artifact().write(to: folder + "/model.affinity")
        let replica = try ServerProcess(executable: executable, model: folder + "/model.affinity", store: url, apiKey: Self.apiKey)
        #expect(try await replica.waitUntilReady())

        let writers = 8, batchesPerWriter = 400, batchSize = 5
        let (sent, acknowledged) = try await replica.postEventsAndKill(writers: writers, batchesPerWriter: batchesPerWriter,
                                                                       batchSize: batchSize, killAfter: 2000)
        #expect(acknowledged.count > 0 && acknowledged.count < writers * batchesPerWriter * batchSize,
                "the kill must land mid-stream: \(acknowledged.count) acknowledged")

        let store = try PostgresEventStore(url: url)
        defer { try? store.close() }
        var stored = Set<String>()
        for w in 0..<writers { for e in try store.events(of: "writer\(w)") { if let t = e.type { stored.insert(t) } } }
        let found = acknowledged.filter { stored.contains($0) }.count
        print("durability (PostgreSQL): sent \(sent), acknowledged \(acknowledged.count), found \(found) (stored \(stored.count))")
        #expect(found == acknowledged.count)
        let batches = Dictionary(grouping: stored) { String($0[..<$0.range(of: "-e")!.lowerBound]) }
        #expect(batches.values.allSatisfy { $0.count == batchSize })
    }
}
