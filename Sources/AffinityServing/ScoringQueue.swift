import Foundation

/// Ranks concurrent requests (recommendations, similar items) in batches. Requests wait on a queue; each worker thread takes everything pending
/// for one model snapshot and table (up to `maxBatch`) and scores it in one pass over the item table, so under load the
/// table is read once per batch instead of once per request. A lone request is ranked at once (batch of one):
/// batching never waits for company. `stop()` ends the threads once the queue is empty; a request after it is
/// ranked on the caller's thread.
public final class ScoringQueue: @unchecked Sendable {
    public struct Request: Sendable {
        public let model: ServingModel
        public let vector: [Float]
        public let exclude: [Int32]
        public let k: Int
        public let table: ServingModel.Table
        public init(model: ServingModel, vector: [Float], exclude: [Int32], k: Int, table: ServingModel.Table = .items) {
            self.model = model
            self.table = table
            self.vector = vector
            self.exclude = exclude
            self.k = k
        }
    }

    public let maxBatch: Int
    private let condition = NSCondition()
    private var pending: [(Request, CheckedContinuation<[ScoredItem], Never>)] = []
    private var batches = 0, batched = 0
    private var stopping = false
    private var running = 0

    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 16) {
        self.maxBatch = maxBatch
        running = max(1, workers)
        for _ in 0..<max(1, workers) {
            // A strong reference: the queue outlives its threads, even when its owner drops it without `stop()`
            // before a thread has started (an unowned one would then read a freed object).
            let thread = Thread { self.work() }
            thread.name = "affinity-scoring"
            thread.start()
        }
    }

    /// The request's top-k list.
    public func rank(_ request: Request) async -> [ScoredItem] {
        await withCheckedContinuation { continuation in
            condition.lock()
            guard !stopping else {
                condition.unlock()
                continuation.resume(returning: request.model.recommend([(request.vector, request.exclude, request.k)], table: request.table)[0])
                return
            }
            pending.append((request, continuation))
            condition.signal()
            condition.unlock()
        }
    }

    /// Ranks what is queued, then ends the worker threads; returns when they have ended.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    /// Mean requests per batch so far.
    public var meanBatchSize: Double {
        condition.lock()
        defer { condition.unlock() }
        return batches == 0 ? 0 : Double(batched) / Double(batches)
    }

    private func work() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let model = pending[0].0.model, table = pending[0].0.table
            var batch: [(Request, CheckedContinuation<[ScoredItem], Never>)] = []
            var rest: [(Request, CheckedContinuation<[ScoredItem], Never>)] = []
            for job in pending {
                if batch.count < maxBatch && job.0.model === model && job.0.table == table { batch.append(job) } else { rest.append(job) }
            }
            pending = rest
            batches += 1
            batched += batch.count
            if !pending.isEmpty { condition.signal() }
            condition.unlock()
            let results = model.recommend(batch.map { ($0.0.vector, $0.0.exclude, $0.0.k) }, table: table)
            for (job, result) in zip(batch, results) { job.1.resume(returning: result) }
        }
    }
}
