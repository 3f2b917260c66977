import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityTestSupport

@Suite struct ModalityTests {
    func dataset(items: [String]) -> Dataset {
        var inter = Interactions()
        for (k, _) in items.enumerated() { inter.users.append(Int32(k % 2)); inter.items.append(Int32(k)) }
        return Dataset(name: "d", users: IDMap(rawIDs: ["a", "b"]), items: IDMap(rawIDs: items), interactions: inter)
    }

    @Test func npyRowsFollowTheirItemIDsFile() throws {
        let dir = Fixtures.temporaryFolder()
        try NPYFile.write(Matrix(rows: 4, cols: 2, values: [1, 1, 2, 2, 3, 3, 4, 4]), path: dir + "/f.npy")
        Fixtures.file("f.items.txt", "x\nz\ny\nextra\n", in: dir)
        let m = try ModalityLoader.load("text=\(dir)/f.npy", for: dataset(items: ["y", "x", "z"]))
        #expect(m.name == "text" && m.features.storage == [3, 3, 1, 1, 2, 2])
        // An item without a row is an error naming it.
        #expect(throws: DataError.self) { _ = try ModalityLoader.load("t=\(dir)/f.npy", for: dataset(items: ["y", "w"])) }
    }

    @Test func npyWithoutIDsUsesNumericIDsOrItemOrder() throws {
        let dir = Fixtures.temporaryFolder()
        try NPYFile.write(Matrix(rows: 3, cols: 1, values: [10, 11, 12]), path: dir + "/image_feat.npy")
        // MMRec: raw ids are row numbers.
        #expect(try ModalityLoader.npy(path: dir + "/image_feat.npy", dataset: dataset(items: ["2", "0", "1"])).storage == [12, 10, 11])
        // Otherwise rows must match the item order and count.
        #expect(try ModalityLoader.npy(path: dir + "/image_feat.npy", dataset: dataset(items: ["p", "q", "r"])).storage == [10, 11, 12])
        #expect(throws: DataError.self) { _ = try ModalityLoader.npy(path: dir + "/image_feat.npy", dataset: dataset(items: ["p", "q"])) }
    }

    @Test func badSpecificationsAreReported() {
        let d = dataset(items: ["a"])
        for spec in ["noequals", "=x.npy", "t=", "t=builtin:audio", "t=builtin:text:0", "t=/nonexistent/f.npy", "g=builtin:genres"] {
            #expect(throws: DataError.self, "\(spec)") { _ = try ModalityLoader.load(spec, for: d) }
        }
    }

    @Test func builtinGenresAndText() throws {
        var d = dataset(items: ["1", "2", "3", "4"])
        d.itemAttributes = ["genres": ["Comedy|Drama", "Drama", "Horror|Comedy", "(no genres listed)"],
                            "title": ["Funny sad story", "Sad story", "Funny scary story", "Scary night"]]
        let g = try ModalityLoader.genres(d)
        // Columns in sorted order: (no genres listed), Comedy, Drama, Horror.
        #expect(g.cols == 4 && g.storage == [0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0])
        let t = try ModalityLoader.text(d, dimension: 2)
        #expect(t.rows == 4 && t.cols == 2 && t.storage.allSatisfy(\.isFinite))
        // Items 1 and 2 share more words than items 1 and 4.
        func cos(_ a: Int, _ b: Int) -> Float {
            let x = t.row(a), y = t.row(b)
            let dot = zip(x, y).map(*).reduce(0, +)
            return dot / (x.map { $0 * $0 }.reduce(0, +) * y.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
        #expect(cos(0, 1) > cos(0, 3))
    }

    @Test func movieLensBuiltinCarriesGenresTitlesAndTags() throws {
        let d = try #require(BuiltinDataset.named("ml-latest-small")).load()
        #expect(d.itemAttributes["genres"]?.count == d.itemCount)
        #expect(d.itemAttributes["tag"]?.contains { !$0.isEmpty } == true)
        let g = try ModalityLoader.load("genres=builtin:genres", for: d)
        #expect(g.features.cols == 20 && g.features.rows == d.itemCount)
    }

    /// MMRec's layout (Baby, Sports, Clothing): `NAME.inter` with `x_label` and the feature files beside
    /// it, here generated small; it loads unchanged, with its split and both modalities.
    @Test func mmrecLayoutLoadsUnchanged() throws {
        let dir = Fixtures.temporaryFolder() + "/baby"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines = ["userID\titemID\trating\ttimestamp\tx_label"]
        for u in 0..<6 { for i in 0..<5 where (u + i) % 2 == 0 { lines.append("\(u)\t\(i)\t5.0\t\(1000 + u * 10 + i)\t\(i == 4 ? 2 : (i == 3 ? 1 : 0))") } }
        Fixtures.file("baby.inter", lines.joined(separator: "\n") + "\n", in: dir)
        try NPYFile.write(Matrix(rows: 5, cols: 4, values: (0..<20).map(Float.init)), path: dir + "/image_feat.npy")
        try NPYFile.write(Matrix(rows: 5, cols: 3, values: (0..<15).map { Float($0) * 0.1 }), path: dir + "/text_feat.npy")
        #expect(DatasetLoader.detectFormat(path: dir) == .mmrec)
        let d = try DatasetLoader.load(path: dir, format: .mmrec)
        #expect(d.interactions.count == lines.count - 1)
        #expect(d.predefinedSplit?.contains(.test) == true && d.predefinedSplit?.contains(.valid) == true)
        #expect(Set(d.bundledModalities.keys) == ["image", "text"])
        let image = try ModalityLoader.load(name: "image", source: d.bundledModalities["image"]!, for: d)
        for i in 0..<d.itemCount {
            let raw = Int(d.items.raw(Int32(i)))!
            #expect(Array(image.features.row(i)) == (0..<4).map { Float(raw * 4 + $0) })
        }
        // A bad x_label is reported with its line.
        Fixtures.file("baby.inter", "userID\titemID\trating\ttimestamp\tx_label\n0\t1\t5\t1\t7\n", in: dir)
        #expect(throws: DataError.self) { _ = try DatasetLoader.load(path: dir, format: .mmrec) }
    }

    @Test func coldItemSplitHoldsItemsOutEntirely() throws {
        var inter = Interactions()
        for u in 0..<30 { for i in 0..<20 where (u * 3 + i) % 4 != 0 { inter.users.append(Int32(u)); inter.items.append(Int32(i)) } }
        let d = Dataset(name: "c", users: IDMap(rawIDs: (0..<30).map(String.init)), items: IDMap(rawIDs: (0..<20).map(String.init)), interactions: inter)
        let split = try DataSplit.make(d, strategy: try SplitStrategy(parsing: "cold:0.6,0.2,0.2"), seed: 4)
        let train = Set(split.train.items), valid = Set(split.valid.items), test = Set(split.test.items)
        #expect(train.count == 12 && valid.count == 4 && test.count == 4)
        #expect(train.isDisjoint(with: valid) && train.isDisjoint(with: test) && valid.isDisjoint(with: test))
        #expect(split.train.count + split.valid.count + split.test.count == inter.count)
        let again = try DataSplit.make(d, strategy: .coldItems([0.6, 0.2, 0.2]), seed: 4)
        #expect(again.test.items == split.test.items)
    }
}
