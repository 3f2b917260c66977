import Testing
import Foundation
import AffinityCore
import AffinityEval

/// Hand-computed cases for every metric.
@Suite struct MetricTests {
    // Ranked list with hits at ranks 1 and 3; the user has 4 relevant items.
    let hits = [true, false, true, false, false]

    func v(_ m: RankingMetric, _ k: Int, relevant: Int = 4, hits: [Bool]? = nil) -> Double {
        UserMetrics.value(m, hits: hits ?? self.hits, relevantCount: relevant, k: k)
    }

    @Test func recallPrecisionHit() {
        #expect(v(.recall, 3) == 2.0 / 4)
        #expect(v(.recall, 1) == 1.0 / 4)
        #expect(v(.precision, 3) == 2.0 / 3)
        #expect(v(.precision, 5) == 2.0 / 5)
        #expect(v(.hit, 2) == 1)
        #expect(v(.hit, 1, hits: [false, true]) == 0)
    }

    @Test func mrrUsesFirstHitWithinK() {
        #expect(v(.mrr, 5) == 1)
        #expect(v(.mrr, 5, hits: [false, false, true]) == 1.0 / 3)
        #expect(v(.mrr, 2, hits: [false, false, true]) == 0)
    }

    @Test func ndcgIdealOverMinOfRelevantAndK() {
        let dcg = 1 / log2(2.0) + 1 / log2(4.0)
        let idcg3 = 1 / log2(2.0) + 1 / log2(3.0) + 1 / log2(4.0)
        #expect(abs(v(.ndcg, 3) - dcg / idcg3) < 1e-12)
        // Only 1 relevant item: ideal DCG is 1 whatever k.
        #expect(abs(v(.ndcg, 5, relevant: 1, hits: [false, true]) - 1 / log2(3.0)) < 1e-12)
    }

    @Test func mapDividesByMinOfRelevantAndK() {
        // Precision at the hits: 1/1 and 2/3.
        #expect(abs(v(.map, 5) - (1 + 2.0 / 3) / 4) < 1e-12)
        #expect(abs(v(.map, 3) - (1 + 2.0 / 3) / 3) < 1e-12)
        #expect(abs(v(.map, 2, relevant: 4) - 1.0 / 2) < 1e-12)
    }

    @Test func fewerCandidatesThanK() {
        // A list of 2 when k = 10 (tiny catalogue): precision still divides by k.
        let short = [true, true]
        #expect(v(.recall, 10, relevant: 2, hits: short) == 1)
        #expect(v(.precision, 10, relevant: 2, hits: short) == 0.2)
        #expect(v(.ndcg, 10, relevant: 2, hits: short) == 1)
        #expect(v(.map, 10, relevant: 2, hits: short) == 1)
    }

    @Test func coverageAndGini() {
        let lists: [[Int32]] = [[0, 1], [0, 2], [0, 1]]
        #expect(CatalogueMetrics.itemCoverage(lists: lists, k: 2, itemCount: 4) == 0.75)
        #expect(CatalogueMetrics.itemCoverage(lists: lists, k: 1, itemCount: 4) == 0.25)
        // Counts sorted: [0, 1, 2, 3] over n = 4: Σ(2i − n − 1)P = (−3·0 − 1·1 + 1·2 + 3·3) = 10; / (6 · 4).
        #expect(abs(CatalogueMetrics.giniIndex(lists: lists, k: 2, itemCount: 4) - 10.0 / 24) < 1e-12)
        // Perfectly equal exposure → 0.
        #expect(CatalogueMetrics.giniIndex(lists: [[0], [1], [2]], k: 1, itemCount: 3) == 0)
    }
}

/// A scorer with a fixed score table, for evaluator tests.
struct TableScorer: Scorer {
    let table: [[Float]]
    var itemCount: Int { table[0].count }
    func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        for (r, u) in users.enumerated() { for i in 0..<itemCount { out[r * itemCount + i] = table[Int(u)][i] } }
    }
}

@Suite struct EvaluatorTests {
    func csr(_ rows: [[Int32]], items: Int) -> SparseMatrix {
        var r: [Int32] = [], c: [Int32] = []
        for (u, list) in rows.enumerated() { for i in list { r.append(Int32(u)); c.append(i) } }
        return SparseMatrix(rows: rows.count, cols: items, rowIndices: r, colIndices: c)
    }

    @Test func excludesTrainingItemsAndSkipsUsersWithoutTargets() {
        // 3 users, 5 items. User 0 trained on item 4 (top score): it must be skipped.
        let scorer = TableScorer(table: [[0.1, 0.5, 0.3, 0.2, 0.9], [5, 4, 3, 2, 1], [1, 1, 1, 1, 1]])
        let train = csr([[4], [], [0]], items: 5)
        let test = csr([[1, 3], [], [1]], items: 5)
        let result = RankingEvaluator(cutoffs: [1, 2], metrics: [.recall, .hit, .itemCoverage]).evaluate(scorer, target: test, exclude: [train])
        #expect(result.users == [0, 2])                       // user 1 has no test items
        #expect(result.recommendations[0] == [1, 2])          // item 4 excluded
        #expect(result.recommendations[1] == [1, 2])          // all tied: lower index first, item 0 excluded
        #expect(result.metrics["recall@1"] == (0.5 + 1) / 2)
        #expect(result.metrics["recall@2"] == (0.5 + 1) / 2)
        #expect(result.metrics["hit@1"] == 1)
        #expect(result.metrics["itemcoverage@2"] == 2.0 / 5)
        #expect(result.perUser["recall@1"] == [0.5, 1])
    }

    @Test func kLargerThanCatalogue() {
        let scorer = TableScorer(table: [[0.3, 0.2, 0.1]])
        let result = RankingEvaluator(cutoffs: [10], metrics: [.recall, .precision, .ndcg]).evaluate(
            scorer, target: csr([[2]], items: 3), exclude: [csr([[0]], items: 3)])
        #expect(result.recommendations[0] == [1, 2])
        #expect(result.metrics["recall@10"] == 1)
        #expect(result.metrics["precision@10"] == 0.1)
        #expect(abs(result.metrics["ndcg@10"]! - 1 / log2(3.0)) < 1e-12)
    }

    @Test func batchingDoesNotChangeResults() {
        var rng = SeededGenerator(seed: 4)
        let users = 50, items = 40
        let table = (0..<users).map { _ in (0..<items).map { _ in Float(rng.nextInt(below: 6)) } }
        let train = csr((0..<users).map { _ in [Int32(rng.nextInt(below: items))] }, items: items)
        let test = csr((0..<users).map { u in u % 7 == 0 ? [] : [Int32(rng.nextInt(below: items)), Int32(rng.nextInt(below: items))] }, items: items)
        let whole = RankingEvaluator(cutoffs: [5, 10]).evaluate(TableScorer(table: table), target: test, exclude: [train])
        let small = RankingEvaluator(cutoffs: [5, 10], maxBufferFloats: items * 3).evaluate(TableScorer(table: table), target: test, exclude: [train])
        #expect(whole.metrics == small.metrics)
        #expect(whole.recommendations == small.recommendations)
    }

    @Test func embeddingScorerIsADotProduct() {
        let u = Matrix(rows: 2, cols: 2, values: [1, 0, 0, 2])
        let i = Matrix(rows: 3, cols: 2, values: [1, 1, 2, 0, 0, 3])
        var out = [Float](repeating: 0, count: 3)
        out.withUnsafeMutableBufferPointer { EmbeddingScorer(userEmbeddings: u, itemEmbeddings: i).score(users: [1], into: $0) }
        #expect(out == [2, 0, 6])
    }

    @Test func metricNamesParse() throws {
        #expect(try RankingMetric(parsing: "NDCG") == .ndcg)
        #expect(throws: MetricError.self) { try RankingMetric(parsing: "auc") }
    }
}

/// Exposure by popularity decile, on hand-computed examples.
@Suite struct ExposureTests {
    @Test func binsCutTheCatalogueByPopularityWithTiesByIndex() {
        // 10 items, popularity 9…0 descending: item 9 is the least popular, so it is in bin 0.
        #expect(Exposure.popularityBins(popularity: (0..<10).map { 9 - $0 }) == (0..<10).map { 9 - $0 })
        // Ties go by item index: the order is 1, 3 (popularity 0), then 0, 2 (popularity 3).
                #expect(Exposure.popularityBins(popularity: [3, 0, 3, 0], bins: 2) == [1, 0, 1, 0])
        // 3 items in 10 bins: item r of n goes to ⌊r·10/3⌋.
        #expect(Exposure.popularityBins(popularity: [1, 2, 3]) == [0, 3, 6])
    }

    @Test func sharesCountTopKSlots() {
        let popularity = [5, 1, 3, 0]  // order: item 3, item 1, item 2, item 0 → bins (2 bins) 0, 0, 1, 1
        let lists: [[Int32]] = [[0, 2, 1], [0, 3]]
        // k = 2: slots are 0, 2, 0, 3 → bin 1 three times, bin 0 once.
        #expect(Exposure.shareByPopularityBin(lists: lists, k: 2, popularity: popularity, bins: 2) == [0.25, 0.75])
        #expect(Exposure.averagePopularity(lists: lists, k: 2, popularity: popularity) == Double(5 + 3 + 5 + 0) / 4)
        // Empty lists: no slots, no exposure, no division by zero.
        #expect(Exposure.shareByPopularityBin(lists: [[], []], k: 5, popularity: popularity, bins: 2) == [0, 0])
        #expect(Exposure.averagePopularity(lists: [], k: 5, popularity: popularity) == 0)
    }
}
