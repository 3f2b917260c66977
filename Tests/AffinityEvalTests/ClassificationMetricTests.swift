import Testing
import Foundation
import AffinityEval

@Suite struct ClassificationMetricTests {
    /// Positives score 0.4 and 0.8; negatives 0.1, 0.4, 0.4. Of the 6 (positive, negative) pairs the 0.8 wins 3,
    /// the 0.4 wins against 0.1 and ties twice (½ each): AUC = (3 + 1 + ½ + ½) / 6 = 5/6.
    @Test func aucCountsTiesAsHalf() {
        let auc = ClassificationMetrics.auc(scores: [0.1, 0.4, 0.4, 0.8, 0.4], labels: [0, 1, 0, 1, 0])
        #expect(abs(auc - 5.0 / 6.0) < 1e-12)
        // Every score tied: no information, 0.5.
        #expect(ClassificationMetrics.auc(scores: [0.3, 0.3, 0.3, 0.3], labels: [1, 0, 0, 1]) == 0.5)
        // Perfect and reversed orderings.
        #expect(ClassificationMetrics.auc(scores: [0.1, 0.2, 0.9], labels: [0, 0, 1]) == 1)
        #expect(ClassificationMetrics.auc(scores: [0.1, 0.2, 0.9], labels: [1, 1, 0]) == 0)
        #expect(ClassificationMetrics.auc(scores: [0.1, 0.2], labels: [1, 1]).isNaN)
    }

    @Test func logLossIsTheMeanCrossEntropyClipped() {
        let value = ClassificationMetrics.logLoss(probabilities: [0.9, 0.2, 0.5], labels: [1, 0, 1])
        #expect(abs(value - (-log(0.9) - log(0.8) - log(0.5)) / 3) < 1e-6)
        // A certain wrong prediction is clipped at 1e-15, not infinite.
        let clipped = ClassificationMetrics.logLoss(probabilities: [0], labels: [1])
        #expect(abs(clipped + log(1e-15)) < 1e-9)
    }
}
