import ArgumentParser
import AffinityCore
import AffinityServing
import Foundation

/// `affinity-bench ctr-score`: one request's latency of scoring `candidates` items for a user with a saved
/// click-through model (`affinity train --task ctr --save`), as `POST /v1/score` and `?rerank=ctr` do, in process:
/// median and 99th percentile over `requests` requests, each a random known user and random known items.
struct ContextScoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ctr-score")
    @Option(help: "A click-through model file.") var model: String
    @Option var candidates = 1000
    @Option var requests = 300
    @Option var seed: UInt64 = 1

    func run() throws {
        let artifact = try ContextArtifact.read(from: model)
        let scorer = try ContextScorer(artifact)
        var rng = SeededGenerator(seed: seed)
        let users = artifact.header.userIDs, items = artifact.header.itemIDs
        var milliseconds: [Double] = []
        var checksum: Float = 0
        for r in 0..<(requests + 10) {
            let user = users[rng.nextInt(below: users.count)]
            let candidates = (0..<candidates).map { _ in items[rng.nextInt(below: items.count)] }
            let start = ContinuousClock.now
            let scores = scorer.score(user: user, items: candidates)
            let elapsed = (ContinuousClock.now - start) / .milliseconds(1)
            checksum += scores[0]
            if r >= 10 { milliseconds.append(elapsed) }  // the first requests warm caches and threads
        }
        milliseconds.sort()
        print(jsonLine([("bench", "ctr-score"), ("model", artifact.header.model), ("candidates", candidates), ("requests", requests),
                        ("median_ms", milliseconds[milliseconds.count / 2]), ("p99_ms", milliseconds[milliseconds.count * 99 / 100]),
                        ("threads", Parallel.threads), ("blas", BLAS.coreName), ("checksum", Double(checksum))]))
    }
}
