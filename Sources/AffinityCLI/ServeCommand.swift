import ArgumentParser
import Foundation
import Logging
import AffinityServing
import AffinityServer

/// `affinity serve`: the HTTP recommendation service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a saved model over HTTP (recommendations, similar items, events, deletion, retraining).",
        discussion: """
        The API is under /v1 (docs/openapi.yaml). Events are stored in an embedded SQLite database and
        acknowledged once durable; a new store starts with the model's training data. Write and admin routes
        need the API key (--api-key or AFFINITY_API_KEY) as 'Authorization: Bearer KEY'. SIGTERM or SIGINT
        stops the server after in-flight requests finish.
        """)

    @Option(name: .long, help: "Model file written by `affinity train --save`.")
    var model: String

    @Option(name: .long, help: "Click-through model file (`affinity train --task ctr --save`): answers POST /v1/score and re-ranks recommendations on ?rerank=ctr.")
    var ctrModel: String?

    @Option(name: .long, help: "Sequential model file (`affinity train --model sasrec|tisasrec|bert4rec|gru4rec --save`): answers GET /v1/users/{id}/next from each user's stored events.")
    var sequentialModel: String?

    @Option(name: .long, help: "SQLite event store (created if missing).")
    var store: String

    @Option(name: .long, help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on.")
    var port = 8080

    @Option(name: .long, help: "API key for write and admin routes (default: $AFFINITY_API_KEY).")
    var apiKey: String?

    @Flag(name: .long, help: "Require the API key on read routes too.")
    var keyedReads = false

    @Option(name: .long, help: "Threads that rank recommendation requests in batches (default: one per core).")
    var scoringThreads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Event-loop threads for HTTP I/O.")
    var ioThreads = 1

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() async throws {
        try await reportingErrors {
            guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
            guard (1...65535).contains(port) else { throw ValidationError("port must be between 1 and 65535") }
            var logger = Logger(label: "affinity")
            logger.logLevel = level
            let artifact = try ModelArtifact.read(from: model)
            let events = try EventStore(path: store)
            guard (1...64).contains(scoringThreads) else { throw ValidationError("--scoring-threads must be between 1 and 64") }
            let service = try RecommendationService(artifact: artifact, store: events, modelPath: model, logger: logger,
                                                    scoringThreads: scoringThreads)
            var settings = ServerSettings()
            settings.host = host
            settings.port = port
            settings.apiKey = apiKey ?? ProcessInfo.processInfo.environment["AFFINITY_API_KEY"]
            settings.keyedReads = keyedReads
            guard (1...64).contains(ioThreads) else { throw ValidationError("--io-threads must be between 1 and 64") }
            settings.ioThreads = ioThreads
            if settings.apiKey == nil { logger.warning("no API key: write and admin routes will refuse every request") }
            let ranker = try ctrModel.map { try ContextScorer(ContextArtifact.read(from: $0)) }
            let nextItems = try sequentialModel.map { try NextItemRanker(SequentialArtifact.read(from: $0)) }
            try await runServer(service: service, settings: settings, ranker: ranker, nextItems: nextItems)
        }
    }
}
