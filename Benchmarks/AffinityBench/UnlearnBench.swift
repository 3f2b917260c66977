import ArgumentParser
import AffinityCLI
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityServing
import Dispatch
import Foundation

/// `affinity-bench unlearn`: approximate unlearning against retraining without the forgotten interactions.
/// A share of the training interactions of some users is forgotten; the original, the unlearned and the
/// retrained BPR-MF models are compared on (a) where the forgotten items rank for their users (mean rank
/// percentile among the items the user did not keep; 0 = top) and how many land in the top 20, and (b) test
/// Recall@20 (utility), with the seconds each path took.
struct UnlearnBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unlearn")
    @OptionGroup var data: DataOptions
    @Option var users = 50
    @Option var fraction = 0.25
    @Option var epochs = 40
    @Option var learningRate = 0.005
    @Option var steps = UnlearningSettings().steps
    @Option var unlearningRate = Double(UnlearningSettings().learningRate)
    @Option var reverseWeight = Double(UnlearningSettings().reverseWeight)
    @Option var retainedSamples = UnlearningSettings().retainedSamples
    @Option var seed: UInt64 = 2020

    func run() throws {
        try reportingErrors {
            let dataset = try data.load()
            let split = try DataSplit.make(dataset, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: seed)
            let settings = ["epochs": String(epochs), "learning_rate": String(learningRate), "embedding_size": "64"]
            func train(_ interactions: Interactions) throws -> (BPRMF, Double) {
                var h = Hyperparameters(settings)
                let model = try BPRMF(&h)
                let start = DispatchTime.now().uptimeNanoseconds
                try model.fit(TrainingData(userCount: split.userCount, itemCount: split.itemCount, interactions: interactions),
                              context: TrainingContext(seed: seed))
                return (model, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            // The forget set: `fraction` of the training interactions of `users` random users with at least 10.
            var rng = SeededGenerator(seed: seed ^ 0xF0F0)
            let byUser = split.train.positionsByUser(userCount: split.userCount)
            let eligible = (0..<split.userCount).filter { byUser[$0].count >= 10 }
            var chosen = Set<Int>()
            while chosen.count < min(users, eligible.count) { chosen.insert(eligible[rng.nextInt(below: eligible.count)]) }
            var forgetPositions = Set<Int>()
            for u in chosen.sorted() {
                var positions = byUser[u]
                for i in stride(from: positions.count - 1, to: 0, by: -1) { positions.swapAt(i, rng.nextInt(below: i + 1)) }
                forgetPositions.formUnion(positions.prefix(max(1, Int(Double(positions.count) * fraction))))
            }
            let keptPositions = (0..<split.train.count).filter { !forgetPositions.contains($0) }
            let kept = split.train.subset(keptPositions)
            let forget = forgetPositions.sorted().map { (user: split.train.users[$0], item: split.train.items[$0]) }
            let keptMatrix = kept.matrix(users: split.userCount, items: split.itemCount)

            let (original, trainSeconds) = try train(split.train)
            let (retrained, retrainSeconds) = try train(kept)
            let start = DispatchTime.now().uptimeNanoseconds
            let (u, q) = Unlearning.forget(users: original.userEmbeddings, items: original.itemEmbeddings, forget: forget,
                                           retainedByUser: keptMatrix, retainedByItem: keptMatrix.transposed(),
                                           settings: UnlearningSettings(steps: steps, learningRate: Float(unlearningRate), retainedSamples: retainedSamples,
                                                                         reverseWeight: Float(reverseWeight)))
            let unlearnSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

            let forgetMatrix = Interactions(users: forget.map(\.user), items: forget.map(\.item)).matrix(users: split.userCount, items: split.itemCount)
            let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.recall, .ndcg])
            func report(_ name: String, _ scorer: EmbeddingScorer, seconds: Double) -> String {
                // Forgotten items, ranked among everything the user did not keep.
                let forgotten = evaluator.evaluate(scorer, target: forgetMatrix, exclude: [keptMatrix])
                var percentile = 0.0
                var scores = [Float](repeating: 0, count: split.itemCount)
                for (user, item) in forget {
                    scores.withUnsafeMutableBufferPointer { scorer.score(users: [user], into: $0) }
                    let target = scores[Int(item)]
                    var above = 0, candidates = 0
                    for i in 0..<split.itemCount where !keptMatrix.contains(row: Int(user), col: Int32(i)) {
                        candidates += 1
                        if scores[i] > target { above += 1 }
                    }
                    percentile += Double(above) / Double(max(1, candidates - 1))
                }
                let test = evaluator.evaluate(scorer, target: split.testMatrix, exclude: [keptMatrix, split.validMatrix])
                return jsonLine([("model", name), ("forget_rank_percentile", percentile / Double(forget.count)),
                                 ("forget_recall@20", forgotten.metrics["recall@20"]!),
                                 ("test_recall@20", test.metrics["recall@20"]!), ("test_ndcg@20", test.metrics["ndcg@20"]!),
                                 ("seconds", seconds)])
            }
            print(jsonLine([("bench", "unlearn"), ("dataset", dataset.name), ("users", chosen.count), ("forgotten", forget.count),
                            ("train_interactions", split.train.count), ("steps", steps), ("unlearning_rate", unlearningRate),
                            ("reverse_weight", reverseWeight), ("retained_samples", retainedSamples)]))
            print(report("original", EmbeddingScorer(userEmbeddings: original.userEmbeddings, itemEmbeddings: original.itemEmbeddings), seconds: trainSeconds))
            print(report("retrained", EmbeddingScorer(userEmbeddings: retrained.userEmbeddings, itemEmbeddings: retrained.itemEmbeddings), seconds: retrainSeconds))
            print(report("unlearned", EmbeddingScorer(userEmbeddings: u, itemEmbeddings: q), seconds: unlearnSeconds))
        }
    }
}
