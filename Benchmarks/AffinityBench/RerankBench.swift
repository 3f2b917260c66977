import ArgumentParser
import AffinityCLI
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import Foundation

/// `affinity-bench rerank`: generate-then-rank on the general protocol (per-user random 8:1:1). BPR-MF is trained
/// on the training part (early stopping on valid MRR@10) and retrieves each user's top `candidates` items it has
/// not seen in training or validation; click-through models trained on the training part only (early stopping on
/// the validation part's AUC) re-order those candidates by their logit. Their labels (`--labels`): `rating`, the
/// rated rows labelled rating ≥ `threshold` (the click-through protocol: liked among rated), or `interaction`,
/// every interaction labelled 1 plus `negatives` items per interaction the user has not interacted with, drawn
/// uniformly and labelled 0 (what the ranking protocol's test interactions are). Test Recall/NDCG@K of BPR-MF
/// alone and of each re-ranking, one JSON line each.
struct RerankBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rerank")
    @OptionGroup var data: DataOptions
    @Option(help: "Click-through models that re-rank, separated by commas.") var models = "deepfm,autoint"
    @Option var candidates = 100
    @Option var cutoff = 20
    @Option var threshold: Float = 4
    @Option(help: "rating (liked among rated) | interaction (interacted, with sampled negatives).") var labels = "rating"
    @Option(help: "Sampled negatives per interaction with --labels interaction.") var negatives = 4
    @Option(help: "Most epochs of each click-through model (early stopping on valid AUC).") var ctrEpochs = 50
    @Option var seed: UInt64 = 2020
    @Flag var quiet = false

    func run() throws {
        try reportingErrors {
            let verbose = !quiet
            let log: (String) -> Void = { if verbose { writeStandardError($0 + "\n") } }
            let dataset = try data.load()
            let split = try DataSplit.make(dataset, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: seed)
            guard split.train.ratings != nil else { throw ValidationError("\(dataset.name) has no ratings to label click-through rows") }
            let evaluator = RankingEvaluator(cutoffs: [cutoff], metrics: [.recall, .ndcg])
            let seen = [split.trainMatrix, split.validMatrix]

            var h = Hyperparameters(["embedding_size": "64", "learning_rate": "0.001", "train_batch_size": "2048",
                                     "stopping_step": "10", "valid_metric": "mrr@10"])
            let retrieval = try BPRMF(&h)
            let validator = RankingEvaluator(cutoffs: [10], metrics: [.mrr])
            var context = TrainingContext(seed: seed, log: log)
            context.validate = { validator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics }
            log("fitting bpr on \(split.train.count) training interactions…")
            try retrieval.fit(TrainingData(split: split), context: context)
            let base = EmbeddingScorer(userEmbeddings: retrieval.userEmbeddings, itemEmbeddings: retrieval.itemEmbeddings)
            let alone = evaluator.evaluate(base, target: split.testMatrix, exclude: seen).metrics
            print(jsonLine([("bench", "rerank"), ("dataset", dataset.name), ("seed", Int(seed)), ("ranker", "bpr"),
                            ("candidates", candidates), ("recall@\(cutoff)", alone["recall@\(cutoff)"]!),
                            ("ndcg@\(cutoff)", alone["ndcg@\(cutoff)"]!)]))

            let schema = try FeatureSchema.make(dataset, userFields: nil, itemFields: nil)
            let userBags = schema.sideBags(.user, of: dataset), itemBags = schema.sideBags(.item, of: dataset)
            guard labels == "rating" || labels == "interaction" else { throw ValidationError("--labels: '\(labels)' is not rating or interaction") }
            var negativeSampler = SeededGenerator(seed: seed ^ 0x5EED)
            // Negatives avoid the user's interactions in the parts known when the part is used (never the test part).
            func labelled(_ part: Interactions, avoiding known: [SparseMatrix]) -> ContextData {
                guard labels == "interaction" else {
                    return ContextData(schema: schema, userBags: userBags, itemBags: itemBags, users: part.users, items: part.items,
                                       labels: part.ratings!.map { $0 >= threshold ? 1 : 0 })
                }
                var users = part.users, items = part.items
                var values = [Float](repeating: 1, count: part.count)
                for user in part.users {
                    for _ in 0..<negatives {
                        var item: Int32
                        repeat { item = Int32(negativeSampler.nextInt(below: split.itemCount)) }
                        while known.contains { $0.contains(row: Int(user), col: item) }
                        users.append(user); items.append(item); values.append(0)
                    }
                }
                return ContextData(schema: schema, userBags: userBags, itemBags: itemBags, users: users, items: items, labels: values)
            }
            let train = labelled(split.train, avoiding: [split.trainMatrix]), valid = labelled(split.valid, avoiding: seen)
            for name in models.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                var settings = Hyperparameters(["epochs": String(ctrEpochs)])
                let ranker = try ContextModelRegistry.type(named: name).init(&settings)
                log("fitting \(name) on \(train.count) labelled training rows…")
                try ranker.fit(train, valid: valid, context: TrainingContext(seed: seed, log: log))
                let validAUC = ClassificationMetrics.evaluate(probabilities: ranker.predict(valid), labels: valid.labels)["auc"] ?? .nan
                let reranked = CandidateReranker(base: base, ranker: ranker, data: train, exclude: seen, candidates: candidates)
                let metrics = evaluator.evaluate(reranked, target: split.testMatrix, exclude: seen).metrics
                print(jsonLine([("bench", "rerank"), ("dataset", dataset.name), ("seed", Int(seed)), ("ranker", "bpr+" + name),
                                ("labels", labels), ("candidates", candidates), ("recall@\(cutoff)", metrics["recall@\(cutoff)"]!),
                                ("ndcg@\(cutoff)", metrics["ndcg@\(cutoff)"]!), ("ctr_valid_auc", validAUC)]))
            }
        }
    }
}

/// Scores that order each user's retrieval top `candidates` (among items not in `exclude`) by a click-through
/// model's logit and leave every other item out (−∞), so the evaluator's top K is the re-ranked list's first K.
struct CandidateReranker: Scorer {
    let base: EmbeddingScorer
    let ranker: any ContextModel
    /// Supplies the user and item bags (its rows are not read).
    let data: ContextData
    let exclude: [SparseMatrix]
    let candidates: Int

    var itemCount: Int { base.itemCount }

    func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        base.score(users: users, into: out)
        let n = itemCount
        var bags = EmbeddingBags()
        for (row, user) in users.enumerated() {
            let scores = UnsafeMutableBufferPointer(rebasing: out[(row * n)..<((row + 1) * n)])
            for matrix in exclude { for item in matrix.columns(ofRow: Int(user)) { scores[Int(item)] = -.infinity } }
            // The retrieval top `candidates`: highest score first, ties to the lower item index.
            let top = (0..<n).filter { scores[$0] > -.infinity }
                .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(candidates)
            let pairs = ContextData(schema: data.schema, userBags: data.userBags, itemBags: data.itemBags,
                                    users: [Int32](repeating: user, count: top.count), items: top.map(Int32.init),
                                    labels: [Float](repeating: 0, count: top.count))
            pairs.bags(0..<pairs.count, into: &bags)
            let logits = ranker.logits(bags, rows: pairs.count)
            for i in 0..<n { scores[i] = -.infinity }
            for (item, logit) in zip(top, logits) { scores[item] = logit }
        }
    }
}
