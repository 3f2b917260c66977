import ArgumentParser
import AffinityCore
import AffinityData
import AffinityModels

/// `affinity recommend`: fit a model on all of a dataset's interactions and print one user's top K.
struct RecommendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommend",
        abstract: "Print a user's top-K recommendations (with item titles where the data has them).")

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Model name (see `affinity models`).")
    var model: String

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
}

/// `affinity models`: the registered models.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the available models.")

    func run() throws {
        var table = TextTable(["model", "description"])
        for m in ModelRegistry.models { table.add([m.name, m.summary]) }
        print(table.render())
    }
}
