import Testing
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import AffinityServing
@testable import AffinityServer
import AffinityTestSupport

/// A server process on a free loopback port.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int

    init(executable: String, model: String, store: String) throws {
        port = 20_000 + Int.random(in: 0..<20_000)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", "--model", model, "--store", store, "--port", "\(port)", "--api-key", apiKey, "--log-level", "warning"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Waits until /healthz answers (generously: the rest of the suite may be loading both cores).
    /// The deadline is generous because this poll shares the test process's cooperative threads with the
    /// training tests running beside it: on a loaded machine it may not run at all until they finish.
    func waitUntilReady(seconds: Double = 600) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var request = URLRequest(url: url("/healthz"))
        request.timeoutInterval = 2  // one poll must not eat the deadline (URLSession's default is 60 s)
        while Date() < deadline {
            if let (_, response) = try? await URLSession.shared.data(for: request),
               (response as? HTTPURLResponse)?.statusCode == 200 { return true }
            guard process.isRunning else { return false }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return false
    }
}

/// Acknowledged event tags, shared by the writer tasks.
final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var tags: [String] = []
    func add(_ more: [String]) { lock.withLock { tags += more } }
    var all: [String] { lock.withLock { tags } }
    var count: Int { lock.withLock { tags.count } }
}

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
        let server = try ServerProcess(executable: executable, model: folder + "/model.affinity", store: folder + "/events.sqlite")
        #expect(try await server.waitUntilReady())

        let writers = 8, batchesPerWriter = 400, batchSize = 5
        let session = URLSession(configuration: .ephemeral)
        let eventsURL = server.url("/v1/events")
        let acknowledgedLog = Acknowledged()
        let results = try await withThrowingTaskGroup(of: (sent: Int, acknowledged: [String]).self) { group in
            for w in 0..<writers {
                group.addTask {
                    var sent = 0
                    var acknowledged: [String] = []
                    for b in 0..<batchesPerWriter {
                        let tags = (0..<batchSize).map { "w\(w)-b\(b)-e\($0)" }
                        let body = "[" + tags.map { #"{"user": "writer\#(w)", "item": "item\#(b % 8)", "type": "\#($0)"}"# }.joined(separator: ",") + "]"
                        var request = URLRequest(url: eventsURL)
                        request.httpMethod = "POST"
                        request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization")
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.httpBody = Data(body.utf8)
                        request.timeoutInterval = 5
                        sent += batchSize
                        guard let (_, response) = try? await session.data(for: request) else { break }
                        if (response as? HTTPURLResponse)?.statusCode == 200 {
                            acknowledged += tags
                            acknowledgedLog.add(tags)
                        }
                    }
                    return (sent, acknowledged)
                }
            }
            // Kill the server while the writers are mid-stream: once 2,000 events are acknowledged
            // (however loaded the machine is), well before the 16,000 are all sent.
            let deadline = Date().addingTimeInterval(60)
            while acknowledgedLog.count < 2000 && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
            kill(server.process.processIdentifier, SIGKILL)
            var all: [(Int, [String])] = []
            for try await r in group { all.append(r) }
            return all
        }
        server.process.waitUntilExit()
        let sent = results.map(\.0).reduce(0, +)
        let acknowledged = results.flatMap(\.1)
        #expect(acknowledged.count > 0 && acknowledged.count < writers * batchesPerWriter * batchSize,
                "the kill must land mid-stream: \(acknowledged.count) acknowledged")

        // Restart on the same store, then look in it.
        let restarted = try ServerProcess(executable: executable, model: folder + "/model.affinity", store: folder + "/events.sqlite")
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
