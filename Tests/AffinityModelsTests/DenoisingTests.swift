import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

/// PLD's sampler (`sampling=pld`), the trainer's batch clock, and BPR-MF and LightGCN trained with the denoising
/// options.
@Suite struct PersonalizedDenoisingTests {
    /// User 0 owns items 0…4, user 1 items 5 and 6, of 12 items. Fixed scores: the pool items of user 0 score
    /// 2, 1, 0, −1, −3 and every other pair 0, so candidate c's loss is softplus(0 − s_c) whatever the negative.
    static let userItems = SparseMatrix(rows: 2, cols: 12, rowIndices: [0, 0, 0, 0, 0, 1, 1], colIndices: [0, 1, 2, 3, 4, 5, 6])
    static let poolScores: [Float] = [2, 1, 0, -1, -3]

    static func score(_ users: [Int32], _ items: [Int32]) -> [Float] {
        zip(users, items).map { u, i in u == 0 && i < 5 ? poolScores[Int(i)] : 0 }
    }

    @Test func chosenPositivesFollowTheSoftmaxOfNegativeLossOverTemperature() {
        let sampler = InteractionSampler(userItems: Self.userItems, seed: 11)
        let temperature: Float = 0.5
        let settings = PersonalizedDenoisingSampling(poolSize: 5, temperature: temperature)
        var counts = [Int](repeating: 0, count: 5)
        for batch in 0..<40 {
            let (users, positives, negatives) = sampler.personalizedBatch(size: 1000, settings: settings, epoch: 6, batch: batch) { u, i in
                // Pools: k distinct items for user 0 (who has exactly k), the user's own items for user 1.
                let k = 5, n = u.count / (k + 1)
                for s in 0..<n {
                    let pool = i[(s * k)..<(s * k + k)]
                    if u[s * k] == 0 { #expect(Set(pool) == [0, 1, 2, 3, 4]) } else { #expect(pool.allSatisfy { $0 == 5 || $0 == 6 }) }
                }
                return Self.score(u, i)
            }
            for (u, (p, n)) in zip(users, zip(positives, negatives)) {
                #expect(!Self.userItems.contains(row: Int(u), col: n))
                if u == 0 { counts[Int(p)] += 1 } else { #expect(p == 5 || p == 6) }
            }
        }
        // softmax(−softplus(−s)/τ) over the five candidates.
        let logits = Self.poolScores.map { -log1p(exp(-Double($0))) / Double(temperature) }
        let weights = logits.map { exp($0 - logits.max()!) }
        let expected = weights.map { $0 / weights.reduce(0, +) }
        let total = Double(counts.reduce(0, +))
        #expect(total > 18_000)  // about half of 40,000 samples are user 0's
        let chiSquare = zip(counts, expected).reduce(0.0) { $0 + pow(Double($1.0) - total * $1.1, 2) / (total * $1.1) }
        #expect(chiSquare < 18.47, "χ² \(chiSquare) on 4 degrees of freedom (p = 0.001); counts \(counts), expected \(expected.map { $0 * total })")
    }

    @Test func batchesAreDeterministicAndKeyedByEpochAndBatch() {
        let sampler = InteractionSampler(userItems: Self.userItems, seed: 3)
        let settings = PersonalizedDenoisingSampling()
        func draw(_ epoch: Int, _ batch: Int) -> [[Int32]] {
            let b = sampler.personalizedBatch(size: 300, settings: settings, epoch: epoch, batch: batch, score: Self.score)
            return [b.users, b.positives, b.negatives]
        }
        #expect(draw(5, 2) == draw(5, 2))
        #expect(draw(5, 2) != draw(5, 3) && draw(5, 2) != draw(6, 2))
        #expect(InteractionSampler(userItems: Self.userItems, seed: 4).personalizedBatch(size: 300, settings: settings, epoch: 5, batch: 2,
                                                                                          score: Self.score).positives != draw(5, 2)[1])
    }

    /// The trainer tells the model its batch clock, epoch · batches + batch, and from `begin_adv` on asks it for
    /// scores of every batch.
    @Test func trainerCountsBatchesAndConsultsTheModelFromBeginAdv() throws {
        let data = TrainingData(userCount: 2, itemCount: 12, interactions: Interactions(users: [0, 0, 0, 0, 0, 1, 1], items: [0, 1, 2, 3, 4, 5, 6]))
        var h = Hyperparameters(["epochs": "4", "train_batch_size": "3", "sampling": "pld", "begin_adv": "2"])
        let model = try BatchClockProbe(&h)
        try model.fit(data, context: TrainingContext(seed: 1))
        #expect(model.iterations == Array(0..<12))                       // 7 pairs in batches of 3: 3 per epoch
        // Epochs 2 and 3 (iterations 6…11) are PLD's; each batch is drawn, and scored, before its iteration starts.
        #expect(model.scoredBatches == Array(6..<12))
        #expect(model.scoredSizes == [3, 3, 1, 3, 3, 1].map { $0 * 6 })  // (pool of 5 + the negative) per sample
    }

    /// Every loss and sampler option trains both models to beat MostPop (GraphModelTests' fixture and floor).
    @Test(arguments: [
        ("bpr", ["loss": "bce", "denoise": "tce", "drop_rate": "0.2", "num_gradual": "50"]), ("bpr", ["denoise": "rce", "beta": "0.25"]),
        ("bpr", ["sampling": "pld", "begin_adv": "2", "denoise": "tce", "num_gradual": "50"]),
        ("lightgcn", ["sampling": "pld", "begin_adv": "1", "denoise": "rce", "loss": "bce"]),
    ])
    func denoisedTrainingLearns(model name: String, settings: [String: String]) throws {
        let fixture = GraphModelTests()
        let split = try fixture.smallSplit()
        var h = Hyperparameters(["epochs": "6", "learning_rate": "0.01", "embedding_size": "16"]
            .merging(name == "lightgcn" ? ["n_layers": "2"] : [:]) { $1 }.merging(settings) { $1 })
        let model = try ModelRegistry.make(name, hyperparameters: &h)
        try h.checkAllRead(model: name)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        let ours = fixture.testNDCG(model, split), baseline = try fixture.mostPopNDCG(split)
        #expect(ours > baseline * 1.05, "\(name) \(settings): \(ours) vs mostpop \(baseline)")
    }

    @Test func settingsOfAnotherMethodAreUnread() throws {
        var h = Hyperparameters(["denoise": "tce", "beta": "0.5"])
        _ = try BPRMF(&h)
        #expect(h.unread == ["beta"])
        var bad = Hyperparameters(["denoise": "tce", "drop_rate": "1"])
        #expect(throws: HyperparameterError.self) { _ = try BPRMF(&bad) }
        var unknown = Hyperparameters(["sampling": "pld", "pld_temperature": "0"])
        #expect(throws: HyperparameterError.self) { _ = try LightGCN(&unknown) }
    }
}

/// A model that records the trainer's calls: the batch clock and the batches it was asked to score.
final class BatchClockProbe: GradientModel, EmbeddingModel {
    static let name = "probe"
    static let summary = "records the trainer's calls"
    let training: TrainerSettings
    let table = Tensor(parameter: Matrix(rows: 14, cols: 2, repeating: 0.1))
    var iterations: [Int] = []
    /// The iteration at which each scoring call came, and how many pairs it scored.
    var scoredBatches: [Int] = []
    var scoredSizes: [Int] = []
    var parameters: [Tensor] { [table] }
    var userEmbeddings: Matrix { Matrix(rows: 2, cols: 2, repeating: 0.1) }
    var itemEmbeddings: Matrix { Matrix(rows: 12, cols: 2, repeating: 0.1) }

    init(_ h: inout Hyperparameters) throws { training = try TrainerSettings(&h) }

    func fit(_ data: TrainingData, context: TrainingContext) throws {
        _ = try Trainer(settings: training).fit(self, data: data, context: context)
    }

    func batchWillStart(iteration: Int) { iterations.append(iteration) }

    func trainingScores(users: [Int32], items: [Int32]) -> [Float] {
        scoredBatches.append(iterations.count)
        scoredSizes.append(users.count)
        return [Float](repeating: 0, count: users.count)
    }

    func batchLoss(users: [Int32], positives: [Int32], negatives: [Int32], epoch: Int) -> Tensor {
        Tensor.sum(Tensor.gather(table, rows: users))
    }
}
