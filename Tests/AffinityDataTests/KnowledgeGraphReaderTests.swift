import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityTestSupport

@Suite struct KnowledgeGraphReaderTests {
    static let header = "head_id:token\trelation_id:token\ttail_id:token\n"

    @Test func atomicGraphBesideTheInteractionsIsAlignedToTheItems() throws {
        let dir = Fixtures.temporaryFolder() + "/toy"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        Fixtures.file("toy.inter", "user_id:token\titem_id:token\nu1\ti1\nu1\ti2\nu2\ti3\n", in: dir)
        // i1 and i2 are films m.1, m.2; i3 has no entity; m.1 appears twice with the same fact.
        Fixtures.file("toy.kg", Self.header + "m.1\tdirected_by\tp.9\nm.2\tdirected_by\tp.9\nm.1\tdirected_by\tp.9\nm.2\tgenre\tg.x\n", in: dir)
        Fixtures.file("toy.link", "item_id:token\tentity_id:token\ni2\tm.2\ni1\tm.1\nghost\tm.7\n", in: dir)
        let d = try DatasetLoader.load(path: dir, format: .atomic)
        let raw = try #require(d.knowledgeGraph)
        #expect(raw.tripleCount == 4 && raw.relations.count == 2)
        let g = raw.aligned(to: d.items)
        // Nodes: items i1, i2, i3 (0–2), then p.9, g.x, m.7 (m.7 is linked to an item the data does not have).
        #expect(g.itemCount == 3 && g.entityCount == 6 && g.linkedItems == 2 && g.relationCount == 4)
        // 3 distinct facts, each with its inverse (relation + 2).
        #expect(g.tripleCount == 6)
        #expect(g.contains(head: 0, relation: 0, tail: 3) && g.contains(head: 3, relation: 2, tail: 0))
        #expect(g.contains(head: 1, relation: 1, tail: 4) && g.contains(head: 4, relation: 3, tail: 1))
        #expect(!g.contains(head: 2, relation: 0, tail: 3))
        #expect(g.headStart[3] - g.headStart[2] == 0, "the unlinked item has no edges")
        #expect(zip(g.heads, g.heads.dropFirst()).allSatisfy { $0 <= $1 })
        // Filtering the interactions keeps the graph (it is keyed by raw ids).
        let filtered = d.filtered { $0 != 2 }
        #expect(filtered.knowledgeGraph?.aligned(to: filtered.items).linkedItems == 2)
        #expect(g.withoutFacts.tripleCount == 0 && g.withoutFacts.entityCount == 3)
    }

    @Test func kgatLayoutLinksEntityIToItemI() throws {
        let dir = Fixtures.temporaryFolder() + "/kgat"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        Fixtures.file("train.txt", "0 0 1\n1 2\n", in: dir)
        Fixtures.file("test.txt", "0 2\n1 1\n", in: dir)
        Fixtures.file("kg_final.txt", "0 0 3\n2 0 3\n\n1 1 4\n", in: dir)
        let d = try DatasetLoader.load(path: dir, format: .lightgcn)
        let g = try #require(d.knowledgeGraph).aligned(to: d.items)
        #expect(g.itemCount == 3 && g.entityCount == 5 && g.linkedItems == 3 && g.tripleCount == 6)
        let item2 = Int32(try #require(d.items.dense("2")))
        #expect(g.contains(head: item2, relation: 0, tail: 3))
    }

    @Test func badTriplesAreReportedWithFileAndLine() throws {
        let missingTail = Fixtures.file("a.kg", Self.header + "m.1\tr\tm.2\nm.1\tr\t\n")
        #expect(throws: DataError(file: missingTail, line: 3, .invalidValue("empty head, relation or tail"))) {
            _ = try KnowledgeGraph.loadAtomic(kg: missingTail, link: nil)
        }
        let short = Fixtures.file("b.kg", Self.header + "m.1\tr\n")
        #expect(throws: DataError(file: short, line: 2, .wrongFieldCount(expected: 3, found: 2))) {
            _ = try KnowledgeGraph.loadAtomic(kg: short, link: nil)
        }
        let noColumn = Fixtures.file("c.kg", "head_id:token\trelation_id:token\tobject:token\nm.1\tr\tm.2\n")
        #expect(throws: DataError(file: noColumn, line: 1, .missingColumn("tail_id"))) {
            _ = try KnowledgeGraph.loadAtomic(kg: noColumn, link: nil)
        }
        let good = Fixtures.file("d.kg", Self.header + "m.1\tr\tm.2\n")
        let twice = Fixtures.file("d.link", "item_id:token\tentity_id:token\ni1\tm.1\ni1\tm.2\n")
        #expect(throws: DataError(file: twice, line: 3, .invalidValue("item 'i1' is linked to 'm.1' and to 'm.2'"))) {
            _ = try KnowledgeGraph.loadAtomic(kg: good, link: twice)
        }
        let empty = Fixtures.file("e.kg", Self.header)
        #expect(throws: DataError(file: empty, .noDataRows)) { _ = try KnowledgeGraph.loadAtomic(kg: empty, link: nil) }
        let kgat = Fixtures.file("kg_final.txt", "0 1 2\n3 x 4\n")
        #expect(throws: DataError(file: kgat, line: 2, .invalidValue("'x' is not a non-negative integer id"))) {
            _ = try KnowledgeGraph.loadKGAT(kgat, itemIDs: [])
        }
        let negative = Fixtures.file("kg_final.txt", "0 1\n")
        #expect(throws: DataError(file: negative, line: 1, .wrongFieldCount(expected: 3, found: 2))) {
            _ = try KnowledgeGraph.loadKGAT(negative, itemIDs: [])
        }
        // Skipping bad lines keeps the good ones and counts the rest.
        let (graph, skipped) = try KnowledgeGraph.loadKGAT(kgat, itemIDs: [], options: ReadOptions(skipBadLines: true))
        #expect(graph.tripleCount == 1 && skipped.count == 1)
    }
}
