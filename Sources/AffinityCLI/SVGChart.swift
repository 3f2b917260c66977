import Foundation
import AffinityApplication

// Inline-SVG charts for `affinity report`: line charts and grouped bar charts with round-numbered axes and a
// legend. Every data element carries `data-series` and its values (`data-x`/`data-values`, `data-value`), and
// the plot group carries its axis domains and pixel rectangle, so tests (and readers of the page source) can
// check each plotted coordinate against the data.

/// Text for HTML and SVG, as element content or a double-quoted attribute value.
func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}

/// A pixel coordinate: two decimals are far finer than a screen shows.
func px(_ v: Double) -> String { String(format: "%.2f", v) }

/// A data value as written into `data-*` attributes: Swift's shortest exact form, so it reads back unchanged.
func exact(_ v: Double) -> String { String(v) }

/// An x value for a tooltip: epochs and cutoffs are whole numbers.
func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }

/// Colours of the runs (Okabe & Ito, distinguishable with the common colour-vision deficiencies); yellow last
/// because it is faint on white. Past eight runs the colours repeat and lines get a dash pattern.
enum Palette {
    static let colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]

    static func colour(_ index: Int) -> String { colours[index % colours.count] }

    static func dash(_ index: Int) -> String? {
        let patterns = [nil, "6 3", "2 3", "8 3 2 3"]
        return patterns[(index / colours.count) % patterns.count]
    }
}

/// Maps data values linearly onto pixels.
struct LinearScale {
    var domain: ClosedRange<Double>
    /// Pixels at the domain's lower and upper bound (for a y axis the lower bound is at the bottom: the larger pixel).
    var lowerPixel: Double
    var upperPixel: Double

    func callAsFunction(_ v: Double) -> Double {
        lowerPixel + (v - domain.lowerBound) / (domain.upperBound - domain.lowerBound) * (upperPixel - lowerPixel)
    }
}

/// Round-numbered ticks (steps of 1, 2 or 5 × 10ⁿ) covering the data; the axis spans first to last tick.
struct NiceAxis {
    let ticks: [Double]
    /// Decimals that show every tick exactly.
    let decimals: Int

    var domain: ClosedRange<Double> { ticks[0]...ticks[ticks.count - 1] }

    /// About `count` ticks from at or below `low` to at or above `high`.
    init(low: Double, high: Double, count: Int = 5, integerSteps: Bool = false) {
        var lo = low.isFinite ? low : 0, hi = high.isFinite ? high : 1
        if !(lo < hi) {
            // One value: widen around it so the axis has a span.
            let pad = integerSteps ? 1 : (lo == 0 ? 1 : abs(lo) * 0.1)
            lo -= pad
            hi += pad
        }
        var step = NiceAxis.roundStep((hi - lo) / Double(max(count - 1, 1)))
        if integerSteps { step = max(step, 1) }
        let decimals = max(0, -Int((log10(step)).rounded(.down)))
        let first = (lo / step + 1e-9).rounded(.down), last = (hi / step - 1e-9).rounded(.up)
        let scale = pow(10, Double(decimals))
        ticks = stride(from: first, through: last, by: 1).map { (($0 * step) * scale).rounded() / scale + 0 }
        self.decimals = decimals
    }

    /// 1, 2, 5 or 10 × 10ⁿ, whichever is nearest `raw`.
    private static func roundStep(_ raw: Double) -> Double {
        let magnitude = pow(10, log10(raw).rounded(.down))
        let f = raw / magnitude
        return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude
    }

    func label(_ v: Double) -> String { String(format: "%.\(decimals)f", v + 0) }
}

/// A run's entry in a chart legend.
struct LegendEntry {
    var label: String
    var style: Int
}

/// The rectangle a chart plots into, inside margins for its title, tick labels and axis titles; the legend
/// sits below the x axis.
struct ChartFrame {
    var width: Double
    var plotHeight = 220.0
    var bottomAxis = 46.0
    var legendHeight = 0.0
    let top = 34.0, left = 64.0, right = 18.0

    var plotLeft: Double { left }
    var plotRight: Double { width - right }
    var plotTop: Double { top }
    var plotBottom: Double { top + plotHeight }
    var height: Double { plotBottom + bottomAxis + legendHeight + 8 }
}

/// Pieces both chart kinds draw: the open tag and title, the y axis with grid lines, the legend.
enum ChartParts {
    /// About the width of `text` at the 12 px chart font.
    static func textWidth(_ text: String, fontSize: Double = 12) -> Double { Double(text.count) * fontSize * 0.58 }

    static func open(id: String, title: String, frame: ChartFrame, x: LinearScale?, y: LinearScale) -> String {
        let xDomain = x.map { "\(exact($0.domain.lowerBound)) \(exact($0.domain.upperBound))" } ?? ""
        // A title wider than the chart is shortened; the full one stays the chart's accessible name.
        let room = Int((frame.width - frame.plotLeft - 8) / (13 * 0.62))
        let shownTitle = title.count > room ? String(title.prefix(room - 1)) + "…" : title
        return """
        <svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="\(escapeHTML(id))" viewBox="0 0 \(px(frame.width)) \(px(frame.height))" \
        width="\(px(frame.width))" height="\(px(frame.height))" role="img" aria-label="\(escapeHTML(title))">
        <text class="chart-title" x="\(px(frame.plotLeft))" y="20">\(escapeHTML(shownTitle))</text>
        <g class="plot" data-x-domain="\(xDomain)" data-y-domain="\(exact(y.domain.lowerBound)) \(exact(y.domain.upperBound))" \
        data-plot="\(px(frame.plotLeft)) \(px(frame.plotTop)) \(px(frame.plotRight)) \(px(frame.plotBottom))">

        """
    }

    static func yAxis(_ axis: NiceAxis, scale: LinearScale, frame: ChartFrame, title: String) -> String {
        var out = ""
        for t in axis.ticks {
            let y = px(scale(t))
            out += "<line class=\"grid\" x1=\"\(px(frame.plotLeft))\" x2=\"\(px(frame.plotRight))\" y1=\"\(y)\" y2=\"\(y)\"/>"
            out += "<text class=\"tick-y\" x=\"\(px(frame.plotLeft - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(axis.label(t))</text>\n"
        }
        let middle = px((frame.plotTop + frame.plotBottom) / 2)
        out += "<text class=\"axis-title\" transform=\"translate(14 \(middle)) rotate(-90)\" text-anchor=\"middle\">\(escapeHTML(title))</text>\n"
        return out
    }

    static func xAxisLine(frame: ChartFrame, title: String) -> String {
        """
        <line class="axis" x1="\(px(frame.plotLeft))" x2="\(px(frame.plotRight))" y1="\(px(frame.plotBottom))" y2="\(px(frame.plotBottom))"/>
        <text class="axis-title" x="\(px((frame.plotLeft + frame.plotRight) / 2))" y="\(px(frame.plotBottom + frame.bottomAxis - 8))" text-anchor="middle">\(escapeHTML(title))</text>

        """
    }

    /// Legend entries flow left to right in rows; a label too long for a row is shortened (the full label is
    /// its tooltip).
    static func legend(_ entries: [LegendEntry], bars: Bool, width: Double) -> (svg: String, height: Double) {
        let rowHeight = 18.0, swatch = 24.0, gap = 18.0, left = 12.0
        let available = width - 2 * left - swatch
        var out = "", x = left, row = 0
        for entry in entries {
            var text = entry.label
            let maxChars = Int(available / (12 * 0.58))
            if text.count > maxChars { text = String(text.prefix(max(maxChars - 1, 1))) + "…" }
            let w = swatch + textWidth(text) + gap
            if x > left && x + w > width - left { x = left; row += 1 }
            let y = Double(row) * rowHeight + 9
            let colour = Palette.colour(entry.style)
            let mark = bars
                ? "<rect x=\"\(px(x))\" y=\"\(px(y - 6))\" width=\"16\" height=\"12\" fill=\"\(colour)\"/>"
                : "<line x1=\"\(px(x))\" x2=\"\(px(x + 18))\" y1=\"\(px(y))\" y2=\"\(px(y))\" stroke=\"\(colour)\" stroke-width=\"3\"\(dashAttribute(entry.style))/>"
            out += "<g class=\"legend-entry\" data-series=\"\(escapeHTML(entry.label))\"><title>\(escapeHTML(entry.label))</title>\(mark)"
            out += "<text x=\"\(px(x + swatch))\" y=\"\(px(y))\" dominant-baseline=\"middle\">\(escapeHTML(text))</text></g>\n"
            x += w
        }
        return (out, entries.isEmpty ? 0 : Double(row + 1) * rowHeight)
    }

    static func placeLegend(_ svg: String, frame: ChartFrame) -> String {
        "<g class=\"legend\" transform=\"translate(0 \(px(frame.plotBottom + frame.bottomAxis)))\">\n\(svg)</g>\n"
    }

    static func dashAttribute(_ style: Int) -> String {
        Palette.dash(style).map { " stroke-dasharray=\"\($0)\"" } ?? ""
    }
}

/// Lines over a numeric x axis (epochs, K), one per run.
struct LineChart {
    struct Series {
        var label: String
        /// Colour index: the run's position, so a run keeps its colour in every chart.
        var style: Int
        var x: [Double]
        /// Non-finite values are not plotted; the line breaks there.
        var y: [Double]
    }

    var id: String
    var title: String
    var xTitle: String
    var yTitle: String
    var series: [Series]
    /// Metrics start the y axis at 0 so runs' levels compare honestly; losses zoom to their range.
    var includeZero = false
    var integerX = true
    var width = 480.0

    /// Series with at least one finite point (the others have nothing to draw).
    var plotted: [Series] { series.filter { s in zip(s.x, s.y).contains { $0.0.isFinite && $0.1.isFinite } } }

    func svg() -> String {
        let shown = plotted
        let points = shown.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
        let xs = points.map(\.0), ys = points.map(\.1)
        let xAxis = NiceAxis(low: xs.min() ?? 0, high: xs.max() ?? 1, count: 6, integerSteps: integerX)
        let yAxis = NiceAxis(low: includeZero ? min(0, ys.min() ?? 0) : ys.min() ?? 0, high: ys.max() ?? 1, count: 5)
        let legend = ChartParts.legend(shown.map { LegendEntry(label: $0.label, style: $0.style) }, bars: false, width: width)
        let frame = ChartFrame(width: width, legendHeight: legend.height)
        let x = LinearScale(domain: xAxis.domain, lowerPixel: frame.plotLeft, upperPixel: frame.plotRight)
        let y = LinearScale(domain: yAxis.domain, lowerPixel: frame.plotBottom, upperPixel: frame.plotTop)

        var out = ChartParts.open(id: id, title: title, frame: frame, x: x, y: y)
        out += ChartParts.yAxis(yAxis, scale: y, frame: frame, title: yTitle)
        for t in xAxis.ticks {
            out += "<line class=\"tick\" x1=\"\(px(x(t)))\" x2=\"\(px(x(t)))\" y1=\"\(px(frame.plotBottom))\" y2=\"\(px(frame.plotBottom + 5))\"/>"
            out += "<text class=\"tick-x\" x=\"\(px(x(t)))\" y=\"\(px(frame.plotBottom + 17))\" text-anchor=\"middle\">\(xAxis.label(t))</text>\n"
        }
        out += ChartParts.xAxisLine(frame: frame, title: xTitle)
        for s in shown { out += line(s, x: x, y: y) }
        out += "</g>\n" + ChartParts.placeLegend(legend.svg, frame: frame) + "</svg>"
        return out
    }

    /// The series as one path (a new sub-path after each gap), plus point markers where a line alone would
    /// hide them: short series, and points with no finite neighbour.
    private func line(_ s: Series, x: LinearScale, y: LinearScale) -> String {
        let finite = zip(s.x, s.y).map { $0.0.isFinite && $0.1.isFinite }
        var d: [String] = [], markers = ""
        let markAll = finite.filter { $0 }.count <= 25
        for i in s.x.indices where finite[i] {
            let startsSegment = i == 0 || !finite[i - 1]
            d.append("\(startsSegment ? "M" : "L")\(px(x(s.x[i]))) \(px(y(s.y[i])))")
            let isolated = startsSegment && (i + 1 == s.x.count || !finite[i + 1])
            if markAll || isolated {
                markers += "<circle class=\"marker\" data-series=\"\(escapeHTML(s.label))\" cx=\"\(px(x(s.x[i])))\" cy=\"\(px(y(s.y[i])))\" r=\"3\" "
                markers += "fill=\"\(Palette.colour(s.style))\"><title>\(escapeHTML(s.label)): \(escapeHTML(xTitle)) \(number(s.x[i])), \(fixed(s.y[i], 4))</title></circle>"
            }
        }
        var out = "<path class=\"series\" data-series=\"\(escapeHTML(s.label))\" data-x=\"\(s.x.map(exact).joined(separator: " "))\" "
        out += "data-values=\"\(s.y.map(exact).joined(separator: " "))\" d=\"\(d.joined(separator: " "))\" fill=\"none\" "
        out += "stroke=\"\(Palette.colour(s.style))\" stroke-width=\"2\"\(ChartParts.dashAttribute(s.style))><title>\(escapeHTML(s.label))</title></path>\n"
        return out + markers + "\n"
    }
}

/// Bars grouped by category (deciles, metrics, cutoffs), one bar per run in each group.
struct BarChart {
    struct Series {
        var label: String
        var style: Int
        /// One value per category; a non-finite value leaves a gap.
        var values: [Double]
    }

    var id: String
    var title: String
    var xTitle: String
    var yTitle: String
    var categories: [String]
    var series: [Series]
    var width = 480.0

    var plotted: [Series] { series.filter { $0.values.contains(where: \.isFinite) } }

    func svg() -> String {
        let shown = plotted
        let values = shown.flatMap(\.values).filter(\.isFinite)
        let yAxis = NiceAxis(low: min(0, values.min() ?? 0), high: max(0, values.max() ?? 1), count: 5)
        let legend = ChartParts.legend(shown.map { LegendEntry(label: $0.label, style: $0.style) }, bars: true, width: width)
        var frame = ChartFrame(width: width, legendHeight: legend.height)
        let band = (frame.plotRight - frame.plotLeft) / Double(max(categories.count, 1))
        // Category names wider than their group are slanted; the axis grows to fit them.
        let widest = categories.map { ChartParts.textWidth($0, fontSize: 11) }.max() ?? 0
        let slanted = widest > band - 4
        if slanted { frame.bottomAxis += widest * 0.6 }
        let y = LinearScale(domain: yAxis.domain, lowerPixel: frame.plotBottom, upperPixel: frame.plotTop)

        var out = ChartParts.open(id: id, title: title, frame: frame, x: nil, y: y)
        out += ChartParts.yAxis(yAxis, scale: y, frame: frame, title: yTitle)
        for (c, name) in categories.enumerated() {
            let cx = px(frame.plotLeft + band * (Double(c) + 0.5)), ty = px(frame.plotBottom + 16)
            let slant = slanted ? " transform=\"rotate(-35 \(cx) \(ty))\" text-anchor=\"end\"" : " text-anchor=\"middle\""
            out += "<text class=\"category\" x=\"\(cx)\" y=\"\(ty)\"\(slant)>\(escapeHTML(name))</text>\n"
        }
        out += ChartParts.xAxisLine(frame: frame, title: xTitle)
        // Bars share 80% of their group, but a lone group of a few runs should not become slabs.
        let barWidth = min(band * 0.8 / Double(max(shown.count, 1)), 56)
        let groupOffset = (band - barWidth * Double(shown.count)) / 2
        for (position, s) in shown.enumerated() {
            for (c, v) in s.values.enumerated() where c < categories.count && v.isFinite {
                let x = frame.plotLeft + band * Double(c) + groupOffset + barWidth * Double(position)
                let top = min(y(v), y(0)), height = abs(y(v) - y(0))
                out += "<rect class=\"bar\" data-series=\"\(escapeHTML(s.label))\" data-category=\"\(escapeHTML(categories[c]))\" "
                out += "data-value=\"\(exact(v))\" x=\"\(px(x))\" y=\"\(px(top))\" width=\"\(px(barWidth))\" height=\"\(px(height))\" "
                out += "fill=\"\(Palette.colour(s.style))\"><title>\(escapeHTML(s.label)), \(escapeHTML(categories[c])): \(fixed(v, 4))</title></rect>\n"
            }
        }
        out += "</g>\n" + ChartParts.placeLegend(legend.svg, frame: frame) + "</svg>"
        return out
    }
}
