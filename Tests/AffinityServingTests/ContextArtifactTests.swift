import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing
import AffinityTestSupport

@Suite struct ContextArtifactTests {
    /// A fitted FM written and read back scores as before; unknown users, items and values score without error;
    /// a corrupted byte is refused by the checksum.
    @Test func roundTripAndScoring() throws {
        var dataset = Dataset(name: "toy", users: IDMap(rawIDs: ["u1", "u2", "u3"]), items: IDMap(rawIDs: ["i1", "i2"]),
                              interactions: Interactions(users: [0, 0, 1, 2, 2, 1], items: [0, 1, 0, 1, 0, 1], ratings: [5, 1, 4, 2, 5, 1]))
        dataset.userFields = [FieldColumn(name: "gender", type: .token, values: ["F", "M", "F"])]
        dataset.itemFields = [FieldColumn(name: "class", type: .tokenSeq, values: ["Drama Comedy", "Horror"])]
        let schema = try FeatureSchema.make(dataset, userFields: nil, itemFields: nil)
        let data = ContextData(schema: schema, userBags: schema.sideBags(.user, of: dataset), itemBags: schema.sideBags(.item, of: dataset),
                               users: dataset.interactions.users, items: dataset.interactions.items,
                               labels: try ContextData.thresholdLabels(dataset, threshold: 4))
        var h = Hyperparameters(["epochs": "3", "train_batch_size": "2"])
        let model = try FM(&h)
        try model.fit(data, valid: nil, context: TrainingContext(seed: 1))
        let path = Fixtures.temporaryFolder() + "/fm.ctr"
        try ContextArtifact(model: model, name: "fm", settings: h.effective, seed: 1, dataset: dataset, schema: schema).write(to: path)
        let scorer = try ContextScorer(ContextArtifact.read(from: path))
        let scores = scorer.score(user: "u1", items: ["i1", "i2"])
        #expect(scores == model.predict(data.subset([0, 1])))
        let unknown = scorer.score(user: "new", items: ["i1", "brand-new"], context: ["gender": "X"])
        #expect(unknown.count == 2 && unknown.allSatisfy { $0 > 0 && $0 < 1 })
        var bytes = try DurableFile.read(path)
        bytes[bytes.count - 8] ^= 0xFF
        #expect(throws: ArtifactError.self) { try ContextArtifact.decode(bytes) }
    }
}
