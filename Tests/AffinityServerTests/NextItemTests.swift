import Testing
import Foundation
import Hummingbird
import HummingbirdTesting
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing
@testable import AffinityServer
import AffinityTestSupport

/// The next-item route: a sequential model file round-trips, and the answer follows the events in the store.
@Suite struct NextItemTests {
    /// Users walk items 0 → 1 → … → 19 → 0 from random starts: the next item is the last one + 1.
    static func cycleDataset(users: Int = 80, items: Int = 20, length: Int = 10) -> Dataset {
        var rng = SeededGenerator(seed: 4)
        var u: [Int32] = [], i: [Int32] = [], t: [Double] = []
        for user in 0..<users {
            let start = rng.nextInt(below: items)
            for step in 0..<length {
                u.append(Int32(user)); i.append(Int32((start + step) % items)); t.append(Double(100 * user + step))
            }
        }
        return Dataset(name: "cycle", users: IDMap(rawIDs: (0..<users).map { "u\($0)" }), items: IDMap(rawIDs: (0..<items).map { "item\($0)" }),
                       interactions: Interactions(users: u, items: i, timestamps: t))
    }

    static func trainedArtifact(_ name: String) throws -> SequentialArtifact {
        let dataset = cycleDataset()
        let settings = ["epochs": "20", "max_seq_length": "6", "learning_rate": "0.01", "train_batch_size": "32", "hidden_size": "16",
                        "n_layers": "1", "n_heads": "1"] .merging(name == "sasrec" ? ["inner_size": "32", "hidden_dropout_prob": "0.1", "attn_dropout_prob": "0.1"]
                                                                                 : ["dropout_prob": "0.1"]) { $1 }
        var h = Hyperparameters(settings)
        let model = try ModelRegistry.make(name, hyperparameters: &h) as! any SequenceNetwork
        let split = try DataSplit.make(dataset, strategy: .leaveOneOut, seed: 1)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 3))
        return try SequentialArtifact(model: model, name: name, settings: h.effective, seed: 3, dataset: dataset)
    }

    @Test(arguments: ["sasrec", "tisasrec"])
    func modelFileRoundTripsWithTheSameRanking(_ name: String) throws {
        let artifact = try Self.trainedArtifact(name)
        let folder = Fixtures.temporaryFolder("sequential")
        try artifact.write(to: folder + "/model.affseq")
        let read = try SequentialArtifact.read(from: folder + "/model.affseq")
        #expect(read.header == artifact.header)
        let history: [(item: String, time: Double?)] = [("item3", 10), ("item4", 11), ("item5", 12)]
        let a = try NextItemRanker(artifact).next(after: history, k: 5), b = try NextItemRanker(read).next(after: history, k: 5)
        #expect(a.map(\.item) == b.map(\.item) && a.map(\.score) == b.map(\.score))
        #expect(a.prefix(3).contains { $0.item == "item6" }, "\(name): \(a)")
        // A damaged file is refused with a reason.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/model.affseq")))
        bytes[bytes.count / 2] ^= 0xFF
        #expect(throws: ArtifactError.self) { try SequentialArtifact.decode(bytes) }
    }

    @Test func postingAnEventChangesTheNextItems() async throws {
        let ranker = try NextItemRanker(Self.trainedArtifact("sasrec"))
        let folder = Fixtures.temporaryFolder("next")
        let artifact = try fixtureArtifact()
        try artifact.write(to: folder + "/model.affinity")
        let store = try SQLiteEventStore(path: folder + "/events.sqlite")
        let service = try RecommendationService(artifact: artifact, store: store, modelPath: folder + "/model.affinity")
        var settings = ServerSettings()
        settings.apiKey = apiKey
        let app = Application(router: makeRouter(service: service, settings: settings, metrics: RequestMetrics(), nextItems: ranker))
        try await app.test(.router) { client in
            let post = #"[{"user": "walker", "item": "item3", "timestamp": 1}, {"user": "walker", "item": "item4", "timestamp": 2}]"#
            try await client.execute(uri: "/v1/events", method: .post, headers: authorized, body: ByteBuffer(string: post)) { #expect($0.status == .ok) }
            var before: [String] = []
            try await client.execute(uri: "/v1/users/walker/next?k=3", method: .get) { response in
                #expect(response.status == .ok)
                before = itemIDs(response)
                #expect(json(response)["events"] as? Int == 2 && json(response)["model"] as? String == "sasrec")
            }
            #expect(before.contains("item5"), "\(before)")
            let later = #"[{"user": "walker", "item": "item12", "timestamp": 3}]"#
            try await client.execute(uri: "/v1/events", method: .post, headers: authorized, body: ByteBuffer(string: later)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/users/walker/next?k=3", method: .get) { response in
                let after = itemIDs(response)
                #expect(after != before)
                #expect(after.contains("item13"), "\(after)")
            }
            try await client.execute(uri: "/v1/users/walker/next?k=0", method: .get) { #expect($0.status == .badRequest) }
        }
        // Without a sequential model the route says so.
        let plain = Application(router: makeRouter(service: service, settings: settings, metrics: RequestMetrics()))
        try await plain.test(.router) { client in
            try await client.execute(uri: "/v1/users/walker/next", method: .get) { response in
                #expect(response.status == .notFound && errorMessage(response)?.contains("--sequential-model") == true)
            }
        }
    }
}
