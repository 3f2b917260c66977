import ArgumentParser
import AffinityApplication
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing

/// `affinity recommend`: one user's top K, from a saved model (`--model-file`) or from a model fitted on all
/// of a dataset's interactions.
struct RecommendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommend",
        abstract: "Print a user's top-K recommendations (with item titles where the data has them).",
        discussion: """
        With --model-file M.affinity (written by `affinity train --save`) the answer comes from the saved model,         as the server's would for a user it trained on; otherwise --model is fitted on the data first.
        """)

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Model name (see `affinity models`), fitted on the data before answering.")
    var model: String?

    @Option(name: .long, help: "A saved model (`affinity train --save`) to answer from, without training.")
    var modelFile: String?

    @Option(name: .long, help: "The user's raw id, as in the data.")
    var user: String

    @Option(name: .shortAndLong, help: "How many items.")
    var k: Int = 10

    @Option(name: .long, help: "YAML file of settings.")
    var config: String?

    @Option(name: .customLong("set"), help: "key=value model setting (repeatable).")
    var settings: [String] = []

    @Flag(name: .long, help: "Also show items the user already interacted with.")
    var includeSeen = false

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        guard k > 0 && k <= 10_000 else { throw ValidationError("-k must be between 1 and 10000") }
        if let modelFile {
            guard model == nil, data.dataset == nil, data.data == nil, config == nil, settings.isEmpty else {
                throw ValidationError("--model-file answers from the saved model: drop --model, --dataset, --data, --config and --set")
            }
            return try answerFromSavedModel(modelFile)
        }
        guard let model else { throw ValidationError("give --model NAME (trained on the data first) or --model-file M.affinity") }
        let run = try RunConfiguration(configFile: config, overrides: settings)
        let type = try ModelRegistry.type(named: model)
        var h = Hyperparameters(run.hyperparameters(for: type.name))
        let recommender = try type.init(&h)
        try run.checkUsed(models: [type.name], read: Set(h.effective.keys))
        let dataset = try run.preprocessing.apply(to: try data.load())
        guard let u = dataset.users.dense(user) else {
            throw ValidationError("user '\(user)' is not in \(dataset.name)")
        }
        let training = TrainingData(userCount: dataset.userCount, itemCount: dataset.itemCount, interactions: dataset.interactions)
        try recommender.fit(training, context: TrainingContext(seed: UInt64(try run.int("seed", default: 2020))))
        var scores = [Float](repeating: 0, count: dataset.itemCount)
        scores.withUnsafeMutableBufferPointer { recommender.score(users: [u], into: $0) }
        if !includeSeen { for i in training.userItems.columns(ofRow: Int(u)) { scores[Int(i)] = -.infinity } }
        let top = TopK.select(scores, k: k)
        var table = TextTable(["rank", "item", "score"] + (dataset.itemTitles != nil ? ["title"] : []))
        for (rank, (i, s)) in zip(top.indices, top.scores).enumerated() {
            var row = [String(rank + 1), dataset.items.raw(i), fixed(Double(s))]
            if let titles = dataset.itemTitles { row.append(titles[Int(i)]) }
            table.add(row)
        }
        print("\(type.name) recommendations for user \(user) (\(training.userItems.count(ofRow: Int(u))) interactions in \(dataset.name))")
        print(table.render())
    }

    /// The saved model's top K for a user it was trained on, excluding their training items unless
    /// `includeSeen`; also how many training interactions the user has.
    static func savedModelRecommendations(_ artifact: ModelArtifact, user: String, k: Int, includeSeen: Bool,
                                          path: String) throws -> (top: [ScoredItem], interactions: Int) {
        let model = ServingModel(artifact: artifact)
        guard let u = model.users.dense(user) else {
            throw ValidationError("user '\(user)' is not in the model \(path) (\(model.users.count) users trained on \(artifact.header.dataset))")
        }
        let seen = (0..<artifact.training.count).filter { artifact.training.users[$0] == u }.map { artifact.training.items[$0] }
        return (model.recommend(model.userVector(u), k: min(k, model.itemCount), exclude: includeSeen ? [] : seen), seen.count)
    }

    private func answerFromSavedModel(_ path: String) throws {
        let artifact = try ModelArtifact.read(from: path)
        let (top, interactions) = try Self.savedModelRecommendations(artifact, user: user, k: k, includeSeen: includeSeen, path: path)
        let titles = artifact.header.itemTitles
        var table = TextTable(["rank", "item", "score"] + (titles != nil ? ["title"] : []))
        for (rank, entry) in top.enumerated() {
            var row = [String(rank + 1), artifact.header.itemIDs[Int(entry.item)], fixed(Double(entry.score))]
            if let titles { row.append(titles[Int(entry.item)]) }
            table.add(row)
        }
        print("\(artifact.header.model) recommendations for user \(user) from \(path) (\(interactions) interactions in \(artifact.header.dataset))")
        print(table.render())
    }
}

/// `affinity models`: the registered models, and which of them `--save` can write for serving.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the available models.")

    func run() throws {
        var table = TextTable(["model", "task", "servable", "description"])
        for m in ModelRegistry.models { table.add([m.name, "ranking", m is any EmbeddingModel.Type ? "yes" : "", m.summary]) }
        for m in ContextModelRegistry.models { table.add([m.name, "ctr", "", m.summary]) }
        print(table.render())
    }
}
