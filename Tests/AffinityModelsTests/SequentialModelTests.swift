import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
@testable import AffinityModels

/// Sequences, the leave-one-out protocol of sequential models, and that SASRec (both losses) and GRU4Rec learn.
@Suite struct SequentialModelTests {
    /// A fixture where order is everything: each user walks the items in a cycle, i → i + 1 (mod items), from a random
    /// start, so every item is about as popular as any other and MostPop ranks the next item by chance.
    func cycleSplit(users: Int = 120, items: Int = 40, length: Int = 14) throws -> DataSplit {
        var rng = SeededGenerator(seed: 3)
        var u: [Int32] = [], i: [Int32] = [], t: [Double] = []
        for user in 0..<users {
            let start = rng.nextInt(below: items)
            for step in 0..<length {
                u.append(Int32(user)); i.append(Int32((start + step) % items)); t.append(Double(1000 * user + step))
            }
        }
        let dataset = Dataset(name: "cycle", users: IDMap(rawIDs: (0..<users).map { "u\($0)" }),
                              items: IDMap(rawIDs: (0..<items).map { "i\($0)" }),
                              interactions: Interactions(users: u, items: i, timestamps: t))
        return try DataSplit.make(dataset, strategy: .leaveOneOut, seed: 1)
    }

    /// Hit@10 on the test item, predicted from the training history plus the validation item, ranking every item.
    func sequentialHit(_ model: any SequentialRecommender, _ split: DataSplit) -> Double {
        model.histories.append(split.valid)
        return RankingEvaluator(cutoffs: [10], metrics: [.hit]).evaluate(model, target: split.testMatrix, exclude: []).metrics["hit@10"]!
    }

    func mostPopHit(_ split: DataSplit) throws -> Double {
        var h = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &h)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        return RankingEvaluator(cutoffs: [10], metrics: [.hit])
            .evaluate(pop, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["hit@10"]!
    }

    @Test func sequencesAreOrderedByTimeWithStableTies() {
        // User 0: items 5 (t=3), 6 (t=1), 7 (t=1), 8 (t=2): ties at t=1 keep the data's order, 6 before 7.
        let inter = Interactions(users: [0, 0, 1, 0, 0], items: [5, 6, 9, 7, 8], timestamps: [3, 1, 0, 1, 2])
        var s = UserSequences(inter, userCount: 2)
        #expect(s.items == [[6, 7, 8, 5], [9]])
        #expect(s.times[0] == [1, 1, 2, 3])
        s.append(Interactions(users: [0], items: [2], timestamps: [9]))
        #expect(s.items[0] == [6, 7, 8, 5, 2])
        #expect(UserSequences.leftPadded([1, 2, 3][...], maxLength: 5) == [-1, -1, 1, 2, 3])
        #expect(UserSequences.leftPadded([1, 2, 3, 4][...], maxLength: 2) == [3, 4])
    }

    @Test func windowsMakeEveryLaterItemATargetOnce() {
        // 12 items, 4 inputs per window: [7, 12), [3, 8), [0, 4): targets 8…11, 4…7, 1…3.
        let w = UserSequences.windows(count: 12, maxLength: 4)
        #expect(w == [7..<12, 3..<8, 0..<4])
        let targets = w.flatMap { Array(($0.lowerBound + 1)..<$0.upperBound) }.sorted()
        #expect(targets == Array(1..<12))
        #expect(UserSequences.windows(count: 1, maxLength: 4).isEmpty)
    }

    @Test func leaveOneOutOnAHandBuiltExample() throws {
        // u0: a(1) b(2) c(2) d(3): c ties with b and comes later in the data, so d is test, c valid, a b train.
        let dataset = Dataset(name: "hand", users: IDMap(rawIDs: ["u0", "u1"]), items: IDMap(rawIDs: ["a", "b", "c", "d"]),
                              interactions: Interactions(users: [0, 0, 0, 1, 0, 1], items: [1, 0, 2, 0, 3, 1], timestamps: [2, 1, 2, 5, 3, 4]))
        let split = try DataSplit.make(dataset, strategy: .leaveOneOut, seed: 0)
        #expect(split.test.users == [1, 0] && split.test.items == [0, 3])
        #expect(split.valid.users == [0] && split.valid.items == [2])
        var histories = UserSequences(split.train, userCount: 2)
        #expect(histories.items == [[0, 1], [1]])
        histories.append(split.valid)
        #expect(histories.items == [[0, 1, 2], [1]])
    }

    /// Causality: changing a later item cannot change an earlier position's hidden state.
    @Test func sasRecIsCausal() throws {
        var h = Hyperparameters(["hidden_size": "8", "inner_size": "16", "n_heads": "2", "max_seq_length": "5", "epochs": "0"])
        let model = try SASRec(&h)
        try model.fit(TrainingData(split: try cycleSplit(users: 4, items: 10, length: 6)), context: TrainingContext())
        let a = model.encode([-1, 3, 4, 5, 6], length: 5, seed: nil).value
        let b = model.encode([-1, 3, 4, 9, 1], length: 5, seed: nil).value
        for r in 0..<3 { #expect(a.row(r) == b.row(r), "position \(r)") }
        #expect(a.row(3) != b.row(3))
        // And the padding in front does not leak: one more padded position changes nothing after it.
        let c = model.encode([-1, -1, 4, 5, 6], length: 5, seed: nil).value
        let d = model.encode([-1, 9, 4, 5, 6], length: 5, seed: nil).value
        #expect(c.row(4) != d.row(4))
    }

    /// Serving's encoder, which runs the last block for the newest position only, gives the full encoder's last rows.
    @Test func sasRecNewestPositionMatchesTheFullEncoder() throws {
        var h = Hyperparameters(["hidden_size": "8", "inner_size": "16", "n_heads": "2", "n_layers": "2",
                                 "max_seq_length": "5", "epochs": "1"])
        let model = try SASRec(&h)
        try model.fit(TrainingData(split: try cycleSplit(users: 4, items: 10, length: 6)), context: TrainingContext())
        // Three sequences: full, left-padded, and all padding (attends to nothing).
        let inputs: [Int32] = [1, 3, 4, 5, 6, -1, -1, 9, 2, 7, -1, -1, -1, -1, -1]
        let full = model.encode(inputs, length: 5, seed: nil).value, newest = model.encodeNewest(inputs, length: 5)
        #expect(newest.rows == 3 && newest.cols == 8)
        for s in 0..<3 {
            for c in 0..<8 { #expect(abs(newest[s, c] - full[s * 5 + 4, c]) < 1e-4, "sequence \(s), column \(c)") }
        }
    }

    @Test func tiSASRecIntervalsAreScaledByTheSmallestGapAndClipped() {
        // Gaps 10, 0, 30: the unit is 10; |t_i − t_j| / 10 floored, clipped at 2; the padded first position gets 0.
        #expect(TiSASRec.intervalScale([100, 110, 110, 140][...]) == 10)
        #expect(TiSASRec.intervalScale([5, 5][...]) == 1)
        let r = TiSASRec.intervalMatrix(times: [0, 100, 110, 140][...], padding: [true, false, false, false][...], scale: 10, span: 2)
        #expect(r == [0, 0, 0, 0,
                      0, 0, 1, 2,
                      0, 1, 0, 2,
                      0, 2, 2, 0])
    }

    /// Causality of the interval-aware attention: a later item or a later timestamp cannot change an earlier position.
    @Test func tiSASRecIsCausal() throws {
        var h = Hyperparameters(["hidden_size": "8", "n_heads": "2", "max_seq_length": "5", "epochs": "0"])
        let model = try TiSASRec(&h)
        try model.fit(TrainingData(split: try cycleSplit(users: 4, items: 10, length: 6)), context: TrainingContext())
        let times: [Double] = [0, 1, 2, 4, 8]
        let a = model.encode([-1, 3, 4, 5, 6], times: times, scales: [1], length: 5, seed: nil).value
        let b = model.encode([-1, 3, 4, 9, 1], times: [0, 1, 2, 40, 41], scales: [1], length: 5, seed: nil).value
        for r in 0..<3 { #expect(a.row(r) == b.row(r), "position \(r)") }
        #expect(a.row(3) != b.row(3))
        // The same items at other intervals give another state: the intervals reach the output.
        let c = model.encode([-1, 3, 4, 5, 6], times: [0, 1, 30, 31, 90], scales: [1], length: 5, seed: nil).value
        #expect(a.row(4) != c.row(4))
    }

    /// Cloze masking hides real items only, at about `mask_ratio` of them, and predicts exactly the hidden ones; a
    /// fine-tuning batch hides each sequence's last item alone.
    @Test func bert4RecClozeMasksRealItems() throws {
        var h = Hyperparameters(["max_seq_length": "20", "mask_ratio": "0.3", "ft_ratio": "0"])
        let model = try BERT4Rec(&h)
        var sequences: [Int32] = []
        for s in 0..<50 {
            let padding = s % 7
            sequences += [Int32](repeating: -1, count: padding)
            for k in 0..<(20 - padding) { sequences.append(Int32((k + s) % 30)) }
        }
        let (inputs, positions, targets) = model.cloze(sequences, length: 20, seed: 9)
        for (p, t) in zip(positions, targets) {
            #expect(inputs[Int(p)] == BERT4Rec.mask && sequences[Int(p)] == t && t >= 0)
        }
        #expect(zip(inputs, sequences).filter { $0.0 != $0.1 }.count == positions.count)
        let real = sequences.filter { $0 >= 0 }.count
        #expect(abs(Double(positions.count) / Double(real) - 0.3) < 0.06)
        var f = Hyperparameters(["max_seq_length": "20", "ft_ratio": "1"])
        let fineTuning = try BERT4Rec(&f).cloze(sequences, length: 20, seed: 9)
        let lastPositions: [Int32] = (0..<50).map { (s: Int) -> Int32 in Int32(s * 20 + 19) }
        #expect(fineTuning.positions == lastPositions)
    }

    @Test(arguments: ["sasrec:ce", "sasrec:bce", "tisasrec:bce", "bert4rec:ce", "gru4rec:ce"])
    func learnsTheNextItem(_ variant: String) throws {
        let parts = variant.split(separator: ":").map(String.init)
        let split = try cycleSplit()
        var settings = ["epochs": "25", "max_seq_length": "8", "learning_rate": "0.01", "train_batch_size": "64"]
        if parts[0] == "tisasrec" {
            settings.merge(["hidden_size": "16", "n_layers": "1", "dropout_prob": "0.1"]) { $1 }
        } else if parts[0] == "bert4rec" {
            settings.merge(["hidden_size": "16", "inner_size": "32", "n_layers": "1", "hidden_dropout_prob": "0.1",
                            "attn_dropout_prob": "0.1"]) { $1 }
        } else if parts[0] == "sasrec" {
            settings.merge(["hidden_size": "16", "inner_size": "32", "n_layers": "1", "hidden_dropout_prob": "0.1",
                            "attn_dropout_prob": "0.1", "loss": parts[1]]) { $1 }
        } else {
            settings.merge(["embedding_size": "16", "hidden_size": "16", "dropout_prob": "0.1"]) { $1 }
        }
        var h = Hyperparameters(settings)
        let model = try ModelRegistry.make(parts[0], hyperparameters: &h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 7))
        let ours = sequentialHit(model as! any SequentialRecommender, split), floor = try mostPopHit(split)
        #expect(ours > floor + 0.3, "\(variant): hit@10 \(ours) vs MostPop \(floor)")
    }
}
