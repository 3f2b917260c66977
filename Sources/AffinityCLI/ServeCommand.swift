import ArgumentParser
import Foundation
import Logging
import AffinityServing
import AffinityServer
import AffinityPostgres

/// `affinity serve`: the HTTP recommendation service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a saved model over HTTP (recommendations, similar items, events, deletion, retraining).",
        discussion: """
        The API is under /v1 (docs/openapi.yaml). Events are stored in an embedded SQLite database, or in a
        PostgreSQL database shared by several replicas (--store postgres://…), and acknowledged once durable; a
        new store starts with the model's training data. Replicas on one PostgreSQL poll it for each other's
        events and deletions (--follow-interval). With --worker-trains, `affinity worker` trains and every
        replica serves the model version the store's registry makes live. Write and admin routes
        need the API key (--api-key or AFFINITY_API_KEY) as 'Authorization: Bearer KEY'. SIGTERM or SIGINT
        stops the server after in-flight requests finish.
        """)

    @Option(name: .long, help: "Model file written by `affinity train --save` (with --worker-trains: published as the first version when the store's registry has none).")
    var model: String?

    @Flag(name: .long, help: "A separate `affinity worker` trains: serve the store registry's live version and swap to each new one, and record retrain requests for the worker instead of training here.")
    var workerTrains = false

    @Option(name: .long, help: "Click-through model file (`affinity train --task ctr --save`): answers POST /v1/score and re-ranks recommendations on ?rerank=ctr.")
    var ctrModel: String?

    @Option(name: .long, help: "Sequential model file (`affinity train --model sasrec|tisasrec|bert4rec|gru4rec --save`): answers GET /v1/users/{id}/next from each user's stored events.")
    var sequentialModel: String?

    @Option(name: .long, help: "Event store: a SQLite file (PATH or sqlite:PATH, created if missing), or a shared PostgreSQL database (postgres://user[:password]@host[:port]/database).")
    var store: String

    @Option(name: .long, help: "Seconds between polls of the store for other replicas' events and deletions (default: 0.25 with PostgreSQL, off with SQLite; 0 turns it off).")
    var followInterval: Double?

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
            guard (1...64).contains(scoringThreads) else { throw ValidationError("--scoring-threads must be between 1 and 64") }
            let location = StoreLocation(store)
            let interval = followInterval ?? (location.isShared || workerTrains ? 0.25 : 0)
            guard interval >= 0, interval <= 3600 else { throw ValidationError("--follow-interval must be between 0 and 3600 seconds") }
            let events = try location.open(logger: logger)
            var artifact: ModelArtifact
            var registryVersion: Int?
            if workerTrains {
                // Every replica serves the registry's live version; the first one up publishes --model if none is.
                if try events.liveModelVersion() == nil {
                    guard let model else { throw ValidationError("--worker-trains: the store has no live model yet; pass --model FILE to publish the first version") }
                    let worker = TrainingWorker(store: events, logger: logger, acquireLock: location.trainingLock(for: events))
                    try worker.publishInitial(ModelArtifact.read(from: model))
                }
                guard let (record, live) = try events.liveArtifact() else { throw ValidationError("--worker-trains: no live model version") }
                (artifact, registryVersion) = (live, record.version)
            } else {
                guard let model else { throw ValidationError("--model is required (unless --worker-trains serves the store's live version)") }
                artifact = try ModelArtifact.read(from: model)
            }
            // Taken before the service reads the store, so that nothing stored meanwhile is missed.
            let start = try events.changeCursor()
            let service = try RecommendationService(artifact: artifact, store: events, modelPath: workerTrains ? nil : model, logger: logger,
                                                    scoringThreads: scoringThreads, workerTrains: workerTrains,
                                                    registryVersion: registryVersion)
            let follower = interval > 0 ? ChangeFollower(service: service, from: start, interval: .milliseconds(Int(interval * 1000))) : nil
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
            try await runServer(service: service, settings: settings, ranker: ranker, nextItems: nextItems, follower: follower)
        }
    }
}
