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
    public static func averagePopularity(lists: [[Int32]], k: Int, popularity: [Int]) -> Double {
        var sum = 0, total = 0
        for list in lists { for i in list.prefix(k) { sum += popularity[Int(i)]; total += 1 } }
        return total == 0 ? 0 : Double(sum) / Double(total)
    }
}
