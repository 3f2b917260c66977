import AffinityCore

/// An item knowledge graph as read from files: (head, relation, tail) facts over entities, and which entity
/// each item is (RecBole's `.kg` and `.link` files, or KGAT's `kg_final.txt`). Entities and items keep their
/// raw ids here, so the graph survives any filtering of the interactions; `aligned(to:)` turns it into the
/// dense form models train on.
public struct KnowledgeGraph: Sendable, Equatable {
    public var entities = IDMap()
    public var relations = IDMap()
    /// The facts, one entry per triple, in entity and relation indices.
    public var heads: [Int32] = []
    public var relationIDs: [Int32] = []
    public var tails: [Int32] = []
    /// Raw item id → the entity that item is.
    public var itemEntities: [String: Int32] = [:]

    public init() {}

    public var tripleCount: Int { heads.count }

    /// The graph over the dataset's items: node i < `items.count` is item i (and the entity linked to it), the
    /// other entities follow. Every relation r gets an inverse r + R, so messages flow both ways (as KGAT's
    /// official loader does); duplicate triples are dropped. Items without a linked entity are nodes with no
    /// edges: models give them their plain id embeddings.
    public func aligned(to items: IDMap) -> ItemKnowledgeGraph {
        var node = [Int32](repeating: -1, count: entities.count)
        var linked = 0
        for (raw, entity) in itemEntities.sorted(by: { $0.key < $1.key }) {
            guard let item = items.dense(raw), node[Int(entity)] < 0 else { continue }
            node[Int(entity)] = item
            linked += 1
        }
        var next = Int32(items.count)
        for e in 0..<entities.count where node[e] < 0 {
            node[e] = next
            next += 1
        }
        let base = Int32(relations.count)
        var triples: [(Int32, Int32, Int32)] = []
        triples.reserveCapacity(2 * tripleCount)
        for k in 0..<tripleCount {
            let h = node[Int(heads[k])], r = relationIDs[k], t = node[Int(tails[k])]
            triples.append((h, r, t))
            triples.append((t, r + base, h))
        }
        triples.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        var unique: [(Int32, Int32, Int32)] = []
        unique.reserveCapacity(triples.count)
        for t in triples where unique.last.map({ $0 != t }) ?? true { unique.append(t) }
        return ItemKnowledgeGraph(itemCount: items.count, entityCount: Int(next), relationCount: 2 * Int(base),
                                  linkedItems: linked, heads: unique.map(\.0), relations: unique.map(\.1), tails: unique.map(\.2))
    }
}

/// A knowledge graph in a dataset's item order: nodes 0..<itemCount are the items, the rest other entities;
/// triples sorted by (head, relation, tail), inverse relations included (relation r + R is r reversed).
public struct ItemKnowledgeGraph: Sendable {
    public let itemCount: Int
    /// Items plus the entities that are not items.
    public let entityCount: Int
    /// Relations including their inverses.
    public let relationCount: Int
    /// Items linked to an entity.
    public let linkedItems: Int
    public let heads: [Int32]
    public let relations: [Int32]
    public let tails: [Int32]
    /// The triples of head h are `headStart[h]..<headStart[h + 1]`.
    public let headStart: [Int]

    public init(itemCount: Int, entityCount: Int, relationCount: Int, linkedItems: Int,
                heads: [Int32], relations: [Int32], tails: [Int32]) {
        precondition(heads.count == relations.count && heads.count == tails.count)
        precondition(zip(heads, heads.dropFirst()).allSatisfy { $0 <= $1 }, "triples must be sorted by head")
        self.itemCount = itemCount
        self.entityCount = entityCount
        self.relationCount = relationCount
        self.linkedItems = linkedItems
        self.heads = heads
        self.relations = relations
        self.tails = tails
        headStart = Self.headStarts(heads, entityCount: entityCount)
    }

    /// The CSR row starts of head-sorted triples: head h's are `start[h]..<start[h + 1]`.
    public static func headStarts(_ heads: [Int32], entityCount: Int) -> [Int] {
        var start = [Int](repeating: 0, count: entityCount + 1)
        for h in heads { start[Int(h) + 1] += 1 }
        for e in 0..<entityCount { start[e + 1] += start[e] }
        return start
    }

    public var tripleCount: Int { heads.count }

    /// Whether (h, r, t) is a fact (binary search within h's triples).
    public func contains(head h: Int32, relation r: Int32, tail t: Int32) -> Bool {
        var lo = headStart[Int(h)], hi = headStart[Int(h) + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            if (relations[mid], tails[mid]) < (r, t) { lo = mid + 1 } else { hi = mid }
        }
        return lo < headStart[Int(h) + 1] && relations[lo] == r && tails[lo] == t
    }

    /// The same items with no facts: the ablation that shows what the graph adds.
    public var withoutFacts: ItemKnowledgeGraph {
        ItemKnowledgeGraph(itemCount: itemCount, entityCount: itemCount, relationCount: 0, linkedItems: 0,
                           heads: [], relations: [], tails: [])
    }
}

extension KnowledgeGraph {
    /// RecBole's `.kg` (head_id, relation_id, tail_id tokens) and, when given, `.link` (item_id, entity_id).
    /// A row with an empty id, or an item linked to two entities, is an error naming file and line.
    public static func loadAtomic(kg kgPath: String, link linkPath: String?, options: ReadOptions = ReadOptions()) throws -> (KnowledgeGraph, SkippedLines) {
        var graph = KnowledgeGraph()
        var skipped = SkippedLines()
        var reader = AtomicFileReader(path: kgPath, options: options)
        var hi = -1, ri = -1, ti = -1
        try reader.forEachRow { line, f, number in
            let h = Bytes.string(line, f[hi]), r = Bytes.string(line, f[ri]), t = Bytes.string(line, f[ti])
            guard !h.isEmpty, !r.isEmpty, !t.isEmpty else {
                throw DataError(file: kgPath, line: number, .invalidValue("empty head, relation or tail"))
            }
            graph.heads.append(graph.entities.intern(h))
            graph.relationIDs.append(graph.relations.intern(r))
            graph.tails.append(graph.entities.intern(t))
        } onHeader: { header in
            func find(_ name: String) throws -> Int {
                guard let i = header.firstIndex(where: { $0.name == name }) else { throw DataError(file: kgPath, line: 1, .missingColumn(name)) }
                return i
            }
            (hi, ri, ti) = (try find("head_id"), try find("relation_id"), try find("tail_id"))
        }
        skipped.merge(reader.skipped)
        guard graph.tripleCount > 0 else { throw DataError(file: kgPath, .noDataRows) }
        if let linkPath {
            var links = AtomicFileReader(path: linkPath, options: options)
            var ii = -1, ei = -1
            try links.forEachRow { line, f, number in
                let item = Bytes.string(line, f[ii]), entity = Bytes.string(line, f[ei])
                guard !item.isEmpty, !entity.isEmpty else {
                    throw DataError(file: linkPath, line: number, .invalidValue("empty item or entity id"))
                }
                let e = graph.entities.intern(entity)
                if let previous = graph.itemEntities[item], previous != e {
                    throw DataError(file: linkPath, line: number,
                                    .invalidValue("item '\(item)' is linked to '\(graph.entities.raw(previous))' and to '\(entity)'"))
                }
                graph.itemEntities[item] = e
            } onHeader: { header in
                guard let i = header.firstIndex(where: { $0.name == "item_id" }) else { throw DataError(file: linkPath, line: 1, .missingColumn("item_id")) }
                guard let e = header.firstIndex(where: { $0.name == "entity_id" }) else { throw DataError(file: linkPath, line: 1, .missingColumn("entity_id")) }
                (ii, ei) = (i, e)
            }
            skipped.merge(links.skipped)
        }
        return (graph, skipped)
    }

    /// KGAT's `kg_final.txt`: one `head relation tail` line of non-negative integers per fact, where entity i
    /// below the item count is item i (the official repository's remapping), so items are linked by id.
    public static func loadKGAT(_ path: String, itemIDs: [String], options: ReadOptions = ReadOptions()) throws -> (KnowledgeGraph, SkippedLines) {
        var graph = KnowledgeGraph()
        var skipped = SkippedLines()
        var fields: [Range<Int>] = []
        try LineReader(path: path).forEachLine { line, number in
            Bytes.splitWhitespace(line, into: &fields)
            if fields.isEmpty { return }
            do {
                guard fields.count == 3 else { throw DataError(file: path, line: number, .wrongFieldCount(expected: 3, found: fields.count)) }
                var ids: [String] = []
                for r in fields {
                    let text = Bytes.string(line, r)
                    guard let v = Int(text), v >= 0 else {
                        throw DataError(file: path, line: number, .invalidValue("'\(text)' is not a non-negative integer id"))
                    }
                    ids.append(String(v))
                }
                graph.heads.append(graph.entities.intern(ids[0]))
                graph.relationIDs.append(graph.relations.intern(ids[1]))
                graph.tails.append(graph.entities.intern(ids[2]))
            } catch let error as DataError where options.skipBadLines {
                skipped.record(error)
            }
        }
        guard graph.tripleCount > 0 else { throw DataError(file: path, .noDataRows) }
        for raw in itemIDs {
            if let e = graph.entities.dense(raw) { graph.itemEntities[raw] = e }
        }
        return (graph, skipped)
    }
}
