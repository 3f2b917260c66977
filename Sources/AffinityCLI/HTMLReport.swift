import Foundation
import AffinityApplication

/// The `affinity report` page: metrics, learning curves, metric@K, exposure by popularity and coverage of
/// some runs, as one HTML file with inline CSS and SVG (no scripts, fonts or other files to fetch).
/// A pure function of the records (no clock, no files), so tests render it directly.
struct HTMLReport {
    let runs: [RunRecord]
    /// One per run, unique; a run's colour is its position.
    let labels: [String]
    let title: String

    static func render(_ runs: [RunRecord], title: String = "Affinity report") -> String {
        HTMLReport(runs: runs, labels: RunLabels.make(runs), title: title).page()
    }

    /// Chart widths: two narrow charts side by side fill the 960 px content column.
    static let narrow = 470.0, wide = 960.0

    func page() -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escapeHTML(title))</title>
        <style>\(HTMLReport.css)</style>
        </head>
        <body>
        <main>
        <h1>\(escapeHTML(title))</h1>
        \(runList())\(metricsSection())\(learningCurvesSection())\(atKSection())\(exposureSection())\(coverageSection())</main>
        </body>
        </html>

        """
    }

    // MARK: Sections

    private func runList() -> String {
        var out = "<ul class=\"runs\">\n"
        for (i, run) in runs.enumerated() {
            let settings = run.config.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            out += "<li>\(swatch(i))<strong>\(escapeHTML(labels[i]))</strong>"
            if !settings.isEmpty { out += " <span class=\"settings\">\(escapeHTML(settings))</span>" }
            out += "</li>\n"
        }
        return out + "</ul>\n"
    }

    /// (a) The test metrics of every run side by side, as a table and as bars, and the fit times.
    private func metricsSection() -> String {
        let comparison = MetricsComparison(runs, split: "test")
        var body = "<div class=\"table-wrap\"><table class=\"metrics\">\n<thead><tr><th>test</th>"
        for i in runs.indices { body += "<th>\(swatch(i))\(escapeHTML(labels[i]))</th>" }
        body += "</tr></thead>\n<tbody>\n"
        for (name, values) in [("model", runs.map(\.model)), ("dataset", runs.map(\.dataset)), ("seed", runs.map { String($0.seed) })] {
            body += "<tr><th>\(name)</th>" + values.map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>\n"
        }
        for row in comparison.rows {
            let name = row.key == "fit_s" ? "fit time (s)" : row.key
            body += "<tr><th>\(escapeHTML(name))</th>" + row.values.map { "<td>\(cell($0, digits: row.digits))</td>" }.joined() + "</tr>\n"
        }
        body += "</tbody></table></div>\n"

        var charts: [String] = []
        let metricRows = comparison.rows.filter { $0.key != "fit_s" }
        let metricBars = BarChart(id: "test-metrics", title: "Test metrics", xTitle: "metric", yTitle: "value",
                                  categories: metricRows.map(\.key), series: series(metricRows.map(\.values)), width: Self.wide)
        if metricBars.plotted.isEmpty { body += note("Test metrics not recorded.") } else { charts.append(metricBars.svg()) }
        let fit = comparison.rows.filter { $0.key == "fit_s" }
        let fitBars = BarChart(id: "fit-time", title: "Fit time", xTitle: "", yTitle: "seconds", categories: ["fit"],
                               series: series(fit.map(\.values)), width: Self.narrow)
        if fitBars.plotted.isEmpty { body += note("Fit time not recorded.") } else { charts.append(fitBars.svg()) }
        return section(id: "metrics", heading: "Metrics", body + grid(charts))
    }

    /// (b) Training loss, validation metrics and test learning-curve metrics per epoch.
    private func learningCurvesSection() -> String {
        var body = "<h3>Training loss</h3>\n"
        let loss = LineChart(id: "loss", title: "Training loss", xTitle: "epoch", yTitle: "loss", series: runs.indices.compactMap { i in
            guard let epochs = runs[i].epochs, !epochs.isEmpty else { return nil }
            return LineChart.Series(label: labels[i], style: i, x: epochs.map { Double($0.epoch) }, y: epochs.map(\.loss))
        })
        if loss.plotted.isEmpty {
            body += note("Not recorded: no run has an epoch log (closed-form models fit in one step).")
        } else {
            body += missing("Epoch log") { $0.epochs?.isEmpty == false } + grid([loss.svg()])
        }

        body += "<h3>Validation metrics</h3>\n"
        let validation = runs.map { run in (run.epochs ?? []).compactMap { e in e.valid.map { (e.epoch, $0) } } }
        let validKeys = MetricKeyOrder.sorted(validation.flatMap { $0.flatMap { Array($0.1.keys) } })
        // Every cutoff of every metric would be a wall of charts: recall, ndcg and the metric that selects
        // the epoch are plotted, the rest named.
        let selecting = Set(runs.map { ($0.config["valid_metric"] ?? "mrr@10").lowercased() })
        var plotted = validKeys.filter { ["recall", "ndcg"].contains(MetricKeyOrder.parts($0).metric) || selecting.contains($0) }
        if plotted.isEmpty { plotted = validKeys }
        body += perEpochCharts(validation, keys: plotted, id: "valid", title: "Validation", none: "Not recorded: no run was validated per epoch.")
        let unplotted = validKeys.filter { !plotted.contains($0) }
        if !unplotted.isEmpty { body += note("Also validated (not plotted): \(unplotted.joined(separator: ", ")).") }

        body += "<h3>Test learning curve</h3>\n"
        let curves = runs.map(curvePoints)
        body += perEpochCharts(curves, keys: MetricKeyOrder.sorted(curves.flatMap { $0.flatMap { Array($0.1.keys) } }), id: "curve",
                               title: "Test (learning curve)", none: "Not recorded: train with --curve N to measure test metrics every N epochs.")
        return section(id: "learning-curves", heading: "Learning curves", body)
    }

    /// (c) Each metric at every cutoff K = 1…50.
    private func atKSection() -> String {
        var charts: [String] = []
        for name in MetricKeyOrder.sortedMetrics(runs.flatMap { Array(($0.metricsAtK ?? [:]).keys) }) {
            let chart = LineChart(id: "at-k-\(name)", title: "\(name)@K", xTitle: "K", yTitle: name, series: runs.indices.compactMap { i in
                guard let values = runs[i].metricsAtK?[name], !values.isEmpty else { return nil }
                return LineChart.Series(label: labels[i], style: i, x: values.indices.map { Double($0 + 1) }, y: values)
            }, includeZero: true, width: Self.narrow)
            if !chart.plotted.isEmpty { charts.append(chart.svg()) }
        }
        let body = charts.isEmpty ? note("Not recorded: no run has metric@K (records written by `affinity train --output` have it).")
            : missing("Metric@K") { $0.metricsAtK?.isEmpty == false } + grid(charts)
        return section(id: "metrics-at-k", heading: "Metric@K, K = 1…\(RunRecord.atKCutoffs)", body)
    }

    /// (d) How each run's recommendations spread over items from least to most popular.
    private func exposureSection() -> String {
        let measured = runs.indices.filter { runs[$0].exposure != nil }
        guard !measured.isEmpty else {
            return section(id: "exposure", heading: "Exposure by item popularity", note("Not recorded: no run has an exposure summary."))
        }
        let topK = listName(measured)
        let bins = measured.map { runs[$0].exposure!.popularityDeciles.count }.max() ?? 10
        let deciles = BarChart(
            id: "exposure-deciles", title: "Share of \(topK) slots by item-popularity decile",
            xTitle: "item-popularity decile (1 = least popular, \(bins) = most popular)", yTitle: "share of slots",
            categories: (0..<bins).map { String($0 + 1) },
            series: measured.map { i in
                let shares = runs[i].exposure!.popularityDeciles
                return BarChart.Series(label: labels[i], style: i, values: (0..<bins).map { $0 < shares.count ? shares[$0] : .nan })
            }, width: Self.wide)
        let popularity = BarChart(
            id: "average-popularity", title: "Average popularity of recommended items", xTitle: "",
            yTitle: "training interactions per item", categories: ["\(topK) lists"],
            series: measured.map { BarChart.Series(label: labels[$0], style: $0, values: [runs[$0].exposure!.averagePopularity]) },
            width: Self.narrow)

        var table = "<div class=\"table-wrap\"><table>\n<thead><tr><th>run</th><th>K</th><th>average popularity</th><th>item coverage</th></tr></thead>\n<tbody>\n"
        for i in measured {
            let e = runs[i].exposure!
            table += "<tr><th>\(swatch(i))\(escapeHTML(labels[i]))</th><td>\(e.k)</td><td>\(cell(e.averagePopularity, digits: 2))</td>"
            table += "<td>\(cell(e.itemCoverage, digits: 4))</td></tr>\n"
        }
        table += "</tbody></table></div>\n"
        // The bars of the least popular deciles are often too small to see: the exact shares.
        table += "<div class=\"table-wrap\"><table>\n<thead><tr><th>share of \(topK) slots (%) by decile</th>"
        table += (1...bins).map { "<th>\($0)</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for i in measured {
            let shares = runs[i].exposure!.popularityDeciles
            table += "<tr><th>\(swatch(i))\(escapeHTML(labels[i]))</th>"
            table += (0..<bins).map { "<td>\(cell($0 < shares.count ? shares[$0] * 100 : nil, digits: 2))</td>" }.joined() + "</tr>\n"
        }
        table += "</tbody></table></div>\n"
        let body = missing("Exposure") { $0.exposure != nil } + grid([deciles.svg(), popularity.svg()]) + table
        return section(id: "exposure", heading: "Exposure by item popularity", body)
    }

    /// (e) The share of the catalogue each run recommends, and the coverage / Gini test metrics at each cutoff.
    private func coverageSection() -> String {
        var charts: [String] = []
        let measured = runs.indices.filter { runs[$0].exposure != nil }
        if !measured.isEmpty {
            let topK = listName(measured)
            charts.append(BarChart(
                id: "item-coverage", title: "Item coverage (share of catalogue recommended)", xTitle: "", yTitle: "item coverage",
                categories: ["\(topK) lists"],
                series: measured.map { BarChart.Series(label: labels[$0], style: $0, values: [runs[$0].exposure!.itemCoverage]) },
                width: Self.narrow).svg())
        }
        let testKeys = runs.flatMap { Array(($0.metrics["test"] ?? [:]).keys) }
        for (metric, title) in [("itemcoverage", "itemcoverage@K (test)"), ("giniindex", "giniindex@K (test; lower = more even)")] {
            let keys = MetricKeyOrder.sorted(testKeys.filter { MetricKeyOrder.parts($0).metric == metric })
            let chart = BarChart(id: "coverage-\(metric)", title: title, xTitle: "K", yTitle: metric,
                                 categories: keys.map { MetricKeyOrder.parts($0).k.map(String.init) ?? $0 },
                                 series: series(keys.map { key in runs.map { $0.metrics["test"]?[key] } }), width: Self.narrow)
            if !chart.plotted.isEmpty { charts.append(chart.svg()) }
        }
        let body = charts.isEmpty ? note("Not recorded: no run has an exposure summary or itemcoverage@K / giniindex@K test metrics.") : grid(charts)
        return section(id: "coverage", heading: "Coverage", body)
    }

    // MARK: Pieces

    /// One chart per metric key over epochs; `points[run]` holds (epoch, metrics) for the epochs measured.
    private func perEpochCharts(_ points: [[(Int, [String: Double])]], keys: [String], id: String, title: String, none: String) -> String {
        let charts = keys.compactMap { key -> String? in
            let chart = LineChart(id: "\(id)-\(key)", title: "\(title) \(key)", xTitle: "epoch", yTitle: key, series: runs.indices.compactMap { i in
                let measured = points[i].filter { $0.1[key] != nil }
                return measured.isEmpty ? nil
                    : LineChart.Series(label: labels[i], style: i, x: measured.map { Double($0.0) }, y: measured.map { $0.1[key]! })
            }, width: Self.narrow)
            return chart.plotted.isEmpty ? nil : chart.svg()
        }
        return charts.isEmpty ? note(none) : grid(charts)
    }

    /// The test learning curve of a run: from its epoch log, else from the older `curve_epoch_N` metrics.
    private func curvePoints(_ run: RunRecord) -> [(Int, [String: Double])] {
        let logged = (run.epochs ?? []).compactMap { e in e.curve.map { (e.epoch, $0) } }
        if !logged.isEmpty { return logged }
        let prefix = "curve_epoch_"
        return run.metrics.compactMap { key, metrics in
            key.hasPrefix(prefix) ? Int(key.dropFirst(prefix.count)).map { ($0, metrics) } : nil
        }.sorted { $0.0 < $1.0 }
    }

    /// Bar series from rows of per-run values: `rows[category][run]`.
    private func series(_ rows: [[Double?]]) -> [BarChart.Series] {
        runs.indices.map { i in BarChart.Series(label: labels[i], style: i, values: rows.map { $0[i] ?? .nan }) }
    }

    /// "top-20" when every run's exposure is taken at the same K.
    private func listName(_ measured: [Int]) -> String {
        let ks = Set(measured.map { runs[$0].exposure!.k })
        return ks.count == 1 ? "top-\(ks.first!)" : "top-K"
    }

    private func section(id: String, heading: String, _ body: String) -> String {
        "<section id=\"\(id)\">\n<h2>\(escapeHTML(heading))</h2>\n\(body)</section>\n"
    }

    private func grid(_ charts: [String]) -> String {
        charts.isEmpty ? "" : "<div class=\"charts\">\n" + charts.joined(separator: "\n") + "\n</div>\n"
    }

    private func note(_ text: String) -> String { "<p class=\"note\">\(escapeHTML(text))</p>\n" }

    /// Names the runs without something a section plots (nothing when every run has it).
    private func missing(_ what: String, _ has: (RunRecord) -> Bool) -> String {
        let names = runs.indices.filter { !has(runs[$0]) }.map { labels[$0] }
        return names.isEmpty ? "" : note("\(what) not recorded for: \(names.joined(separator: "; ")).")
    }

    private func swatch(_ run: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(Palette.colour(run))\"></span>"
    }

    /// A table number; "—" for a missing or non-finite value.
    private func cell(_ value: Double?, digits: Int) -> String {
        guard let value, value.isFinite else { return "—" }
        return fixed(value, digits)
    }

    static let css = """
    body{margin:0;background:#fff;color:#222;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
    main{max-width:960px;margin:0 auto;padding:24px 20px 48px}
    h1{font-size:26px;margin:0 0 12px}
    h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid #ddd}
    h3{font-size:15px;margin:18px 0 6px;color:#333}
    .note{color:#555;font-size:14px;margin:6px 0}
    .runs{list-style:none;padding:0;margin:0}
    .runs li{margin:4px 0}
    .settings{color:#666;font-size:13px}
    .swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
    .table-wrap{overflow-x:auto;margin:8px 0 16px}
    table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
    th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
    th:first-child{text-align:left;font-weight:600}
    thead th{border-bottom:2px solid #ccc;vertical-align:bottom;white-space:normal}
    .metrics thead th{min-width:90px}
    .charts{display:flex;flex-wrap:wrap;gap:16px 20px;margin:8px 0}
    svg.chart{max-width:100%;height:auto;display:block;background:#fff}
    .chart text{font-size:12px;fill:#333}
    .chart .chart-title{font-size:13px;font-weight:600;fill:#111}
    .chart .axis-title{fill:#555}
    .chart .category{font-size:11px}
    .chart .grid{stroke:#e8e8e8}
    .chart .axis,.chart .tick{stroke:#888}
    """
}
