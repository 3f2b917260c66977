import Testing
import Foundation
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

    @Test func userUniformSamplingWeighsUsersEqually() {
        // User 0 has 9 pairs, user 1 has 1, user 2 none: pair sampling gives user 1 a tenth of the samples,
        // user-uniform sampling half, and user 2 none.
        let r = SparseMatrix(rows: 3, cols: 10, rowIndices: [Int32](repeating: 0, count: 9) + [1],
                             colIndices: (0..<9).map(Int32.init) + [4])
        let sampler = InteractionSampler(userItems: r, seed: 9)
        var counts = [0, 0], items = Set<Int32>()
        for epoch in 0..<400 {
            let order = sampler.userUniformOrder(epoch: epoch)
            #expect(order.count == sampler.count)
            for p in order {
                counts[Int(sampler.users[Int(p)])] += 1
                if sampler.users[Int(p)] == 0 { items.insert(sampler.items[Int(p)]) }
            }
        }
        #expect(abs(Double(counts[1]) / 4000 - 0.5) < 0.05, "user 1 share \(counts[1])")
        #expect(items.count == 9)  // every item of user 0 is drawn
        #expect(sampler.userUniformOrder(epoch: 7) == sampler.userUniformOrder(epoch: 7))
        #expect(sampler.userUniformOrder(epoch: 7) != sampler.userUniformOrder(epoch: 8))
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

@Suite struct LearningRateScheduleTests {
    @Test func cosineStepAndConstant() throws {
        var h = Hyperparameters(["lr_schedule": "cosine", "lr_min": "0.001"])
        let cosine = try LearningRateSchedule(&h)
        #expect(cosine == .cosine(minimum: 0.001))
        #expect(abs(cosine.rate(base: 0.01, epoch: 0, batch: 0, batches: 10, epochs: 4) - 0.01) < 1e-7)
        #expect(abs(cosine.rate(base: 0.01, epoch: 2, batch: 0, batches: 10, epochs: 4) - 0.0055) < 1e-6)  // halfway: the mean
        #expect(abs(cosine.rate(base: 0.01, epoch: 3, batch: 10, batches: 10, epochs: 4) - 0.001) < 1e-7)  // end: the minimum
        let quarter = cosine.rate(base: 0.01, epoch: 1, batch: 0, batches: 10, epochs: 4)
        #expect(abs(quarter - Float(0.001 + 0.009 * 0.5 * (1 + cos(Double.pi / 4)))) < 1e-6)
        var s = Hyperparameters(["lr_schedule": "step", "lr_decay": "0.5", "lr_step": "3"])
        let step = try LearningRateSchedule(&s)
        #expect(step.rate(base: 1, epoch: 2, batch: 5, batches: 10, epochs: 9) == 1)
        #expect(step.rate(base: 1, epoch: 3, batch: 0, batches: 10, epochs: 9) == 0.5)
        #expect(step.rate(base: 1, epoch: 7, batch: 0, batches: 10, epochs: 9) == 0.25)
        var c = Hyperparameters()
        #expect(try LearningRateSchedule(&c).rate(base: 0.3, epoch: 5, batch: 1, batches: 2, epochs: 6) == 0.3)
        var bad = Hyperparameters(["lr_schedule": "step", "lr_decay": "1.5"])
        #expect(throws: HyperparameterError.self) { try LearningRateSchedule(&bad) }
        var unknown = Hyperparameters(["lr_schedule": "linear"])
        #expect(throws: HyperparameterError.self) { try LearningRateSchedule(&unknown) }
    }

    @Test func trainerFollowsTheScheduleAndLogsTheCurve() throws {
        // A cosine schedule decaying to 0 makes the last epoch's updates vanishingly small; the curve is measured
        // at the requested epochs and never selects the parameters.
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "4", "learning_rate": "0.01", "embedding_size": "8", "lr_schedule": "cosine", "train_batch_size": "4096"])
        let model = try BPRMF(&h)
        var snapshots: [Matrix] = []
        var context = TrainingContext(seed: 1, onEpoch: { _ in snapshots.append(model.userEmbeddings) })
        let evaluator = RankingEvaluator(cutoffs: [10], metrics: [.recall])
        var calls = 0
        context.monitorStep = 2
        context.monitor = { calls += 1; return evaluator.evaluate($0, target: split.testMatrix, exclude: [split.trainMatrix]).metrics }
        try model.fit(TrainingData(split: split), context: context)
        #expect(calls == 2)
        #expect(model.history.map { $0.monitored != nil } == [false, true, false, true])
        func change(_ a: Matrix, _ b: Matrix) -> Float { zip(a.storage, b.storage).map { abs($0 - $1) }.max()! }
        // Epoch 3 runs at rates ≤ lr·(1 + cos(3π/4))/2 ≈ 0.15·lr, epoch 1 at ≥ 0.85·lr.
        #expect(change(snapshots[3], snapshots[2]) < change(snapshots[1], snapshots[0]) * 0.6)
    }
}

