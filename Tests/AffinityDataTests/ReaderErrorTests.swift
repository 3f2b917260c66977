import Testing
import AffinityData
import AffinityTestSupport

/// Every malformed-input case gets a specific error naming the file, the line and the reason.
@Suite struct ReaderErrorTests {
    func atomicFolder(_ inter: String, name: String = "toy") -> String {
        let dir = Fixtures.temporaryFolder() + "/" + name
        try! FileManager_createDirectory(dir)
        Fixtures.file(name + ".inter", inter, in: dir)
        return dir
    }

    func expectError(_ expected: DataError, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(expected)")
        } catch let error as DataError {
            #expect(error == expected)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func atomicWrongFieldCount() {
        let dir = atomicFolder("user_id:token\titem_id:token\trating:float\n1\t2\t3\n1\t2\n")
        expectError(DataError(file: dir + "/toy.inter", line: 3, .wrongFieldCount(expected: 3, found: 2))) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    /// A header and no rows: an error naming the interactions file (it used to load as an empty dataset).
    @Test func headerWithoutRows() {
        let dir = atomicFolder("user_id:token\titem_id:token\trating:float\n")
        expectError(DataError(file: dir + "/toy.inter", .noDataRows)) { _ = try DatasetLoader.load(path: dir, format: .atomic) }
        let csv = Fixtures.file("h.csv", "userId,movieId,rating\n\n")
        expectError(DataError(file: csv, .noDataRows)) { _ = try DatasetLoader.load(path: csv, format: .csv) }
    }

    @Test func atomicUnparsableNumber() {
        let dir = atomicFolder("user_id:token\titem_id:token\trating:float\n1\t2\tfive\n")
        expectError(DataError(file: dir + "/toy.inter", line: 2, .unparsableNumber(field: "rating", text: "five"))) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    @Test func atomicUnknownHeaderType() {
        let dir = atomicFolder("user_id:token\titem_id:tokn\n1\t2\n")
        expectError(DataError(file: dir + "/toy.inter", line: 1, .unknownHeaderType(field: "item_id", type: "tokn"))) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    @Test func atomicMissingColumn() {
        let dir = atomicFolder("user_id:token\trating:float\n1\t2\n")
        expectError(DataError(file: dir + "/toy.inter", line: 1, .missingColumn("item_id"))) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    @Test func atomicHeaderWithoutType() {
        let dir = atomicFolder("user_id\titem_id:token\n1\t2\n")
        expectError(DataError(file: dir + "/toy.inter", line: 1, .invalidHeader("field 'user_id' has no ':type' suffix"))) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    @Test func emptyFile() {
        let dir = atomicFolder("")
        expectError(DataError(file: dir + "/toy.inter", .emptyFile)) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
        let csv = Fixtures.file("empty.csv", "")
        expectError(DataError(file: csv, .emptyFile)) { _ = try DatasetLoader.load(path: csv, format: .csv) }
    }

    @Test func invalidUTF8() {
        let dir = Fixtures.temporaryFolder() + "/bad"
        try! FileManager_createDirectory(dir)
        var bytes = Array("user_id:token\titem_id:token\n1\t2\n".utf8)
        bytes += [0x31, 0x09, 0xC3, 0x28, 0x0A]  // "1\t" + an invalid two-byte sequence
        Fixtures.file("bad.inter", bytes: bytes, in: dir)
        expectError(DataError(file: dir + "/bad.inter", line: 3, .invalidUTF8)) {
            _ = try DatasetLoader.load(path: dir, format: .atomic)
        }
    }

    @Test func missingFile() {
        expectError(DataError(file: "/nonexistent/ratings.csv", .fileNotFound)) {
            _ = try DatasetLoader.load(path: "/nonexistent/ratings.csv", format: .csv)
        }
    }

    @Test func csvWrongFieldCount() {
        let f = Fixtures.file("r.csv", "userId,movieId,rating\n1,2,3\n1,2\n")
        expectError(DataError(file: f, line: 3, .wrongFieldCount(expected: 3, found: 2))) {
            _ = try DatasetLoader.load(path: f, format: .csv)
        }
    }

    @Test func csvUnparsableNumber() {
        let f = Fixtures.file("r.csv", "userId,movieId,rating\n1,2,3\n1,2,x3\n")
        expectError(DataError(file: f, line: 3, .unparsableNumber(field: "rating", text: "x3"))) {
            _ = try DatasetLoader.load(path: f, format: .csv)
        }
    }

    @Test func csvMissingColumn() {
        let f = Fixtures.file("r.csv", "userId,movieId\n1,2\n")
        expectError(DataError(file: f, line: 1, .missingColumn("stars"))) {
            _ = try DatasetLoader.load(path: f, format: .csv, columns: ColumnMap(rating: "stars"))
        }
        let g = Fixtures.file("r.csv", "who,what\n1,2\n")
        expectError(DataError(file: g, line: 1, .missingColumn("user"))) {
            _ = try DatasetLoader.load(path: g, format: .csv)
        }
    }

    @Test func csvUnterminatedQuote() {
        let f = Fixtures.file("r.csv", "user,item\n1,\"abc\n")
        expectError(DataError(file: f, line: 2, .unterminatedQuote)) { _ = try DatasetLoader.load(path: f, format: .csv) }
    }

    @Test func lightGCNUnparsableItem() {
        let dir = Fixtures.temporaryFolder()
        Fixtures.file("train.txt", "0 1 2\n1 3 x\n", in: dir)
        Fixtures.file("test.txt", "0 3\n", in: dir)
        expectError(DataError(file: dir + "/train.txt", line: 2, .unparsableNumber(field: "item", text: "x"))) {
            _ = try DatasetLoader.load(path: dir, format: .lightgcn)
        }
    }

    @Test func lightGCNMissingTestFile() {
        let dir = Fixtures.temporaryFolder()
        Fixtures.file("train.txt", "0 1 2\n", in: dir)
        expectError(DataError(file: dir + "/test.txt", .fileNotFound)) { _ = try DatasetLoader.load(path: dir, format: .lightgcn) }
    }

    @Test func skipBadLinesSkipsAndCounts() throws {
        let f = Fixtures.file("r.csv", "userId,movieId,rating\n1,2,3\n1,2\n2,3,oops\n3,4,5\n")
        let d = try DatasetLoader.load(path: f, format: .csv, options: ReadOptions(skipBadLines: true))
        #expect(d.interactions.count == 2)
        #expect(d.skipped.count == 2)
        #expect(d.skipped.examples.first?.line == 3)
    }

    @Test func errorMessageNamesFileLineAndReason() {
        let e = DataError(file: "a.csv", line: 7, .wrongFieldCount(expected: 3, found: 2))
        #expect(e.description == "a.csv:7: expected 3 fields, found 2")
    }
}

import Foundation
func FileManager_createDirectory(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
}
