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
    /// 1 − 1/θ, a sampled unclicked pair of user u weighs −log(1 − σ) by (n − |O_u|)/|O_u|; the mean over the 2B terms.
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
        // Unclicked weights (4 − |O_u|)/|O_u|: user 0 has 2 items → 1, users 1 and 2 have 1 → 3.
        #expect(model.unclickedWeights == [1, 3, 3])
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
            expected += Double(model.unclickedWeights[Int(users[k])]) * negativeLoss(sigma(score(users[k], negatives[k])))
        }
        expected /= 6
        #expect(abs(loss - expected) < 1e-5, "\(localLoss): \(loss) vs \(expected)")
    }

    @Test func constantUnclickedWeight() throws {
        let data = TrainingData(userCount: 2, itemCount: 3, interactions: Interactions(users: [0, 1], items: [0, 1]))
        var h = Hyperparameters(["embedding_size": "2", "epochs": "0", "unclicked_weight": "1"])
        let model = try RelMF(&h)
        try model.fit(data, context: TrainingContext(seed: 1))
        #expect(model.unclickedWeights == [1, 1])
        var bad = Hyperparameters(["unclicked_weight": "some"])
        #expect(throws: HyperparameterError.self) { _ = try RelMF(&bad) }
    }

    /// Rel-MF estimates a loss over relevance, not clicks, so on a missing-not-at-random test it is judged by the
    /// propensity-weighted DCG (plain NDCG there rewards popularity, MostPop's one strength). The fixture: the first
    /// 250 users of the ml-latest-small subset the BPR test uses, to keep the debug build's epochs short.
    @Test func learnsAndBeatsMostPop() throws {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let whole = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        func firstUsers(_ part: Interactions) -> Interactions { part.subset(part.users.indices.filter { part.users[$0] < 250 }) }
        let split = DataSplit(userCount: 250, itemCount: whole.itemCount, train: firstUsers(whole.train),
                              valid: firstUsers(whole.valid), test: firstUsers(whole.test))
        var popularity = [Int](repeating: 0, count: split.itemCount)
        for i in split.train.items { popularity[Int(i)] += 1 }
        let validator = RankingEvaluator(cutoffs: [10], metrics: [.dcgSNIPS], itemPopularity: popularity)
        var h = Hyperparameters(["epochs": "15", "learning_rate": "0.005", "embedding_size": "16", "valid_metric": "dcg_snips@10"])
        let model = try RelMF(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1, validate: {
            validator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics
        }))
        var hp = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &hp)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.dcgSNIPS], itemPopularity: popularity)
        func dcg(_ m: any Recommender) -> Double {
            evaluator.evaluate(m, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["dcg_snips@20"]!
        }
        #expect(dcg(model) > dcg(pop) * 1.05, "relmf \(dcg(model)) vs mostpop \(dcg(pop))")
        #expect(model.history.first!.loss > model.history.last!.loss)
    }
}
