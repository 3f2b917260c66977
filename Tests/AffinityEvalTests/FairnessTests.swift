import Testing
import Foundation
import AffinityCore
import AffinityEval

/// Hand-computed values of the item-fairness measures (original and corrected), with their edge cases.
@Suite struct ItemFairnessTests {
    func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

    /// Every measure by name, for the cases that check all of them.
    func all(_ lists: [[Int32]], k: Int, n: Int) -> [RankingMetric: Double] {
        let measures: [RankingMetric] = [.itemCoverage, .itemCoverageNorm, .giniIndex, .giniIndexNorm, .jainIndex, .jainIndexNorm,
                                         .entropy, .entropyNorm, .fsat, .fsatNorm]
        return Dictionary(uniqueKeysWithValues: measures.map {
            ($0, CatalogueMetrics.value($0, lists: lists, k: k, itemCount: n, popularity: nil))
        })
    }

    @Test func threeListsOverFourItems() {
        // Counts c = (3, 2, 1, 0), S = 6, n = 4, k = 2, m = 3. Fairest: q = 1, r = 2 → (2, 2, 1, 1);
        // least fair: every list on items {0, 1} → (3, 3, 0, 0).
        let v = all([[0, 1], [0, 2], [0, 1]], k: 2, n: 4)
        #expect(v[.itemCoverage] == 0.75)
        #expect(v[.itemCoverageNorm] == (3 - 2) / (4 - 2.0))               // D 3 between k = 2 and min(n, S) = 4
        // Gini: ascending (0, 1, 2, 3): (−3·0 − 1·1 + 1·2 + 3·3) / (n S) = 10/24; fairest r(n−r)/(nS) = 4/24;
        // least fair 1 − k/n = 12/24.
        #expect(close(v[.giniIndex]!, 10.0 / 24))
        #expect(close(v[.giniIndexNorm]!, (10.0 - 4) / (12 - 4)))
        // Jain: S²/(n Σc²) = 36/(4·14); fairest 36/(4·10) = 0.9; least fair k/n = 0.5.
        #expect(close(v[.jainIndex]!, 36.0 / 56))
        #expect(close(v[.jainIndexNorm]!, (36.0 / 56 - 0.5) / (0.9 - 0.5)))
        // Entropy in base n of p = (1/2, 1/3, 1/6); least fair log_4 2 = 1/2; fairest p = (1/3, 1/3, 1/6, 1/6).
        let h = (0.5 * log(2.0) + log(3.0) / 3 + log(6.0) / 6) / log(4.0)
        let hFair = (2.0 / 3 * log(3.0) + log(6.0) / 3) / log(4.0)
        #expect(close(v[.entropy]!, h))
        #expect(close(v[.entropyNorm]!, (h - 0.5) / (hFair - 0.5)))
        // FSat: share ⌊6/4⌋ = 1, items 0, 1, 2 satisfied → 3/4. Fewest satisfiable: ⌈(S − n(q−1)) / (m − q + 1)⌉ =
        // ⌈6/3⌉ = 2 → minimum 2/4.
        #expect(v[.fsat] == 0.75)
        #expect(close(v[.fsatNorm]!, (0.75 - 0.5) / (1 - 0.5)))
    }

    @Test func nothingRecommended() {
        // No slots: coverage 0; every item's exposure is 0, which is equal; the corrected forms' range is a point.
        for lists in [[[Int32]](), [[], []]] {
            let v = all(lists, k: 3, n: 5)
            #expect(v[.itemCoverage] == 0 && v[.giniIndex] == 0 && v[.jainIndex] == 1 && v[.entropy] == 1 && v[.fsat] == 1)
            #expect(v[.itemCoverageNorm] == 1 && v[.giniIndexNorm] == 0 && v[.jainIndexNorm] == 1 && v[.entropyNorm] == 1 && v[.fsatNorm] == 1)
        }
    }

    @Test func oneItemTakesAllExposure() {
        // k = 1 and every list is item 2: c = (0, 0, 3, 0), S = 3 < n = 4.
        let v = all([[2], [2], [2]], k: 1, n: 4)
        #expect(v[.itemCoverage] == 0.25)
        #expect(close(v[.giniIndex]!, 0.75))          // 3·3/(3·4) = 1 − k/n
        #expect(close(v[.jainIndex]!, 0.25))          // 9/(4·9) = k/n
        #expect(v[.entropy] == 0)
        // The least fair attainable exposure: every corrected measure at its unfair end.
        #expect(v[.itemCoverageNorm] == 0 && close(v[.giniIndexNorm]!, 1) && close(v[.jainIndexNorm]!, 0) && close(v[.entropyNorm]!, 0))
        // FSat cannot see it: with S < n the maximin share is 0, so every item is satisfied.
        #expect(v[.fsat] == 1 && v[.fsatNorm] == 1)
    }

    @Test func perfectlyUniformExposure() {
        let v = all([[0, 1], [2, 3]], k: 2, n: 4)
        #expect(v[.itemCoverage] == 1 && v[.giniIndex] == 0 && close(v[.jainIndex]!, 1) && close(v[.entropy]!, 1) && v[.fsat] == 1)
        #expect(v[.itemCoverageNorm] == 1 && v[.giniIndexNorm] == 0 && v[.jainIndexNorm] == 1 && v[.entropyNorm] == 1 && v[.fsatNorm] == 1)
    }

    @Test func tiedCountsAndRelabelledItems() {
        // c = (2, 2, 1, 1) is the fairest exposure of S = 6 over 4 items even though it is not uniform.
        let v = all([[0, 1], [0, 1], [2, 3]], k: 2, n: 4)
        #expect(v[.itemCoverageNorm] == 1 && v[.giniIndexNorm] == 0 && v[.jainIndexNorm] == 1 && v[.entropyNorm] == 1 && v[.fsatNorm] == 1)
        #expect(close(v[.giniIndex]!, 4.0 / 24) && close(v[.jainIndex]!, 0.9))
        // Which items tie, and their order within a list, changes nothing.
        #expect(all([[3, 2], [2, 3], [1, 0]], k: 2, n: 4) == v)
        #expect(all([[0, 2], [0, 1], [0, 1]], k: 2, n: 4) == all([[0, 1], [0, 2], [0, 1]], k: 2, n: 4))
    }

    @Test func singleListAndListsAsLongAsTheCatalogue() {
        // One list: the only attainable exposure, so the corrected forms sit at their fair end.
        let one = all([[0, 1]], k: 2, n: 4)
        #expect(one[.itemCoverage] == 0.5 && close(one[.giniIndex]!, 0.5) && close(one[.jainIndex]!, 0.5) && close(one[.entropy]!, 0.5))
        #expect(one[.itemCoverageNorm] == 1 && one[.giniIndexNorm] == 0 && one[.jainIndexNorm] == 1 && one[.entropyNorm] == 1 && one[.fsatNorm] == 1)
        // k ≥ n: every list holds the whole catalogue.
        let whole = all([[2, 0, 1], [0, 1, 2]], k: 5, n: 3)
        #expect(whole[.itemCoverage] == 1 && whole[.giniIndex] == 0 && close(whole[.jainIndex]!, 1) && whole[.fsat] == 1)
        #expect(whole[.itemCoverageNorm] == 1 && whole[.giniIndexNorm] == 0 && whole[.jainIndexNorm] == 1 && whole[.fsatNorm] == 1)
    }

    @Test func shortListsUseTheirOwnLeastFairBound() {
        // Lists of lengths 3 and 1 (k = 3, n = 5): c = (2, 1, 1, 0, 0) is the conjugate of the lengths, the least fair
        // exposure these lists allow. With full lists assumed (J ≥ k/n = 0.6) Jain 16/30 would fall below the bound.
        let v = all([[0, 1, 2], [0]], k: 3, n: 5)
        #expect(close(v[.jainIndex]!, 16.0 / 30))
        #expect(close(v[.jainIndexNorm]!, 0) && close(v[.giniIndexNorm]!, 1) && close(v[.entropyNorm]!, 0))
        #expect(v[.itemCoverageNorm] == 0)  // 3 items, the longest list's length; at most min(n, S) = 4
    }

    @Test func fsatUsesTheAttainableMinimum() {
        // n = 10, k = 5, 10 lists: items 0 and 1 in every list, the other 30 slots over items 2…9 (3u, 3u+1, 3u+2
        // mod 8 for list u). Share ⌊50/10⌋ = 5: only items 0 and 1 reach it, FSat = 0.2 — below k/n = 0.5, so a
        // minimum of k/n would give −0.6. The fewest satisfiable items: ⌈(50 − 10·4) / (10 − 5 + 1)⌉ = 2.
        let lists: [[Int32]] = (0..<10).map { (u: Int) -> [Int32] in
            [0, 1] + (0..<3).map { (t: Int) -> Int32 in Int32(2 + (3 * u + t) % 8) }
        }
        let v = all(lists, k: 5, n: 10)
        #expect(close(v[.fsat]!, 0.2))
        #expect(close(v[.fsatNorm]!, 0))
        // All lists identical — the least fair exposure for the other measures — still satisfies 5 items.
        let same = all([[Int32]](repeating: [0, 1, 2, 3, 4], count: 10), k: 5, n: 10)
        #expect(close(same[.fsat]!, 0.5) && close(same[.fsatNorm]!, (0.5 - 0.2) / 0.8))
    }
}

@Suite struct PopularityBiasTests {
    @Test func longTailIsBeyondTheShortHeadOf80Percent() {
        // 100 interactions: items 0 and 1 hold 80, so the head is {0, 1}; the zero-popularity item is tail.
        #expect(Exposure.longTail(popularity: [50, 30, 10, 5, 5, 0]) == [false, false, true, true, true, true])
        // Ties with the head's last item join the head: 60 + 20 reaches 80 at item 1, and item 2 ties with it.
        #expect(Exposure.longTail(popularity: [60, 20, 20, 0]) == [false, false, false, true])
        #expect(Exposure.longTail(popularity: [20, 60, 0, 20]) == [false, false, true, false])
        // No interactions: everything is tail.
        #expect(Exposure.longTail(popularity: [0, 0, 0]) == [true, true, true])
    }

    @Test func longTailCoverageAndShare() {
        let popularity = [50, 30, 10, 5, 5, 0]  // tail {2, 3, 4, 5}
        let lists: [[Int32]] = [[0, 2], [1, 3], [0, 2]]
        // k = 2: tail items reached {2, 3} of 4; slots 6, of which 3 in the tail.
        #expect(Exposure.longTailCoverage(lists: lists, k: 2, popularity: popularity) == 0.5)
        #expect(Exposure.longTailShare(lists: lists, k: 2, popularity: popularity) == 0.5)
        #expect(Exposure.longTailCoverage(lists: lists, k: 1, popularity: popularity) == 0)
        #expect(Exposure.longTailShare(lists: lists, k: 1, popularity: popularity) == 0)
        // Nothing recommended, or no tail at all (one item holds every interaction and nothing else exists).
        #expect(Exposure.longTailCoverage(lists: [[], []], k: 2, popularity: popularity) == 0)
        #expect(Exposure.longTailShare(lists: [], k: 2, popularity: popularity) == 0)
        #expect(Exposure.longTailCoverage(lists: [[0]], k: 1, popularity: [7]) == 0)
    }

    @Test func catalogueValuesUseTrainingPopularity() {
        let popularity = [50, 30, 10, 5, 5, 0]
        let lists: [[Int32]] = [[0, 2], [1, 3]]
        func value(_ m: RankingMetric, k: Int) -> Double {
            CatalogueMetrics.value(m, lists: lists, k: k, itemCount: 6, popularity: popularity)
        }
        // ARP: mean popularity over the slots (50 + 10 + 30 + 5) / 4; with full lists, the per-user mean (30 + 17.5)/2.
        #expect(value(.averagePopularity, k: 2) == 95.0 / 4)
        #expect(value(.averagePopularity, k: 1) == 40)
        #expect(value(.longTailCoverage, k: 2) == 0.5 && value(.longTailShare, k: 2) == 0.5)
    }
}

@Suite struct UnbiasedEvaluationTests {
    @Test func propensitiesFromPopularityAreClipped() {
        // (n / 9)^0.5 for n = 9, 4, 1, 0 → 1, 2/3, 1/3, 0, the last two floored at the clip.
        let p = PopularityPropensity(power: 0.5, clip: 0.1).propensities(popularity: [9, 4, 1, 0])
        #expect(zip(p, [1, 2.0 / 3, 1.0 / 3, 0.1]).allSatisfy { abs($0 - $1) < 1e-12 })
        let clipped = PopularityPropensity(power: 0.5, clip: 0.5).propensities(popularity: [9, 4, 1, 0])
        #expect(zip(clipped, [1, 2.0 / 3, 0.5, 0.5]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(PopularityPropensity(power: 0.5, clip: 0.1).propensities(popularity: [0, 0]) == [1, 1])
    }

    @Test func snipsRecallAndDCG() {
        // Hits at ranks 1 and 3 with inverse propensities 2 and 4; the user's relevant items weigh 10 in all.
        let weights = [2.0, 0, 4]
        #expect(UserMetrics.snips(.recallSNIPS, hitWeights: weights, relevantWeight: 10, k: 3) == 0.6)
        #expect(UserMetrics.snips(.dcgSNIPS, hitWeights: weights, relevantWeight: 10, k: 3) == (2 + 4 / log2(4.0)) / 10)
        #expect(UserMetrics.snips(.recallSNIPS, hitWeights: weights, relevantWeight: 10, k: 1) == 0.2)
        #expect(UserMetrics.snips(.dcgSNIPS, hitWeights: weights, relevantWeight: 0, k: 3) == 0)
        // Equal propensities: recall, and DCG over the number of relevant items.
        let plain = [1.0, 0, 1]
        #expect(UserMetrics.snips(.recallSNIPS, hitWeights: plain, relevantWeight: 4, k: 3) ==
                UserMetrics.value(.recall, hits: [true, false, true], relevantCount: 4, k: 3))
        #expect(UserMetrics.snips(.dcgSNIPS, hitWeights: plain, relevantWeight: 4, k: 3) == (1 + 0.5) / 4)
    }

    @Test func evaluatorWeightsHitsByInversePropensity() {
        // Items' training popularity 9, 4, 1, 0 → 1/p = 1, 1.5, 3, 10 (η = 0.5, clip 0.1). The user trained on item 0,
        // and has test items 1 and 3; scores rank item 1, then 2, then 3.
        let scorer = TableScorer(table: [[4, 3, 2, 1]])
        let train = SparseMatrix(rows: 1, cols: 4, rowIndices: [0], colIndices: [0])
        let test = SparseMatrix(rows: 1, cols: 4, rowIndices: [0, 0], colIndices: [1, 3])
        let evaluator = RankingEvaluator(cutoffs: [2, 3], metrics: [.recall, .recallSNIPS, .dcgSNIPS], itemPopularity: [9, 4, 1, 0],
                                         propensity: PopularityPropensity(power: 0.5, clip: 0.1))
        let result = evaluator.evaluate(scorer, target: test, exclude: [train])
        #expect(result.recommendations == [[1, 2, 3]])
        #expect(result.metrics["recall@2"] == 0.5)
        // The rare test item 3 carries 10 of the 11.5 weight: the hit on item 1 is worth 1.5/11.5.
        #expect(abs(result.metrics["recall_snips@2"]! - 1.5 / 11.5) < 1e-12)
        #expect(abs(result.metrics["dcg_snips@2"]! - 1.5 / 11.5) < 1e-12)
        #expect(abs(result.metrics["recall_snips@3"]! - 1) < 1e-12)
        #expect(abs(result.metrics["dcg_snips@3"]! - (1.5 + 10 / log2(4.0)) / 11.5) < 1e-12)
        #expect(result.perUser["recall_snips@3"] != nil)
    }

    @Test func evaluatorComputesEveryCatalogueMeasureFromItsLists() {
        let scorer = TableScorer(table: [[4, 3, 2, 1], [1, 2, 3, 4], [4, 3, 2, 1]])
        let empty = SparseMatrix(rows: 3, cols: 4, rowIndices: [], colIndices: [])
        let test = SparseMatrix(rows: 3, cols: 4, rowIndices: [0, 1, 2], colIndices: [1, 2, 3])
        let popularity = [5, 3, 1, 1]
        let result = RankingEvaluator(cutoffs: [2], metrics: RankingMetric.fairness, itemPopularity: popularity)
            .evaluate(scorer, target: test, exclude: [empty])
        #expect(result.recommendations == [[0, 1], [3, 2], [0, 1]])
        for metric in RankingMetric.fairness {
            #expect(result.metrics["\(metric.rawValue)@2"] ==
                    CatalogueMetrics.value(metric, lists: result.recommendations, k: 2, itemCount: 4, popularity: popularity), "\(metric)")
        }
        #expect(result.metrics["jainindex@2"] == 36.0 / (4 * 10))  // counts (2, 2, 1, 1)
    }
}
