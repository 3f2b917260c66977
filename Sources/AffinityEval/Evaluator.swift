import AffinityCore
import AffinityData
import Foundation

/// Anything that can score every item for a batch of users.
public protocol Scorer {
    /// Size of the catalogue; rows written by `score` have this many columns.
    var itemCount: Int { get }
    /// Writes the scores of all items for each user in `users` into `out`, row-major
    /// `[users.count, itemCount]`. Higher is better. `-Float.infinity` means "never recommend".
    func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>)
}

/// Metric means (and optional per-user values) from one evaluation.
public struct EvaluationResult: Sendable {
    /// `"recall@20" → value`, averaged over evaluated users (catalogue metrics over all their lists).
    public var metrics: [String: Double]
    /// Users evaluated (those with at least one target item), in ascending order.
    public var users: [Int32]
    /// Per-user values, `perUser[key][i]` for `users[i]`; per-user metrics only.
    public var perUser: [String: [Double]]
    /// Each evaluated user's top-`max(k)` list.
    public var recommendations: [[Int32]]
    public var seconds: Double

    public static let empty = EvaluationResult(metrics: [:], users: [], perUser: [:], recommendations: [], seconds: 0)
}

/// Full-ranking evaluation: for every user with target items, score all items, remove the items the
/// user already has (training, plus validation when testing), take the top K, compare with the targets.
///
/// Ties are broken by the lower item index first (`TopK`), so results are deterministic.
public struct RankingEvaluator: Sendable {
    public var cutoffs: [Int]
    public var metrics: [RankingMetric]
    /// Upper bound on the scores buffer (floats), which sets how many users are scored per batch.
    public var maxBufferFloats: Int
    /// Training interactions per item: what the popularity metrics measure and the SNIPS metrics' propensities
    /// are estimated from. Required when `metrics` has any metric that `needsPopularity`.
    public var itemPopularity: [Int]?
    /// How the SNIPS metrics turn `itemPopularity` into propensities.
    public var propensity: PopularityPropensity

    public init(cutoffs: [Int] = [10, 20], metrics: [RankingMetric] = RankingMetric.standard, maxBufferFloats: Int = 1 << 23,
                itemPopularity: [Int]? = nil, propensity: PopularityPropensity = .evaluationDefault) {
        precondition(!cutoffs.isEmpty && cutoffs.allSatisfy { $0 > 0 }, "cutoffs must be positive")
        self.cutoffs = cutoffs.sorted()
        self.metrics = metrics
        self.maxBufferFloats = maxBufferFloats
        self.itemPopularity = itemPopularity
        self.propensity = propensity
    }

    /// Metric keys in display order, e.g. `["recall@10", "recall@20", …]`.
    public var keys: [String] { metrics.flatMap { m in cutoffs.map { "\(m.rawValue)@\($0)" } } }

    /// Evaluates `scorer` against `target` (user × item CSR), excluding each user's items in `exclude`.
    public func evaluate(_ scorer: Scorer, target: SparseMatrix, exclude: [SparseMatrix],
                         progress: ((Int, Int) -> Void)? = nil) -> EvaluationResult {
        let clock = ContinuousClock.now
        let itemCount = scorer.itemCount
        precondition(target.cols == itemCount, "target has \(target.cols) items, scorer \(itemCount)")
        let users = (0..<target.rows).filter { target.count(ofRow: $0) > 0 }.map(Int32.init)
        guard !users.isEmpty, itemCount > 0 else { return .empty }
        precondition(!metrics.contains(where: \.needsPopularity) || itemPopularity?.count == itemCount,
                     "popularity metrics need itemPopularity for all \(itemCount) items")
        // Inverse propensities of the SNIPS metrics, only when asked for.
        let snipsMetrics = metrics.filter { $0 == .recallSNIPS || $0 == .dcgSNIPS }
        let inversePropensity = snipsMetrics.isEmpty ? [] : propensity.propensities(popularity: itemPopularity!).map { 1 / $0 }
        let maxK = cutoffs.last!
        let listLength = min(maxK, itemCount)
        let perUserMetrics = metrics.filter(\.isPerUser)
        let valuesPerUser = perUserMetrics.count * cutoffs.count
        var values = [Double](repeating: 0, count: users.count * valuesPerUser)
        var lists = [Int32](repeating: -1, count: users.count * listLength)
        var listCounts = [Int](repeating: 0, count: users.count)

        // Workers own contiguous slices of users; each scores a sub-batch into its own buffer (BLAS
        // single-threaded inside), then selects and measures while the block is still in cache. This
        // keeps both cores busy through scoring and selection, with no BLAS fork/join per batch.
        let workers = Parallel.threads
        let batch = max(1, min(users.count, maxBufferFloats / workers / itemCount, 256))
        let ctx = UnsafeSendable((
            values: values.withUnsafeMutableBufferPointer { $0.baseAddress! },
            lists: lists.withUnsafeMutableBufferPointer { $0.baseAddress! },
            counts: listCounts.withUnsafeMutableBufferPointer { $0.baseAddress! }))
        let reporter = UnsafeSendable(progress)
        let doneCounter = Counter()
        BLAS.singleThreaded {
            Parallel.forEachChunk(0..<users.count, minimumChunk: batch) { chunk in
                let p = ctx.value
                var scores = [Float](repeating: 0, count: batch * itemCount)
                var topScores = [Float](repeating: 0, count: listLength)
                var hits = [Bool](repeating: false, count: listLength)
                var hitWeights = [Double](repeating: 0, count: listLength)
                var start = chunk.lowerBound
                while start < chunk.upperBound {
                    let end = min(start + batch, chunk.upperBound)
                    let batchUsers = Array(users[start..<end])
                    scores.withUnsafeMutableBufferPointer { buf in
                        scorer.score(users: batchUsers, into: UnsafeMutableBufferPointer(rebasing: buf[0..<(batchUsers.count * itemCount)]))
                        for b in 0..<batchUsers.count {
                            let user = Int(batchUsers[b])
                            let row = buf.baseAddress! + b * itemCount
                            for m in exclude {
                                for i in m.columns(ofRow: user) { row[Int(i)] = -.infinity }
                            }
                            let slot = start + b
                            let listPtr = p.lists + slot * listLength
                            let n = topScores.withUnsafeMutableBufferPointer { ts in
                                TopK.select(UnsafeBufferPointer(start: row, count: itemCount), k: listLength, index: listPtr, score: ts.baseAddress!)
                            }
                            p.counts[slot] = n
                            hits.removeAll(keepingCapacity: true)
                            for r in 0..<n { hits.append(target.contains(row: user, col: listPtr[r])) }
                            let relevant = target.count(ofRow: user)
                            var relevantWeight = 0.0
                            if !snipsMetrics.isEmpty {
                                hitWeights.removeAll(keepingCapacity: true)
                                for r in 0..<n { hitWeights.append(hits[r] ? inversePropensity[Int(listPtr[r])] : 0) }
                                for i in target.columns(ofRow: user) { relevantWeight += inversePropensity[Int(i)] }
                            }
                            var v = slot * valuesPerUser
                            for metric in perUserMetrics {
                                for k in cutoffs {
                                    p.values[v] = metric.needsPopularity
                                        ? UserMetrics.snips(metric, hitWeights: hitWeights, relevantWeight: relevantWeight, k: k)
                                        : UserMetrics.value(metric, hits: hits, relevantCount: relevant, k: k)
                                    v += 1
                                }
                            }
                        }
                    }
                    let total = doneCounter.add(end - start)
                    reporter.value?(total, users.count)
                    start = end
                }
            }
        }

        // Means in a fixed order, so threads cannot change the result.
        var result = EvaluationResult(metrics: [:], users: users, perUser: [:], recommendations: [], seconds: 0)
        var v = 0
        for metric in perUserMetrics {
            for k in cutoffs {
                var column = [Double](repeating: 0, count: users.count)
                var sum = 0.0
                for u in 0..<users.count { column[u] = values[u * valuesPerUser + v]; sum += column[u] }
                let key = "\(metric.rawValue)@\(k)"
                result.metrics[key] = sum / Double(users.count)
                result.perUser[key] = column
                v += 1
            }
        }
        result.recommendations = (0..<users.count).map { u in Array(lists[(u * listLength)..<(u * listLength + listCounts[u])]) }
        for metric in metrics where !metric.isPerUser {
            for k in cutoffs {
                result.metrics["\(metric.rawValue)@\(k)"] = CatalogueMetrics.value(
                    metric, lists: result.recommendations, k: k, itemCount: itemCount, popularity: itemPopularity)
            }
        }
        let elapsed = ContinuousClock.now - clock
        result.seconds = elapsed.inSeconds
        return result
    }
}

/// A thread-safe running total (for progress from parallel workers).
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func add(_ n: Int) -> Int { lock.lock(); defer { lock.unlock() }; value += n; return value }
}

/// Scores from fixed user and item embeddings (`[users, d]` and `[items, d]`): score = ⟨u, i⟩ via BLAS.
public struct EmbeddingScorer: Scorer, Sendable {
    public let userEmbeddings: Matrix
    public let itemEmbeddings: Matrix
    public var itemCount: Int { itemEmbeddings.rows }

    public init(userEmbeddings: Matrix, itemEmbeddings: Matrix) {
        precondition(userEmbeddings.cols == itemEmbeddings.cols, "embedding widths differ")
        self.userEmbeddings = userEmbeddings
        self.itemEmbeddings = itemEmbeddings
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        let d = userEmbeddings.cols
        var gathered = [Float](repeating: 0, count: users.count * d)
        userEmbeddings.storage.withUnsafeBufferPointer { src in
            for (r, u) in users.enumerated() {
                for c in 0..<d { gathered[r * d + c] = src[Int(u) * d + c] }
            }
        }
        gathered.withUnsafeBufferPointer { a in
            itemEmbeddings.storage.withUnsafeBufferPointer { b in
                BLAS.sgemm(transA: false, transB: true, m: users.count, n: itemCount, k: d, alpha: 1,
                           a: a.baseAddress!, lda: d, b: b.baseAddress!, ldb: d, beta: 0, c: out.baseAddress!, ldc: itemCount)
            }
        }
    }
}

/// A scorer restricted to a candidate set: items outside it score `-infinity` (never recommended). The
/// cold-start-items protocol ranks only the held-out items.
public struct CandidateScorer: Scorer {
    public let base: any Scorer
    /// The items outside the candidate set, listed once so scoring touches only them.
    private let excluded: [Int]

    public init(_ base: any Scorer, candidates: [Bool]) {
        precondition(candidates.count == base.itemCount, "one flag per item")
        self.base = base
        excluded = candidates.indices.filter { !candidates[$0] }
    }

    public var itemCount: Int { base.itemCount }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        base.score(users: users, into: out)
        let n = itemCount
        for r in 0..<users.count { for i in excluded { out[r * n + i] = -.infinity } }
    }
}
