import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityServing
import AffinityServer
import AffinityPostgres
import AffinityTestSupport

/// `affinity worker` and the replicas that follow the model registry: requests recorded by a replica are served by
/// the worker, new versions reach every replica, the lock admits one trainer, and a killed worker leaves the live
/// version serving and the lock free.
@Suite("Training worker")
struct WorkerTests {
    static func worker(_ location: StoreLocation, _ store: any AffinityStore) -> TrainingWorker {
        TrainingWorker(store: store, logger: .init(label: "worker-test"), acquireLock: location.trainingLock(for: store))
    }

    @Test("a replica's retrain request is trained by the worker, and every replica swaps to the new version",
          arguments: StoreKind.allCases)
    func requestTrainPublishSwap(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let storeA = try location.open(), storeB = try location.open(), storeW = try location.open()
        defer { try? storeA.close(); try? storeB.close(); try? storeW.close() }
        let worker = Self.worker(location, storeW)
        let initial = try worker.publishInitial(ReplicaTests.artifact())
        #expect(try worker.publishInitial(ReplicaTests.artifact()).version == initial.version)  // published once
        let (record, live) = try #require(try storeA.liveArtifact())
        let serviceA = try RecommendationService(artifact: live, store: storeA, workerTrains: true, registryVersion: record.version)
        let cursorB = try storeB.changeCursor()
        let serviceB = try RecommendationService(artifact: live, store: storeB, workerTrains: true, registryVersion: record.version)
        let followerB = ChangeFollower(service: serviceB, from: cursorB)

        // A newcomer's events through A; A asks for a retrain, which only records the request.
        try await serviceA.ingest([Event(user: "newcomer", item: "m1"), Event(user: "newcomer", item: "m4")])
        #expect(serviceA.startRetrain())
        #expect(serviceA.modelVersion == 1 && serviceA.currentModel.users.dense("newcomer") == nil)
        let request = try #require(try RetrainRequests.pending(in: storeW))

        let published = try worker.trainOnce(serving: request)
        #expect(published.version == initial.version + 1)
        #expect(try RetrainRequests.pending(in: storeW) == nil)
        #expect(try storeB.liveModelVersion()?.version == published.version)

        // B follows the registry: it now serves the new version, trained on the newcomer's events.
        try followerB.poll()
        #expect(serviceB.registryVersion == published.version)
        #expect(serviceB.currentModel.users.dense("newcomer") != nil)
        #expect(await serviceB.recommendations(user: "newcomer", k: 3, excludeSeen: true).source == .model)
        #expect(try serviceB.status().registryVersion == published.version)
    }

    @Test("a user deleted while the worker trained is forgotten again when the new version arrives")
    func deletionDuringTrainingStays() async throws {
        let location = try StoreKind.sqlite.freshLocation()
        let store = try location.open(), workerStore = try location.open()
        defer { try? store.close(); try? workerStore.close() }
        let worker = Self.worker(location, workerStore)
        try worker.publishInitial(ReplicaTests.artifact())
        let (record, live) = try #require(try store.liveArtifact())
        let service = try RecommendationService(artifact: live, store: store, workerTrains: true, registryVersion: record.version)
        // The fit reads the events, then r2 is deleted before the version is published.
        // The fit blocks its thread until the deletion is done, so it runs off the cooperative pool that the deletion needs.
        let published = try await offCooperativePool {
            try worker.trainOnce(beforeFit: {
                let deleted = DispatchSemaphore(value: 0)
                Task.detached { _ = try? await service.forget(user: "r2", retrain: false); deleted.signal() }
                deleted.wait()
            })
        }
        #expect(try store.count(user: "r2") == 0)
        let artifact = try ModelArtifact.decode(workerStore.modelBytes(published), path: "v\(published.version)")
        #expect(artifact.header.userIDs.contains("r2"))  // the fit saw r2's events
        try service.installLive(version: published.version, artifact: artifact)
        #expect(service.currentModel.users.dense("r2") == nil)
        #expect(await service.recommendations(user: "r2", k: 3, excludeSeen: true).source == .popularity)
    }

    @Test("every read during a version swap is answered, by the old or the new version")
    func swapUnderConcurrentReads() async throws {
        let (store, worker, service) = try Self.replicaOfAWorker()
        defer { try? store.close() }
        // A newcomer served by fold-in on the old version (their seen items excluded) and by a trained row on the new.
        try await service.ingest([Event(user: "newcomer", item: "m2"), Event(user: "newcomer", item: "m5")])
        let next = try worker.trainOnce()
        let nextArtifact = try ModelArtifact.decode(store.modelBytes(next))
        // Each read asks for a trained user (nothing excluded) and for the newcomer (seen items excluded); an
        // answer carries the version that served it, and must be exactly that version's answer.
        @Sendable func read() async -> [[String]] {
            let trained = await service.recommendations(user: "r3", k: 6, excludeSeen: false)
            let newcomer = await service.recommendations(user: "newcomer", k: 4, excludeSeen: true)
            return [trained, newcomer].map { ["v\($0.modelVersion)", $0.source.rawValue] + $0.items.map(\.id) }
        }
        let oldAnswers = await read()
        #expect(oldAnswers[1][1] == RecommendationSource.foldIn.rawValue)
        let stop = ManagedAtomicFlag()
        let readers = (0..<4).map { _ in
            Task.detached { () -> (reads: Int, answers: Set<[String]>) in
                var reads = 0, answers = Set<[String]>()
                while !stop.isSet || reads == 0 {
                    answers.formUnion(await read())
                    reads += 1
                }
                return (reads, answers)
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        try service.installLive(version: next.version, artifact: nextArtifact)
        try await Task.sleep(for: .milliseconds(20))
        stop.set()
        let newAnswers = await read()
        #expect(newAnswers[1][1] == RecommendationSource.model.rawValue)
        #expect(oldAnswers[0][0] != newAnswers[0][0])
        for reader in readers {
            let result = await reader.value
            #expect(result.reads > 0)
            #expect(result.answers.isSubset(of: Set(oldAnswers + newAnswers)), "an answer from neither version: \(result.answers)")
        }
    }

    @Test("events stored while a new version's state is rebuilt are kept by the swap")
    func writesDuringSwapAreReplayed() async throws {
        let (store, worker, service) = try Self.replicaOfAWorker()
        defer { try? store.close() }
        let next = try worker.trainOnce()
        let nextArtifact = try ModelArtifact.decode(store.modelBytes(next))
        // Writers run while the swap rebuilds; every event they stored must be in the swapped-in state.
        let stop = ManagedAtomicFlag()
        let writer = Task.detached { () -> Int in
            var written = 0
            while !stop.isSet || written == 0 {
                _ = try await service.ingest([Event(user: "late\(written)", item: "m\(written % 6)")])
                written += 1
            }
            return written
        }
        try await Task.sleep(for: .milliseconds(10))
        try service.installLive(version: next.version, artifact: nextArtifact)
        stop.set()
        let written = try await writer.value
        for n in 0..<written {
            let top = await service.recommendations(user: "late\(n)", k: 6, excludeSeen: true)
            #expect(top.source == .foldIn, "late\(n)'s event was lost by the swap")
            #expect(!top.items.map(\.id).contains("m\(n % 6)"))
        }
    }

    @Test("one trainer at a time on a SQLite store: a second lease waits for the first")
    func fileLockExcludes() async throws {
        let path = Fixtures.temporaryFolder("lock") + "/events.sqlite.training-lock"
        let first = try FileTrainingLease(path: path)
        let acquired = ManagedAtomicFlag()
        let waiter = Thread {
            let second = try? FileTrainingLease(path: path)
            acquired.set()
            second?.release()
        }
        waiter.start()
        try await Task.sleep(for: .milliseconds(200))
        #expect(!acquired.isSet)
        first.release()
        let clock = ContinuousClock(), start = clock.now
        while !acquired.isSet && clock.now - start < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(acquired.isSet)
    }

    @Test("a worker killed mid-training releases the lock; the live version keeps serving; the next run publishes",
          arguments: StoreKind.allCases)
    func killedWorker(kind: StoreKind) async throws {
        let executable = try #require(Fixtures.affinityExecutable(), "the affinity executable is not built")
        let location = try kind.freshLocation()
        let store = try location.open()
        defer { try? store.close() }
        // A model whose refit takes a minute or more: 40,000 interactions, 300 epochs (it is killed long before).
        var rng = SeededGenerator(seed: 9)
        let users = 2_000, items = 500, d = 16, n = 40_000
        let header = ModelArtifact.Header(
            model: "bpr", hyperparameters: ["embedding_size": "\(d)"], retrainEpochs: 300, seed: 3, dataset: "slow",
            dataFingerprint: "slow-1", createdAt: "2026-12-05T00:00:00Z",
            userIDs: (0..<users).map { "u\($0)" }, itemIDs: (0..<items).map { "i\($0)" }, itemTitles: nil,
            dimension: d, interactionCount: n)
        let artifact = try ModelArtifact(
            header: header,
            userEmbeddings: Matrix(rows: users, cols: d, values: (0..<(users * d)).map { _ in rng.nextGaussian() * 0.1 }),
            itemEmbeddings: Matrix(rows: items, cols: d, values: (0..<(items * d)).map { _ in rng.nextGaussian() * 0.1 }),
            training: Interactions(users: (0..<n).map { Int32($0 % users) }, items: (0..<n).map { _ in Int32(rng.next() % UInt64(items)) }))
        let worker = Self.worker(location, store)
        let initial = try worker.publishInitial(artifact)
        // The store holds the training events (a replica seeds it so).
        _ = try RecommendationService(artifact: artifact, store: store, workerTrains: true, registryVersion: initial.version)

        let storeArgument: String
        switch location {
        case .sqlite(let path): storeArgument = path
        case .postgres(let url): storeArgument = url
        }
        let log = Fixtures.temporaryFolder("worker") + "/worker.log"
        let pid = try Self.spawn(executable, ["worker", "--store", storeArgument, "--once"], output: log)
        // Killed once it is fitting. The wait blocks this thread rather than suspending: a suspended task may not be
        // resumed for seconds while the parallel suite keeps every cooperative thread busy, and the fit would finish.
        let clock = ContinuousClock(), start = clock.now
        var fitting = false
        while clock.now - start < .seconds(60) {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("retraining") { fitting = true; break }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        #expect(fitting, "the worker never started fitting: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(try store.liveModelVersion()?.version == initial.version, "the killed worker published")

        // The lock is free at once, and the next run publishes.
        switch location {
        case .sqlite(let path):
            let fd = open(path + ".training-lock", O_RDWR)
            defer { close(fd) }
            #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
            flock(fd, LOCK_UN)
        case .postgres:
            let postgres = try #require(store as? PostgresEventStore)
            var lease = try postgres.tryAdvisoryLock()
            let waited = clock.now
            // The server notices the killed session's socket closing almost at once; allow for a loaded machine.
            while lease == nil && clock.now - waited < .seconds(10) {
                try await Task.sleep(for: .milliseconds(50))
                lease = try postgres.tryAdvisoryLock()
            }
            #expect(lease != nil, "the killed worker's advisory lock was not released")
            lease?.release()
        }
        // The next run publishes (an operator first makes a one-epoch variant live, to keep the test short).
        var quick = artifact
        quick.header.retrainEpochs = 1
        let quickRecord = try store.publishModel(.bytes(quick.encoded()), note: "one epoch", makeLive: true)
        #expect(try worker.trainOnce().version == quickRecord.version + 1)
    }

    /// A fresh SQLite store with the fixture model published by a worker, and a replica serving its live version.
    static func replicaOfAWorker() throws -> (store: any AffinityStore, worker: TrainingWorker, service: RecommendationService) {
        let location = try StoreKind.sqlite.freshLocation()
        let store = try location.open()
        let worker = Self.worker(location, store)
        try worker.publishInitial(ReplicaTests.artifact())
        let (record, live) = try #require(try store.liveArtifact())
        return (store, worker, try RecommendationService(artifact: live, store: store, workerTrains: true, registryVersion: record.version))
    }

    static func spawn(_ program: String, _ arguments: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = [program] + arguments
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for a in cArguments { free(a) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, program, &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw ServiceError.invalid("\(program): \(String(cString: strerror(spawned)))") }
        return pid
    }
}

/// A flag set once, read from several threads.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
