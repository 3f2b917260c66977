import AffinityCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// On-disk layouts Affinity reads.
public enum DataFormat: String, Sendable, CaseIterable {
    /// A RecBole-style folder `PATH/NAME.inter` (+ optional `.item`, `.user`, `.kg`, `.link`), NAME = folder name.
    case atomic
    /// A LightGCN-style folder with `train.txt` and `test.txt` (`user item item …` per line): a fixed split.
    case lightgcn
    /// One delimited text file (CSV/TSV) with a column map.
    case csv
    /// MMRec's layout: a folder with `NAME.inter` (tab-separated, untyped header `userID itemID rating
    /// timestamp x_label`, x_label 0/1/2 = train/valid/test) beside `image_feat.npy` / `text_feat.npy`.
    case mmrec
}

/// Which columns of a delimited file hold what. Names refer to header fields; without a header, use
/// 0-based column numbers ("0", "1", …). A nil rating or timestamp means "find it if present".
public struct ColumnMap: Sendable {
    public var user: String?
    public var item: String?
    public var rating: String?
    public var timestamp: String?
    public var delimiter: UInt8
    public var hasHeader: Bool

    public init(user: String? = nil, item: String? = nil, rating: String? = nil, timestamp: String? = nil,
                delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true) {
        self.user = user; self.item = item; self.rating = rating; self.timestamp = timestamp
        self.delimiter = delimiter; self.hasHeader = hasHeader
    }

    static let userNames = ["user_id", "userId", "user", "uid", "userid"]
    static let itemNames = ["item_id", "itemId", "movieId", "item", "iid", "itemid"]
    static let ratingNames = ["rating", "ratings", "score", "value"]
    static let timeNames = ["timestamp", "time", "ts"]
}

public enum DatasetLoader {
    /// Loads a dataset from `path` in `format`.
    public static func load(path: String, format: DataFormat, columns: ColumnMap = ColumnMap(),
                            options: ReadOptions = ReadOptions()) throws -> Dataset {
        var dataset: Dataset
        switch format {
        case .atomic: dataset = try loadAtomic(folder: path, options: options)
        case .lightgcn: dataset = try loadLightGCN(folder: path, options: options)
        case .csv: dataset = try loadDelimited(file: path, columns: columns, options: options)
        case .mmrec: dataset = try loadMMRec(folder: path, options: options)
        }
        // A header without rows would otherwise train on nothing and print an empty table with exit 0.
        if dataset.interactions.count == 0 { throw DataError(file: interactionFile(path: path, format: format), .noDataRows) }
        if format != .csv { dataset.bundledModalities = bundledModalities(folder: path) }
        return dataset
    }

    /// The file that holds the interactions of `path` in `format` (what an error about them names).
    static func interactionFile(path: String, format: DataFormat) -> String {
        switch format {
        case .atomic, .mmrec:
            let whole = path + "/" + baseName(path) + ".inter"
            let train = path + "/" + baseName(path) + ".train.inter"
            return !fileExists(whole) && fileExists(train) ? train : whole
        case .lightgcn: return path + "/train.txt"
        case .csv: return path
        }
    }

    /// Feature files `NAME_feat.npy` in a data folder (MMRec's convention, also used by ../shared's ml-100k),
    /// by modality name: the modalities a folder brings with it.
    public static func bundledModalities(folder: String) -> [String: String] {
        guard isDirectory(folder), let dir = opendir(folder) else { return [:] }
        defer { closedir(dir) }
        var out: [String: String] = [:]
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name.hasSuffix("_feat.npy") && name.count > "_feat.npy".count {
                out[String(name.dropLast("_feat.npy".count))] = folder + "/" + name
            }
        }
        return out
    }

    /// The finite number in field `range` of `line`, or an error naming the field, file and line.
    static func finiteNumber(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, field: String, file: String, line number: Int) throws -> Double {
        guard let v = Bytes.parseDouble(line, range), v.isFinite else {
            throw DataError(file: file, line: number, .unparsableNumber(field: field, text: Bytes.string(line, range)))
        }
        return v
    }

    // MARK: MMRec

    public static func loadMMRec(folder: String, options: ReadOptions = ReadOptions()) throws -> Dataset {
        let path = folder + "/" + baseName(folder) + ".inter"
        guard fileExists(path) else { throw DataError(file: path, .fileNotFound) }
        var reader = DelimitedFileReader(path: path, delimiter: UInt8(ascii: "\t"), options: options)
        var users = IDMap(), items = IDMap()
        var inter = Interactions()
        var ratings: [Float] = [], times: [Double] = [], parts: [SplitPart] = []
        var ui = -1, ii = -1, ri = -1, ti = -1, xi = -1
        try reader.forEachRow { line, f, number in
            let u = Bytes.string(line, f[ui]), i = Bytes.string(line, f[ii])
            guard !u.isEmpty, !i.isEmpty else { throw DataError(file: path, line: number, .invalidValue("empty userID or itemID")) }
            let label = Bytes.string(line, f[xi])
            guard let x = UInt8(label), let part = SplitPart(rawValue: x) else {
                throw DataError(file: path, line: number, .invalidValue("x_label must be 0 (train), 1 (valid) or 2 (test), found '\(label)'"))
            }
            if ri >= 0 { ratings.append(Float(try finiteNumber(line, f[ri], field: "rating", file: path, line: number))) }
            if ti >= 0 { times.append(try finiteNumber(line, f[ti], field: "timestamp", file: path, line: number)) }
            inter.users.append(users.intern(u))
            inter.items.append(items.intern(i))
            parts.append(part)
        } onHeader: { header in
            func find(_ name: String) -> Int { header.firstIndex(of: name) ?? -1 }
            ui = find("userID"); ii = find("itemID"); ri = find("rating"); ti = find("timestamp"); xi = find("x_label")
            for (index, name) in [(ui, "userID"), (ii, "itemID"), (xi, "x_label")] where index < 0 {
                throw DataError(file: path, line: 1, .missingColumn(name))
            }
        }
        if ri >= 0 { inter.ratings = ratings }
        if ti >= 0 { inter.timestamps = times }
        var dataset = Dataset(name: baseName(folder), users: users, items: items, interactions: inter, predefinedSplit: parts)
        dataset.skipped = reader.skipped
        return dataset
    }

    /// Guesses the format of `path`: a folder with train.txt → lightgcn; a folder with NAME.inter → atomic;
    /// a file → csv.
    public static func detectFormat(path: String) -> DataFormat? {
        if isDirectory(path) {
            if fileExists(path + "/train.txt") { return .lightgcn }
            let inter = path + "/" + baseName(path) + ".inter"
            if fileExists(inter), let f = fopen(inter, "r") {
                defer { fclose(f) }
                var buffer = [CChar](repeating: 0, count: 4096)
                if fgets(&buffer, Int32(buffer.count), f) != nil {
                    let header = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if header.contains("x_label") && !header.contains(":") { return .mmrec }
                }
            }
            if fileExists(path + "/" + baseName(path) + ".inter") || fileExists(path + "/" + baseName(path) + ".train.inter") { return .atomic }
            return nil
        }
        return fileExists(path) ? .csv : nil
    }

    // MARK: RecBole atomic

    public static func loadAtomic(folder: String, options: ReadOptions = ReadOptions()) throws -> Dataset {
        let name = baseName(folder)
        guard isDirectory(folder) else { throw DataError(file: folder, .fileNotFound) }
        var users = IDMap(), items = IDMap()
        var inter = Interactions()
        var ratings: [Float]? = nil, times: [Double]? = nil
        var skipped = SkippedLines()
        var parts: [SplitPart]? = nil
        let whole = folder + "/" + name + ".inter"
        // RecBole benchmark files (NAME.train.inter, NAME.valid.inter, NAME.test.inter) give a fixed split.
        let prefix = folder + "/" + name + "."
        let benchmark: [(String, SplitPart)] = [(prefix + "train.inter", .train), (prefix + "valid.inter", .valid), (prefix + "test.inter", .test)]
        if !fileExists(whole) && fileExists(benchmark[0].0) {
            parts = []
            for (path, part) in benchmark where fileExists(path) || part != .valid {
                let before = inter.count
                try readAtomicInteractions(path, options, &users, &items, &inter, &ratings, &times, &skipped)
                parts! += [SplitPart](repeating: part, count: inter.count - before)
            }
        } else {
            try readAtomicInteractions(whole, options, &users, &items, &inter, &ratings, &times, &skipped)
        }
        inter.ratings = ratings
        inter.timestamps = times
        var dataset = Dataset(name: name, users: users, items: items, interactions: inter, predefinedSplit: parts)
        dataset.skipped = skipped

        // Titles from NAME.item when present: the first field whose name contains "title".
        let itemPath = folder + "/" + name + ".item"
        if fileExists(itemPath) {
            var itemReader = AtomicFileReader(path: itemPath, options: options)
            let table = try itemReader.readTable()
            dataset.skipped.merge(itemReader.skipped)
            let ids = try table.column("item_id")
            // Every other token field becomes an item attribute (genres, title, year …), by field name.
            for field in table.fields where field.name != "item_id" && (field.type == .token || field.type == .tokenSeq) {
                let values = try table.column(field.name)
                var byItem = [String](repeating: "", count: items.count)
                for (id, value) in zip(ids, values) { if let d = items.dense(id) { byItem[Int(d)] = value } }
                dataset.itemAttributes[field.name] = byItem
            }
            if let titleField = table.fields.first(where: { $0.name.contains("title") }) {
                dataset.itemTitles = dataset.itemAttributes[titleField.name]
            }
            dataset.itemFields = try fieldColumns(table, idField: "item_id", ids: ids, map: items)
        }
        let userPath = folder + "/" + name + ".user"
        if fileExists(userPath) {
            var userReader = AtomicFileReader(path: userPath, options: options)
            let table = try userReader.readTable()
            dataset.skipped.merge(userReader.skipped)
            dataset.userFields = try fieldColumns(table, idField: "user_id", ids: try table.column("user_id"), map: users)
        }
        // A knowledge graph when NAME.kg is present (with NAME.link's item ↔ entity map when that is too).
        let kgPath = folder + "/" + name + ".kg", linkPath = folder + "/" + name + ".link"
        if fileExists(kgPath) {
            let (graph, kgSkipped) = try KnowledgeGraph.loadAtomic(kg: kgPath, link: fileExists(linkPath) ? linkPath : nil, options: options)
            dataset.knowledgeGraph = graph
            dataset.skipped.merge(kgSkipped)
        }
        // A NAME.link without a NAME.kg is unused, but still validated, so a broken file is reported at load time.
        if fileExists(linkPath) && !fileExists(kgPath) {
            var r = AtomicFileReader(path: linkPath, options: options)
            try r.forEachRow { _, _, _ in }
            dataset.skipped.merge(r.skipped)
        }
        return dataset
    }

    /// Every field of a side table but its id, as typed columns by dense index; rows of ids the interactions
    /// never mention are dropped.
    static func fieldColumns(_ table: AtomicTable, idField: String, ids: [String], map: IDMap) throws -> [FieldColumn] {
        try table.fields.filter { $0.name != idField }.map { field in
            let values = try table.column(field.name)
            var byIndex = [String](repeating: "", count: map.count)
            for (id, value) in zip(ids, values) { if let d = map.dense(id) { byIndex[Int(d)] = value } }
            return FieldColumn(name: field.name, type: field.type, values: byIndex)
        }
    }

    /// Appends the interactions of one `.inter` file (RecBole's field names user_id, item_id, and optional
    /// rating and timestamp floats) to shared id maps and columns.
    static func readAtomicInteractions(_ interPath: String, _ options: ReadOptions, _ users: inout IDMap, _ items: inout IDMap,
                                       _ inter: inout Interactions, _ ratings: inout [Float]?, _ times: inout [Double]?,
                                       _ skipped: inout SkippedLines) throws {
        var reader = AtomicFileReader(path: interPath, options: options)
        var ui = -1, ii = -1, ri = -1, ti = -1
        var fileRatings: [Float] = [], fileTimes: [Double] = []
        let first = inter.count == 0
        try reader.forEachRow { line, f, number in
            let u = Bytes.string(line, f[ui]), i = Bytes.string(line, f[ii])
            guard !u.isEmpty, !i.isEmpty else {
                throw DataError(file: interPath, line: number, .invalidValue("empty user or item id"))
            }
            if ri >= 0 { fileRatings.append(Float(try finiteNumber(line, f[ri], field: "rating", file: interPath, line: number))) }
            if ti >= 0 { fileTimes.append(try finiteNumber(line, f[ti], field: "timestamp", file: interPath, line: number)) }
            inter.users.append(users.intern(u))
            inter.items.append(items.intern(i))
        } onHeader: { header in
            ui = header.firstIndex { $0.name == "user_id" } ?? -1
            ii = header.firstIndex { $0.name == "item_id" } ?? -1
            ri = header.firstIndex { $0.name == "rating" && $0.type == .float } ?? -1
            ti = header.firstIndex { $0.name == "timestamp" && $0.type == .float } ?? -1
            guard ui >= 0 else { throw DataError(file: interPath, line: 1, .missingColumn("user_id")) }
            guard ii >= 0 else { throw DataError(file: interPath, line: 1, .missingColumn("item_id")) }
        }
        skipped.merge(reader.skipped)
        // A column kept only if every file has it.
        if ri >= 0, first || ratings != nil { ratings = (ratings ?? []) + fileRatings } else { ratings = nil }
        if ti >= 0, first || times != nil { times = (times ?? []) + fileTimes } else { times = nil }
    }

    // MARK: LightGCN train.txt / test.txt

    public static func loadLightGCN(folder: String, options: ReadOptions = ReadOptions()) throws -> Dataset {
        guard isDirectory(folder) else { throw DataError(file: folder, .fileNotFound) }
        var userIndex: [Int: Int32] = [:], itemIndex: [Int: Int32] = [:]
        var userRaw: [Int] = [], itemRaw: [Int] = []
        var inter = Interactions()
        var parts: [SplitPart] = []
        var skipped = SkippedLines()
        var ranges: [Range<Int>] = []
        var lineItems: [Int32] = []
        let files: [(String, SplitPart, Bool)] = [("train.txt", .train, true), ("valid.txt", .valid, false), ("test.txt", .test, true)]
        for (file, part, required) in files {
            let path = folder + "/" + file
            if !required && !fileExists(path) { continue }
            try LineReader(path: path).forEachLine { line, number in
                Bytes.splitWhitespace(line, into: &ranges)
                if ranges.isEmpty { return }
                do {
                    guard let u = Bytes.parseInt(line, ranges[0]), u >= 0 else {
                        throw DataError(file: path, line: number, .unparsableNumber(field: "user", text: Bytes.string(line, ranges[0])))
                    }
                    lineItems.removeAll(keepingCapacity: true)
                    for r in ranges.dropFirst() {
                        guard let i = Bytes.parseInt(line, r), i >= 0 else {
                            throw DataError(file: path, line: number, .unparsableNumber(field: "item", text: Bytes.string(line, r)))
                        }
                        if let d = itemIndex[i] { lineItems.append(d) } else {
                            let d = Int32(itemRaw.count); itemIndex[i] = d; itemRaw.append(i); lineItems.append(d)
                        }
                    }
                    let du: Int32
                    if let d = userIndex[u] { du = d } else { du = Int32(userRaw.count); userIndex[u] = du; userRaw.append(u) }
                    for d in lineItems {
                        inter.users.append(du); inter.items.append(d); parts.append(part)
                    }
                } catch let error as DataError where options.skipBadLines {
                    skipped.record(error)
                }
            }
        }
        var dataset = Dataset(name: baseName(folder), users: IDMap(rawIDs: userRaw.map(String.init)),
                              items: IDMap(rawIDs: itemRaw.map(String.init)), interactions: inter, predefinedSplit: parts)
        dataset.skipped = skipped
        // KGAT's repository layout adds kg_final.txt, whose entity i is item i.
        let kgPath = folder + "/kg_final.txt"
        if fileExists(kgPath) {
            let (graph, kgSkipped) = try KnowledgeGraph.loadKGAT(kgPath, itemIDs: dataset.items.rawIDs, options: options)
            dataset.knowledgeGraph = graph
            dataset.skipped.merge(kgSkipped)
        }
        return dataset
    }

    // MARK: Delimited text

    public static func loadDelimited(file: String, columns: ColumnMap, options: ReadOptions = ReadOptions()) throws -> Dataset {
        var reader = DelimitedFileReader(path: file, delimiter: columns.delimiter, hasHeader: columns.hasHeader, options: options)
        var users = IDMap(), items = IDMap()
        var inter = Interactions()
        var ratings: [Float] = [], times: [Double] = []
        var indices: (u: Int, i: Int, r: Int, t: Int)? = nil
        var header: [String]? = nil
        func resolve(_ header: [String]?, fieldCount: Int) throws -> (Int, Int, Int, Int) {
            func find(_ explicit: String?, _ candidates: [String], required: Bool, role: String) throws -> Int {
                if let explicit {
                    if let h = header, let i = h.firstIndex(of: explicit) { return i }
                    if let i = Int(explicit), i >= 0, i < fieldCount { return i }
                    throw DataError(file: file, line: 1, .missingColumn(explicit))
                }
                if let h = header, let i = h.firstIndex(where: { name in candidates.contains { $0.lowercased() == name.lowercased() } }) {
                    return i
                }
                if header == nil {
                    // Headerless default: user, item, rating, timestamp in that order.
                    let pos = ["user": 0, "item": 1, "rating": 2, "timestamp": 3][role]!
                    if pos < fieldCount { return pos }
                }
                if required { throw DataError(file: file, line: 1, .missingColumn(role)) }
                return -1
            }
            return (try find(columns.user, ColumnMap.userNames, required: true, role: "user"),
                    try find(columns.item, ColumnMap.itemNames, required: true, role: "item"),
                    try find(columns.rating, ColumnMap.ratingNames, required: false, role: "rating"),
                    try find(columns.timestamp, ColumnMap.timeNames, required: false, role: "timestamp"))
        }
        try reader.forEachRow { line, f, number in
            if indices == nil {
                let r = try resolve(header, fieldCount: f.count)
                indices = (r.0, r.1, r.2, r.3)
            }
            let c = indices!
            let u = Bytes.string(line, f[c.u]), i = Bytes.string(line, f[c.i])
            guard !u.isEmpty, !i.isEmpty else {
                throw DataError(file: file, line: number, .invalidValue("empty user or item id"))
            }
            if c.r >= 0 {
                guard let v = Bytes.parseDouble(line, f[c.r]), v.isFinite else {
                    throw DataError(file: file, line: number, .unparsableNumber(field: header?[c.r] ?? "rating", text: Bytes.string(line, f[c.r])))
                }
                ratings.append(Float(v))
            }
            if c.t >= 0 {
                guard let v = Bytes.parseDouble(line, f[c.t]), v.isFinite else {
                    throw DataError(file: file, line: number, .unparsableNumber(field: header?[c.t] ?? "timestamp", text: Bytes.string(line, f[c.t])))
                }
                times.append(v)
            }
            inter.users.append(users.intern(u))
            inter.items.append(items.intern(i))
        } onHeader: { header = $0 }
        if columns.hasHeader, indices == nil, let h = header {
            // Header only: still check the column map so a wrong name is reported.
            _ = try resolve(h, fieldCount: h.count)
        }
        if let c = indices {
            if c.r >= 0 { inter.ratings = ratings }
            if c.t >= 0 { inter.timestamps = times }
        }
        var dataset = Dataset(name: baseName(file), users: users, items: items, interactions: inter)
        dataset.skipped = reader.skipped
        return dataset
    }

    // MARK: Item titles from a side CSV (MovieLens movies.csv)

    /// Reads a side CSV keyed by item id (`movies.csv`, `tags.csv` …) and attaches each named column as an
    /// item attribute; several rows for one item (tags) are joined with `separator`.
    public static func attachAttributes(to dataset: inout Dataset, csv path: String, idColumn: String, columns: [String],
                                        separator: String = "|") throws {
        var reader = DelimitedFileReader(path: path)
        var values = [[String]](repeating: [String](repeating: "", count: dataset.itemCount), count: columns.count)
        var idIndex = -1, indices: [Int] = []
        try reader.forEachRow { line, f, _ in
            guard let d = dataset.items.dense(Bytes.string(line, f[idIndex])) else { return }
            for (k, c) in indices.enumerated() {
                let v = Bytes.string(line, f[c])
                values[k][Int(d)] = values[k][Int(d)].isEmpty ? v : values[k][Int(d)] + separator + v
            }
        } onHeader: { header in
            guard let i = header.firstIndex(of: idColumn) else { throw DataError(file: path, line: 1, .missingColumn(idColumn)) }
            idIndex = i
            indices = try columns.map { name in
                guard let c = header.firstIndex(of: name) else { throw DataError(file: path, line: 1, .missingColumn(name)) }
                return c
            }
        }
        for (k, name) in columns.enumerated() { dataset.itemAttributes[name] = values[k] }
    }

    /// Reads `id,title,…` rows and attaches titles to the dataset's items.
    public static func attachTitles(to dataset: inout Dataset, csv path: String, idColumn: String, titleColumn: String) throws {
        var reader = DelimitedFileReader(path: path)
        var titles = [String](repeating: "", count: dataset.itemCount)
        var idIndex = -1, titleIndex = -1
        try reader.forEachRow { line, f, _ in
            if let d = dataset.items.dense(Bytes.string(line, f[idIndex])) { titles[Int(d)] = Bytes.string(line, f[titleIndex]) }
        } onHeader: { header in
            guard let i = header.firstIndex(of: idColumn) else { throw DataError(file: path, line: 1, .missingColumn(idColumn)) }
            guard let t = header.firstIndex(of: titleColumn) else { throw DataError(file: path, line: 1, .missingColumn(titleColumn)) }
            idIndex = i; titleIndex = t
        }
        dataset.itemTitles = titles
    }

    // MARK: File helpers

    public static func fileExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The last path component without a trailing slash or a file extension.
    public static func baseName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        let last = p.split(separator: "/").last.map(String.init) ?? String(p)
        if !isDirectory(path), let dot = last.lastIndex(of: "."), dot != last.startIndex {
            return String(last[..<dot])
        }
        return last
    }
}
