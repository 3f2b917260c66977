import ArgumentParser
import AffinityApplication
import AffinityCore
import AffinityData

/// `affinity datasets`: statistics of the built-in datasets, or of given files.
struct DatasetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "Show dataset statistics: users, items, interactions, density, split sizes.")

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Split to report sizes for (default: the data's own split, else ratio:0.8,0.1,0.1).")
    var split: String?

    @Option(name: .long, help: "Seed for the split (default 2020).")
    var seed: UInt64 = 2020

    @Option(name: .long, help: "Also write the split as RecBole benchmark files under this folder (DIR/NAME/NAME.train.inter …).")
    var exportSplit: String?

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        var table = TextTable(["dataset", "users", "items", "interactions", "density", "split", "train", "valid", "test"])
        let datasets: [Dataset]
        if data.dataset == nil && data.data == nil {
            datasets = try BuiltinDataset.all.map { try $0.load() }
        } else {
            datasets = [try data.load()]
        }
        for d in datasets {
            let strategy = try split.map(SplitStrategy.init(parsing:))
                ?? (d.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]))
            let s = try DataSplit.make(d, strategy: strategy, seed: seed)
            table.add([d.name, String(d.userCount), String(d.itemCount), String(d.interactions.count),
                       fixed(d.density * 100, 3) + "%", strategy.description,
                       String(s.train.count), String(s.valid.count), String(s.test.count)])
            if let exportSplit { try s.exportRecBole(dataset: d, folder: exportSplit) }
        }
        print(table.render())
        if data.dataset == nil && data.data == nil {
            for b in BuiltinDataset.all { print("\(b.name): \(b.summary)") }
        }
    }
}
