import AffinityCore

/// Which part of a predefined split an interaction belongs to.
public enum SplitPart: UInt8, Sendable {
    case train = 0, valid = 1, test = 2
}

/// A loaded dataset: id maps, interactions, and whatever item metadata the files carry.
public struct Dataset: Sendable {
    public var name: String
    public var users: IDMap
    public var items: IDMap
    public var interactions: Interactions
    /// Display title per dense item index, when the data has titles.
    public var itemTitles: [String]?
    /// For pre-split data (e.g. LightGCN's train.txt/test.txt): the part of each interaction.
    public var predefinedSplit: [SplitPart]?
    /// Item metadata by field name (e.g. `genres`, `title`, `tags`), one string per dense item index
    /// (empty when an item has none): what the built-in featurisers turn into modalities.
    public var itemAttributes: [String: [String]] = [:]
    /// Typed fields of the `.user` file (every field but `user_id`), one value per dense user index (empty when a
    /// user has no row): the user side of click-through features.
    public var userFields: [FieldColumn] = []
    /// Typed fields of the `.item` file (every field but `item_id`), one value per dense item index.
    public var itemFields: [FieldColumn] = []
    /// Modalities that came with the data (`NAME_feat.npy` beside it), by name → path; used when none are
    /// given explicitly.
    public var bundledModalities: [String: String] = [:]
    /// Lines skipped under `--skip-bad-lines`, over all files read.
    public var skipped = SkippedLines()
    /// Facts about the items (RecBole `.kg`/`.link`, KGAT `kg_final.txt`) when the data has them; keyed by raw
    /// ids, so filtering interactions leaves it valid.
    public var knowledgeGraph: KnowledgeGraph?

    public init(name: String, users: IDMap, items: IDMap, interactions: Interactions,
                itemTitles: [String]? = nil, predefinedSplit: [SplitPart]? = nil) {
        self.name = name
        self.users = users
        self.items = items
        self.interactions = interactions
        self.itemTitles = itemTitles
        self.predefinedSplit = predefinedSplit
    }

    public var userCount: Int { users.count }
    public var itemCount: Int { items.count }

    /// Fraction of the user × item matrix that is observed.
    public var density: Double {
        userCount == 0 || itemCount == 0 ? 0 : Double(interactions.count) / (Double(userCount) * Double(itemCount))
    }

    /// A short, stable fingerprint of the interactions (FNV-1a over raw ids and split parts), recorded
    /// in run records so results can be tied to the exact data.
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        for p in 0..<interactions.count {
            mix(users.raw(interactions.users[p]).utf8); mix([0x1F])
            mix(items.raw(interactions.items[p]).utf8); mix([0x1E])
            if let r = interactions.ratings { withUnsafeBytes(of: r[p].bitPattern.littleEndian) { mix($0) } }
            if let s = predefinedSplit { mix([s[p].rawValue]) }
        }
        return String(h, radix: 16).leftPadded(to: 16)
    }

    /// Keeps the interactions where `keep(position)` is true and drops users and items left without any.
    /// Dense indices are reassigned in their previous order.
    public func filtered(_ keep: (Int) -> Bool) -> Dataset {
        let positions = (0..<interactions.count).filter(keep)
        var userSeen = [Bool](repeating: false, count: userCount)
        var itemSeen = [Bool](repeating: false, count: itemCount)
        for p in positions {
            userSeen[Int(interactions.users[p])] = true
            itemSeen[Int(interactions.items[p])] = true
        }
        let (newUsers, userRemap) = users.compacted(keeping: userSeen)
        let (newItems, itemRemap) = items.compacted(keeping: itemSeen)
        var kept = interactions.subset(positions)
        kept.users = kept.users.map { userRemap[Int($0)] }
        kept.items = kept.items.map { itemRemap[Int($0)] }
        var out = Dataset(name: name, users: newUsers, items: newItems, interactions: kept,
                          itemTitles: itemTitles.map { t in (0..<itemCount).filter { itemSeen[$0] }.map { t[$0] } },
                          predefinedSplit: predefinedSplit.map { s in positions.map { s[$0] } })
        out.skipped = skipped
        out.bundledModalities = bundledModalities
        out.knowledgeGraph = knowledgeGraph
        out.itemAttributes = itemAttributes.mapValues { v in (0..<itemCount).filter { itemSeen[$0] }.map { v[$0] } }
        out.userFields = userFields.map { $0.keeping(userSeen) }
        out.itemFields = itemFields.map { $0.keeping(itemSeen) }
        return out
    }
}

/// One typed field of a side file (`.user`, `.item`), one text value per dense user or item index (empty when
/// absent). `token_seq` values are space-separated tokens, as in RecBole; `float` values parse as numbers.
public struct FieldColumn: Sendable, Equatable {
    public var name: String
    public var type: AtomicFieldType
    public var values: [String]

    public init(name: String, type: AtomicFieldType, values: [String]) {
        self.name = name; self.type = type; self.values = values
    }

    /// The values of the indices whose flag is set, in order.
    func keeping(_ kept: [Bool]) -> FieldColumn {
        FieldColumn(name: name, type: type, values: values.indices.filter { kept[$0] }.map { values[$0] })
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
