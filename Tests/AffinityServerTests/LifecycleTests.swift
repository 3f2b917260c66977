import Testing
import Foundation
import Logging
import ServiceLifecycle
import AffinityServing
@testable import AffinityServer

/// The retrain and the scoring threads as lifecycle-managed services: reads go on while a retrain is in flight,
/// and a graceful shutdown stops everything, including a retrain still running.
@Suite struct LifecycleTests {
    /// Waits on a semaphore without occupying a cooperative thread.
    func wait(_ semaphore: DispatchSemaphore) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { semaphore.wait(); done.resume() }
        }
    }

    @Test func retrainInFlightDoesNotBlockReadsAndShutdownCompletes() async throws {
        let h = try Harness()
        let service = h.service
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        // Each retrain stops just before fitting until the test lets it go.
        service.setBeforeRetrainFit { entered.signal(); release.wait() }
        let group = ServiceGroup(services: service.backgroundServices, logger: Logger(label: "test"))
        let running = Task { try await group.run() }

        #expect(service.startRetrain())
        await wait(entered)
        // The retrain holds its snapshot and is about to fit: every read and write is still answered.
        #expect(try service.status().retraining)
        let read = await service.recommendations(user: "user0", k: 3, excludeSeen: true)
        #expect(read.items.count == 3 && read.modelVersion == 1 && read.source == .model)
        #expect(try await service.similarItems(item: "item1", k: 2).items.count == 2)
        #expect(try await service.ingest([Event(user: "user0", item: "item5")]).usersUpdated == 1)
        #expect(!service.startRetrain())  // one at a time; this one is queued behind it
        release.signal()

        // The queued retrain follows the first; hold it in flight and shut down under it.
        await wait(entered)
        #expect(service.modelVersion == 2)
        await group.triggerGracefulShutdown()
        // The group signals its services asynchronously: let the retrain go once its service has been told.
        let deadline = ContinuousClock.now + .seconds(30)
        while !service.isStopping && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(service.isStopping)
        release.signal()
        try await running.value
        // The cancelled retrain published nothing, and ranking still answers with the scoring threads stopped.
        #expect(service.modelVersion == 2)
        #expect(try !service.status().retraining)
        #expect(await service.recommendations(user: "user1", k: 2, excludeSeen: false).items.count == 2)
        #expect(!service.startRetrain())
    }
}
