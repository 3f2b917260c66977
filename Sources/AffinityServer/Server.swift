import Foundation
import Hummingbird
import Logging
import NIOPosix
import ServiceLifecycle
import AffinityServing

/// Settings of `affinity serve`.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Bearer key for write and admin routes (nil: those routes are refused).
    public var apiKey: String?
    /// Whether read routes (recommendations, similar items) need the key too.
    public var keyedReads = false
    /// Largest request body accepted, bytes.
    public var maxBodyBytes = 4 << 20
    /// Event-loop threads for HTTP I/O (the ranking itself runs on the service's scoring threads).
    public var ioThreads = 1
    /// Most events in one batch.
    public var maxBatch = 10_000
    /// Largest k accepted.
    public var maxK = 1000
    public init() {}
}

/// Every route the service answers, as (method, path template): the source of truth that the OpenAPI
/// document is tested against.
public enum Routes {
    public static let all: [(method: String, path: String)] = [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/v1/users/{id}/recommendations"),
        ("GET", "/v1/items/{id}/similar"),
        ("GET", "/v1/users/{id}/next"),
        ("POST", "/v1/events"),
        ("DELETE", "/v1/users/{id}"),
        ("POST", "/v1/admin/retrain"),
        ("GET", "/v1/admin/status"),
        ("POST", "/v1/score"),
    ]
}

/// An error answered (by `ServiceMiddleware`) as `{"error": {"status": …, "message": …}}`.
struct APIError: Error {
    let status: HTTPResponse.Status
    let message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

struct ErrorBody: Codable { struct Detail: Codable { let status: Int; let message: String }; let error: Detail }

func errorResponse(_ status: HTTPResponse.Status, _ message: String) -> Response {
    jsonResponse(ErrorBody(error: .init(status: Int(status.code), message: message)), status: status)
}

private let encoder: JSONEncoder = {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.sortedKeys]
    return e
}()

func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    return response(ByteBuffer(bytes: data), status: status)
}

func response(_ body: ByteBuffer, contentType: String = "application/json; charset=utf-8", status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = contentType
    return Response(status: status, headers: headers, body: .init(byteBuffer: body))
}

// MARK: Request and response bodies

/// A user or item id given as a JSON string or integer.
struct FlexibleID: Decodable {
    let value: String
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { value = s; return }
        if let i = try? c.decode(Int64.self) { value = String(i); return }
        throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an integer id"))
    }
}

struct EventBody: Decodable {
    let user: FlexibleID
    let item: FlexibleID
    let type: String?
    let value: Double?
    let timestamp: Double?
}

/// `{"events": [...]}` or a bare array of events.
struct EventBatch: Decodable {
    let events: [EventBody]
    private enum Keys: String, CodingKey { case events }
    init(from decoder: Decoder) throws {
        if let list = try? decoder.singleValueContainer().decode([EventBody].self) { events = list; return }
        let c = try decoder.container(keyedBy: Keys.self)
        events = try c.decode([EventBody].self, forKey: .events)
    }
}

/// `POST /v1/score`: click probabilities of candidate items for a user, with optional raw user field values.
struct ScoreBody: Decodable {
    let user: FlexibleID
    let items: [FlexibleID]
    let context: [String: FlexibleID]?
}

struct ScoreJSON: Encodable {
    struct Entry: Encodable { let item: String; let probability: Float }
    let user: String
    let model: String
    let scores: [Entry]
}

struct EventsJSON: Encodable { let accepted: Int; let firstId: Int64?; let lastId: Int64?; let usersUpdated: Int }
struct DeleteJSON: Encodable { let user: String; let eventsDeleted: Int; let unlearning: String; let modelVersion: Int }
struct RetrainJSON: Encodable { let status: String }

// MARK: Middleware

/// Turns every error into a JSON body, records metrics per route and logs failures.
struct ServiceMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RequestMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = errorResponse(error.status, error.message)
        } catch let error as HTTPError {  // the router's own: not found, method not allowed, body too large
            response = errorResponse(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as StoreUnavailableError {
            logger.warning("store unreachable", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            var unavailable = errorResponse(.serviceUnavailable, "the event store is unreachable, retry later: \(error.description)")
            unavailable.headers[.retryAfter] = "1"
            response = unavailable
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            response = errorResponse(.internalServerError, "internal error")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        metrics.record(method: request.method.rawValue, route: context.endpointPath ?? "NotFound",
                       status: Int(response.status.code), seconds: seconds)
        return response
    }
}

// MARK: Routes

/// Builds the router of the service.
/// Builds the router of the service; `ranker` (a click-through model, `serve --ctr-model`) answers `POST /v1/score`
/// and re-ranks recommendations on `?rerank=ctr`; `nextItems` (a sequential model, `serve --sequential-model`)
/// answers `GET /v1/users/{id}/next`.
public func makeRouter(service: RecommendationService, settings: ServerSettings, metrics: RequestMetrics,
                       ranker: ContextScorer? = nil, nextItems: NextItemRanker? = nil) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: ServiceMiddleware(metrics: metrics, logger: service.logger))

    @Sendable func authorize(_ request: Request) throws {
        guard let key = settings.apiKey else { throw APIError(.forbidden, "this route needs an API key, and the server has none configured (--api-key or AFFINITY_API_KEY)") }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              constantTimeEqual(String(header.dropFirst(7)), key) else {
            throw APIError(.unauthorized, "missing or wrong API key (send 'Authorization: Bearer KEY')")
        }
    }
    @Sendable func parameterK(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("k") else { return 20 }
        guard let k = Int(text), k >= 1, k <= settings.maxK else {
            throw APIError(.badRequest, "k must be an integer between 1 and \(settings.maxK), got '\(text)'")
        }
        return k
    }
    @Sendable func id(_ context: BasicRequestContext) throws -> String {
        guard let raw = context.parameters.get("id"), !raw.isEmpty else { throw APIError(.badRequest, "missing id") }
        return raw.removingPercentEncoding ?? raw
    }

    router.get("/healthz") { _, _ in jsonResponse(["status": "ok"]) }

    router.get("/metrics") { _, _ -> Response in
        let status = try service.status()
        let text = metrics.render(gauges: [
            ("affinity_model_version", "Version of the model being served (increments on every swap).", Double(status.modelVersion)),
            ("affinity_events_stored", "Events in the store.", Double(status.eventsStored)),
            ("affinity_model_users", "Users with a trained embedding.", Double(status.users)),
            ("affinity_model_items", "Items in the catalogue.", Double(status.items)),
            ("affinity_scoring_mean_batch", "Mean recommendation requests ranked per pass over the item table.", service.meanScoringBatch),
        ])
        return response(ByteBuffer(string: text), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    router.get("/v1/users/:id/recommendations") { request, context -> Response in
        if settings.keyedReads { try authorize(request) }
        let user = try id(context)
        let k = try parameterK(request)
        var excludeSeen = true
        if let text = request.uri.queryParameters.get("exclude_seen") {
            switch text.lowercased() {
            case "true", "1", "yes": excludeSeen = true
            case "false", "0", "no": excludeSeen = false
            default: throw APIError(.badRequest, "exclude_seen must be true or false, got '\(text)'")
            }
        }
        switch request.uri.queryParameters.get("rerank") {
        case nil, "none":
            return await recommendationsResponse(service: service, user: user, k: k, excludeSeen: excludeSeen)
        case "ctr":
            guard let ranker else { throw APIError(.badRequest, "rerank=ctr needs a click-through model (serve --ctr-model)") }
            var candidates = max(k, 100)
            if let text = request.uri.queryParameters.get("candidates") {
                guard let n = Int(text), n >= k, n <= settings.maxK else {
                    throw APIError(.badRequest, "candidates must be an integer between k and \(settings.maxK), got '\(text)'")
                }
                candidates = n
            }
            // Generate then rank: the retrieval model's top candidates, ordered by the click-through model.
            var result = await service.recommendations(user: user, k: candidates, excludeSeen: excludeSeen)
            let probabilities = ranker.score(user: user, items: result.items.map(\.id))
            let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }.prefix(k)
            result.titles = result.titles.map { titles in order.map { titles[$0] } }
            result.items = order.map { (result.items[$0].id, probabilities[$0]) }
            return rankingResponse(subject: ("user", user), result, source: true)
        case let other?:
            throw APIError(.badRequest, "rerank must be 'ctr' or 'none', got '\(other)'")
        }
    }

    router.post("/v1/score") { request, _ -> Response in
        if settings.keyedReads { try authorize(request) }
        guard let ranker else { throw APIError(.notFound, "no click-through model is loaded (serve --ctr-model)") }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: settings.maxBodyBytes) } catch {
            throw APIError(.contentTooLarge, "request body is larger than \(settings.maxBodyBytes) bytes")
        }
        let score: ScoreBody
        do { score = try JSONDecoder().decode(ScoreBody.self, from: Data(buffer: body)) } catch {
            throw APIError(.badRequest, "invalid score request: \(describe(error))")
        }
        guard score.items.count <= settings.maxBatch else {
            throw APIError(.contentTooLarge, "a request scores at most \(settings.maxBatch) items, got \(score.items.count)")
        }
        let items = score.items.map(\.value)
        let probabilities = ranker.score(user: score.user.value, items: items, context: score.context?.mapValues(\.value) ?? [:])
        return jsonResponse(ScoreJSON(user: score.user.value, model: ranker.name,
                                      scores: zip(items, probabilities).map { ScoreJSON.Entry(item: $0, probability: $1) }))
    }

    router.get("/v1/users/:id/next") { request, context -> Response in
        if settings.keyedReads { try authorize(request) }
        guard let nextItems else { throw APIError(.notFound, "no sequential model is loaded (serve --sequential-model)") }
        return try nextItemsResponse(nextItems, store: service.store, user: try id(context), k: try parameterK(request))
    }

    router.get("/v1/items/:id/similar") { request, context -> Response in
        if settings.keyedReads { try authorize(request) }
        let item = try id(context)
        let k = try parameterK(request)
        do {
            return rankingResponse(subject: ("item", item), try await service.similarItems(item: item, k: k), source: false)
        } catch let error as ServiceError {
            throw APIError(.notFound, error.description)
        }
    }

    router.post("/v1/events") { request, context -> Response in
        try authorize(request)
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: settings.maxBodyBytes) } catch {
            throw APIError(.contentTooLarge, "request body is larger than \(settings.maxBodyBytes) bytes")
        }
        let batch: EventBatch
        do { batch = try JSONDecoder().decode(EventBatch.self, from: Data(buffer: body)) } catch {
            throw APIError(.badRequest, "invalid event batch: \(describe(error))")
        }
        guard !batch.events.isEmpty else { throw APIError(.badRequest, "the batch has no events") }
        guard batch.events.count <= settings.maxBatch else {
            throw APIError(.contentTooLarge, "a batch holds at most \(settings.maxBatch) events, got \(batch.events.count)")
        }
        var events: [Event] = []
        events.reserveCapacity(batch.events.count)
        for (n, e) in batch.events.enumerated() {
            let user = e.user.value, item = e.item.value
            guard !user.isEmpty, user.utf8.count <= 256 else { throw APIError(.badRequest, "events[\(n)].user must be 1–256 bytes") }
            guard !item.isEmpty, item.utf8.count <= 256 else { throw APIError(.badRequest, "events[\(n)].item must be 1–256 bytes") }
            if let t = e.type, t.utf8.count > 64 { throw APIError(.badRequest, "events[\(n)].type must be at most 64 bytes") }
            if let v = e.value, !v.isFinite { throw APIError(.badRequest, "events[\(n)].value must be a finite number") }
            if let t = e.timestamp, !t.isFinite { throw APIError(.badRequest, "events[\(n)].timestamp must be a finite number") }
            events.append(Event(user: user, item: item, type: e.type, value: e.value, timestamp: e.timestamp))
        }
        let result = try await service.ingest(events)
        return jsonResponse(EventsJSON(accepted: events.count, firstId: result.ids?.lowerBound, lastId: result.ids?.upperBound,
                                       usersUpdated: result.usersUpdated))
    }

    router.delete("/v1/users/:id") { request, context -> Response in
        try authorize(request)
        let user = try id(context)
        let mode = request.uri.queryParameters.get("unlearning") ?? "approximate"
        guard mode == "approximate" || mode == "retrain" else {
            throw APIError(.badRequest, "unlearning must be 'approximate' or 'retrain', got '\(mode)'")
        }
        let result = try await service.forget(user: user, retrain: mode == "retrain")
        return jsonResponse(DeleteJSON(user: user, eventsDeleted: result.eventsDeleted, unlearning: result.unlearning.rawValue,
                                       modelVersion: result.modelVersion))
    }

    router.post("/v1/admin/retrain") { request, _ -> Response in
        try authorize(request)
        let started = service.startRetrain()
        let status = service.workerTrains ? (started ? "requested" : "request-failed") : (started ? "started" : "already-running")
        return jsonResponse(RetrainJSON(status: status), status: service.workerTrains && !started ? .serviceUnavailable : .accepted)
    }

    router.get("/v1/admin/status") { request, _ -> Response in
        try authorize(request)
        return jsonResponse(try service.status())
    }
    return router
}

/// The work of one recommendations request after parsing: ranking (batched with concurrent requests),
/// titles and the JSON body.
public func recommendationsResponse(service: RecommendationService, user: String, k: Int, excludeSeen: Bool) async -> Response {
    rankingResponse(subject: ("user", user), await service.recommendations(user: user, k: k, excludeSeen: excludeSeen), source: true)
}

/// The same work ranked on the calling thread: the serving benchmark's in-process reference.
public func recommendationsResponseNow(service: RecommendationService, user: String, k: Int, excludeSeen: Bool) -> Response {
    rankingResponse(subject: ("user", user), service.recommendations(user: user, k: k, excludeSeen: excludeSeen), source: true)
}

/// `{"items": [{"item", "score", "title"?}…], "model_version", "source"?, SUBJECT}` written directly (keys sorted,
/// as the encoder writes the other bodies): Foundation's JSONEncoder costs more than the ranking itself here.
func rankingResponse(subject: (key: String, id: String), _ result: Recommendations, source: Bool) -> Response {
    var out = #"{"items":["#
    out.reserveCapacity(64 + result.items.count * 80)
    for (n, entry) in result.items.enumerated() {
        if n > 0 { out += "," }
        out += #"{"item":"#
        appendJSONString(entry.id, to: &out)
        out += #","score":"#
        out += entry.score.isFinite ? String(entry.score) : "null"
        if let titles = result.titles {
            out += #","title":"#
            appendJSONString(titles[n], to: &out)
        }
        out += "}"
    }
    out += #"],"model_version":\#(result.modelVersion)"#
    if source { out += #","source":"\#(result.source.rawValue)""# }
    out += #",""# + subject.key + #"":"#
    appendJSONString(subject.id, to: &out)
    out += "}"
    return response(ByteBuffer(string: out))
}

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
        difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return difference == 0
}

private func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let c): return "malformed JSON" + (c.codingPath.isEmpty ? "" : " at \(path(c.codingPath))")
    case DecodingError.keyNotFound(let key, let c): return "missing field '\(path(c.codingPath + [key]))'"
    case DecodingError.typeMismatch(_, let c): return "wrong type at '\(path(c.codingPath))': \(c.debugDescription)"
    case DecodingError.valueNotFound(_, let c): return "null at '\(path(c.codingPath))'"
    default: return "\(error)"
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
}

/// Runs the service until SIGTERM or SIGINT: the HTTP server and the service's background work (retrains, scoring
/// threads, and with replicas on a shared store the `follower` that polls the store's changes) in one service
/// group. On the signal the server stops accepting and finishes in-flight requests, then the background services
/// stop (reverse order of the group), then the store is closed.
public func runServer(service: RecommendationService, settings: ServerSettings, ranker: ContextScorer? = nil,
                      nextItems: NextItemRanker? = nil, follower: ChangeFollower? = nil) async throws {
    let metrics = RequestMetrics()
    let router = makeRouter(service: service, settings: settings, metrics: metrics, ranker: ranker, nextItems: nextItems)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, settings.ioThreads))
    let app = Application(router: router, configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "affinity"),
                          eventLoopGroupProvider: .shared(group), logger: service.logger)
    service.logger.info("serving", metadata: ["address": "\(settings.host):\(settings.port)", "model_version": "\(service.modelVersion)"])
    let background: [any Service] = service.backgroundServices + (follower.map { [$0] } ?? [])
    let services = ServiceGroup(services: background + [app], gracefulShutdownSignals: [.sigterm, .sigint],
                                logger: service.logger)
    try await services.run()
    try service.store.close()
    try await group.shutdownGracefully()
    service.logger.info("stopped; event store closed")
}
