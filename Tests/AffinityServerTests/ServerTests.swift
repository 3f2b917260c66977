import Testing
import Foundation
import Hummingbird
import HummingbirdTesting
import AffinityCore
import AffinityData
import AffinityServing
@testable import AffinityServer
import AffinityTestSupport

let apiKey = "test-key-123"

/// A small trained-looking model: 6 users, 8 items, d = 4, three clusters of taste.
func fixtureArtifact() throws -> ModelArtifact {
    var rng = SeededGenerator(seed: 11)
    let users = 6, items = 8, d = 4
    let header = ModelArtifact.Header(
        model: "bpr", hyperparameters: ["embedding_size": "4", "epochs": "3"], retrainEpochs: 2, seed: 1, dataset: "fixture",
        dataFingerprint: "fixture-1", createdAt: "2026-11-29T00:00:00Z",
        userIDs: (0..<users).map { "user\($0)" }, itemIDs: (0..<items).map { "item\($0)" },
        itemTitles: (0..<items).map { "Title \($0)" }, dimension: d, interactionCount: 10)
    return try ModelArtifact(
        header: header,
        userEmbeddings: Matrix(rows: users, cols: d, values: (0..<(users * d)).map { _ in rng.nextGaussian() }),
        itemEmbeddings: Matrix(rows: items, cols: d, values: (0..<(items * d)).map { _ in rng.nextGaussian() }),
        training: Interactions(users: [0, 0, 1, 1, 2, 3, 4, 5, 5, 5], items: [0, 1, 1, 2, 3, 4, 5, 6, 7, 0]))
}

struct Harness {
    let service: RecommendationService
    let app: Application<RouterResponder<BasicRequestContext>>
    let folder: String

    init(artifact: ModelArtifact? = nil, settings: ServerSettings? = nil, ranker: ContextScorer? = nil) throws {
        folder = Fixtures.temporaryFolder("serve")
        let a = try artifact ?? fixtureArtifact()
        try a.write(to: folder + "/model.affinity")
        let store = try SQLiteEventStore(path: folder + "/events.sqlite")
        service = try RecommendationService(artifact: a, store: store, modelPath: folder + "/model.affinity")
        var s = settings ?? ServerSettings()
        if settings == nil { s.apiKey = apiKey }
        s.maxBodyBytes = min(s.maxBodyBytes, 64 << 10)
        app = Application(router: makeRouter(service: service, settings: s, metrics: RequestMetrics(), ranker: ranker))
    }
}

let authorized: HTTPFields = [.authorization: "Bearer \(apiKey)", .contentType: "application/json"]

/// The response body as a JSON object (empty when it is not one).
func json(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
}

func itemIDs(_ response: TestResponse) -> [String] {
    (json(response)["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String }
}

func errorMessage(_ response: TestResponse) -> String? {
    (json(response)["error"] as? [String: Any])?["message"] as? String
}

@Suite struct ServerTests {
    @Test func servesKnownUnknownAndFoldedInUsers() async throws {
        let h = try Harness()
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/users/user0/recommendations?k=3", method: .get) { response in
                #expect(response.status == .ok)
                let body = json(response)
                #expect(body["source"] as? String == "model")
                let ids = itemIDs(response)
                #expect(ids.count == 3 && !ids.contains("item0") && !ids.contains("item1"))  // seen items excluded
                #expect((body["items"] as! [[String: Any]])[0]["title"] is String)
            }
            try await client.execute(uri: "/v1/users/user0/recommendations?k=8&exclude_seen=false", method: .get) { response in
                #expect(itemIDs(response).count == 8)
            }
            // Unknown user: popularity fallback, marked as such. item0 and item1 are the most frequent.
            try await client.execute(uri: "/v1/users/stranger/recommendations?k=2", method: .get) { response in
                let body = json(response)
                #expect(body["source"] as? String == "popularity")
                #expect(Set(itemIDs(response)) == ["item0", "item1"])
            }
            // New events: stored, then served by fold-in at once, without retraining.
            let events = #"{"events": [{"user": "stranger", "item": "item5"}, {"user": "stranger", "item": 6, "type": "click", "value": 1.5, "timestamp": 1700000000}]}"#
            try await client.execute(uri: "/v1/events", method: .post, headers: authorized, body: ByteBuffer(string: events)) { response in
                #expect(response.status == .ok)
                let body = json(response)
                #expect(body["accepted"] as? Int == 2 && body["users_updated"] as? Int == 1)
            }
            #expect(try h.service.store.events(of: "stranger").map(\.item) == ["item5", "6"])
            try await client.execute(uri: "/v1/users/stranger/recommendations?k=8", method: .get) { response in
                #expect(json(response)["source"] as? String == "fold-in")
                let ids = itemIDs(response)
                // item5 is excluded as seen; the integer id 6 is stored as "6", an item the model does not know yet.
                #expect(ids.count == 7 && !ids.contains("item5"), "\(ids)")
            }
            // Similar items.
            try await client.execute(uri: "/v1/items/item2/similar?k=4", method: .get) { response in
                #expect(response.status == .ok)
                let ids = itemIDs(response)
                #expect(ids.count == 4 && !ids.contains("item2"))
            }
        }
    }

    @Test func writeAndAdminRoutesNeedTheKey() async throws {
        let h = try Harness()
        let body = ByteBuffer(string: #"[{"user": "a", "item": "item1"}]"#)
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/v1/events", method: .post, body: body) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/events", method: .post, headers: [.authorization: "Bearer wrong"], body: body) {
                #expect($0.status == .unauthorized)
                #expect((json($0)["error"] as? [String: Any])?["status"] as? Int == 401)
            }
            try await client.execute(uri: "/v1/admin/status", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/users/user1", method: .delete) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/admin/retrain", method: .post) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/admin/status", method: .get, headers: authorized) { response in
                #expect(response.status == .ok)
                #expect(json(response)["events_stored"] as? Int == 10)
            }
        }
        #expect(try h.service.store.count() == 10)
        // Keyed reads; and a server without a key refuses writes.
        var keyed = ServerSettings()
        keyed.apiKey = apiKey
        keyed.keyedReads = true
        let k = try Harness(settings: keyed)
        try await k.app.test(.router) { client in
            try await client.execute(uri: "/v1/users/user0/recommendations", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/users/user0/recommendations", method: .get, headers: authorized) { #expect($0.status == .ok) }
        }
        let open = try Harness(settings: ServerSettings())
        try await open.app.test(.router) { client in
            try await client.execute(uri: "/v1/events", method: .post, headers: authorized, body: body) { #expect($0.status == .forbidden) }
        }
    }

    @Test func badInputGetsAJSONErrorAndStoresNothing() async throws {
        let h = try Harness()
        let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
            ("/v1/events", .post, "{not json", .badRequest, "malformed JSON"),
            ("/v1/events", .post, #"{"events": [{"user": true, "item": "item1"}]}"#, .badRequest, "user"),
            ("/v1/events", .post, #"{"events": [{"user": "a", "item": "item1", "value": "high"}]}"#, .badRequest, "value"),
            ("/v1/events", .post, #"{"events": [{"user": "a"}]}"#, .badRequest, "item"),
            ("/v1/events", .post, #"{"events": []}"#, .badRequest, "no events"),
            ("/v1/events", .post, #"{"events": [{"user": "a", "item": "item1"}, {"user": "", "item": "item2"}]}"#, .badRequest, "events[1].user"),
            ("/v1/events", .post, #"{"stuff": 1}"#, .badRequest, "events"),
            ("/v1/events", .post, String(repeating: " ", count: 70_000) + "[]", .contentTooLarge, "larger than"),
            ("/v1/users/user0/recommendations?k=-1", .get, nil, .badRequest, "k must be"),
            ("/v1/users/user0/recommendations?k=0", .get, nil, .badRequest, "k must be"),
            ("/v1/users/user0/recommendations?k=1000000", .get, nil, .badRequest, "k must be"),
            ("/v1/users/user0/recommendations?k=ten", .get, nil, .badRequest, "k must be"),
            ("/v1/users/user0/recommendations?exclude_seen=maybe", .get, nil, .badRequest, "exclude_seen"),
            ("/v1/items/nope/similar", .get, nil, .notFound, "unknown item"),
            ("/v1/nowhere", .get, nil, .notFound, "Not Found"),
            ("/v1/users/user0?unlearning=magic", .delete, nil, .badRequest, "unlearning must be"),
        ]
        try await h.app.test(.router) { client in
            for (uri, method, body, status, fragment) in cases {
                try await client.execute(uri: uri, method: method, headers: authorized, body: body.map { ByteBuffer(string: $0) }) { response in
                    #expect(response.status == status, "\(method) \(uri)")
                    let error = json(response)["error"] as? [String: Any]
                    #expect(error?["status"] as? Int == Int(status.code), "\(uri)")
                    let message = errorMessage(response) ?? ""
                    #expect(message.contains(fragment), "\(uri): \(message)")
                }
            }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
        #expect(try h.service.store.count() == 10)  // the seeded training events only
    }

    @Test func deletingAUserRemovesTheirEventsAndEmbedding() async throws {
        let h = try Harness()
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/v1/users/user5", method: .delete, headers: authorized) { response in
                #expect(response.status == .ok)
                let body = json(response)
                #expect(body["events_deleted"] as? Int == 3)
                #expect(body["unlearning"] as? String == "approximate")
                #expect(body["model_version"] as? Int == 2)
            }
            try await client.execute(uri: "/v1/users/user5/recommendations", method: .get) { response in
                #expect(json(response)["source"] as? String == "popularity")
            }
            // A user only ever served by fold-in has nothing in the model to unlearn.
            try await client.execute(uri: "/v1/events", method: .post, headers: authorized, body: ByteBuffer(string: #"[{"user": "new", "item": "item3"}]"#))
            try await client.execute(uri: "/v1/users/new", method: .delete, headers: authorized) { response in
                #expect(json(response)["unlearning"] as? String == "not-needed")
            }
        }
        #expect(try h.service.store.count(user: "user5") == 0)
        #expect(try h.service.store.count(user: "new") == 0)
        // The model file no longer knows the user, so a restart cannot bring them back.
        let reloaded = try ModelArtifact.read(from: h.folder + "/model.affinity")
        #expect(!reloaded.header.userIDs.contains("user5") && reloaded.header.userIDs.count == 5)
        #expect(reloaded.training.count == 7)
        let restarted = try RecommendationService(artifact: reloaded, store: try SQLiteEventStore(path: h.folder + "/restart.sqlite"))
        #expect(await restarted.recommendations(user: "user5", k: 3, excludeSeen: true).source == .popularity)
        // The served version travels with the file: a restart serves version 2, not 1 again.
        #expect(reloaded.header.modelVersion == 2)
        #expect(restarted.modelVersion == 2)
        #expect(try restarted.status().modelVersion == 2)
    }

    @Test func metricsCountRequestsPerRoute() async throws {
        let h = try Harness()
        try await h.app.test(.router) { client in
            for _ in 0..<3 { try await client.execute(uri: "/v1/users/user1/recommendations", method: .get) }
            try await client.execute(uri: "/v1/users/user1/recommendations?k=0", method: .get)
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("affinity_http_requests_total{method=\"GET\",route=\"/v1/users/{id}/recommendations\",status=\"200\"} 3"))
                #expect(text.contains("affinity_http_requests_total{method=\"GET\",route=\"/v1/users/{id}/recommendations\",status=\"400\"} 1"))
                #expect(text.contains("affinity_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/users/{id}/recommendations\"} 4"))
                #expect(text.contains("affinity_model_version 1"))
                #expect(text.contains("affinity_events_stored 10"))
            }
        }
    }

    /// The OpenAPI document lists exactly the routes the server answers.
    @Test func openAPIDocumentIsInStepWithTheRoutes() async throws {
        let text = try String(contentsOfFile: Fixtures.repositoryRoot + "/docs/openapi.yaml", encoding: .utf8)
        var documented = Set<String>()
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()); continue }
            if !line.hasPrefix("  ") { path = nil }
            if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                if ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method) { documented.insert("\(method) \(path)") }
            }
        }
        let served = Set(Routes.all.map { "\($0.method) \($0.path)" })
        #expect(documented == served)
        // And every listed route is registered (answers with something other than the router's Not Found).
        let h = try Harness()
        try await h.app.test(.router) { client in
            for route in Routes.all {
                let uri = route.path.replacingOccurrences(of: "{id}", with: "item1")
                try await client.execute(uri: uri, method: HTTPRequest.Method(route.method)!, body: route.method == "POST" ? ByteBuffer(string: "[]") : nil) { response in
                    #expect(errorMessage(response) != "Not Found", "\(route.method) \(route.path)")
                }
            }
        }
    }
}

@Suite struct RetrainTests {
    /// A multimodal model's file names its feature files; a retrain reloads them for the new item set, and a
    /// file without a row for a new item stops the retrain with a clear error (the old model keeps serving).
    @Test func multimodalModelRetrainsWithItsFeatures() async throws {
        let dir = Fixtures.temporaryFolder("features")
        let ids = (0..<8).map { "item\($0)" } + ["brand-new"]
        try NPYFile.write(Matrix(rows: ids.count, cols: 3, values: (0..<(ids.count * 3)).map { Float(($0 * 5) % 7) }), path: dir + "/content.npy")
        Fixtures.file("content.items.txt", ids.joined(separator: "\n") + "\n", in: dir)
        var artifact = try fixtureArtifact()
        artifact.header.model = "vbpr"
        artifact.header.hyperparameters = ["embedding_size": "2", "epochs": "2"]
        artifact.header.modalities = ["content": dir + "/content.npy"]
        let h = try Harness(artifact: artifact)
        try await h.service.ingest([Event(user: "user0", item: "brand-new")])
        try h.service.retrainNow()
        #expect(h.service.modelVersion == 2)
        #expect(try await h.service.similarItems(item: "brand-new", k: 3).items.count == 3)
        #expect(try ModelArtifact.read(from: h.folder + "/model.affinity").header.modalities == artifact.header.modalities)

        Fixtures.file("content.items.txt", ids.dropLast().joined(separator: "\n") + "\nsomething-else\n", in: dir)
        #expect(throws: ServiceError.self) { try h.service.retrainNow() }
        #expect(h.service.modelVersion == 2)
    }

    /// A model fitted outside the gradient trainer (iALS) retrains from the store the same way.
    @Test func iALSRetrains() async throws {
        var artifact = try fixtureArtifact()
        artifact.header.model = "ials"
        artifact.header.hyperparameters = ["embedding_size": "4", "epochs": "5"]
        artifact.header.retrainEpochs = 3
        let h = try Harness(artifact: artifact)
        try await h.service.ingest([Event(user: "user0", item: "brand-new"), Event(user: "user2", item: "brand-new")])
        try h.service.retrainNow()
        #expect(h.service.modelVersion == 2)
        let saved = try ModelArtifact.read(from: h.folder + "/model.affinity")
        #expect(saved.header.model == "ials" && saved.header.itemIDs.contains("brand-new"))
        #expect(saved.itemEmbeddings.storage.allSatisfy { $0.isFinite })
        #expect(try await h.service.similarItems(item: "brand-new", k: 3).items.count == 3)
    }

    @Test func retrainLearnsNewItemsAndSwapsTheModel() async throws {
        let h = try Harness()
        try await h.service.ingest([Event(user: "user0", item: "brand-new"), Event(user: "user1", item: "brand-new"),
                                    Event(user: "fresh", item: "item2")])
        await #expect(throws: ServiceError.self) { try await h.service.similarItems(item: "brand-new", k: 3) }
        try h.service.retrainNow()
        #expect(h.service.modelVersion == 2)
        let status = try h.service.status()
        #expect(status.items == 9 && status.users == 7 && status.eventsStored == 13 && !status.retraining)
        #expect(try await h.service.similarItems(item: "brand-new", k: 3).items.count == 3)
        // The new user is now in the model; the file on disk is the new model.
        #expect(await h.service.recommendations(user: "fresh", k: 3, excludeSeen: true).source == .model)
        let saved = try ModelArtifact.read(from: h.folder + "/model.affinity")
        #expect(saved.header.itemIDs.contains("brand-new") && saved.training.count == 13)
        // Events after the retrain's snapshot are folded in at once.
        try await h.service.ingest([Event(user: "user3", item: "item7")])
        #expect(await h.service.recommendations(user: "user3", k: 3, excludeSeen: true).source == .foldIn)
    }
}
