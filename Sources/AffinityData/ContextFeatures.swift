import AffinityCore

/// The input fields of a click-through model and how raw values become rows of one embedding table.
///
/// Every field owns a block of rows: a categorical (`token`) field one row per value seen in the data plus row 0,
/// the out-of-vocabulary row that any value unseen at training maps to (RecBole's `[PAD]` index 0 plays that part);
/// a multi-value (`token_seq`) field likewise, its tokens mean-pooled; a numeric (`float`) field one row, scaled by
/// the value after min–max normalisation over the data (a missing value takes the field's mean, as RecBole
/// fills NaN). A sample is one bag of rows per field (`EmbeddingBags`), user fields first, then item fields.
public struct FeatureSchema: Sendable, Codable, Equatable {
    public enum Side: String, Sendable, Codable { case user, item }

    public struct Field: Sendable, Codable, Equatable {
        public var name: String
        public var side: Side
        public var type: AtomicFieldType
        /// Values with their own row (row k + 1 of the field's block); unused for `float` fields.
        public var vocabulary: [String]
        /// Min–max range of a `float` field and the value (normalised) a missing entry takes.
        public var minimum: Double = 0, maximum: Double = 1, fill: Double = 0

        /// Rows of the field's block in the table.
        public var rowCount: Int { type == .float || type == .floatSeq ? 1 : vocabulary.count + 1 }
    }

    public var fields: [Field]
    /// First table row of each field's block.
    public var offsets: [Int]
    public var rowCount: Int
    private var lookup: [[String: Int32]]

    public var userFieldCount: Int { fields.filter { $0.side == .user }.count }
    public var itemFieldCount: Int { fields.count - userFieldCount }

    enum CodingKeys: String, CodingKey { case fields }

    public init(fields: [Field]) {
        self.fields = fields.filter { $0.side == .user } + fields.filter { $0.side == .item }
        offsets = []
        var total = 0
        for f in self.fields { offsets.append(total); total += f.rowCount }
        rowCount = total
        lookup = self.fields.map { f in Dictionary(uniqueKeysWithValues: f.vocabulary.enumerated().map { ($1, Int32($0 + 1)) }) }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(fields: try c.decode([Field].self, forKey: .fields))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(fields, forKey: .fields)
    }

    public static func == (a: FeatureSchema, b: FeatureSchema) -> Bool { a.fields == b.fields }

    /// The schema of `dataset`: `user_id` and `item_id` as categorical fields (as RecBole's context models use
    /// them), then the named side fields. `userFields`/`itemFields` nil: every side field except identifier-like
    /// ones (a categorical or multi-value field with distinct values on more than half its rows, e.g. titles and
    /// zip codes), which for ml-100k leaves RecBole's context fields: age, gender, occupation, release_year, class.
    public static func make(_ dataset: Dataset, userFields: [String]?, itemFields: [String]?) throws -> FeatureSchema {
        func pick(_ columns: [FieldColumn], _ names: [String]?, file: String) throws -> [FieldColumn] {
            guard let names else {
                return columns.filter { c in
                    guard c.type == .token || c.type == .tokenSeq else { return true }
                    let present = c.values.filter { !$0.isEmpty }
                    return Set(present).count * 2 <= present.count
                }
            }
            return try names.map { name in
                guard let c = columns.first(where: { $0.name == name }) else {
                    throw DataError(file: dataset.name + "." + file, .missingColumn(name))
                }
                return c
            }
        }
        var fields = [Field(name: "user_id", side: .user, type: .token, vocabulary: dataset.users.rawIDs)]
        fields += try pick(dataset.userFields, userFields, file: "user").map { try field($0, side: .user) }
        fields.append(Field(name: "item_id", side: .item, type: .token, vocabulary: dataset.items.rawIDs))
        fields += try pick(dataset.itemFields, itemFields, file: "item").map { try field($0, side: .item) }
        return FeatureSchema(fields: fields)
    }

    static func field(_ column: FieldColumn, side: Side) throws -> Field {
        var f = Field(name: column.name, side: side, type: column.type, vocabulary: [])
        switch column.type {
        case .token:
            f.vocabulary = Array(Set(column.values.filter { !$0.isEmpty })).sorted()
        case .tokenSeq:
            f.vocabulary = Array(Set(column.values.flatMap { $0.split(separator: " ").map(String.init) })).sorted()
        case .float:
            let numbers = column.values.compactMap { Double($0) }.filter(\.isFinite)
            f.minimum = numbers.min() ?? 0
            f.maximum = numbers.max() ?? 1
            let mean = numbers.isEmpty ? 0 : numbers.reduce(0, +) / Double(numbers.count)
            f.fill = f.normalized(mean)
        case .floatSeq:
            throw DataError(file: column.name, .invalidValue("float_seq fields are not supported as click-through features"))
        }
        return f
    }

    /// Appends the bag of `field` for the raw text `value` (unknown values → the out-of-vocabulary row).
    public func appendBag(field k: Int, value: String, to bags: inout EmbeddingBags) {
        let f = fields[k], base = Int32(offsets[k])
        switch f.type {
        case .token:
            bags.append(rows: [base + (lookup[k][value] ?? 0)], weights: [1])
        case .tokenSeq:
            let tokens = value.split(separator: " ")
            let w = tokens.isEmpty ? 0 : 1 / Float(tokens.count)
            bags.append(rows: tokens.map { base + (lookup[k][String($0)] ?? 0) }, weights: [Float](repeating: w, count: tokens.count))
        case .float, .floatSeq:
            let v = Double(value).flatMap { $0.isFinite ? f.normalized($0) : nil } ?? f.fill
            bags.append(rows: [base], weights: [Float(v)])
        }
    }

    /// The bags of one side's fields for every dense index of `dataset` (`count · fieldCount(side)` bags).
    public func sideBags(_ side: Side, of dataset: Dataset) -> EmbeddingBags {
        let columns = side == .user ? dataset.userFields : dataset.itemFields
        let ids = side == .user ? dataset.users.rawIDs : dataset.items.rawIDs
        let indices = fields.indices.filter { fields[$0].side == side }
        let sources = indices.map { k in columns.first { $0.name == fields[k].name } }
        var bags = EmbeddingBags()
        for i in ids.indices {
            for (k, source) in zip(indices, sources) {
                let value = fields[k].name == (side == .user ? "user_id" : "item_id") ? ids[i] : (source?.values[i] ?? "")
                appendBag(field: k, value: value, to: &bags)
            }
        }
        return bags
    }

    /// The bags of one side for raw field values given by name (serving: a user or item the schema may not
    /// know; absent fields are missing values).
    public func bags(_ side: Side, values: [String: String]) -> EmbeddingBags {
        var bags = EmbeddingBags()
        for k in fields.indices where fields[k].side == side { appendBag(field: k, value: values[fields[k].name] ?? "", to: &bags) }
        return bags
    }
}

extension FeatureSchema.Field {
    func normalized(_ v: Double) -> Double { maximum > minimum ? (v - minimum) / (maximum - minimum) : 0 }
}

/// Labelled (user, item) rows for click-through prediction, with the bags of every user and item.
public struct ContextData: Sendable {
    public var schema: FeatureSchema
    /// Bags of the user fields of each dense user, `userFieldCount` per user.
    public var userBags: EmbeddingBags
    /// Bags of the item fields of each dense item.
    public var itemBags: EmbeddingBags
    public var users: [Int32]
    public var items: [Int32]
    public var labels: [Float]

    public init(schema: FeatureSchema, userBags: EmbeddingBags, itemBags: EmbeddingBags, users: [Int32], items: [Int32], labels: [Float]) {
        self.schema = schema; self.userBags = userBags; self.itemBags = itemBags
        self.users = users; self.items = items; self.labels = labels
    }

    public var count: Int { labels.count }
    public var fieldCount: Int { schema.fields.count }

    /// Rows `positions` as one bag per (row, field), row-major: the input of `Tensor.embeddingBags`.
    public func bags(_ positions: some Collection<Int>, into bags: inout EmbeddingBags) {
        bags.removeAll()
        let fu = schema.userFieldCount, fi = schema.itemFieldCount
        for p in positions {
            let u = Int(users[p]), i = Int(items[p])
            bags.append(userBags, bags: (u * fu)..<((u + 1) * fu))
            bags.append(itemBags, bags: (i * fi)..<((i + 1) * fi))
        }
    }

    /// The rows at `positions`.
    public func subset(_ positions: [Int]) -> ContextData {
        ContextData(schema: schema, userBags: userBags, itemBags: itemBags, users: positions.map { users[$0] },
                    items: positions.map { items[$0] }, labels: positions.map { labels[$0] })
    }

    /// RecBole's context protocol (`RS` with `order: RO`, `group_by: None`, `mode: labeled`): all rows shuffled
    /// with `seed`, then cut by `ratios` with RecBole's part-size rounding.
    public func randomSplit(ratios: [Double], seed: UInt64) -> [ContextData] {
        var positions = Array(0..<count)
        var rng = SeededGenerator(seed: seed)
        positions.seededShuffle(using: &rng)
        var start = 0
        return DataSplit.recBoleCounts(total: count, ratios: ratios).map { c in
            defer { start += c }
            return subset(Array(positions[start..<(start + c)]))
        }
    }

    /// Labels from `dataset`'s ratings: 1 where rating ≥ `threshold`, else 0 (RecBole's `threshold: {rating: v}`).
    public static func thresholdLabels(_ dataset: Dataset, threshold: Float) throws -> [Float] {
        guard let ratings = dataset.interactions.ratings else {
            throw DataError(file: dataset.name, .missingColumn("rating (click-through labels come from threshold=rating:V or label_field=NAME)"))
        }
        return ratings.map { $0 >= threshold ? 1 : 0 }
    }
}
