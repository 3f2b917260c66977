#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Metrics of predicted click probabilities against 0/1 labels (click-through prediction), defined as RecBole
/// 1.2.1's `AUC` and `LogLoss`: over all predictions at once, not averaged per user.
public enum ClassificationMetrics {
    /// Area under the ROC curve: the probability that a random positive scores above a random negative, ties
    /// counting one half. Computed from ranks (Mann–Whitney U), tied scores sharing their average rank, which
    /// is the trapezoid area RecBole's ROC curve gives. NaN when either class is absent.
    public static func auc(scores: [Float], labels: [Float]) -> Double {
        precondition(scores.count == labels.count, "auc: one label per score")
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var positiveRankSum = 0.0, positives = 0.0
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && scores[order[end]] == scores[order[start]] { end += 1 }
            // Ranks start + 1 … end (1-based) share their mean.
            let averageRank = Double(start + 1 + end) / 2
            for k in start..<end where labels[order[k]] > 0.5 {
                positiveRankSum += averageRank
                positives += 1
            }
            start = end
        }
        let negatives = Double(scores.count) - positives
        guard positives > 0, negatives > 0 else { return .nan }
        return (positiveRankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }

    /// Mean binary cross-entropy −[y log p + (1 − y) log(1 − p)] with p clipped to [1e-15, 1 − 1e-15] (RecBole's
    /// `LogLoss`), in double precision.
    public static func logLoss(probabilities: [Float], labels: [Float]) -> Double {
        precondition(probabilities.count == labels.count, "logLoss: one label per probability")
        guard !labels.isEmpty else { return .nan }
        let epsilon = 1e-15
        var total = 0.0
        for (p, y) in zip(probabilities, labels) {
            let clipped = min(max(Double(p), epsilon), 1 - epsilon)
            total -= Double(y) * log(clipped) + (1 - Double(y)) * log(1 - clipped)
        }
        return total / Double(labels.count)
    }

    /// `auc` and `logloss` by name, as run records and early stopping read them.
    public static func evaluate(probabilities: [Float], labels: [Float]) -> [String: Double] {
        ["auc": auc(scores: probabilities, labels: labels), "logloss": logLoss(probabilities: probabilities, labels: labels)]
    }
}
