import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityTestSupport

@Suite struct ContextFeatureTests {
    /// A folder with typed `.user` and `.item` fields: categorical, multi-value, numeric (one missing).
    static func toyFolder() throws -> String {
        let dir = Fixtures.temporaryFolder() + "/toy"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        Fixtures.file("toy.inter", "user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu1\ti2\t2\nu2\ti1\t5\nu3\ti3\t3\nu4\ti2\t1\n", in: dir)
        Fixtures.file("toy.user", "user_id:token\tgender:token\tzip:token\nu1\tF\t111\nu2\tM\t222\nu3\tF\t333\nu4\tF\t444\nu9\tM\t999\n", in: dir)
        Fixtures.file("toy.item", "item_id:token\tclass:token_seq\tyear:float\ni1\tDrama Comedy\t1990\ni2\tDrama\t2000\ni3\t\t\n", in: dir)
        return dir
    }

    @Test func sideFilesLoadAsTypedFields() throws {
        let d = try DatasetLoader.load(path: Self.toyFolder(), format: .atomic)
        #expect(d.userFields.map(\.name) == ["gender", "zip"] && d.userFields[0].values == ["F", "M", "F", "F"])
        #expect(d.itemFields.map(\.type) == [.tokenSeq, .float] && d.itemFields[1].values == ["1990", "2000", ""])
    }

    @Test func schemaEncodesEveryFieldKind() throws {
        let d = try DatasetLoader.load(path: Self.toyFolder(), format: .atomic)
        // Three items are too few for the identifier test, so the item fields are named; the user side takes the
        // default, which leaves out zip: identifier-like, a distinct value per user.
        let schema = try FeatureSchema.make(d, userFields: nil, itemFields: ["class", "year"])
        #expect(schema.fields.map(\.name) == ["user_id", "gender", "item_id", "class", "year"])
        // Blocks: user_id 1 + 4, gender 1 + 2, item_id 1 + 3, class 1 + 2, year 1.
        #expect(schema.offsets == [0, 5, 8, 12, 15] && schema.rowCount == 16)
        let items = schema.sideBags(.item, of: d)
        #expect(items.count == 9)
        // Item i1: item_id row 8 + 1; class the mean of Drama (row 12 + 2) and Comedy (12 + 1); year 1990 → 0.
        #expect(Array(items.rows[0..<4]) == [9, 14, 13, 15] && Array(items.weights[0..<4]) == [1, 0.5, 0.5, 0])
        // Item i3: no genres (empty bag), missing year → the mean 1995, normalised 0.5.
        #expect(items.offsets[7] == items.offsets[8] && items.weights.last == 0.5)
        // Unknown values at inference take each field's out-of-vocabulary row.
        let unknown = schema.bags(.user, values: ["user_id": "new", "gender": "X"])
        #expect(unknown.rows == [0, 5])
        let labels = try ContextData.thresholdLabels(d, threshold: 4)
        #expect(labels == [1, 0, 1, 0, 0])
        let roundTrip = try JSONDecoder().decode(FeatureSchema.self, from: JSONEncoder().encode(schema))
        #expect(roundTrip == schema && roundTrip.offsets == schema.offsets)
    }

    @Test func randomSplitKeepsEveryRowOnce() throws {
        let d = try DatasetLoader.load(path: Self.toyFolder(), format: .atomic)
        let schema = try FeatureSchema.make(d, userFields: ["gender"], itemFields: ["class"])
        let data = ContextData(schema: schema, userBags: schema.sideBags(.user, of: d), itemBags: schema.sideBags(.item, of: d),
                               users: d.interactions.users, items: d.interactions.items, labels: try ContextData.thresholdLabels(d, threshold: 4))
        let parts = data.randomSplit(ratios: [0.5, 0.25, 0.25], seed: 1)
        #expect(parts.map(\.count) == [3, 1, 1])
        let pairs = parts.flatMap { p in zip(p.users, p.items).map { "\($0)-\($1)" } }
        #expect(Set(pairs).count == 5)
        #expect(throws: DataError.self) { try FeatureSchema.make(d, userFields: ["age"], itemFields: nil) }
    }
}
