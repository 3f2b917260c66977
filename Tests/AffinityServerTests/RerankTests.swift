import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing
@testable import AffinityServer
import AffinityTestSupport

/// A click-through FM trained on the fixture's users and items (ids as in `fixtureArtifact`), with one user field.
func fixtureRanker() throws -> ContextScorer {
    let users = (0..<6).map { "user\($0)" }, items = (0..<8).map { "item\($0)" }
    var rng = SeededGenerator(seed: 5)
    var rowUsers: [Int32] = [], rowItems: [Int32] = [], ratings: [Float] = []
    for u in 0..<6 {
        for i in 0..<8 where rng.nextFloat() < 0.7 {
            rowUsers.append(Int32(u)); rowItems.append(Int32(i))
            ratings.append((u + i) % 3 == 0 ? 5 : 2)  // a pattern FM can pick up through the id embeddings
        }
    }
    var dataset = Dataset(name: "fixture", users: IDMap(rawIDs: users), items: IDMap(rawIDs: items),
                          interactions: Interactions(users: rowUsers, items: rowItems, ratings: ratings))
    dataset.userFields = [FieldColumn(name: "group", type: .token, values: ["a", "b", "a", "b", "a", "b"])]
    let schema = try FeatureSchema.make(dataset, userFields: nil, itemFields: nil)
    let data = ContextData(schema: schema, userBags: schema.sideBags(.user, of: dataset), itemBags: schema.sideBags(.item, of: dataset),
                           users: rowUsers, items: rowItems, labels: try ContextData.thresholdLabels(dataset, threshold: 4))
    var h = Hyperparameters(["epochs": "20", "train_batch_size": "8", "learning_rate": "0.05"])
    let model = try FM(&h)
    try model.fit(data, valid: nil, context: TrainingContext(seed: 3))
    let path = Fixtures.temporaryFolder("ranker") + "/fm.ctr"
    try ContextArtifact(model: model, name: "fm", settings: h.effective, seed: 3, dataset: dataset, schema: schema).write(to: path)
    return try ContextScorer(ContextArtifact.read(from: path))
}

@Suite struct RerankTests {
    /// Generate then rank: `?rerank=ctr` returns the retrieval model's top `candidates` ordered by the click-through
    /// model's probabilities (the same the scorer gives directly), cut to k; `POST /v1/score` returns them too.
    @Test func rerankedOrderIsTheClickThroughOrderOverTheRetrievalTopN() async throws {
        let ranker = try fixtureRanker()
        let h = try Harness(ranker: ranker)
        let retrieval = await h.service.recommendations(user: "user0", k: 5, excludeSeen: true).items.map(\.id)
        let probabilities = ranker.score(user: "user0", items: retrieval)
        let expected = retrieval.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(3)
        #expect(Set(probabilities).count == probabilities.count)  // distinct scores: the order is unambiguous
        #expect(expected.map { retrieval[$0] } != Array(retrieval.prefix(3)))  // re-ranking changes something here
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/v1/users/user0/recommendations?k=3&rerank=ctr&candidates=5", method: .get,
                                     headers: authorized) { response in
                #expect(response.status == .ok)
                #expect(itemIDs(response) == expected.map { retrieval[$0] })
                let scores = (json(response)["items"] as? [[String: Any]] ?? []).compactMap { ($0["score"] as? NSNumber)?.floatValue }
                #expect(scores == expected.map { probabilities[$0] })
            }
            let body = #"{"user": "user0", "items": ["\#(retrieval.joined(separator: #"", ""#))"]}"#
            try await client.execute(uri: "/v1/score", method: .post, headers: authorized, body: .init(string: body)) { response in
                #expect(response.status == .ok)
                let scores = (json(response)["scores"] as? [[String: Any]] ?? []).compactMap { ($0["probability"] as? NSNumber)?.floatValue }
                #expect(scores == probabilities)
            }
            try await client.execute(uri: "/v1/users/user0/recommendations?rerank=popular", method: .get, headers: authorized) { response in
                #expect(response.status == .badRequest)
            }
        }
        // Without a click-through model the re-ranking is refused, not silently skipped.
        let plain = try Harness()
        try await plain.app.test(.router) { client in
            try await client.execute(uri: "/v1/users/user0/recommendations?rerank=ctr", method: .get, headers: authorized) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
