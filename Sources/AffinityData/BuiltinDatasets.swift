#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Datasets that ship with Affinity (under `data/` in the repository) and load by name.
public struct BuiltinDataset: Sendable {
    public let name: String
    public let summary: String
    /// Path below the data folder.
    let relativePath: String
    let format: DataFormat
    let columns: ColumnMap
    /// Optional side file with item titles: (path below the data folder, id column, title column).
    let titles: (String, String, String)?
    /// Side files of item attributes: (path below the data folder, id column, columns to attach).
    let attributes: [(String, String, [String])]

    public static let all: [BuiltinDataset] = [
        BuiltinDataset(
            name: "ml-latest-small",
            summary: "MovieLens latest-small (GroupLens, 2018): 100,836 ratings by 610 users on 9,724 movies",
            relativePath: "ml-latest-small/ratings.csv", format: .csv,
            columns: ColumnMap(user: "userId", item: "movieId", rating: "rating", timestamp: "timestamp"),
            titles: ("ml-latest-small/movies.csv", "movieId", "title"),
            attributes: [("ml-latest-small/movies.csv", "movieId", ["title", "genres"]),
                         ("ml-latest-small/tags.csv", "movieId", ["tag"])]),
    ]

    public static func named(_ name: String) -> BuiltinDataset? { all.first { $0.name == name } }

    /// Loads the dataset from the first data folder that holds it.
    public func load(options: ReadOptions = ReadOptions()) throws -> Dataset {
        guard let root = Self.dataRoot(containing: relativePath) else {
            throw DataError(file: "data/" + relativePath, .invalidFormat(
                "built-in dataset '\(name)' not found; run from the repository folder or set AFFINITY_DATA_DIR to its data/ folder"))
        }
        var dataset = try DatasetLoader.load(path: root + "/" + relativePath, format: format, columns: columns, options: options)
        dataset.name = name
        if let (file, id, title) = titles {
            try DatasetLoader.attachTitles(to: &dataset, csv: root + "/" + file, idColumn: id, titleColumn: title)
        }
        for (file, id, columns) in attributes {
            try DatasetLoader.attachAttributes(to: &dataset, csv: root + "/" + file, idColumn: id, columns: columns)
        }
        return dataset
    }

    /// Candidate data folders: `$AFFINITY_DATA_DIR`, `./data`, then `data/` beside the executable and
    /// up to four folders above it (so `.build/release/affinity` finds the repository's data).
    static func dataRoot(containing relative: String) -> String? {
        var candidates: [String] = []
        if let env = getenv("AFFINITY_DATA_DIR") { candidates.append(String(cString: env)) }
        candidates.append("data")
        if var dir = executableDirectory() {
            for _ in 0..<5 {
                candidates.append(dir + "/data")
                guard let slash = dir.lastIndex(of: "/"), slash != dir.startIndex else { break }
                dir = String(dir[..<slash])
            }
        }
        return candidates.first { DatasetLoader.fileExists($0 + "/" + relative) }
    }

    static func executableDirectory() -> String? {
        #if os(Linux)
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        guard n > 0 else { return nil }
        let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
        let path = CommandLine.arguments.first ?? ""
        #endif
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}
