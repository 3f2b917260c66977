import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import AffinityServing
import AffinityServer
import AffinityPostgres

/// `affinity worker`: trains off the serving path and publishes to the store's model registry.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Retrain the served model on the store's events, on request or on a schedule, and publish it to every replica.",
        discussion: """
        Replicas started with `affinity serve --worker-trains` on the same store record retrain requests
        (POST /v1/admin/retrain) instead of training, and swap to each version the worker makes live. One worker
        trains at a time: it holds the store's training lock (PostgreSQL's advisory lock, or a file lock beside a
        SQLite store) while it fits, and a killed worker's lock is released with its process. A failed fit is
        logged and the live version keeps serving. SIGTERM or SIGINT stops the worker after a fit in flight.
        """)

    @Option(name: .long, help: "Event store shared with the replicas: a SQLite file or postgres://user[:password]@host[:port]/database.")
    var store: String

    @Option(name: .long, help: "Model file to publish as the first version when the store's registry has none.")
    var model: String?

    @Option(name: .long, help: "Also retrain every SECONDS (default: only on request).")
    var every: Double?

    @Option(name: .long, help: "Seconds between checks for retrain requests.")
    var poll = 1.0

    @Flag(name: .long, help: "Retrain once now, publish, and exit.")
    var once = false

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() async throws {
        try await reportingErrors {
            guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
            guard poll > 0, poll <= 3600 else { throw ValidationError("--poll must be between 0 and 3600 seconds") }
            if let every, every <= 0 { throw ValidationError("--every must be a positive number of seconds") }
            var logger = Logger(label: "affinity-worker")
            logger.logLevel = level
            let location = StoreLocation(store)
            let events = try location.open(logger: logger)
            defer { try? events.close() }
            let worker = TrainingWorker(store: events, logger: logger, acquireLock: location.trainingLock(for: events))
            if let model { try worker.publishInitial(ModelArtifact.read(from: model)) }
            if once {
                let record = try worker.trainOnce(serving: try RetrainRequests.pending(in: events))
                print("published model version \(record.version) (\(record.note))")
                return
            }
            let service = WorkerService(worker: worker, every: every.map { .milliseconds(Int($0 * 1000)) },
                                        poll: .milliseconds(Int(poll * 1000)))
            try await ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        }
    }
}

/// The worker's loop as a lifecycle service: it ends on graceful shutdown.
private struct WorkerService: Service {
    let worker: TrainingWorker
    let every: Duration?
    let poll: Duration

    func run() async {
        await cancelWhenGracefulShutdown { await worker.run(every: every, poll: poll) }
    }
}
