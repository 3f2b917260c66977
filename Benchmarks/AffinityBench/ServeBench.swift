import ArgumentParser
import AffinityCLI
import AffinityCore
import AffinityServing
import AffinityServer
import Dispatch
import Foundation
import Logging

/// `affinity-bench serve-loop`: the recommendations route's work (ranking, titles, JSON body) for random
/// known users in a plain in-process loop, on one thread and on all cores — the reference that shows what the
/// HTTP layer adds in Benchmarks/serving.sh.
struct ServeLoopBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve-loop")
    @Option var model: String
    @Option var store: String
    @Option var requests = 20_000
    @Option var k = 20

    func run() throws {
        try reportingErrors {
            let artifact = try ModelArtifact.read(from: model)
            var logger = Logger(label: "bench")
            logger.logLevel = .warning
            let service = try RecommendationService(artifact: artifact, store: try SQLiteEventStore(path: store), logger: logger)
            let users = artifact.header.userIDs
            var rng = SeededGenerator(seed: 1)
            let picks = (0..<requests).map { _ in users[rng.nextInt(below: users.count)] }
            let snapshot = service.currentModel
            var buffer = [Float](repeating: 0, count: snapshot.paddedItemCount)
            var start = DispatchTime.now().uptimeNanoseconds
            for u in picks.prefix(2000) {
                buffer.withUnsafeMutableBufferPointer { snapshot.scores(snapshot.userVector(snapshot.users.dense(u)!), into: $0) }
            }
            let scoreOnly = Double(DispatchTime.now().uptimeNanoseconds - start) / 2000e3
            start = DispatchTime.now().uptimeNanoseconds
            for u in picks.prefix(2000) {
                buffer.withUnsafeMutableBufferPointer { _ = ServingModel.top($0, k: k) }
                _ = u
            }
            let topOnly = Double(DispatchTime.now().uptimeNanoseconds - start) / 2000e3
            start = DispatchTime.now().uptimeNanoseconds
            for u in picks.prefix(2000) { let r: Recommendations = service.recommendations(user: u, k: k, excludeSeen: true); _ = r }
            let rankOnly = Double(DispatchTime.now().uptimeNanoseconds - start) / 2000e3
            start = DispatchTime.now().uptimeNanoseconds
            let batch = 16
            for b in stride(from: 0, to: 2000, by: batch) {
                _ = snapshot.recommend(picks[b..<(b + batch)].map { (snapshot.userVector(snapshot.users.dense($0)!), [Int32](), k) })
            }
            let batched = Double(DispatchTime.now().uptimeNanoseconds - start) / 2000e3
            print(jsonLine([("us_scores", scoreOnly), ("us_topk", topOnly), ("us_recommendations", rankOnly),
                            ("us_per_user_batch16", batched)]))
            start = DispatchTime.now().uptimeNanoseconds
            for u in picks { _ = recommendationsResponseNow(service: service, user: u, k: k, excludeSeen: true) }
            let single = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let threads = ProcessInfo.processInfo.activeProcessorCount
            start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var i = t
                while i < picks.count {
                    _ = recommendationsResponseNow(service: service, user: picks[i], k: k, excludeSeen: true)
                    i += threads
                }
            }
            let parallel = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(jsonLine([("bench", "serve-loop"), ("items", artifact.header.itemIDs.count), ("dimension", artifact.header.dimension),
                            ("requests", requests), ("us_per_request_1_thread", single / Double(requests) * 1e6),
                            ("qps_1_thread", Double(requests) / single), ("threads", threads),
                            ("qps_all_threads", Double(requests) / parallel)]))
        }
    }
}
