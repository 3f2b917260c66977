/// Delimited text (CSV, TSV…) with optional header and RFC 4180 quoting (`"a, b"`, `""` for a quote).
/// A quoted field must close on the same line: multi-line fields are reported as `unterminatedQuote`.
public struct DelimitedFileReader {
    public let path: String
    public let delimiter: UInt8
    public let hasHeader: Bool
    public let options: ReadOptions
    public private(set) var skipped = SkippedLines()

    public init(path: String, delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true,
                options: ReadOptions = ReadOptions()) {
        self.path = path
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.options = options
    }

    /// Calls `body(bytes, fieldRanges, lineNumber)` for each data row; returns the header names
    /// (or nil without a header). Quoted fields are handed over unquoted.
    @discardableResult
    public mutating func forEachRow(
        _ body: (UnsafeBufferPointer<UInt8>, [Range<Int>], Int) throws -> Void,
        onHeader: ([String]) throws -> Void = { _ in }
    ) throws -> [String]? {
        var header: [String]? = nil
        var needHeader = hasHeader
        var ranges: [Range<Int>] = []
        var scratch: [UInt8] = []
        var skipped = SkippedLines()
        let path = self.path, delimiter = self.delimiter, skipBad = options.skipBadLines
        var expected: Int? = nil
        try LineReader(path: path).forEachLine { line, number in
            if line.isEmpty { return }
            do {
                let quoted = line.contains(UInt8(ascii: "\""))
                if quoted {
                    try Self.splitQuoted(line, delimiter: delimiter, scratch: &scratch, ranges: &ranges, file: path, line: number)
                } else {
                    Bytes.split(line, separator: delimiter, into: &ranges)
                }
                if needHeader {
                    needHeader = false
                    let names: [String] = quoted
                        ? scratch.withUnsafeBufferPointer { s in ranges.map { Bytes.string(s, $0) } }
                        : ranges.map { Bytes.string(line, $0) }
                    let trimmed = names.map { $0.trimmingSpaces() }
                    header = trimmed
                    expected = ranges.count
                    try onHeader(trimmed)
                    return
                }
                if let expected, ranges.count != expected {
                    throw DataError(file: path, line: number, .wrongFieldCount(expected: expected, found: ranges.count))
                }
                if expected == nil { expected = ranges.count }
                if quoted {
                    try scratch.withUnsafeBufferPointer { try body($0, ranges, number) }
                } else {
                    try body(line, ranges, number)
                }
            } catch let error as DataError where skipBad && error.line != nil {
                skipped.record(error)
            }
        }
        self.skipped = skipped
        if hasHeader && header == nil { throw DataError(file: path, .emptyFile) }
        return header
    }

    /// Splits a line containing quotes, writing unescaped field bytes to `scratch`.
    static func splitQuoted(_ line: UnsafeBufferPointer<UInt8>, delimiter: UInt8, scratch: inout [UInt8],
                            ranges: inout [Range<Int>], file: String, line number: Int) throws {
        scratch.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
        let quote = UInt8(ascii: "\"")
        var i = 0
        let n = line.count
        while true {
            let start = scratch.count
            if i < n && line[i] == quote {
                i += 1
                var closed = false
                while i < n {
                    if line[i] == quote {
                        if i + 1 < n && line[i + 1] == quote { scratch.append(quote); i += 2; continue }
                        closed = true; i += 1; break
                    }
                    scratch.append(line[i]); i += 1
                }
                if !closed { throw DataError(file: file, line: number, .unterminatedQuote) }
                // Anything between the closing quote and the delimiter is kept verbatim (lenient, like Python's csv).
                while i < n && line[i] != delimiter { scratch.append(line[i]); i += 1 }
            } else {
                while i < n && line[i] != delimiter { scratch.append(line[i]); i += 1 }
            }
            ranges.append(start..<scratch.count)
            if i >= n { break }
            i += 1  // the delimiter
            if i == n { ranges.append(scratch.count..<scratch.count); break }
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\u{FEFF}" { s.removeFirst() }
        while let l = s.last, l == " " { s.removeLast() }
        return String(s)
    }
}
