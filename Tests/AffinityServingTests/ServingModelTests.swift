import Testing
import AffinityCore
import AffinityData
@testable import AffinityServing

@Suite struct ServingModelTests {
    @Test func recommendAndSimilarMatchBruteForce() throws {
        let artifact = try tinyArtifact(users: 5, items: 40, d: 8)
        let model = ServingModel(artifact: artifact)
        let u = model.userVector(2)
        let scores = (0..<40).map { i in (0..<8).reduce(Float(0)) { $0 + u[$1] * artifact.itemEmbeddings[i, $1] } }
        let expected = TopK.referenceSelect(scores.enumerated().map { [3, 7].contains($0.offset) ? -.infinity : $0.element }, k: 5)
        #expect(model.recommend(u, k: 5, exclude: [3, 7]).map(\.item) == expected)
        for (a, b) in zip(model.recommend(u, k: 5, exclude: [3, 7]).map(\.score), expected.map { scores[Int($0)] }) {
            #expect(abs(a - b) < 1e-5)
        }
        func cosine(_ i: Int, _ j: Int) -> Float {
            let x = artifact.itemEmbeddings.row(i), y = artifact.itemEmbeddings.row(j)
            let dot = zip(x, y).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            return dot / (x.reduce(0) { $0 + $1 * $1 }.squareRoot() * y.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        let cos = (0..<40).map { $0 == 11 ? -Float.infinity : cosine(11, $0) }
        #expect(model.similar(to: 11, k: 6).map(\.item) == TopK.referenceSelect(cos, k: 6))
        #expect(model.recommend(u, k: 1000).count == 40)
    }

    /// Batched ranking (8-, 4-, 2- and 1-user kernel paths) equals ranking users one at a time, also through
    /// the concurrent queue.
    @Test func batchesRankLikeSingleRequests() async throws {
        let artifact = try tinyArtifact(users: 15, items: 37, d: 5)
        let model = ServingModel(artifact: artifact)
        var requests: [(vector: [Float], exclude: [Int32], k: Int)] = []
        for u in 0..<15 {
            let exclude: [Int32] = [Int32(u), Int32(u + 3)]
            requests.append((model.userVector(Int32(u)), exclude, 3 + u))
        }
        let batched = model.recommend(requests)
        for (u, r) in requests.enumerated() {
            let single = model.recommend(r.vector, k: r.k, exclude: r.exclude)
            #expect(batched[u] == single)
            #expect(single.count == min(r.k, 35) && !single.contains { r.exclude.contains($0.item) })
        }
        let queue = ScoringQueue(workers: 2, maxBatch: 4)
        let queued = await withTaskGroup(of: (Int, [ScoredItem]).self) { group in
            for (u, r) in requests.enumerated() {
                group.addTask { (u, await queue.rank(.init(model: model, vector: r.vector, exclude: r.exclude, k: r.k))) }
            }
            var out = [[ScoredItem]](repeating: [], count: requests.count)
            for await (u, list) in group { out[u] = list }
            return out
        }
        #expect(queued == batched)
    }

    /// The fold-in solution zeroes the gradient of its objective:
    /// Σ_I (1 − uᵀq_i)² + α Σ_all (uᵀq_j)² + λ‖u − u₀‖².
    @Test func foldInSolvesItsRidgeObjective() throws {
        let artifact = try tinyArtifact(users: 3, items: 30, d: 6)
        let model = ServingModel(artifact: artifact, foldIn: FoldInSettings(unobservedWeight: 2, ridge: 0.3))
        let items: [Int32] = [1, 4, 9, 22]
        let prior: [Float] = [0.1, -0.2, 0.3, 0, 0.5, -0.1]
        let u = model.foldIn(items: items, prior: prior)
        let q = artifact.itemEmbeddings
        let meanSq = (0..<30).map { i in q.row(i).reduce(Float(0)) { $0 + $1 * $1 } }.reduce(0, +) / 30
        let alpha: Float = 2 / 30, lambda: Float = 0.3 * meanSq
        func dot(_ i: Int) -> Float { (0..<6).reduce(Float(0)) { $0 + u[$1] * q[i, $1] } }
        var gradient = [Float](repeating: 0, count: 6)
        for i in items.map(Int.init) { let r = dot(i) - 1; for c in 0..<6 { gradient[c] += 2 * r * q[i, c] } }
        for j in 0..<30 { let r = dot(j); for c in 0..<6 { gradient[c] += 2 * alpha * r * q[j, c] } }
        for c in 0..<6 { gradient[c] += 2 * lambda * (u[c] - prior[c]) }
        #expect(gradient.map(abs).max()! < 1e-3)
        // More events on an item raise its score.
        let before = model.recommend(model.foldIn(items: [1]), k: 30).first { $0.item == 4 }!.score
        let after = model.recommend(model.foldIn(items: [1, 4]), k: 30).first { $0.item == 4 }!.score
        #expect(after > before)
    }

    @Test func choleskySolveMatchesAKnownSystem() {
        // [[4, 2], [2, 3]] x = [2, 1] ⇒ x = [0.5, 0].
        let x = solveSymmetricPositiveDefinite([4, 2, 2, 3], [2, 1], n: 2)
        #expect(abs(x[0] - 0.5) < 1e-6 && abs(x[1]) < 1e-6)
    }
}
