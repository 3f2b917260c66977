import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

/// Rel-MF: its weights, its estimator on a batch worked by hand, and that it learns.
@Suite struct RelMFTests {
    @Test func clippingBoundsTheWeights() {
        // θ = (n / 100)^0.5: 1, 0.5, 0.1, 0 for n = 100, 25, 1, 0; clipped at 0.2 → weights 1, 2, 5, 5.
        let weights = RelMF.inversePropensities(popularity: [100, 25, 1, 0], power: 0.5, clip: 0.2)
        #expect(zip(weights, [1, 2, 5, 5] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(abs(weights.max()! - 1 / 0.2) < 1e-5)
        // Whatever the popularity, no weight exceeds 1/clip, none is below 1; clip 1 weighs every pair 1.
        var rng = SeededGenerator(seed: 5)
        let popularity = (0..<200).map { _ in rng.nextInt(below: 1000) }
        for clip in [0.01, 0.1, 0.5] {
            let w = RelMF.inversePropensities(popularity: popularity, power: 0.5, clip: clip)
            #expect(w.allSatisfy { $0 >= 1 - 1e-6 && $0 <= Float(1 / clip) * (1 + 1e-6) })
        }
        #expect(RelMF.inversePropensities(popularity: popularity, power: 0.5, clip: 1).allSatisfy { $0 == 1 })
    }

    /// A batch's loss equals eq. (9) evaluated by hand: clicked pairs weigh −log σ by 1/θ and −log(1 − σ) by
    /// 1 − 1/θ, sampled unclicked pairs weigh −log(1 − σ) by 1; the mean over the 2B terms.
    @Test(arguments: ["log", "squared"])
    func batchLossIsTheUnbiasedEstimator(_ localLoss: String) throws {
        // 3 users × 4 items; item popularity (training users) 3, 1, 1, 0.
        let data = TrainingData(userCount: 3, itemCount: 4, interactions: Interactions(users: [0, 1, 2, 0], items: [0, 0, 0, 1]))
        var h = Hyperparameters(["embedding_size": "3", "epochs": "0", "reg_weight": "0", "propensity_clip": "0.05",
                                 "local_loss": localLoss])
        let model = try RelMF(&h)
        try model.fit(data, context: TrainingContext(seed: 7))
        // 1/θ = 1/max((n/3)^0.5, 0.05): item 0 → 1, item 1 → √3, items 2 and 3 (no training users) → 20.
        #expect(abs(model.inversePropensity[1] - Float(3).squareRoot()) < 1e-5 && abs(model.inversePropensity[3] - 20) < 1e-4)
        let users: [Int32] = [0, 1, 0], positives: [Int32] = [1, 0, 0], negatives: [Int32] = [3, 2, 2]
        let loss = Double(model.batchLoss(users: users, positives: positives, negatives: negatives, epoch: 0).scalar)
        let u = model.userEmbeddings, v = model.itemEmbeddings
        func score(_ a: Int32, _ b: Int32) -> Double {
            (0..<3).reduce(0.0) { $0 + Double(u[Int(a), $1]) * Double(v[Int(b), $1]) }
        }
        func sigma(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
        func positiveLoss(_ p: Double) -> Double { localLoss == "log" ? -log(p) : (1 - p) * (1 - p) }
        func negativeLoss(_ p: Double) -> Double { localLoss == "log" ? -log(1 - p) : p * p }
        var expected = 0.0
        for k in 0..<3 {
            let w = Double(model.inversePropensity[Int(positives[k])])
            let p = sigma(score(users[k], positives[k]))
            expected += w * positiveLoss(p) + (1 - w) * negativeLoss(p)
            expected += negativeLoss(sigma(score(users[k], negatives[k])))
        }
        expected /= 6
        #expect(abs(loss - expected) < 1e-5, "\(localLoss): \(loss) vs \(expected)")
    }

    @Test func learnsAndBeatsMostPop() throws {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "20", "learning_rate": "0.005", "embedding_size": "32"])
        let model = try RelMF(&h)
        let validator = RankingEvaluator(cutoffs: [10], metrics: [.mrr])
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1, validate: {
            validator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics
        }))
        var hp = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &hp)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
        func ndcg(_ m: any Recommender) -> Double {
            evaluator.evaluate(m, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
        }
        #expect(ndcg(model) > ndcg(pop) * 1.05, "relmf \(ndcg(model)) vs mostpop \(ndcg(pop))")
        #expect(model.history.first!.loss > model.history.last!.loss)
    }
}
