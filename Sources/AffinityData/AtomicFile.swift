/// RecBole's atomic files (`.inter`, `.item`, `.user`, `.kg`, `.link`): tab-separated, UTF-8, with a
/// typed header `name:type` where type is `token`, `token_seq`, `float` or `float_seq`.
public enum AtomicFieldType: String, Sendable, Codable {
    case token, tokenSeq = "token_seq", float, floatSeq = "float_seq"
}

public struct AtomicField: Sendable, Equatable {
    public let name: String
    public let type: AtomicFieldType
}

/// Reads one atomic file row by row. Every row must have as many fields as the header, and every
/// `float` / `float_seq` field must parse (an empty `float` field is a missing value, NaN, as in RecBole).
public struct AtomicFileReader {
    public let path: String
    public let options: ReadOptions
    public private(set) var skipped = SkippedLines()

    public init(path: String, options: ReadOptions = ReadOptions()) {
        self.path = path
        self.options = options
    }

    /// Parses a header line into fields.
    public static func parseHeader(_ text: String, file: String) throws -> [AtomicField] {
        let parts = text.split(separator: "\t", omittingEmptySubsequences: false)
        var fields: [AtomicField] = []
        var seen = Set<String>()
        for part in parts {
            guard let colon = part.lastIndex(of: ":") else {
                throw DataError(file: file, line: 1, .invalidHeader("field '\(part)' has no ':type' suffix"))
            }
            let name = String(part[..<colon]), typeName = String(part[part.index(after: colon)...])
            guard !name.isEmpty else { throw DataError(file: file, line: 1, .invalidHeader("empty field name")) }
            guard let type = AtomicFieldType(rawValue: typeName) else {
                throw DataError(file: file, line: 1, .unknownHeaderType(field: name, type: typeName))
            }
            guard seen.insert(name).inserted else {
                throw DataError(file: file, line: 1, .invalidHeader("duplicate field '\(name)'"))
            }
            fields.append(AtomicField(name: name, type: type))
        }
        return fields
    }

    /// Reads the header, then calls `body(line, fieldRanges, lineNumber)` for each data row.
    /// Returns the header.
    @discardableResult
    public mutating func forEachRow(
        _ body: (UnsafeBufferPointer<UInt8>, [Range<Int>], Int) throws -> Void,
        onHeader: ([AtomicField]) throws -> Void = { _ in }
    ) throws -> [AtomicField] {
        var header: [AtomicField]? = nil
        var ranges: [Range<Int>] = []
        var subRanges: [Range<Int>] = []
        var skipped = SkippedLines()
        let path = self.path, skipBad = options.skipBadLines
        try LineReader(path: path).forEachLine { line, number in
            guard let fields = header else {
                let parsed = try Self.parseHeader(String(decoding: line, as: UTF8.self), file: path)
                header = parsed
                try onHeader(parsed)
                return
            }
            if line.isEmpty { return }  // blank lines carry no data (RecBole skips them too)
            do {
                Bytes.split(line, separator: UInt8(ascii: "\t"), into: &ranges)
                guard ranges.count == fields.count else {
                    throw DataError(file: path, line: number, .wrongFieldCount(expected: fields.count, found: ranges.count))
                }
                for (f, r) in zip(fields, ranges) {
                    switch f.type {
                    case .float where !r.isEmpty:
                        if Bytes.parseDouble(line, r) == nil {
                            throw DataError(file: path, line: number, .unparsableNumber(field: f.name, text: Bytes.string(line, r)))
                        }
                    case .floatSeq:
                        Bytes.splitWhitespace(UnsafeBufferPointer(rebasing: line[r]), into: &subRanges)
                        for s in subRanges {
                            let abs = (r.lowerBound + s.lowerBound)..<(r.lowerBound + s.upperBound)
                            if Bytes.parseDouble(line, abs) == nil {
                                throw DataError(file: path, line: number, .unparsableNumber(field: f.name, text: Bytes.string(line, abs)))
                            }
                        }
                    default: break
                    }
                }
                try body(line, ranges, number)
            } catch let error as DataError where skipBad && error.line != nil {
                skipped.record(error)
            }
        }
        self.skipped = skipped
        guard let header else { throw DataError(file: path, .emptyFile) }
        return header
    }

    /// Reads a whole (small) file into string columns, one array per header field.
    public mutating func readTable() throws -> AtomicTable {
        var columns: [[String]] = []
        var lines: [Int] = []
        let header = try forEachRow { line, ranges, number in
            if columns.isEmpty { columns = Array(repeating: [], count: ranges.count) }
            for (c, r) in ranges.enumerated() { columns[c].append(Bytes.string(line, r)) }
            lines.append(number)
        }
        if columns.isEmpty { columns = Array(repeating: [], count: header.count) }
        return AtomicTable(path: path, fields: header, columns: columns, lineNumbers: lines)
    }
}

/// A fully read atomic file: values kept as text, one column per header field.
public struct AtomicTable: Sendable {
    public let path: String
    public let fields: [AtomicField]
    public let columns: [[String]]
    /// The file line of each row, for error messages.
    public let lineNumbers: [Int]

    public var rowCount: Int { lineNumbers.count }

    /// The column named `name`, or a `missingColumn` error.
    public func column(_ name: String) throws -> [String] {
        guard let i = fields.firstIndex(where: { $0.name == name }) else {
            throw DataError(file: path, .missingColumn(name))
        }
        return columns[i]
    }

    public func hasColumn(_ name: String) -> Bool { fields.contains { $0.name == name } }
}
