import Testing
import AffinityCore

@Suite struct TopKTests {
    @Test func matchesFullSortOnRandomRows() {
        var rng = SeededGenerator(seed: 7)
        for trial in 0..<200 {
            let n = 1 + rng.nextInt(below: 300)
            // Few distinct values, so ties are common.
            var scores = (0..<n).map { _ in Float(rng.nextInt(below: 12)) }
            for _ in 0..<rng.nextInt(below: 5) { scores[rng.nextInt(below: n)] = -.infinity }
            let k = rng.nextInt(below: 40)
            let fast = TopK.select(scores, k: k)
            #expect(fast.indices == TopK.referenceSelect(scores, k: k), "trial \(trial)")
            #expect(fast.scores == fast.indices.map { scores[Int($0)] })
        }
    }

    @Test func tiesGoToLowerIndex() {
        #expect(TopK.select([1, 3, 3, 2, 3], k: 2).indices == [1, 2])
    }

    @Test func excludesNegativeInfinityAndNaN() {
        let r = TopK.select([-.infinity, .nan, 0.5, -.infinity], k: 3)
        #expect(r.indices == [2])
    }

    @Test func kLargerThanRowAndZeroK() {
        #expect(TopK.select([0.1, 0.9], k: 10).indices == [1, 0])
        #expect(TopK.select([0.1, 0.9], k: 0).indices.isEmpty)
        #expect(TopK.select([], k: 3).indices.isEmpty)
    }

    @Test func longRowsExerciseTheBlockPath() {
        var rng = SeededGenerator(seed: 11)
        let scores = (0..<10_000).map { _ in rng.nextFloat() }
        #expect(TopK.select(scores, k: 50).indices == TopK.referenceSelect(scores, k: 50))
    }
}
