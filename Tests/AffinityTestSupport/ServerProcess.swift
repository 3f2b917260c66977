import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An `affinity serve` process on a free loopback port, for the tests that kill one.
public final class ServerProcess: @unchecked Sendable {
    public let process = Process()
    public let port: Int
    public let apiKey: String

    public init(executable: String, model: String, store: String, apiKey: String) throws {
        port = 20_000 + Int.random(in: 0..<20_000)
        self.apiKey = apiKey
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", "--model", model, "--store", store, "--port", "\(port)", "--api-key", apiKey, "--log-level", "warning"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    public func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Waits until /healthz answers (generously: the rest of the suite may be loading both cores).
    /// The deadline is generous because this poll shares the test process's cooperative threads with the
    /// training tests running beside it: on a loaded machine it may not run at all until they finish.
    public func waitUntilReady(seconds: Double = 600) async throws -> Bool {
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

    /// Event load: `writers` concurrent clients each post `batchesPerWriter` batches of `batchSize` events for
    /// user `writerW`, every event tagged (in its `type`) `wW-bB-eE`; once `killAfter` events are acknowledged the
    /// process is sent SIGKILL. Returns how many events were sent and the tags of those acknowledged (200).
    public func postEventsAndKill(writers: Int, batchesPerWriter: Int, batchSize: Int, killAfter: Int)
        async throws -> (sent: Int, acknowledged: [String]) {
        let session = URLSession(configuration: .ephemeral)
        let eventsURL = url("/v1/events"), apiKey = apiKey
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
                            acknowledgedLog.add(tags.count)
                        }
                    }
                    return (sent, acknowledged)
                }
            }
            // Kill the server while the writers are mid-stream, however loaded the machine is.
            let deadline = Date().addingTimeInterval(60)
            while acknowledgedLog.count < killAfter && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
            kill(process.processIdentifier, SIGKILL)
            var all: [(Int, [String])] = []
            for try await r in group { all.append(r) }
            return all
        }
        process.waitUntilExit()
        return (results.map(\.0).reduce(0, +), results.flatMap(\.1))
    }
}

/// How many events the writer tasks have had acknowledged so far.
private final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func add(_ more: Int) { lock.withLock { total += more } }
    var count: Int { lock.withLock { total } }
}
