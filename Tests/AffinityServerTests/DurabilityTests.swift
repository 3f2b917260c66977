import Testing
import Foundation
import AffinityServing
@testable import AffinityServer
import AffinityTestSupport

@Suite(.serialized) struct DurabilityTests {
    /// Events posted under load, the server killed with SIGKILL mid-stream, restarted: every acknowledged
    /// event is in the store. Then SIGTERM stops the restarted server cleanly (exit status 0).
    @Test func everyAcknowledgedEventSurvivesSIGKILL() async throws {
        guard let executable = Fixtures.affinityExecutable() else {
            Issue.record("the affinity executable was not built beside the tests")
            return
        }
        let folder = Fixtures.temporaryFolder("durability")
        try fixtureArtifact().write(to: folder + "/model.affinity")
        let server = try ServerProcess(executable: executable, model: folder + "/model.affinity", store: folder + "/events.sqlite",
                                       apiKey: apiKey)
        #expect(try await server.waitUntilReady())

        // Killed once 2,000 events are acknowledged, well before the 16,000 are all sent.
        let writers = 8, batchesPerWriter = 400, batchSize = 5
        let (sent, acknowledged) = try await server.postEventsAndKill(writers: writers, batchesPerWriter: batchesPerWriter,
                                                                      batchSize: batchSize, killAfter: 2000)
        #expect(acknowledged.count > 0 && acknowledged.count < writers * batchesPerWriter * batchSize,
                "the kill must land mid-stream: \(acknowledged.count) acknowledged")

        // Restart on the same store, then look in it.
        let restarted = try ServerProcess(executable: executable, model: folder + "/model.affinity", store: folder + "/events.sqlite",
                                          apiKey: apiKey)
        #expect(try await restarted.waitUntilReady())
        let store = try SQLiteEventStore(path: folder + "/events.sqlite")
        var stored = Set<String>()
        for w in 0..<writers { for e in try store.events(of: "writer\(w)") { if let t = e.type { stored.insert(t) } } }
        let found = acknowledged.filter { stored.contains($0) }.count
        print("durability: sent \(sent), acknowledged \(acknowledged.count), found \(found) (stored \(stored.count))")
        #expect(found == acknowledged.count)
        // Batches are all-or-nothing: every stored batch is complete.
        let batches = Dictionary(grouping: stored) { String($0[..<$0.range(of: "-e")!.lowerBound]) }
        #expect(batches.values.allSatisfy { $0.count == batchSize })

        kill(restarted.process.processIdentifier, SIGTERM)
        restarted.process.waitUntilExit()
        #expect(restarted.process.terminationStatus == 0)
    }
}
