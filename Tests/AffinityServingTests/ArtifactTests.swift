import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityServing
import AffinityTestSupport

func tinyArtifact(users: Int = 3, items: Int = 4, d: Int = 2) throws -> ModelArtifact {
    var rng = SeededGenerator(seed: 7)
    let header = ModelArtifact.Header(
        model: "bpr", hyperparameters: ["embedding_size": "\(d)"], retrainEpochs: 5, seed: 1, dataset: "tiny",
        dataFingerprint: "abc", createdAt: "2026-11-29T00:00:00Z",
        userIDs: (0..<users).map { "u\($0)" }, itemIDs: (0..<items).map { "i\($0)" }, itemTitles: nil,
        dimension: d, interactionCount: 3)
    return try ModelArtifact(
        header: header,
        userEmbeddings: Matrix(rows: users, cols: d, values: (0..<(users * d)).map { _ in rng.nextGaussian() }),
        itemEmbeddings: Matrix(rows: items, cols: d, values: (0..<(items * d)).map { _ in rng.nextGaussian() }),
        training: Interactions(users: [0, 1, 2], items: [0, 1, 3]))
}

@Suite struct ArtifactTests {
    @Test func roundTripsExactly() throws {
        let artifact = try tinyArtifact()
        let path = Fixtures.temporaryFolder() + "/m.affinity"
        try artifact.write(to: path)
        let back = try ModelArtifact.read(from: path)
        #expect(back.header == artifact.header)
        #expect(back.userEmbeddings == artifact.userEmbeddings)
        #expect(back.itemEmbeddings == artifact.itemEmbeddings)
        #expect(back.training == artifact.training)
    }

    func failure(_ bytes: [UInt8]) -> String {
        let path = Fixtures.file("bad.affinity", bytes: bytes)
        do {
            _ = try ModelArtifact.read(from: path)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func rejectsDamagedFilesWithAReason() throws {
        let path = Fixtures.temporaryFolder() + "/m.affinity"
        try tinyArtifact().write(to: path)
        let good = try DurableFile.read(path)

        #expect(failure(Array(good.prefix(good.count - 9))).contains("truncated"))
        #expect(failure(Array(good.prefix(10))).contains("not an Affinity model file") || failure(Array(good.prefix(10))).contains("truncated"))
        var flipped = good
        flipped[good.count - 20] ^= 0x40
        #expect(failure(flipped).contains("checksum mismatch"))
        var version = good
        version[8] = 9
        #expect(failure(version).contains("unsupported model format version 9"))
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(failure(magic).contains("not an Affinity model file"))
        #expect(failure(good + [0]).contains("trailing data"))
        #expect(failure([]).contains("not an Affinity model file"))
        do {
            _ = try ModelArtifact.read(from: "/nonexistent/m.affinity")
            Issue.record("no error for a missing file")
        } catch {
            #expect("\(error)".contains("/nonexistent/m.affinity"))
        }
    }

    @Test func checksumMatchesTheStandardCheckValue() {
        // CRC-32/ISO-HDLC check value of "123456789".
        let v = Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) }
        #expect(v == 0xCBF4_3926)
    }
}
