import Foundation

/// Top-K ranking metrics. Definitions follow RecBole 1.2.1 (`recbole/evaluator/metrics.py`) so numbers
/// are comparable; names print as RecBole does (`recall@20`). The item-fairness, popularity and
/// propensity-weighted measures, which RecBole does not have, are documented where they are computed
/// (`ItemFairness.swift`, `Exposure.swift`, `UserMetrics.snips`).
public enum RankingMetric: String, CaseIterable, Sendable, Codable {
    case recall, ndcg, precision, hit, mrr, map
    /// Propensity-weighted, self-normalised (SNIPS) Recall and DCG for missing-not-at-random test data
    /// (Yang et al., RecSys 2018); per user, they need item propensities (`RankingEvaluator.propensity`).
    case recallSNIPS = "recall_snips", dcgSNIPS = "dcg_snips"
    /// Catalogue-level metrics, computed over all evaluated users' lists.
    case itemCoverage = "itemcoverage", giniIndex = "giniindex"
    /// Individual item-fairness measures of exposure (Rampisela et al., ACM TORS 2024); `_norm` marks their
    /// corrected forms, rescaled to the range attainable with the given lists.
    case itemCoverageNorm = "itemcoverage_norm", giniIndexNorm = "giniindex_norm"
    case jainIndex = "jainindex", jainIndexNorm = "jainindex_norm"
    case entropy, entropyNorm = "entropy_norm"
    case fsat, fsatNorm = "fsat_norm"
    /// Popularity bias: average recommendation popularity (ARP) and the long tail's reach and share; they need
    /// the items' training popularity (`RankingEvaluator.itemPopularity`).
    case averagePopularity = "averagepopularity", longTailCoverage = "longtailcoverage", longTailShare = "longtailshare"

    /// Averaged over users (the others are computed over all users' lists at once).
    public var isPerUser: Bool {
        switch self {
        case .recall, .ndcg, .precision, .hit, .mrr, .map, .recallSNIPS, .dcgSNIPS: return true
        default: return false
        }
    }

    /// Needs the items' training popularity (directly, or through propensities).
    public var needsPopularity: Bool {
        switch self {
        case .recallSNIPS, .dcgSNIPS, .averagePopularity, .longTailCoverage, .longTailShare: return true
        default: return false
        }
    }

    /// RecBole's default metric list, Affinity's default too.
    public static let standard: [RankingMetric] = [.recall, .ndcg, .precision, .hit, .mrr, .map, .itemCoverage, .giniIndex]
    /// The item-fairness and popularity-bias measures (`fairness=true` adds the ones a run does not list).
    public static let fairness: [RankingMetric] = [
        .itemCoverage, .itemCoverageNorm, .giniIndex, .giniIndexNorm, .jainIndex, .jainIndexNorm, .entropy, .entropyNorm,
        .fsat, .fsatNorm, .averagePopularity, .longTailCoverage, .longTailShare,
    ]
    /// The propensity-weighted measures (`unbiased_eval=true` adds them).
    public static let unbiased: [RankingMetric] = [.recallSNIPS, .dcgSNIPS]

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
        precondition(metric.isPerUser && !metric.needsPopularity)
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
        default:
            return 0
        }
    }

    /// Propensity-weighted, self-normalised value of `metric` (`.recallSNIPS` or `.dcgSNIPS`) at cutoff `k`
    /// (Yang et al., RecSys 2018, §4: the SNIPS estimator; the per-user normalisation is Saito et al.'s
    /// evaluator, WSDM 2020). `hitWeights[r]` is 1/p of the item at rank r+1 when it is relevant, else 0;
    /// `relevantWeight` is Σ 1/p over all of the user's relevant items (the IPS estimate of how many relevant
    /// items the user would have if every item were observed):
    ///
    /// - recall_snips = Σ_{hits at rank r ≤ k} w_r / Σ_{relevant} w
    /// - dcg_snips    = Σ_{hits at rank r ≤ k} w_r / log2(r+1) / Σ_{relevant} w
    ///
    /// With equal propensities they are recall and DCG / |relevant| (no ideal-DCG normalisation, as the
    /// estimators average a per-item gain over the relevant items). 0 when the user has no relevant weight.
    public static func snips(_ metric: RankingMetric, hitWeights: [Double], relevantWeight: Double, k: Int) -> Double {
        precondition(metric == .recallSNIPS || metric == .dcgSNIPS)
        guard relevantWeight > 0, k > 0 else { return 0 }
        var sum = 0.0
        for r in 0..<min(k, hitWeights.count) where hitWeights[r] > 0 {
            sum += metric == .recallSNIPS ? hitWeights[r] : hitWeights[r] / log2(Double(r + 2))
        }
        return sum / relevantWeight
    }
}

/// Catalogue-level metrics over the recommendation lists of all evaluated users.
public enum CatalogueMetrics {
    /// How often each item appears in the top-k lists (items never recommended count 0), and the number of
    /// slots filled (Σ counts; k per list unless a list is shorter).
    public static func exposureCounts(lists: [[Int32]], k: Int, itemCount: Int) -> (counts: [Int], slots: Int) {
        var counts = [Int](repeating: 0, count: itemCount)
        var slots = 0
        for list in lists { for i in list.prefix(k) { counts[Int(i)] += 1; slots += 1 } }
        return (counts, slots)
    }

    /// Share of the catalogue that appears in at least one top-k list (Rampisela et al.'s "QF", the fraction
    /// of items). 0 when nothing is recommended.
    public static func itemCoverage(lists: [[Int32]], k: Int, itemCount: Int) -> Double {
        guard itemCount > 0 else { return 0 }
        let counts = exposureCounts(lists: lists, k: k, itemCount: itemCount).counts
        return Double(counts.count(where: { $0 > 0 })) / Double(itemCount)
    }

    /// Gini index of exposure: with P_(1) ≤ … ≤ P_(n) the counts of each item over all top-k lists
    /// (unrecommended items count 0), Σ (2i − n − 1) P_(i) / (n Σ P_(i)). 0 = equal exposure, → 1 = concentrated;
    /// 0 when nothing is recommended (every item's exposure is 0, which is equal).
    public static func giniIndex(lists: [[Int32]], k: Int, itemCount: Int) -> Double {
        guard itemCount > 0 else { return 0 }
        let (counts, slots) = exposureCounts(lists: lists, k: k, itemCount: itemCount)
        return giniIndex(counts: counts, slots: slots)
    }

    /// The Gini index of an exposure count vector (`slots` = Σ counts).
    static func giniIndex(counts: [Int], slots: Int) -> Double {
        guard slots > 0 else { return 0 }
        let sorted = counts.sorted()
        var sum = 0.0
        let n = Double(sorted.count)
        for (idx, c) in sorted.enumerated() where c > 0 {
            sum += (2 * Double(idx + 1) - n - 1) * Double(c)
        }
        return sum / Double(slots) / n
    }

    /// Value of a catalogue-level `metric` at cutoff `k`. `popularity` (training interactions per item) is
    /// needed by the popularity metrics and ignored by the others.
    public static func value(_ metric: RankingMetric, lists: [[Int32]], k: Int, itemCount: Int, popularity: [Int]?) -> Double {
        precondition(!metric.isPerUser, "\(metric.rawValue) is a per-user metric")
        precondition(!metric.needsPopularity || popularity?.count == itemCount, "\(metric.rawValue) needs the popularity of every item")
        guard itemCount > 0 else { return 0 }
        let exposure = ItemExposure(lists: lists, k: k, itemCount: itemCount)
        switch metric {
        case .itemCoverage: return exposure.coverage
        case .itemCoverageNorm: return exposure.coverageNormalized
        case .giniIndex: return exposure.gini
        case .giniIndexNorm: return exposure.giniNormalized
        case .jainIndex: return exposure.jain
        case .jainIndexNorm: return exposure.jainNormalized
        case .entropy: return exposure.entropy
        case .entropyNorm: return exposure.entropyNormalized
        case .fsat: return exposure.fsat
        case .fsatNorm: return exposure.fsatNormalized
        case .averagePopularity: return Exposure.averagePopularity(lists: lists, k: k, popularity: popularity!)
        case .longTailCoverage: return Exposure.longTailCoverage(lists: lists, k: k, popularity: popularity!)
        case .longTailShare: return Exposure.longTailShare(lists: lists, k: k, popularity: popularity!)
        default: return 0
        }
    }
}
