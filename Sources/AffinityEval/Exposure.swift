/// Who gets recommended: exposure of the top-k lists by the items' training popularity.
public enum Exposure {
    /// Each item's popularity decile, 0 (least popular tenth of the catalogue) … `bins − 1` (most popular).
    /// Items are ordered by `popularity` ascending, ties by item index, and cut into `bins` parts whose sizes
    /// differ by at most one (item r of n goes to bin ⌊r·bins/n⌋).
    public static func popularityBins(popularity: [Int], bins: Int = 10) -> [Int] {
        precondition(bins > 0, "bins must be positive")
        let n = popularity.count
        let order = popularity.indices.sorted { popularity[$0] != popularity[$1] ? popularity[$0] < popularity[$1] : $0 < $1 }
        var bin = [Int](repeating: 0, count: n)
        for (rank, item) in order.enumerated() { bin[item] = rank * bins / n }
        return bin
    }

    /// Share of all top-k recommendation slots that go to each popularity bin (sums to 1; all zeros when the
    /// lists are empty). A popularity-neutral recommender gives each decile about 0.1.
    public static func shareByPopularityBin(lists: [[Int32]], k: Int, popularity: [Int], bins: Int = 10) -> [Double] {
        let bin = popularityBins(popularity: popularity, bins: bins)
        var slots = [Int](repeating: 0, count: bins)
        var total = 0
        for list in lists {
            for i in list.prefix(k) { slots[bin[Int(i)]] += 1; total += 1 }
        }
        guard total > 0 else { return [Double](repeating: 0, count: bins) }
        return slots.map { Double($0) / Double(total) }
    }

    /// Mean training popularity (interaction count) of the recommended items over all top-k slots; 0 when empty.
    /// With full lists this is the average recommendation popularity (ARP; Abdollahpouri et al., FLAIRS 2019),
    /// the per-user mean popularity of a list averaged over users, and RecBole's `AveragePopularity`.
    public static func averagePopularity(lists: [[Int32]], k: Int, popularity: [Int]) -> Double {
        var sum = 0, total = 0
        for list in lists { for i in list.prefix(k) { sum += popularity[Int(i)]; total += 1 } }
        return total == 0 ? 0 : Double(sum) / Double(total)
    }
}

extension Exposure {
    /// The long tail of the catalogue (Abdollahpouri et al., RecSys 2017 and FLAIRS 2019): every item outside
    /// the *short head*, the most popular items that together account for `headShare` (80%) of the training
    /// interactions. Items in order of popularity, most popular first; the head is the shortest such prefix,
    /// widened to every item as popular as its last one (ties never split the head, so the result does not
    /// depend on item order). Items without training interactions are always in the tail; with no interactions
    /// at all every item is.
    public static func longTail(popularity: [Int], headShare: Double = 0.8) -> [Bool] {
        precondition(headShare >= 0 && headShare <= 1, "headShare must be in [0, 1]")
        let total = popularity.reduce(0, +)
        var tail = [Bool](repeating: true, count: popularity.count)
        guard total > 0 else { return tail }
        let descending = popularity.sorted(by: >)
        var covered = 0
        var threshold: Int? = nil
        for p in descending {
            if Double(covered) >= headShare * Double(total) { break }
            covered += p
            threshold = p
        }
        guard let threshold else { return tail }
        for (i, p) in popularity.enumerated() where p >= threshold && p > 0 { tail[i] = false }
        return tail
    }

    /// Long-tail coverage: the share of long-tail items (`longTail`) recommended in at least one top-k list
    /// (Abdollahpouri et al.'s LTC, over the tail only). 0 when nothing is recommended or the tail is empty.
    public static func longTailCoverage(lists: [[Int32]], k: Int, popularity: [Int], headShare: Double = 0.8) -> Double {
        let tail = longTail(popularity: popularity, headShare: headShare)
        let tailSize = tail.count(where: { $0 })
        guard tailSize > 0 else { return 0 }
        var seen = [Bool](repeating: false, count: popularity.count)
        var reached = 0
        for list in lists {
            for i in list.prefix(k) where tail[Int(i)] && !seen[Int(i)] { seen[Int(i)] = true; reached += 1 }
        }
        return Double(reached) / Double(tailSize)
    }

    /// Long-tail share: the share of all top-k slots that go to long-tail items (with full lists, Abdollahpouri
    /// et al.'s APLT, the average percentage of long-tail items per list). 0 when nothing is recommended.
    public static func longTailShare(lists: [[Int32]], k: Int, popularity: [Int], headShare: Double = 0.8) -> Double {
        let tail = longTail(popularity: popularity, headShare: headShare)
        var inTail = 0, total = 0
        for list in lists { for i in list.prefix(k) { total += 1; if tail[Int(i)] { inTail += 1 } } }
        return total == 0 ? 0 : Double(inTail) / Double(total)
    }
}
