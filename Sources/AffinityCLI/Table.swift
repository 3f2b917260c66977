/// Plain-text tables for the terminal.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        // Numbers right-aligned, text left-aligned; the first column is a label.
        let numeric = header.indices.map { i in i > 0 && !rows.isEmpty && rows.allSatisfy { i >= $0.count || Double($0[i]) != nil || $0[i] == "-" } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                numeric[i] ? String(repeating: " ", count: widths[i] - c.count) + c : c.padded(to: widths[i])
            }.joined(separator: "  ").trailingSpacesRemoved()
        }
        var out = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }
}

extension String {
    func trailingSpacesRemoved() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }

    func padded(to n: Int) -> String {
        count >= n ? self : self + String(repeating: " ", count: n - count)
    }
}
