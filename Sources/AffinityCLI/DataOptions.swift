import ArgumentParser
import AffinityCore
import AffinityData

/// Where the interactions come from: a built-in dataset by name, or files.
public struct DataOptions: ParsableArguments {
    public init() {}

    @Option(name: .long, help: "A built-in dataset (\(BuiltinDataset.all.map(\.name).joined(separator: ", "))).")
    var dataset: String?

    @Option(name: .long, help: "A RecBole folder (PATH/NAME.inter …), a LightGCN folder (train.txt, test.txt) or a CSV/TSV file.")
    var data: String?

    @Option(name: .long, help: "atomic, lightgcn, mmrec or csv (guessed from PATH when omitted).")
    var format: String?

    @Option(name: .long, help: "CSV column holding user ids (header name or 0-based number).")
    var userCol: String?
    @Option(name: .long, help: "CSV column holding item ids.")
    var itemCol: String?
    @Option(name: .long, help: "CSV column holding ratings.")
    var ratingCol: String?
    @Option(name: .long, help: "CSV column holding timestamps.")
    var timeCol: String?
    @Option(name: .long, help: "CSV field delimiter: a single character, or 'tab'.")
    var delimiter: String?
    @Flag(name: .long, help: "The CSV file has no header line.")
    var noHeader = false

    @Option(name: .long, help: "Item features NAME=PATH.npy (rows follow PATH.items.txt when present) or NAME=builtin:genres|builtin:text[:D] (repeatable). Default: NAME_feat.npy files beside the data.")
    var modality: [String] = []

    @Option(name: .long, help: "An item knowledge graph: a RecBole NAME.kg file (NAME.link beside it maps items to entities) or KGAT's kg_final.txt (entity i is item i). Default: NAME.kg / kg_final.txt beside the data.")
    var knowledgeGraph: String?

    @Flag(name: .long, help: "Skip malformed lines instead of stopping (their count is reported).")
    var skipBadLines = false

    /// NAME.link beside NAME.kg, when it exists.
    static func linkFile(besides kgPath: String) -> String? {
        let link = String(kgPath.dropLast(3)) + ".link"
        return DatasetLoader.fileExists(link) ? link : nil
    }

    public func load() throws -> Dataset {
        let options = ReadOptions(skipBadLines: skipBadLines)
        var loaded: Dataset
        switch (dataset, data) {
        case (let name?, nil):
            guard let builtin = BuiltinDataset.named(name) else {
                throw ValidationError("unknown built-in dataset '\(name)' (available: \(BuiltinDataset.all.map(\.name).joined(separator: ", "))); use --data PATH for files")
            }
            loaded = try builtin.load(options: options)
        case (nil, let path?):
            guard DatasetLoader.fileExists(path) || DatasetLoader.isDirectory(path) else {
                throw DataError(file: path, .fileNotFound)
            }
            let fmt: DataFormat
            if let f = format {
                guard let parsed = DataFormat(rawValue: f) else { throw ValidationError("unknown format '\(f)' (use atomic, lightgcn, mmrec or csv)") }
                fmt = parsed
            } else {
                guard let guessed = DatasetLoader.detectFormat(path: path) else {
                    throw ValidationError("cannot tell the format of folder '\(path)' (it has neither train.txt nor \(DatasetLoader.baseName(path)).inter); pass --format")
                }
                fmt = guessed
            }
            var columns = ColumnMap(user: userCol, item: itemCol, rating: ratingCol, timestamp: timeCol, hasHeader: !noHeader)
            if let d = delimiter {
                if d == "tab" || d == "\\t" { columns.delimiter = UInt8(ascii: "\t") } else {
                    guard d.utf8.count == 1 else { throw ValidationError("--delimiter must be one character or 'tab'") }
                    columns.delimiter = d.utf8.first!
                }
            } else if path.hasSuffix(".tsv") {
                columns.delimiter = UInt8(ascii: "\t")
            }
            loaded = try DatasetLoader.load(path: path, format: fmt, columns: columns, options: options)
        case (nil, nil):
            throw ValidationError("give --dataset NAME or --data PATH")
        case (.some, .some):
            throw ValidationError("give either --dataset or --data, not both")
        }
        if let path = knowledgeGraph {
            guard DatasetLoader.fileExists(path) else { throw DataError(file: path, .fileNotFound) }
            let (graph, skipped) = path.hasSuffix(".kg")
                ? try KnowledgeGraph.loadAtomic(kg: path, link: Self.linkFile(besides: path), options: options)
                : try KnowledgeGraph.loadKGAT(path, itemIDs: loaded.items.rawIDs, options: options)
            loaded.knowledgeGraph = graph
            loaded.skipped.merge(skipped)
        }
        if loaded.skipped.count > 0 {
            let first = loaded.skipped.examples.first.map { " (first: \($0))" } ?? ""
            writeStandardError("warning: skipped \(loaded.skipped.count) malformed line(s)\(first)\n")
        }
        return loaded
    }

    /// The modalities for `dataset` (after preprocessing, so rows follow its final item order): the
    /// `--modality` flags plus `modality.NAME: SOURCE` settings, else the files that came with the data.
    public func modalities(for dataset: Dataset, settings: [(name: String, source: String)]) throws -> [Modality] {
        var specs = try modality.map { try ModalityLoader.parse($0) } + settings
        if specs.isEmpty { specs = dataset.bundledModalities.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        var seen = Set<String>()
        return try specs.map { spec in
            guard seen.insert(spec.name).inserted else { throw ValidationError("modality '\(spec.name)' is given twice") }
            return try ModalityLoader.load(name: spec.name, source: spec.source, for: dataset)
        }
    }
}
