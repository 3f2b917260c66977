/// A problem with input data, located by file and (where it applies) 1-based line number.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Reason: Equatable, Sendable {
        case fileNotFound
        case unreadable(String)
        case unwritable(String)
        case emptyFile
        /// The file has a header (or only blank/skipped lines) but no interaction rows.
        case noDataRows
        case wrongFieldCount(expected: Int, found: Int)
        case unparsableNumber(field: String, text: String)
        case unknownHeaderType(field: String, type: String)
        case invalidHeader(String)
        case invalidUTF8
        case missingColumn(String)
        case unterminatedQuote
        case invalidValue(String)
        case invalidFormat(String)
    }

    public let file: String
    public let line: Int?
    public let reason: Reason

    public init(file: String, line: Int? = nil, _ reason: Reason) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return "\(place): \(reasonText)"
    }

    public var reasonText: String {
        switch reason {
        case .fileNotFound: return "file not found"
        case .unreadable(let why): return "cannot read file (\(why))"
        case .unwritable(let why): return "cannot write file (\(why))"
        case .emptyFile: return "file is empty"
        case .noDataRows: return "no data rows (the file has no interactions)"
        case .wrongFieldCount(let expected, let found): return "expected \(expected) fields, found \(found)"
        case .unparsableNumber(let field, let text): return "field '\(field)': cannot parse '\(text)' as a number"
        case .unknownHeaderType(let field, let type):
            return "header field '\(field)' has unknown type '\(type)' (expected token, token_seq, float or float_seq)"
        case .invalidHeader(let why): return "invalid header: \(why)"
        case .invalidUTF8: return "invalid UTF-8"
        case .missingColumn(let name): return "missing column '\(name)'"
        case .unterminatedQuote: return "unterminated quoted field"
        case .invalidValue(let why): return why
        case .invalidFormat(let why): return why
        }
    }
}

/// Options shared by the readers.
public struct ReadOptions: Sendable {
    /// Skip malformed lines instead of failing; the reader reports how many it skipped.
    public var skipBadLines: Bool
    public init(skipBadLines: Bool = false) { self.skipBadLines = skipBadLines }
}

/// What a reader skipped under `skipBadLines`: the count and the first few errors, for the report.
public struct SkippedLines: Sendable, Equatable {
    public private(set) var count = 0
    public private(set) var examples: [DataError] = []
    public init() {}
    mutating func record(_ error: DataError) {
        count += 1
        if examples.count < 3 { examples.append(error) }
    }
    public mutating func merge(_ other: SkippedLines) {
        count += other.count
        examples.append(contentsOf: other.examples.prefix(max(0, 3 - examples.count)))
    }
}
