import Foundation
import AffinityApplication
import ArgumentParser
import AffinityCore
import AffinityData
import AffinityEval

/// `affinity report`: one self-contained HTML page comparing run records.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of run records: metrics, learning curves, metric@K, exposure by popularity, coverage.",
        discussion: "Run records are written by `affinity train --output`; a file holds one record or an array of them. "
            + "The page is a single file with inline CSS and SVG: no JavaScript, no network.")

    @OptionGroup var files: RunFileArguments

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The HTML file to write.", valueName: "report.html"))
    var output: String

    @Option(name: .long, help: "Title of the page.")
    var title = "Affinity report"

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        let records = try RunFiles.read(files.runs)
        let html = HTMLReport.render(records, title: title)
        do {
            try Data(html.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw DataError(file: output, .unwritable("\(error)"))
        }
        print("wrote \(output) (\(records.count) run\(records.count == 1 ? "" : "s"))")
    }
}

/// `affinity compare`: the side-by-side metrics table of run records, in the terminal.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Print the metrics of run records side by side: one row per metric, one column per run.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, markdown, csv }
    enum Split: String, ExpressibleByArgument, CaseIterable { case test, valid }

    @OptionGroup var files: RunFileArguments

    @Option(name: .long, help: "table (aligned text), markdown (a GitHub table) or csv (full precision).")
    var format: Format = .table

    @Option(name: .long, help: "Which split's metrics to show.")
    var split: Split = .test

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        let records = try RunFiles.read(files.runs)
        if !records.contains(where: { !($0.metrics[split.rawValue] ?? [:]).isEmpty }) {
            writeStandardError("warning: no run has \(split.rawValue) metrics\n")
        }
        print(MetricsComparison(records, split: split.rawValue).render(format))
    }
}

/// The run-record files both commands take.
struct RunFileArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Run records (from `affinity train --output`).", valueName: "RUN.json"))
    var runs: [String]

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run record (RUN.json)") }
    }
}

/// Reads the run-record files given to `report` and `compare`; every error names its file.
enum RunFiles {
    static func read(_ paths: [String]) throws -> [RunRecord] {
        try paths.flatMap { path in
            let records = try RunRecord.read(from: path)
            if records.isEmpty { throw DataError(file: path, .invalidValue("no run records in the file")) }
            return records
        }
    }
}

/// Names of runs in tables and legends: "model (dataset, seed N)"; runs that would share a name are numbered
/// "… #1", "… #2" in the order given.
enum RunLabels {
    static func make(_ runs: [RunRecord]) -> [String] {
        let plain = runs.map { "\($0.model) (\($0.dataset), seed \($0.seed))" }
        var count: [String: Int] = [:]
        for name in plain { count[name, default: 0] += 1 }
        // Unique names are taken first so a numbered name can never equal one of them.
        var used = Set(plain.filter { count[$0] == 1 })
        return plain.map { name in
            if count[name] == 1 { return name }
            var n = 1
            while used.contains("\(name) #\(n)") { n += 1 }
            used.insert("\(name) #\(n)")
            return "\(name) #\(n)"
        }
    }
}

/// The order metric keys are listed in: by metric (`RankingMetric` order, then unknown names alphabetically),
/// then by cutoff ascending: recall@10, recall@20, ndcg@10 …
enum MetricKeyOrder {
    /// `"recall@20"` → ("recall", 20); a key without a cutoff has none.
    static func parts(_ key: String) -> (metric: String, k: Int?) {
        guard let at = key.lastIndex(of: "@"), let k = Int(key[key.index(after: at)...]) else { return (key, nil) }
        return (String(key[..<at]), k)
    }

    static func sorted(_ keys: some Sequence<String>) -> [String] {
        Set(keys).sorted { rank($0) < rank($1) }
    }

    /// Metric names in listing order.
    static func sortedMetrics(_ names: some Sequence<String>) -> [String] {
        Set(names).sorted { metricRank($0) < metricRank($1) }
    }

    private static func metricRank(_ name: String) -> (Int, String) {
        (RankingMetric.allCases.firstIndex { $0.rawValue == name } ?? RankingMetric.allCases.count, name)
    }

    private static func rank(_ key: String) -> (Int, String, Int, String) {
        let (metric, k) = parts(key)
        let (index, name) = metricRank(metric)
        return (index, name, k ?? Int.max, key)
    }
}

/// The side-by-side table of `compare` and of the report: a row per metric key of one split, a column per run,
/// then the fit time.
struct MetricsComparison {
    struct Row {
        var key: String
        /// nil where the run has no such metric.
        var values: [Double?]
        var digits: Int
    }

    var split: String
    var labels: [String]
    var rows: [Row]

    init(_ runs: [RunRecord], split: String) {
        self.split = split
        labels = RunLabels.make(runs)
        rows = MetricKeyOrder.sorted(runs.flatMap { ($0.metrics[split] ?? [:]).keys }).map { key in
            Row(key: key, values: runs.map { $0.metrics[split]?[key] }, digits: 4)
        }
        rows.append(Row(key: "fit_s", values: runs.map { $0.timings["fit_s"] }, digits: 2))
    }

    func render(_ format: CompareCommand.Format) -> String {
        switch format {
        case .table: return text()
        case .markdown: return markdown()
        case .csv: return csv()
        }
    }

    /// Aligned columns for the terminal; "-" where a value is missing or not a number.
    func text() -> String {
        var table = TextTable([split] + labels)
        for row in rows { table.add([row.key] + row.values.map { fixed($0 ?? .nan, row.digits) }) }
        return table.render()
    }

    /// A GitHub table, numbers right-aligned; "—" where a value is missing or not a number.
    func markdown() -> String {
        func cell(_ s: String) -> String {
            s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var lines = ["| " + ([split] + labels).map(cell).joined(separator: " | ") + " |",
                     "| --- |" + String(repeating: " ---: |", count: labels.count)]
        for row in rows {
            let values = row.values.map { v in v.map { $0.isFinite ? fixed($0, row.digits) : "—" } ?? "—" }
            lines.append("| " + ([cell(row.key)] + values).joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// RFC 4180 fields (quoted where they hold a comma, quote or line break), values at full precision; an
    /// empty field where a value is missing or not a number.
    func csv() -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var lines = [([split] + labels).map(field).joined(separator: ",")]
        for row in rows {
            let values = row.values.map { v in v.map { $0.isFinite ? exact($0) : "" } ?? "" }
            lines.append(([field(row.key)] + values).joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }
}
