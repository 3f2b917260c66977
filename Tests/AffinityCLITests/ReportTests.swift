import Testing
import AffinityApplication
import Foundation
import ArgumentParser
@testable import AffinityCLI
import AffinityTestSupport

/// Two runs with known values in every field the report plots. Run B has a model name that needs escaping,
/// only legacy `curve_epoch_N` learning curves, and (with `nan`) a missing test metric and a gap in precision@K.
enum ReportFixture {
    static func records(nan: Bool = true) -> [RunRecord] {
        let a = RunRecord(
            model: "bpr", dataset: "toy", config: ["split": "ratio:0.8,0.1,0.1", "topk": "10,20"], seed: 1, dataFingerprint: "f",
            timings: ["fit_s": 2.5],
            metrics: ["test": ["recall@10": 0.2, "recall@20": 0.3, "ndcg@10": 0.12, "ndcg@20": 0.15, "itemcoverage@10": 0.4, "giniindex@10": 0.7],
                      "valid": ["recall@10": 0.17]],
            versions: [:],
            epochs: [.init(epoch: 1, loss: 0.69, seconds: 1, valid: ["recall@10": 0.10, "ndcg@10": 0.05, "hit@10": 0.3], curve: ["recall@10": 0.08]),
                     .init(epoch: 2, loss: 0.45, seconds: 1, valid: ["recall@10": 0.14, "ndcg@10": 0.07, "hit@10": 0.35], curve: nil),
                     .init(epoch: 3, loss: 0.31, seconds: 1, valid: ["recall@10": 0.17, "ndcg@10": 0.09, "hit@10": 0.4], curve: ["recall@10": 0.15])],
            metricsAtK: ["recall": (1...50).map { 0.3 * (1 - exp(-Double($0) / 10)) },
                         "ndcg": (1...50).map { 0.15 * (1 - exp(-Double($0) / 8)) },
                         "precision": (1...50).map { 0.2 / Double($0).squareRoot() }],
            exposure: .init(k: 20, popularityDeciles: [0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.13, 0.2, 0.35],
                            averagePopularity: 120.5, itemCoverage: 0.42))
        var precisionB = (1...50).map { 0.25 / Double($0).squareRoot() }
        if nan { precisionB[6] = .nan }
        let b = RunRecord(
            model: "<b>&co", dataset: "toy", config: [:], seed: 2, dataFingerprint: "f",
            timings: ["fit_s": 7.25],
            metrics: ["test": ["recall@10": 0.25, "recall@20": 0.33, "ndcg@10": 0.14, "ndcg@20": nan ? .nan : 0.16,
                               "itemcoverage@10": 0.6, "giniindex@10": 0.5],
                      "curve_epoch_1": ["recall@10": 0.1], "curve_epoch_2": ["recall@10": 0.12]],
            versions: [:],
            epochs: [.init(epoch: 1, loss: 1.2, seconds: 2, valid: ["recall@10": 0.05, "ndcg@10": 0.02], curve: nil),
                     .init(epoch: 2, loss: 0.8, seconds: 2, valid: ["recall@10": 0.09, "ndcg@10": 0.04], curve: nil)],
            metricsAtK: ["recall": (1...50).map { 0.35 * (1 - exp(-Double($0) / 12)) },
                         "ndcg": (1...50).map { 0.2 * (1 - exp(-Double($0) / 9)) },
                         "precision": precisionB],
            exposure: .init(k: 20, popularityDeciles: [0.0, 0.01, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.23, 0.45],
                            averagePopularity: 180.25, itemCoverage: 0.61))
        return [a, b]
    }

    static let labelA = "bpr (toy, seed 1)", labelB = "<b>&co (toy, seed 2)"
}

/// Just enough reading of the rendered page to recover charts, their geometry and their marks.
enum Page {
    struct Element {
        var attributes: [String: String]
        /// The text right after the start tag (entities decoded).
        var text: String
        subscript(_ name: String) -> String? { attributes[name] }
        func number(_ name: String) -> Double { Double(attributes[name] ?? "") ?? .nan }
    }

    static func matches(_ pattern: String, in text: String) -> [[String]] {
        let regex = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            (0..<m.numberOfRanges).map { i in Range(m.range(at: i), in: text).map { String(text[$0]) } ?? "" }
        }
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// Elements `<tag …>` whose attributes include `class="className"` (any, when nil).
    static func elements(_ tag: String, class className: String? = nil, in html: String) -> [Element] {
        matches("<\(tag)\\b([^>]*)>([^<]*)", in: html).map { m in
            let attributes = Dictionary(matches("([\\w:-]+)=\"([^\"]*)\"", in: m[1]).map { ($0[1], unescape($0[2])) }) { a, _ in a }
            return Element(attributes: attributes, text: unescape(m[2]))
        }.filter { className == nil || $0["class"] == className }
    }

    /// Each `<section id=…>`'s source, by id.
    static func sections(_ html: String) -> [String: String] {
        Dictionary(matches("<section id=\"([^\"]+)\">(.*?)</section>", in: html).map { ($0[1], $0[2]) }) { a, _ in a }
    }

    /// Each chart's `<svg>` source, by `data-chart`.
    static func charts(_ html: String) -> [String: String] {
        Dictionary(matches("<svg [^>]*data-chart=\"([^\"]+)\".*?</svg>", in: html).map { (unescape($0[1]), $0[0]) }) { a, _ in a }
    }

    static func numbers(_ list: String?) -> [Double] {
        (list ?? "").split(separator: " ").map { Double($0) ?? -999 }
    }

    /// The coordinates a path's `d` draws through, with where each sub-path starts.
    static func pathPoints(_ d: String) -> [(move: Bool, x: Double, y: Double)] {
        matches("([ML])(-?[0-9.]+) (-?[0-9.]+)", in: d).map { ($0[1] == "M", Double($0[2])!, Double($0[3])!) }
    }
}

/// A chart's axis mapping, computed here independently of the renderer from the domains and pixel rectangle
/// the chart declares; the tick checks tie those declarations to the numbers a reader sees on the axes.
struct PlotGeometry {
    var xDomain: [Double], yDomain: [Double], rect: [Double]

    init(_ svg: String) {
        let plot = Page.elements("g", class: "plot", in: svg)[0]
        xDomain = Page.numbers(plot["data-x-domain"])
        yDomain = Page.numbers(plot["data-y-domain"])
        rect = Page.numbers(plot["data-plot"])
    }

    var left: Double { rect[0] }
    var top: Double { rect[1] }
    var right: Double { rect[2] }
    var bottom: Double { rect[3] }
    func x(_ v: Double) -> Double { left + (v - xDomain[0]) / (xDomain[1] - xDomain[0]) * (right - left) }
    func y(_ v: Double) -> Double { bottom - (v - yDomain[0]) / (yDomain[1] - yDomain[0]) * (bottom - top) }
}

func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }
func near(_ a: Double, _ b: Double, _ tolerance: Double = 0.011) -> Bool { abs(a - b) <= tolerance }

/// Checks every tick label sits where the axis mapping puts its number.
func checkTicks(_ svg: String, _ g: PlotGeometry, numericX: Bool, chart: String) {
    let yTicks = Page.elements("text", class: "tick-y", in: svg)
    #expect(yTicks.count >= 2, "\(chart): y ticks")
    for t in yTicks {
        let v = Double(t.text)!
        #expect(near(t.number("y"), g.y(v)), "\(chart): y tick \(t.text) at \(t["y"]!), expected \(g.y(v))")
    }
    #expect(near(g.y(g.yDomain[0]), g.bottom) && near(g.y(g.yDomain[1]), g.top))
    guard numericX else { return }
    let xTicks = Page.elements("text", class: "tick-x", in: svg)
    #expect(xTicks.count >= 2, "\(chart): x ticks")
    for t in xTicks {
        let v = Double(t.text)!
        #expect(near(t.number("x"), g.x(v)), "\(chart): x tick \(t.text) at \(t["x"]!), expected \(g.x(v))")
    }
}

/// Checks a line chart: exactly the expected series, each carrying the record's values, and every drawn
/// vertex at the pixel the axis mapping gives its (x, value); non-finite values are gaps.
func checkLineChart(_ html: String, _ id: String, _ expected: [String: (x: [Double], y: [Double])]) {
    guard let svg = Page.charts(html)[id] else { Issue.record("no chart \(id)"); return }
    let g = PlotGeometry(svg)
    checkTicks(svg, g, numericX: true, chart: id)
    let paths = Page.elements("path", class: "series", in: svg)
    #expect(Set(paths.compactMap { $0["data-series"] }) == Set(expected.keys), "\(id): series")
    #expect(paths.count == expected.count, "\(id): one line per run")
    for path in paths {
        guard let label = path["data-series"], let want = expected[label] else { continue }
        let xs = Page.numbers(path["data-x"]), ys = Page.numbers(path["data-values"])
        #expect(xs == want.x, "\(id) \(label): x")
        #expect(ys.count == want.y.count && zip(ys, want.y).allSatisfy { same($0, $1) }, "\(id) \(label): values \(ys) != \(want.y)")
        let finite = want.x.indices.filter { want.y[$0].isFinite }
        let drawn = Page.pathPoints(path["d"] ?? "")
        #expect(drawn.count == finite.count, "\(id) \(label): \(drawn.count) vertices for \(finite.count) finite values")
        for (vertex, i) in zip(drawn, finite) {
            #expect(near(vertex.x, g.x(want.x[i])) && near(vertex.y, g.y(want.y[i])),
                    "\(id) \(label): point \(want.x[i]), \(want.y[i]) drawn at \(vertex.x), \(vertex.y); expected \(g.x(want.x[i])), \(g.y(want.y[i]))")
            #expect(vertex.x >= g.left - 0.01 && vertex.x <= g.right + 0.01 && vertex.y >= g.top - 0.01 && vertex.y <= g.bottom + 0.01,
                    "\(id) \(label): point outside the plot")
            // A new sub-path starts exactly after a gap.
            #expect(vertex.move == (i == 0 || !want.y[i - 1].isFinite), "\(id) \(label): line continuity at \(want.x[i])")
        }
    }
}

/// Checks a grouped bar chart: one bar per finite (run, category) value carrying it, rising from 0 to the
/// value on the axis mapping, inside its category's group.
func checkBarChart(_ html: String, _ id: String, _ expected: [String: [String: Double]]) {
    guard let svg = Page.charts(html)[id] else { Issue.record("no chart \(id)"); return }
    let g = PlotGeometry(svg)
    checkTicks(svg, g, numericX: false, chart: id)
    let categories = Page.elements("text", class: "category", in: svg)
    let band = (g.right - g.left) / Double(categories.count)
    let bars = Page.elements("rect", class: "bar", in: svg)
    let wanted = expected.flatMap { label, values in values.filter { $0.value.isFinite }.map { (label, $0.key, $0.value) } }
    #expect(bars.count == wanted.count, "\(id): \(bars.count) bars for \(wanted.count) values")
    for (label, category, value) in wanted {
        let matching = bars.filter { $0["data-series"] == label && $0["data-category"] == category }
        guard matching.count == 1, let bar = matching.first else { Issue.record("\(id): no single bar for \(label) \(category)"); continue }
        #expect(bar.number("data-value") == value, "\(id) \(label) \(category): value")
        #expect(near(bar.number("y"), min(g.y(value), g.y(0))), "\(id) \(label) \(category): top at \(bar["y"]!), expected \(g.y(value))")
        #expect(near(bar.number("height"), abs(g.y(value) - g.y(0)), 0.02), "\(id) \(label) \(category): height")
        let centre = bar.number("x") + bar.number("width") / 2
        guard let tick = categories.first(where: { $0.text == category }) else { Issue.record("\(id): no label \(category)"); continue }
        #expect(abs(centre - tick.number("x")) < band / 2, "\(id) \(category): bar outside its group")
    }
}

@Suite struct ReportTests {
    let runs = ReportFixture.records()
    let a = ReportFixture.labelA, b = ReportFixture.labelB

    func html() -> String { HTMLReport.render(runs, title: "Toy <report> & co") }

    @Test func everySectionHasAChartWithMarks() {
        let sections = Page.sections(html())
        for id in ["metrics", "learning-curves", "metrics-at-k", "exposure", "coverage"] {
            guard let section = sections[id] else { Issue.record("missing section \(id)"); continue }
            #expect(section.contains("<svg"), "\(id) has no chart")
            let drawn = Page.elements("path", class: "series", in: section).filter { !($0["d"] ?? "").isEmpty }.count
                + Page.elements("rect", class: "bar", in: section).count
            #expect(drawn > 0, "\(id) draws nothing")
        }
    }

    @Test func learningCurvesPlotTheEpochLog() {
        let page = html()
        checkLineChart(page, "loss", [a: ([1, 2, 3], [0.69, 0.45, 0.31]), b: ([1, 2], [1.2, 0.8])])
        checkLineChart(page, "valid-recall@10", [a: ([1, 2, 3], [0.10, 0.14, 0.17]), b: ([1, 2], [0.05, 0.09])])
        checkLineChart(page, "valid-ndcg@10", [a: ([1, 2, 3], [0.05, 0.07, 0.09]), b: ([1, 2], [0.02, 0.04])])
        // A's curve comes from its epoch log (epochs 1 and 3), B's from the legacy curve_epoch_N metrics.
        checkLineChart(page, "curve-recall@10", [a: ([1, 3], [0.08, 0.15]), b: ([1, 2], [0.1, 0.12])])
        // hit@10 is validated but not plotted, and said so.
        #expect(Page.charts(page)["valid-hit@10"] == nil)
        #expect(page.contains("Also validated (not plotted): hit@10."))
    }

    @Test func metricAtKPlotsEveryCutoff() {
        let page = html()
        let ks = (1...50).map(Double.init)
        for name in ["recall", "ndcg", "precision"] {
            checkLineChart(page, "at-k-\(name)", [a: (ks, runs[0].metricsAtK![name]!), b: (ks, runs[1].metricsAtK![name]!)])
        }
        // precision@7 of B is NaN: skipped, and B's line is two sub-paths.
        let path = Page.elements("path", class: "series", in: Page.charts(page)["at-k-precision"]!).first { $0["data-series"] == b }!
        #expect(Page.pathPoints(path["d"]!).filter(\.move).count == 2)
        #expect(Page.charts(page)["at-k-hit"] == nil)
    }

    @Test func exposureAndCoverageBars() {
        let page = html()
        func byDecile(_ run: Int) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: runs[run].exposure!.popularityDeciles.enumerated().map { (String($0.offset + 1), $0.element) })
        }
        checkBarChart(page, "exposure-deciles", [a: byDecile(0), b: byDecile(1)])
        // Decile labels run 1 (least popular) … 10 left to right.
        let deciles = Page.elements("text", class: "category", in: Page.charts(page)["exposure-deciles"]!)
        #expect(deciles.map(\.text) == (1...10).map(String.init))
        #expect(zip(deciles, deciles.dropFirst()).allSatisfy { $0.number("x") < $1.number("x") })
        checkBarChart(page, "average-popularity", [a: ["top-20 lists": 120.5], b: ["top-20 lists": 180.25]])
        checkBarChart(page, "item-coverage", [a: ["top-20 lists": 0.42], b: ["top-20 lists": 0.61]])
        checkBarChart(page, "coverage-itemcoverage", [a: ["10": 0.4], b: ["10": 0.6]])
        checkBarChart(page, "coverage-giniindex", [a: ["10": 0.7], b: ["10": 0.5]])
        checkBarChart(page, "fit-time", [a: ["fit": 2.5], b: ["fit": 7.25]])
    }

    @Test func metricsTableAndBars() {
        let page = html()
        let keys = ["recall@10", "recall@20", "ndcg@10", "ndcg@20", "itemcoverage@10", "giniindex@10"]
        var expected: [String: [String: Double]] = [:]
        for (run, label) in [(0, a), (1, b)] {
            expected[label] = Dictionary(uniqueKeysWithValues: keys.map { ($0, runs[run].metrics["test"]![$0]!) })
        }
        checkBarChart(page, "test-metrics", expected)  // B's NaN ndcg@20 has no bar
        let table = Page.matches("<tbody>(.*?)</tbody>", in: Page.sections(page)["metrics"]!)[0][1]
        let rows = Page.matches("<tr><th>([^<]*)</th>(.*?)</tr>", in: table).map { row in
            (row[1], Page.matches("<td>([^<]*)</td>", in: row[2]).map { Page.unescape($0[1]) })
        }
        #expect(rows.map(\.0) == ["model", "dataset", "seed"] + keys + ["fit time (s)"])
        #expect(rows.first { $0.0 == "model" }?.1 == ["bpr", "<b>&co"])
        #expect(rows.first { $0.0 == "ndcg@20" }?.1 == ["0.1500", "—"])
        #expect(rows.first { $0.0 == "fit time (s)" }?.1 == ["2.50", "7.25"])
    }

    @Test func textIsEscapedAndThePageIsSelfContained() {
        let page = html()
        #expect(!page.contains("<b>&co") && !page.contains("<report>"))
        #expect(page.contains("&lt;b&gt;&amp;co (toy, seed 2)") && page.contains("<title>Toy &lt;report&gt; &amp; co</title>"))
        let legend = Page.elements("g", class: "legend-entry", in: page).compactMap { $0["data-series"] }
        #expect(Set(legend) == [a, b])
        for outside in ["<script", "src=", "href=", "@import", "url(", "<link"] { #expect(!page.contains(outside), "\(outside)") }
        #expect(page.components(separatedBy: "<svg ").count == page.components(separatedBy: "</svg>").count)
        for path in Page.elements("path", class: "series", in: page) { #expect(!(path["d"] ?? "").lowercased().contains("nan")) }
    }

    @Test func missingDataIsNotedNotPlotted() {
        let bare = RunRecord(model: "ease", dataset: "toy", config: [:], seed: 1, dataFingerprint: "f", timings: ["fit_s": 1],
                             metrics: ["test": ["recall@10": 0.2]], versions: [:])
        let sections = Page.sections(HTMLReport.render([bare]))
        for id in ["learning-curves", "metrics-at-k", "exposure", "coverage"] {
            #expect(sections[id]?.contains("Not recorded") == true, "\(id)")
            #expect(sections[id]?.contains("<svg") == false, "\(id)")
        }
        #expect(sections["metrics"]?.contains("<svg") == true)
        // Alongside a run that has them, the run without is named.
        let mixed = HTMLReport.render([bare] + runs)
        #expect(mixed.contains("Exposure not recorded for: ease (toy, seed 1)."))
    }

    @Test func labelsAreUniqueAndKeysOrdered() {
        let twice = RunLabels.make([runs[0], runs[0], runs[1]])
        #expect(twice == ["bpr (toy, seed 1) #1", "bpr (toy, seed 1) #2", b])
        #expect(MetricKeyOrder.sorted(["ndcg@10", "recall@20", "zeta", "recall@5", "giniindex@10", "ndcg@5", "mrr@10", "recall@10"])
                == ["recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "mrr@10", "giniindex@10", "zeta"])
    }

    @Test func niceAxes() {
        #expect(NiceAxis(low: 0, high: 0.23).ticks == [0, 0.05, 0.1, 0.15, 0.2, 0.25])
        #expect(NiceAxis(low: 1, high: 50, count: 6, integerSteps: true).ticks == [0, 10, 20, 30, 40, 50])
        #expect(NiceAxis(low: 1, high: 3, count: 6, integerSteps: true).ticks == [1, 2, 3])
        #expect(NiceAxis(low: 1, high: 1, integerSteps: true).ticks == [0, 1, 2])
        #expect(NiceAxis(low: 0.31, high: 1.2).ticks == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
        #expect(NiceAxis(low: 0, high: 0.23).label(0.1) == "0.10")
    }
}

extension ReportTests {
    @Suite struct Compare {
        func records() -> [RunRecord] {
            [RunRecord(model: "ease", dataset: "toy", config: [:], seed: 1, dataFingerprint: "f", timings: ["fit_s": 1.5],
                       metrics: ["test": ["recall@10": 0.25, "ndcg@10": 0.125, "recall@5": 0.2], "valid": ["recall@10": 0.3]], versions: [:]),
             RunRecord(model: "x\"y|z", dataset: "toy", config: [:], seed: 2, dataFingerprint: "f", timings: ["fit_s": 12.25],
                       metrics: ["test": ["recall@10": 0.5, "ndcg@10": .nan, "recall@5": 0.3]], versions: [:])]
        }

        @Test func markdown() {
            #expect(MetricsComparison(records(), split: "test").markdown() == """
            | test | ease (toy, seed 1) | x"y\\|z (toy, seed 2) |
            | --- | ---: | ---: |
            | recall@5 | 0.2000 | 0.3000 |
            | recall@10 | 0.2500 | 0.5000 |
            | ndcg@10 | 0.1250 | — |
            | fit_s | 1.50 | 12.25 |
            """)
        }

        @Test func csv() {
            #expect(MetricsComparison(records(), split: "test").csv() == """
            test,"ease (toy, seed 1)","x""y|z (toy, seed 2)"
            recall@5,0.2,0.3
            recall@10,0.25,0.5
            ndcg@10,0.125,
            fit_s,1.5,12.25
            """)
            #expect(MetricsComparison(records(), split: "valid").csv() == """
            valid,"ease (toy, seed 1)","x""y|z (toy, seed 2)"
            recall@10,0.3,
            fit_s,1.5,12.25
            """)
        }

        @Test func table() {
            let lines = MetricsComparison(records(), split: "test").text().split(separator: "\n").map(String.init)
            #expect(lines.count == 6)
            #expect(lines[0].hasPrefix("test") && lines[0].contains("ease (toy, seed 1)"))
            #expect(lines[4].hasPrefix("ndcg@10") && lines[4].hasSuffix("-"))
            #expect(lines[5].hasPrefix("fit_s") && lines[5].hasSuffix("12.25"))
        }
    }
}

extension ReportTests {
    @Suite struct Commands {
        func run(_ args: [String]) throws {
            var command = try AffinityCommand.parseAsRoot(args)
            try command.run()
        }

        @Test func writesTheReportFromRecordFiles() throws {
            let dir = Fixtures.temporaryFolder()
            let records = ReportFixture.records(nan: false)  // JSON has no NaN
            try RunRecord.write([records[0]], to: dir + "/one.json")
            try RunRecord.write(records, to: dir + "/two.json")
            try run(["report", dir + "/one.json", dir + "/two.json", "-o", dir + "/report.html", "--title", "T"])
            let page = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
            #expect(page.contains("<title>T</title>"))
            // The same run twice: numbered labels.
            #expect(page.contains("bpr (toy, seed 1) #1") && page.contains("bpr (toy, seed 1) #2"))
            try run(["compare", dir + "/two.json", "--format", "markdown", "--split", "valid"])
        }

        @Test func badInputNamesTheFileAndFails() throws {
            let dir = Fixtures.temporaryFolder()
            let notARecord = Fixtures.file("bad.json", "{\"model\": 3}", in: dir)
            let empty = Fixtures.file("empty.json", "[]", in: dir)
            for path in [notARecord, empty, dir + "/missing.json"] {
                #expect(throws: (any Error).self) { _ = try RunFiles.read([path]) }
                do { _ = try RunFiles.read([path]) } catch { #expect("\(error)".contains(path), "\(error)") }
                for args in [["report", path, "-o", dir + "/r.html"], ["compare", path]] {
                    do {
                        try run(args)
                        Issue.record("expected failure for \(args)")
                    } catch {
                        #expect(AffinityCommand.exitCode(for: error) != .success, "\(args)")
                    }
                }
            }
            #expect(throws: (any Error).self) { try run(["report", "-o", dir + "/r.html"]) }
            #expect(throws: (any Error).self) { try run(["compare", notARecord, "--format", "xml"]) }
        }
    }
}

/// `chromium` on PATH, for the headless-browser test.
let chromiumPath: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let path = "\(dir)/chromium"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

extension ReportTests {
    @Suite struct Browser {
        /// Runs chromium headless on `args`; kills it after `timeout` seconds so a hang cannot stall the suite.
        func chromium(_ args: [String], in dir: String, timeout: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
            let outPath = dir + "/stdout-\(UUID().uuidString)", errPath = dir + "/stderr-\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errPath, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: chromiumPath!)
            process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(dir)/profile-\(UUID().uuidString)"] + args
            // Files, not pipes: the dumped page is larger than a pipe buffer.
            process.standardOutput = FileHandle(forWritingAtPath: outPath)
            process.standardError = FileHandle(forWritingAtPath: errPath)
            try process.run()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if process.isRunning {
                process.terminate()
                Thread.sleep(forTimeInterval: 2)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                Issue.record("chromium did not finish within \(Int(timeout)) s")
            }
            process.waitUntilExit()
            return (process.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                    (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
        }

        @Test(.enabled(if: chromiumPath != nil, "chromium is not installed"))
        func rendersInAHeadlessBrowser() throws {
            let dir = Fixtures.temporaryFolder()
            let page = HTMLReport.render(ReportFixture.records(), title: "Browser <test>")
            try page.write(toFile: dir + "/report.html", atomically: true, encoding: .utf8)
            let url = URL(fileURLWithPath: dir + "/report.html").absoluteString

            let dump = try chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", url], in: dir)
            #expect(dump.status == 0, "chromium exit \(dump.status): \(dump.stderr.suffix(2000))")
            let consoleErrors = dump.stderr.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }
            #expect(consoleErrors.isEmpty, "\(consoleErrors)")
            let svgs = dump.stdout.components(separatedBy: "<svg").count - 1
            #expect(svgs == page.components(separatedBy: "<svg").count - 1 && svgs > 10, "\(svgs) charts in the browser's DOM")
            let lines = Page.elements("path", class: "series", in: dump.stdout)
            #expect(!lines.isEmpty && lines.allSatisfy { !($0["d"] ?? "").isEmpty })
            #expect(Page.elements("rect", class: "bar", in: dump.stdout).count > 20)
            #expect(dump.stdout.contains("Browser &lt;test&gt;"))

            let shot = try chromium(["--screenshot=\(dir)/report.png", "--window-size=1100,3000", "--hide-scrollbars", url], in: dir)
            #expect(shot.status == 0)
            let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/report.png")[.size] as? Int) ?? 0
            #expect(size > 10_000, "screenshot of \(size) bytes")
        }
    }
}
