import Testing
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

@Suite struct SamplerTests {
    @Test func negativesAreNeverPositivesAndAreReproducible() {
        // User 0 has 8 of 10 items (exact path), user 1 has 1 (rejection path), user 2 has all (none).
        let r = SparseMatrix(rows: 3, cols: 10,
                             rowIndices: [0, 0, 0, 0, 0, 0, 0, 0, 1] + [Int32](repeating: 2, count: 10),
                             colIndices: [0, 1, 2, 4, 5, 6, 8, 9, 3] + (0..<10).map(Int32.init))
        let sampler = InteractionSampler(userItems: r, seed: 5)
        let users: [Int32] = Array(repeating: 0, count: 500) + Array(repeating: 1, count: 500) + [2]
        let a = sampler.negatives(for: users, epoch: 0, batch: 0)
        #expect(a == sampler.negatives(for: users, epoch: 0, batch: 0))
        #expect(a != sampler.negatives(for: users, epoch: 1, batch: 0))
        #expect(Set(a[0..<500]) == [3, 7])                       // both complement items drawn
        #expect(a[500..<1000].allSatisfy { $0 >= 0 && $0 != 3 })
        #expect(Set(a[500..<1000]).count == 9)
        #expect(a[1000] == -1)
        let order = sampler.epochOrder(epoch: 3)
        #expect(order.sorted() == (0..<Int32(sampler.count)).map { $0 } && order == sampler.epochOrder(epoch: 3))
    }
}

@Suite struct BPRTests {
    func smallSplit() throws -> DataSplit {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        return try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
    }

    func train(_ split: DataSplit, _ settings: [String: String], seed: UInt64 = 1) throws -> (BPRMF, Double) {
        var h = Hyperparameters(settings)
        let model = try BPRMF(&h)
        let evaluator = RankingEvaluator(cutoffs: [10, 20], metrics: [.ndcg, .mrr])
        let context = TrainingContext(seed: seed, validate: { evaluator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics })
        try model.fit(TrainingData(split: split), context: context)
        let test = evaluator.evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix])
        return (model, test.metrics["ndcg@20"]!)
    }

    @Test func learnsAndBeatsMostPop() throws {
        let split = try smallSplit()
        let (model, ndcg) = try train(split, ["epochs": "40", "learning_rate": "0.005", "embedding_size": "32"])
        var h = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &h)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        let popNDCG = RankingEvaluator(cutoffs: [20], metrics: [.ndcg]).evaluate(pop, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
        #expect(ndcg > popNDCG * 1.05, "bpr \(ndcg) vs mostpop \(popNDCG)")
        #expect(model.history.first!.loss > model.history.last!.loss)
    }

    @Test func sameSeedSameModel() throws {
        let split = try smallSplit()
        let settings = ["epochs": "3", "embedding_size": "8"]
        let (a, na) = try train(split, settings), (b, nb) = try train(split, settings)
        #expect(na == nb)
        #expect(a.userEmbeddings == b.userEmbeddings)
        let (_, nc) = try train(split, settings, seed: 2)
        #expect(nc != na)
    }

    @Test func earlyStoppingRestoresTheBestEpoch() throws {
        let split = try smallSplit()
        // A learning rate this high overfits fast; patience 2 stops well before 60 epochs.
        var best: (Double, Int) = (-1, -1)
        var h = Hyperparameters(["epochs": "60", "learning_rate": "0.05", "stopping_step": "2", "embedding_size": "16"])
        let model = try BPRMF(&h)
        let evaluator = RankingEvaluator(cutoffs: [10], metrics: [.mrr])
        var finalValid = 0.0
        let context = TrainingContext(seed: 3, validate: { evaluator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics },
                                      onEpoch: { r in if let v = r.validation?["mrr@10"], v >= best.0 { best = (v, r.epoch) } })
        try model.fit(TrainingData(split: split), context: context)
        finalValid = evaluator.evaluate(model, target: split.validMatrix, exclude: [split.trainMatrix]).metrics["mrr@10"]!
        #expect(model.history.count < 60)
        #expect(model.history.count == best.1 + 1 + 3)  // stops after more than 2 misses
        #expect(abs(finalValid - best.0) < 1e-9)
    }
}
