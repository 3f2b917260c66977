import AffinityCore
import Foundation

/// One item modality (image, text, genres …): a feature row per dense item index of a dataset.
public struct Modality: Sendable {
    public var name: String
    /// `[items, dimensions]`, row `i` for dense item `i` (zero rows for items the source does not cover
    /// are not allowed: loading fails instead).
    public var features: Matrix
    /// Where the rows came from (a path or `builtin:…`), for run records.
    public var source: String

    public init(name: String, features: Matrix, source: String) {
        self.name = name
        self.features = features
        self.source = source
    }
}

/// Loads modalities from `NAME=SOURCE` specifications:
/// - `NAME=PATH.npy`: a float32/float64 `[rows, d]` array. Rows follow the raw item ids listed one per
///   line in a sibling `PATH.items.txt` when it exists (extra rows are ignored, a missing item is an
///   error); otherwise row `r` belongs to the item whose raw id is `r` when every raw id is an integer
///   below the row count (MMRec's layout, ids 0…n−1), else rows must match the dataset's item order.
/// - `NAME=builtin:genres`: multi-hot over the dataset's genre attribute (`genres`, `genre`, `class`,
///   `categories` or `category`; `|`-separated when any value holds a `|`, else space-separated).
/// - `NAME=builtin:text` or `builtin:text:D`: TF-IDF over the words of every item attribute (titles,
///   genres, tags …), reduced to D dimensions (default 64) by truncated randomized SVD (LSA).
public enum ModalityLoader {
    public static let genreFields = ["genres", "genre", "class", "categories", "category"]

    /// Splits `NAME=SOURCE`.
    public static func parse(_ spec: String) throws -> (name: String, source: String) {
        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
            throw DataError(file: spec, .invalidValue("a modality is given as NAME=PATH.npy or NAME=builtin:genres|builtin:text[:D]"))
        }
        return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
    }

    public static func load(_ spec: String, for dataset: Dataset) throws -> Modality {
        let (name, source) = try parse(spec)
        return try load(name: name, source: source, for: dataset)
    }

    public static func load(name: String, source: String, for dataset: Dataset) throws -> Modality {
        if source.hasPrefix("builtin:") {
            let parts = source.dropFirst("builtin:".count).split(separator: ":").map(String.init)
            switch parts.first {
            case "genres":
                guard parts.count == 1 else { throw DataError(file: source, .invalidValue("builtin:genres takes no argument")) }
                return Modality(name: name, features: try genres(dataset), source: source)
            case "text":
                var dimension = 64
                if parts.count == 2 {
                    guard let d = Int(parts[1]), d > 0 else { throw DataError(file: source, .invalidValue("builtin:text:D needs a positive integer D")) }
                    dimension = d
                } else if parts.count > 2 { throw DataError(file: source, .invalidValue("use builtin:text or builtin:text:D")) }
                return Modality(name: name, features: try text(dataset, dimension: dimension), source: source)
            default:
                throw DataError(file: source, .invalidValue("unknown built-in featuriser '\(source)' (use builtin:genres or builtin:text[:D])"))
            }
        }
        return Modality(name: name, features: try npy(path: source, dataset: dataset), source: source)
    }

    /// Feature rows of a `.npy` file aligned to the dataset's items (see the type's rules).
    public static func npy(path: String, dataset: Dataset) throws -> Matrix {
        let raw = try NPYFile.read(path: path)
        let d = raw.cols
        var rowOfItem = [Int](repeating: -1, count: dataset.itemCount)
        let idsPath = (path.hasSuffix(".npy") ? String(path.dropLast(4)) : path) + ".items.txt"
        if DatasetLoader.fileExists(idsPath) {
            var ids: [String] = []
            try LineReader(path: idsPath).forEachLine { line, _ in
                let id = String(decoding: UnsafeRawBufferPointer(line), as: UTF8.self).trimmingSpaces()
                if !id.isEmpty { ids.append(id) }
            }
            guard ids.count == raw.rows else {
                throw DataError(file: idsPath, .invalidValue("lists \(ids.count) item ids for the \(raw.rows) rows of \(path)"))
            }
            for (r, id) in ids.enumerated() { if let i = dataset.items.dense(id) { rowOfItem[Int(i)] = r } }
            let missing = (0..<dataset.itemCount).filter { rowOfItem[$0] < 0 }
            if let first = missing.first {
                throw DataError(file: idsPath, .invalidValue("\(missing.count) item(s) of the dataset have no row, e.g. item '\(dataset.items.raw(Int32(first)))'"))
            }
        } else {
            let numeric = dataset.items.rawIDs.map { Int($0) }
            if numeric.allSatisfy({ $0 != nil && $0! >= 0 && $0! < raw.rows }) {
                for (i, id) in numeric.enumerated() { rowOfItem[i] = id! }
            } else {
                guard raw.rows == dataset.itemCount else {
                    throw DataError(file: path, .invalidValue("has \(raw.rows) rows for \(dataset.itemCount) items and no \(idsPath) to say which row is which item"))
                }
                for i in 0..<rowOfItem.count { rowOfItem[i] = i }
            }
        }
        var out = Matrix(rows: dataset.itemCount, cols: d)
        for (i, r) in rowOfItem.enumerated() {
            for c in 0..<d { out.storage[i * d + c] = raw.storage[r * d + c] }
        }
        if let bad = out.storage.firstIndex(where: { !$0.isFinite }) {
            throw DataError(file: path, .invalidValue("feature of item '\(dataset.items.raw(Int32(bad / max(d, 1))))' is not finite"))
        }
        return out
    }

    /// Multi-hot genres, columns in sorted genre order.
    public static func genres(_ dataset: Dataset) throws -> Matrix {
        guard let field = genreFields.first(where: { dataset.itemAttributes[$0] != nil }), let values = dataset.itemAttributes[field] else {
            throw DataError(file: dataset.name, .invalidValue("builtin:genres needs a genre attribute (\(genreFields.joined(separator: ", "))); the dataset has: \(dataset.itemAttributes.keys.sorted().joined(separator: ", "))"))
        }
        let pipe = values.contains { $0.contains("|") }
        let tokens: [[String]] = values.map { v in v.split(separator: pipe ? "|" : " ").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty } }
        let vocabulary = Array(Set(tokens.joined())).sorted()
        let column = [String: Int](uniqueKeysWithValues: vocabulary.enumerated().map { ($1, $0) })
        var out = Matrix(rows: values.count, cols: max(vocabulary.count, 1))
        for (i, ts) in tokens.enumerated() { for t in ts { out[i, column[t]!] = 1 } }
        return out
    }

    /// LSA text features: sublinear TF × smoothed IDF over words (lower-cased letters and digits, at least
    /// two characters, in at least two items), rows L2-normalised, then `U·diag(S)` of a rank-D randomized SVD.
    public static func text(_ dataset: Dataset, dimension: Int, seed: UInt64 = 0) throws -> Matrix {
        guard !dataset.itemAttributes.isEmpty else {
            throw DataError(file: dataset.name, .invalidValue("builtin:text needs item attributes (titles, genres, tags …), and the dataset has none"))
        }
        let n = dataset.itemCount
        let fields = dataset.itemAttributes.keys.sorted()
        var documents = [[String: Int]](repeating: [:], count: n)
        for f in fields {
            for (i, value) in dataset.itemAttributes[f]!.enumerated() {
                var word: [Character] = []
                func flush() {
                    if word.count >= 2 { documents[i][String(word), default: 0] += 1 }
                    word.removeAll(keepingCapacity: true)
                }
                for ch in value.lowercased() {
                    if ch.isLetter || ch.isNumber { word.append(ch) } else { flush() }
                }
                flush()
            }
        }
        var documentFrequency: [String: Int] = [:]
        for doc in documents { for w in doc.keys { documentFrequency[w, default: 0] += 1 } }
        let vocabulary = documentFrequency.filter { $0.value >= 2 }.keys.sorted()
        guard vocabulary.count >= 2 else {
            throw DataError(file: dataset.name, .invalidValue("builtin:text found fewer than two words shared by two items"))
        }
        let column = Dictionary(uniqueKeysWithValues: vocabulary.enumerated().map { ($1, Int32($0)) })
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        for (i, doc) in documents.enumerated() {
            var entries: [(Int32, Float)] = []
            for (w, count) in doc {
                guard let c = column[w] else { continue }
                let idf = log(Double(1 + n) / Double(1 + documentFrequency[w]!)) + 1
                entries.append((c, Float((1 + log(Double(count))) * idf)))
            }
            let norm = entries.reduce(Float(0)) { $0 + $1.1 * $1.1 }.squareRoot()
            for (c, v) in entries { rows.append(Int32(i)); cols.append(c); values.append(v / max(norm, 1e-12)) }
        }
        let tfidf = SparseMatrix(rows: n, cols: vocabulary.count, rowIndices: rows, colIndices: cols, values: values)
        let rank = min(dimension, n - 1, vocabulary.count - 1)
        let (u, s, _) = try Decompositions.randomizedSVD(SparseOperator(tfidf), rank: rank, seed: seed)
        var out = u
        for r in 0..<n { for c in 0..<rank { out.storage[r * rank + c] *= s[c] } }
        return out
    }
}

