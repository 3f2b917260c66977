import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityTestSupport

@Suite struct ReaderTests {
    @Test func lineReaderHandlesCRLFMissingFinalNewlineAndChunkBoundaries() throws {
        let f = Fixtures.file("l.txt", "a\r\nbb\n\nccc")
        var lines: [String] = []
        // A 2-byte buffer forces lines across chunk boundaries and buffer growth.
        try LineReader(path: f, chunkSize: 2).forEachLine { line, n in lines.append("\(n):" + String(decoding: line, as: UTF8.self)) }
        #expect(lines == ["1:a", "2:bb", "3:", "4:ccc"])
    }

    @Test func atomicInterItemAndTitles() throws {
        let dir = Fixtures.temporaryFolder() + "/toy"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        Fixtures.file("toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ti1\t4\t100\nu1\ti2\t2.5\t101\nu2\ti1\t5\t99\n", in: dir)
        Fixtures.file("toy.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\ni1\tThe Film\tDrama\ni2\tMisérables, Les\tDrama Musical\n", in: dir)
        Fixtures.file("toy.kg", "head_id:token\trelation_id:token\ttail_id:token\nm.1\tfilm.actor\tm.2\n", in: dir)
        let d = try DatasetLoader.load(path: dir, format: .atomic)
        #expect(d.name == "toy")
        #expect(d.userCount == 2 && d.itemCount == 2 && d.interactions.count == 3)
        #expect(d.interactions.ratings == [4, 2.5, 5])
        #expect(d.interactions.timestamps == [100, 101, 99])
        #expect(d.itemTitles == ["The Film", "Misérables, Les"])
        #expect(d.users.raw(1) == "u2" && d.items.dense("i2") == 1)
    }

    @Test func atomicTableTypesAndSequences() throws {
        let f = Fixtures.file("x.item", "item_id:token\tvec:float_seq\ttags:token_seq\na\t1 2.5 -3\tx y\n")
        var r = AtomicFileReader(path: f)
        let t = try r.readTable()
        #expect(t.fields.map(\.type) == [.token, .floatSeq, .tokenSeq])
        #expect(try t.column("tags") == ["x y"])
        let bad = Fixtures.file("y.item", "item_id:token\tvec:float_seq\na\t1 zz\n")
        var r2 = AtomicFileReader(path: bad)
        #expect(throws: DataError(file: bad, line: 2, .unparsableNumber(field: "vec", text: "zz"))) { _ = try r2.readTable() }
    }

    @Test func csvWithQuotesHeaderAliasesAndTSV() throws {
        let f = Fixtures.file("m.csv", "userId,movieId,rating,timestamp\n1,\"10\",4.5,5\n2,\"2,0\",3,6\n")
        let d = try DatasetLoader.load(path: f, format: .csv)
        #expect(d.items.rawIDs == ["10", "2,0"])
        #expect(d.interactions.ratings == [4.5, 3])
        let t = Fixtures.file("m.tsv", "a\tb\n")
        let d2 = try DatasetLoader.load(path: t, format: .csv, columns: ColumnMap(delimiter: UInt8(ascii: "\t"), hasHeader: false))
        #expect(d2.users.rawIDs == ["a"] && d2.items.rawIDs == ["b"] && d2.interactions.ratings == nil)
        let q = Fixtures.file("q.csv", "user,item,note\n1,2,\"say \"\"hi\"\"\"\n")
        var reader = DelimitedFileReader(path: q)
        var notes: [String] = []
        try reader.forEachRow { line, f, _ in notes.append(Bytes.string(line, f[2])) }
        #expect(notes == ["say \"hi\""])
    }

    @Test func csvColumnsByNumberWithoutHeader() throws {
        let f = Fixtures.file("n.csv", "5,u1,i1\n4,u2,i1\n")
        let d = try DatasetLoader.load(path: f, format: .csv, columns: ColumnMap(user: "1", item: "2", rating: "0", hasHeader: false))
        #expect(d.users.rawIDs == ["u1", "u2"] && d.interactions.ratings == [5, 4])
    }

    @Test func recBoleBenchmarkFilesGiveAPredefinedSplit() throws {
        let dir = Fixtures.temporaryFolder() + "/bench"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let header = "user_id:token\titem_id:token\trating:float\n"
        Fixtures.file("bench.train.inter", header + "a\tx\t4\na\ty\t3\nb\tx\t5\n", in: dir)
        Fixtures.file("bench.valid.inter", header + "a\tz\t1\n", in: dir)
        Fixtures.file("bench.test.inter", header + "b\tz\t2\n", in: dir)
        let d = try DatasetLoader.load(path: dir, format: .atomic)
        #expect(d.predefinedSplit == [.train, .train, .train, .valid, .test])
        #expect(d.interactions.ratings == [4, 3, 5, 1, 2])
        #expect(DatasetLoader.detectFormat(path: dir) == .atomic)
        let split = try DataSplit.make(d, strategy: .predefined, seed: 0)
        #expect(split.train.count == 3 && split.valid.count == 1 && split.test.count == 1)
    }

    @Test func lightGCNFilesGiveAPredefinedSplit() throws {
        let dir = Fixtures.temporaryFolder()
        Fixtures.file("train.txt", "0 1 2\n1 2\n2\n", in: dir)
        Fixtures.file("test.txt", "0 3\n1 1\n", in: dir)
        let d = try DatasetLoader.load(path: dir, format: .lightgcn)
        #expect(d.interactions.count == 5)
        #expect(d.predefinedSplit == [.train, .train, .train, .test, .test])
        #expect(DatasetLoader.detectFormat(path: dir) == .lightgcn)
    }

    @Test func npyRoundTripAndLayouts() throws {
        let m = Matrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5, 6])
        let dir = Fixtures.temporaryFolder()
        try NPYFile.write(m, path: dir + "/a.npy")
        #expect(try NPYFile.read(path: dir + "/a.npy") == m)

        func npy(_ header: String, _ payload: [UInt8]) -> [UInt8] {
            var h = header
            while (10 + h.utf8.count + 1) % 64 != 0 { h += " " }
            h += "\n"
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)] + Array(h.utf8) + payload
        }
        // float64, Fortran order: column-major [[1, 2], [3, 4]] stored as 1, 3, 2, 4.
        let f8 = [1.0, 3.0, 2.0, 4.0].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        let p = Fixtures.file("b.npy", bytes: npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", f8))
        #expect(try NPYFile.read(path: p) == Matrix(rows: 2, cols: 2, values: [1, 2, 3, 4]))

        let bad = Fixtures.file("c.npy", bytes: Array("not numpy".utf8))
        #expect(throws: DataError(file: bad, .invalidFormat("not a .npy file (bad magic bytes)"))) { _ = try NPYFile.read(path: bad) }
        let truncated = Fixtures.file("d.npy", bytes: npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", [0, 0, 0, 0]))
        #expect(throws: DataError.self) { _ = try NPYFile.read(path: truncated) }
        let ints = Fixtures.file("e.npy", bytes: npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 8)))
        #expect(throws: DataError(file: ints, .invalidFormat("unsupported dtype '<i8' (expected little-endian float32 '<f4' or float64 '<f8')"))) {
            _ = try NPYFile.read(path: ints)
        }
    }

    @Test(.enabled(if: Fixtures.sharedData("ml-100k") != nil, "../shared/data/ml-100k is absent"))
    func sharedML100KFeaturesLoad() throws {
        let dir = try #require(Fixtures.sharedData("ml-100k"))
        let m = try NPYFile.read(path: dir + "/genre_feat.npy")
        #expect(m.rows == 1682 && m.cols == 19)
        #expect(m.storage.reduce(0, +) == 2893)
    }

    @Test(.enabled(if: Fixtures.sharedData("ml-100k") != nil, "../shared/data/ml-100k is absent"))
    func sharedML100KLoadsWithRecBoleCounts() throws {
        let dir = try #require(Fixtures.sharedData("ml-100k"))
        let d = try DatasetLoader.load(path: dir, format: .atomic)
        #expect(d.userCount == 943 && d.itemCount == 1682 && d.interactions.count == 100_000)
        #expect(d.itemTitles?[Int(d.items.dense("543")!)] == "Misérables, Les")
    }

    @Test(.enabled(if: Fixtures.sharedData("gowalla") != nil, "../shared/data/gowalla is absent"))
    func sharedGowallaLoadsWithPaperCounts() throws {
        let dir = try #require(Fixtures.sharedData("gowalla"))
        let d = try DatasetLoader.load(path: dir, format: .lightgcn)
        #expect(d.userCount == 29_858 && d.itemCount == 40_981 && d.interactions.count == 1_027_370)
        #expect(d.predefinedSplit?.filter { $0 == .test }.count == 217_242)
    }

    @Test func numberParsing() {
        func parse(_ s: String) -> Double? {
            Array(s.utf8).withUnsafeBufferPointer { Bytes.parseDouble($0, 0..<$0.count) }
        }
        #expect(parse("4.5") == 4.5 && parse("-3") == -3 && parse("1e3") == 1000 && parse("0.1") == 0.1)
        #expect(parse("874724710") == 874_724_710 && parse("") == nil && parse("abc") == nil && parse("1.2.3") == nil)
    }
}
