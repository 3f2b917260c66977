import Foundation

/// How much exposure each item gets from all users' top-k lists, and the individual item-fairness measures of
/// it studied by Rampisela, Maistro, Ruotsalo and Lioma, "Evaluation Measures of Individual Item Fairness for
/// Recommender Systems: A Critical Study" (ACM TORS 2024), in their original and corrected (`…Normalized`) forms.
///
/// Notation: n items in the catalogue, c_i the number of lists in which item i appears within the cutoff (items
/// never recommended count 0; an item is in a list at most once), S = Σ c_i the filled slots, k the cutoff.
/// Ties in the ranking are settled before this point (`TopK`: the lower item index first); ties in c_i do not
/// change any measure.
///
/// **Corrected forms.** Each original measure is rescaled to the range the given lists can attain, so that the
/// least fair attainable exposure maps to the unfair end (0 for coverage, Jain, entropy and FSat, 1 for Gini)
/// and the fairest to the other end, as in Rampisela et al.'s "our" measures:
///
/// - the *fairest* exposure gives r = S mod n items ⌊S/n⌋ + 1 and the others ⌊S/n⌋ (as equal as integers allow);
/// - the *least fair* puts every list on the same items: with list lengths l_u, the j-th item gets
///   #{u : l_u ≥ j} (the conjugate of the lengths; every attainable exposure is majorised by it, Gale–Ryser).
///   With m full lists this is m for k items, the bound behind Rampisela et al.'s k/n terms.
///
/// For full lists the bounds are exactly the reference code's (`FairWORel` in their `metrics.py`): Jain
/// k/n … S²/(n(n⌊S/n⌋² + r(2⌊S/n⌋+1))), entropy log_n k … H(fairest), Gini r(n−r)/(nS) … 1 − k/n, coverage
/// k … min(n, S). For FSat the reference takes k/n as the minimum, which is not attainable-minimal in general
/// (n = 10, k = 5, 10 lists: two items in every list and the other 30 slots spread as 4,4,4,4,4,4,4,2 satisfy
/// only 2 items, FSat 0.2 < k/n = 0.5, and the reference's corrected value would be −0.6); here the minimum is
/// the exact one (see `fsatNormalized`), so the corrected FSat stays in [0, 1].
///
/// **Edge cases.** When the attainable range is a single point (nothing recommended, a single list, or lists as
/// long as the catalogue) every allocation is both the fairest and the least fair, and the corrected measure
/// reports its fair end (1; 0 for Gini). With nothing recommended the original measures report equal exposure
/// (every item has 0): Gini 0, Jain 1, entropy 1, FSat 1; coverage is 0.
public struct ItemExposure: Sendable, Equatable {
    /// c_i for every item.
    public let counts: [Int]
    /// S = Σ c_i.
    public let slots: Int
    /// Lists with at least one item within the cutoff: the most exposure one item can get.
    public let listCount: Int
    /// The least fair attainable exposure for the same list lengths, most exposed first (nonzero entries only).
    let leastFair: [Int]

    public var itemCount: Int { counts.count }

    /// The exposure of the first `k` items of each list.
    public init(lists: [[Int32]], k: Int, itemCount: Int) {
        let (counts, slots) = CatalogueMetrics.exposureCounts(lists: lists, k: k, itemCount: itemCount)
        self.counts = counts
        self.slots = slots
        let lengths = lists.map { min($0.count, k) }.filter { $0 > 0 }
        listCount = lengths.count
        // Conjugate of the list lengths: entry j counts the lists longer than j.
        var conjugate = [Int](repeating: 0, count: lengths.max() ?? 0)
        for l in lengths { for j in 0..<l { conjugate[j] += 1 } }
        leastFair = conjugate
    }

    /// The fairest attainable exposure for S slots over n items, most exposed first.
    var fairest: [Int] {
        let n = itemCount
        guard n > 0 else { return [] }
        let q = slots / n, r = slots % n
        return [Int](repeating: q + 1, count: r) + [Int](repeating: q, count: n - r)
    }

    /// `v` placed on the scale from `unfair` (→ 0) to `fair` (→ 1); 1 when the two coincide.
    private func rescaled(_ v: Double, unfair: Double, fair: Double, collapsed: Bool) -> Double {
        collapsed ? 1 : (v - unfair) / (fair - unfair)
    }

    /// True when the least fair and the fairest exposure are the same multiset (the attainable range is a point).
    private var rangeIsPoint: Bool {
        let padded = leastFair + [Int](repeating: 0, count: max(0, itemCount - leastFair.count))
        return padded == fairest
    }

    // MARK: Coverage (the fraction of items, Rampisela et al.'s QF)

    /// QF = #{i : c_i > 0} / n.
    public var coverage: Double { itemCount == 0 ? 0 : Double(counts.count(where: { $0 > 0 })) / Double(itemCount) }

    /// Corrected QF = (D − D_least) / (D_fairest − D_least) with D the number of items recommended at least once:
    /// D_least = the longest list's length (k for full lists), D_fairest = min(n, S). 1 when they coincide.
    public var coverageNormalized: Double {
        let distinct = counts.count(where: { $0 > 0 })
        let least = leastFair.count, most = min(itemCount, slots)
        return rescaled(Double(distinct), unfair: Double(least), fair: Double(most), collapsed: most == least)
    }

    // MARK: Gini index

    /// Gini = Σ_i (2i − n − 1) c_(i) / (n S) over the counts in ascending order (`CatalogueMetrics.giniIndex`).
    public var gini: Double { CatalogueMetrics.giniIndex(counts: counts, slots: slots) }

    /// Corrected Gini = (G − G_fairest) / (G_least − G_fairest): 0 for the fairest attainable exposure, 1 for the
    /// least fair. For full lists G_fairest = r(n − r)/(nS) and G_least = 1 − k/n. 0 when the range is a point.
    public var giniNormalized: Double {
        guard !rangeIsPoint else { return 0 }
        let least = CatalogueMetrics.giniIndex(counts: leastFair + [Int](repeating: 0, count: itemCount - leastFair.count), slots: slots)
        let fair = CatalogueMetrics.giniIndex(counts: fairest, slots: slots)
        return (gini - fair) / (least - fair)
    }

    // MARK: Jain's index

    /// Jain's fairness index of the counts, S² / (n Σ c_i²): 1 for equal exposure, k/n when every list is the
    /// same. 1 when nothing is recommended.
    public var jain: Double { Self.jain(counts, slots: slots, itemCount: itemCount) }

    static func jain(_ c: [Int], slots: Int, itemCount: Int) -> Double {
        guard slots > 0 else { return 1 }
        let squares = c.reduce(0.0) { $0 + Double($1) * Double($1) }
        return Double(slots) * Double(slots) / (Double(itemCount) * squares)
    }

    /// Corrected Jain = (J − J_least) / (J_fairest − J_least); for full lists J_least = k/n and
    /// J_fairest = S² / (n (n⌊S/n⌋² + r(2⌊S/n⌋ + 1))). 1 when the range is a point.
    public var jainNormalized: Double {
        let least = Self.jain(leastFair, slots: slots, itemCount: itemCount)
        let fair = Self.jain(fairest, slots: slots, itemCount: itemCount)
        return rescaled(jain, unfair: least, fair: fair, collapsed: rangeIsPoint)
    }

    // MARK: Entropy

    /// Shannon entropy of the exposure shares p_i = c_i / S in base n, −Σ p_i log_n p_i (0 log 0 = 0): the
    /// entropy in nats divided by ln n, so 1 for equal exposure and log_n k when every list is the same.
    /// 1 when nothing is recommended or the catalogue has one item.
    public var entropy: Double { Self.entropy(counts, slots: slots, itemCount: itemCount) }

    static func entropy(_ c: [Int], slots: Int, itemCount: Int) -> Double {
        guard slots > 0, itemCount > 1 else { return 1 }
        let total = Double(slots)
        var h = 0.0
        // Summed in count order, so relabelling items cannot change the rounding.
        for x in c.sorted(by: >) where x > 0 {
            let p = Double(x) / total
            h -= p * log(p)
        }
        return h / log(Double(itemCount))
    }

    /// Corrected entropy = (H − H_least) / (H_fairest − H_least); for full lists H_least = log_n k and, when
    /// S ≤ n, H_fairest = log_n S. 1 when the range is a point.
    public var entropyNormalized: Double {
        let least = Self.entropy(leastFair, slots: slots, itemCount: itemCount)
        let fair = Self.entropy(fairest, slots: slots, itemCount: itemCount)
        return rescaled(entropy, unfair: least, fair: fair, collapsed: rangeIsPoint)
    }

    // MARK: FSat

    /// The fraction of satisfied items: FSat = #{i : c_i ≥ ⌊S/n⌋} / n, an item being satisfied when it gets at
    /// least its maximin share ⌊S/n⌋ (so every item is satisfied when S < n, and when nothing is recommended).
    public var fsat: Double {
        guard itemCount > 0 else { return 1 }
        let share = slots / itemCount
        return Double(counts.count(where: { $0 >= share })) / Double(itemCount)
    }

    /// Corrected FSat = (F − F_min) / (1 − F_min), with F_min = j/n for the fewest items j that can all reach the
    /// share q = ⌊S/n⌋ while absorbing the slots the others cannot take: an item appears in at most m lists
    /// (m = the lists), the unsatisfied ones hold at most q − 1 each, so j·m + (n − j)(q − 1) ≥ S, i.e.
    /// j = ⌈(S − n(q − 1)) / (m − q + 1)⌉ (attained with full lists: j items in every list). With lists of
    /// unequal length this is a lower bound, so the value stays in [0, 1]. 1 when q = 0 (every item is
    /// satisfied) or j = n.
    public var fsatNormalized: Double {
        let n = itemCount
        guard n > 0 else { return 1 }
        let q = slots / n
        guard q > 0 else { return 1 }
        let m = listCount
        let needed = slots - n * (q - 1)
        let fewest = min(n, (needed + (m - q + 1) - 1) / (m - q + 1))
        let minimum = Double(fewest) / Double(n)
        return rescaled(fsat, unfair: minimum, fair: 1, collapsed: fewest >= n)
    }
}
