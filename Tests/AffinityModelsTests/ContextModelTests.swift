import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels

/// Click-through models on a planted rule with feature interactions: a row is positive when the user's group
/// likes one of the item's genres (group g likes genres g and g + 3), with 10% of labels flipped. Neither the user
/// nor the item alone predicts the label well; their fields' interaction does.
enum ContextFixture {
    static func data(seed: UInt64 = 5) -> ContextData {
        var rng = SeededGenerator(seed: seed)
        let users = IDMap(rawIDs: (0..<120).map { "u\($0)" }), items = IDMap(rawIDs: (0..<80).map { "i\($0)" })
        let group = (0..<120).map { _ in rng.nextInt(below: 3) }
        let genres = (0..<80).map { _ in Set((0..<(1 + rng.nextInt(below: 2))).map { _ in rng.nextInt(below: 6) }) }
        var inter = Interactions()
        var labels: [Float] = []
        for _ in 0..<3000 {
            let u = rng.nextInt(below: 120), i = rng.nextInt(below: 80)
            var positive = genres[i].contains(group[u]) || genres[i].contains(group[u] + 3)
            if rng.nextFloat() < 0.1 { positive.toggle() }
            inter.users.append(Int32(u)); inter.items.append(Int32(i))
            labels.append(positive ? 1 : 0)
        }
        var dataset = Dataset(name: "planted", users: users, items: items, interactions: inter)
        dataset.userFields = [FieldColumn(name: "group", type: .token, values: group.map { "g\($0)" }),
                              FieldColumn(name: "age", type: .float, values: (0..<120).map { _ in String(18 + rng.nextInt(below: 50)) })]
        dataset.itemFields = [FieldColumn(name: "class", type: .tokenSeq, values: genres.map { $0.sorted().map { "c\($0)" }.joined(separator: " ") })]
        let schema = try! FeatureSchema.make(dataset, userFields: nil, itemFields: nil)
        return ContextData(schema: schema, userBags: schema.sideBags(.user, of: dataset), itemBags: schema.sideBags(.item, of: dataset),
                           users: inter.users, items: inter.items, labels: labels)
    }
}

@Suite struct ContextModelTests {
    static let settings = ["epochs": "12", "train_batch_size": "256", "learning_rate": "0.01", "stopping_step": "3"]

    static func settings(_ model: String) -> [String: String] {
        model == "optinter" ? settings.merging(["search_epochs": "4", "hash_buckets": "4096"]) { $1 } : settings
    }

    /// Each model learns the planted interactions: test AUC above 0.70, and deterministic for a seed.
    @Test(arguments: ContextModelRegistry.names)
    func learnsFeatureInteractions(_ name: String) throws {
        let parts = ContextFixture.data().randomSplit(ratios: [0.8, 0.1, 0.1], seed: 3)
        func train() throws -> (any ContextModel, [Float]) {
            var h = Hyperparameters(Self.settings(name))
            let model = try ContextModelRegistry.type(named: name).init(&h)
            try h.checkAllRead(model: name)
            try model.fit(parts[0], valid: parts[1], context: TrainingContext(seed: 7))
            return (model, model.predict(parts[2]))
        }
        let (model, probabilities) = try train()
        let auc = ClassificationMetrics.auc(scores: probabilities, labels: parts[2].labels)
        #expect(auc > 0.70, "\(name): test AUC \(auc)")
        #expect(probabilities.allSatisfy { $0 > 0 && $0 < 1 })
        #expect(try train().1 == probabilities, "\(name): the same seed gives the same model")

        // A user and an item the model has never seen, with unknown field values: scored, not a crash.
        let schema = parts[0].schema
        var bags = EmbeddingBags()
        bags.append(schema.bags(.user, values: ["user_id": "stranger", "group": "g9", "age": "not a number"]), bags: 0..<schema.userFieldCount)
        bags.append(schema.bags(.item, values: ["item_id": "new", "class": "c1 c99"]), bags: 0..<schema.itemFieldCount)
        let logit = model.logits(bags, rows: 1)
        #expect(logit.count == 1 && logit[0].isFinite)

        // Restoring the parameters into a fresh model reproduces the predictions (model files keep what the fit
        // decided, such as OptInter's architecture, with the settings).
        var h = Hyperparameters(Self.settings(name).merging(model.learnedSettings) { $1 })
        let copy = try ContextModelRegistry.type(named: name).init(&h)
        try copy.restore(schema: schema, parameters: model.parameterValues)
        #expect(copy.predict(parts[2]) == probabilities)
    }

    /// The serving path for one user's candidates (the user's share computed once, candidates batched) gives the
    /// logits of the joined rows, for each model that has one, trained or not.
    @Test(arguments: ContextModelRegistry.names)
    func candidateScoringMatchesJoinedRows(_ name: String) throws {
        let data = ContextFixture.data()
        var h = Hyperparameters(Self.settings(name).merging(["epochs": "1"]) { $1 })
        let model = try ContextModelRegistry.type(named: name).init(&h)
        guard let candidates = model as? any CandidateScoring else { return }
        try model.fit(data, valid: nil, context: TrainingContext(seed: 7))
        let schema = data.schema, fu = schema.userFieldCount, fi = schema.itemFieldCount
        let items = Array(0..<700).map { $0 % 80 }
        var user = EmbeddingBags(), itemBags = EmbeddingBags(), joined = EmbeddingBags()
        user.append(data.userBags, bags: (5 * fu)..<(6 * fu))
        for i in items {
            itemBags.append(data.itemBags, bags: (i * fi)..<((i + 1) * fi))
            joined.append(user, bags: 0..<fu)
            joined.append(data.itemBags, bags: (i * fi)..<((i + 1) * fi))
        }
        let expected = model.logits(joined, rows: items.count)
        let fast = candidates.candidateLogits(user: user, items: itemBags, count: items.count)
        #expect(fast.count == expected.count)
        #expect(zip(fast, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(name): serving logits differ")
    }

    /// OptInter's memorised crosses: a cross bucket the training rows hold fewer than `cross_min_count` times reads
    /// the shared row while training, and after the fit holds a copy of it (so model files need no vocabulary);
    /// the searched architecture names one method per field pair.
    @Test func optInterSharesOneRowAmongRareCrosses() throws {
        let parts = ContextFixture.data().randomSplit(ratios: [0.8, 0.1, 0.1], seed: 3)
        var h = Hyperparameters(Self.settings("optinter").merging(["architecture": Array(repeating: "memorize", count: 10).joined(separator: ","),
                                                                   "cross_min_count": "3"]) { $1 })
        let model = try OptInter(&h)
        try model.fit(parts[0], valid: parts[1], context: TrainingContext(seed: 7))
        let table = model.parameterValues[3]  // after the field embeddings' table, linear weights and bias
        #expect(table.rows == 4096 + 1)
        let d = table.cols, shared = Array(table.storage[(4096 * d)...])
        let copies = (0..<4096).filter { b in Array(table.storage[(b * d)..<((b + 1) * d)]) == shared }.count
        // 5 fields, 10 pairs, 2,400 rows: most of the 4,096 buckets are never or rarely hit; frequent ones are trained.
        #expect(copies > 2048 && copies < 4096, "\(copies) buckets hold the shared row")

        var search = Hyperparameters(Self.settings("optinter"))
        let searched = try OptInter(&search)
        try searched.fit(parts[0], valid: parts[1], context: TrainingContext(seed: 7))
        #expect(searched.architecture?.count == 10 && searched.pairNames.count == 10)
    }
}
