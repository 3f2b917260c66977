import Foundation

/// Top-K ranking metrics. Definitions follow RecBole 1.2.1 (`recbole/evaluator/metrics.py`) so numbers
/// are comparable; names print as RecBole does (`recall@20`).
public enum RankingMetric: String, CaseIterable, Sendable, Codable {
    case recall, ndcg, precision, hit, mrr, map
    /// Catalogue-level metrics, computed over all evaluated users' lists.
    case itemCoverage = "itemcoverage", giniIndex = "giniindex"

    public var isPerUser: Bool { self != .itemCoverage && self != .giniIndex }

    public init(parsing text: String) throws {
        guard let m = RankingMetric(rawValue: text.lowercased()) else {
            throw MetricError.unknown(text)
        }
        self = m
    }
}

public enum MetricError: Error, CustomStringConvertible {
    case unknown(String)
    public var description: String {
        if case .unknown(let s) = self {
            return "unknown metric '\(s)' (known: \(RankingMetric.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
        return ""
    }
}

/// Per-user metric values from one ranked list.
public enum UserMetrics {
    /// Value of `metric` at cutoff `k` for a ranked list whose hit pattern is `hits` (`hits[r]` is true
    /// when the item at rank r+1 is relevant), for a user with `relevantCount` relevant items.
    ///
    /// - recall = hits@k / |relevant|
    /// - precision = hits@k / k (k, not the list length, as in RecBole)
    /// - hit = 1 if any hit in the top k
    /// - mrr = 1 / rank of the first hit within k, else 0
    /// - ndcg = Σ_{hits at rank r ≤ k} 1/log2(r+1) divided by the ideal Σ_{r=1}^{min(|relevant|, k)} 1/log2(r+1)
    /// - map = Σ_{r ≤ k, hit} precision@r / min(|relevant|, k)
    public static func value(_ metric: RankingMetric, hits: [Bool], relevantCount: Int, k: Int) -> Double {
        precondition(metric.isPerUser)
        guard relevantCount > 0, k > 0 else { return 0 }
        let n = min(k, hits.count)
        switch metric {
        case .recall:
            return Double(hits.prefix(n).filter { $0 }.count) / Double(relevantCount)
        case .precision:
            return Double(hits.prefix(n).filter { $0 }.count) / Double(k)
        case .hit:
            return hits.prefix(n).contains(true) ? 1 : 0
        case .mrr:
            guard let first = hits.prefix(n).firstIndex(of: true) else { return 0 }
            return 1 / Double(first + 1)
        case .ndcg:
            var dcg = 0.0
            for r in 0..<n where hits[r] { dcg += 1 / log2(Double(r + 2)) }
            var idcg = 0.0
            for r in 0..<min(relevantCount, k) { idcg += 1 / log2(Double(r + 2)) }
            return dcg / idcg
        case .map:
            var found = 0, sum = 0.0
            for r in 0..<n where hits[r] {
                found += 1
                sum += Double(found) / Double(r + 1)
            }
            return sum / Double(min(relevantCount, k))
        case .itemCoverage, .giniIndex:
            return 0
        }
    }
}

/// Catalogue-level metrics over the recommendation lists of all evaluated users.
public enum CatalogueMetrics {
    /// Share of the catalogue that appears in at least one top-k list.
    public static func itemCoverage(lists: [[Int32]], k: Int, itemCount: Int) -> Double {
        guard itemCount > 0 else { return 0 }
        var seen = [Bool](repeating: false, count: itemCount)
        var distinct = 0
        for list in lists { for i in list.prefix(k) where !seen[Int(i)] { seen[Int(i)] = true; distinct += 1 } }
        return Double(distinct) / Double(itemCount)
    }

    /// Gini index of exposure: with P_(1) ≤ … ≤ P_(n) the counts of each item over all top-k lists
    /// (unrecommended items count 0), Σ (2i − n − 1) P_(i) / (n Σ P_(i)). 0 = equal exposure, → 1 = concentrated.
    public static func giniIndex(lists: [[Int32]], k: Int, itemCount: Int) -> Double {
        guard itemCount > 0 else { return 0 }
        var counts = [Int](repeating: 0, count: itemCount)
        var total = 0
        for list in lists { for i in list.prefix(k) { counts[Int(i)] += 1; total += 1 } }
        guard total > 0 else { return 0 }
        counts.sort()
        var sum = 0.0
        let n = Double(itemCount)
        for (idx, c) in counts.enumerated() where c > 0 {
            sum += (2 * Double(idx + 1) - n - 1) * Double(c)
        }
        return sum / Double(total) / n
    }
}
