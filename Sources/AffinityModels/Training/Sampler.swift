#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AffinityCore

/// Training pairs and negative items, reproducibly.
///
/// Every random draw comes from a generator derived from (seed, epoch, batch), so results do not depend
/// on which thread samples a batch or in what order batches are sampled.
public struct InteractionSampler: Sendable {
    /// Training interactions as (user, item) columns, deduplicated (the rows of the user × item matrix).
    public let users: [Int32]
    public let items: [Int32]
    /// Sorted positives per user, for exclusion.
    public let userItems: SparseMatrix
    public let itemCount: Int
    public let seed: UInt64
    /// Users with at least one training item, in order: those a user-uniform draw chooses from.
    public let activeUsers: [Int32]

    public init(userItems: SparseMatrix, seed: UInt64) {
        self.userItems = userItems
        self.itemCount = userItems.cols
        self.seed = seed
        var u: [Int32] = [], i: [Int32] = []
        u.reserveCapacity(userItems.nonZeros); i.reserveCapacity(userItems.nonZeros)
        for r in 0..<userItems.rows { for c in userItems.columns(ofRow: r) { u.append(Int32(r)); i.append(c) } }
        users = u
        items = i
        activeUsers = (0..<Int32(userItems.rows)).filter { userItems.count(ofRow: Int($0)) > 0 }
    }

    public var count: Int { users.count }

    func generator(epoch: Int, batch: Int, stream: UInt64) -> SeededGenerator {
        SeededGenerator(seed: seed).derived(stream: UInt64(epoch) &* 1_000_003 &+ UInt64(batch) &* 7919 &+ stream)
    }

    /// A seeded permutation of the training pairs for `epoch`.
    public func epochOrder(epoch: Int) -> [Int32] {
        var order = (0..<Int32(count)).map { $0 }
        var rng = generator(epoch: epoch, batch: -1 & 0x7FFF_FFFF, stream: 1)
        order.seededShuffle(using: &rng)
        return order
    }

    /// LightGCN's official sampling (`UniformSample_original` in gusye1234/LightGCN-PyTorch): each of the
    /// epoch's `count` samples draws a user uniformly among the users with training items, then one of that
    /// user's items uniformly, so light users weigh as much as heavy ones — as in the per-user mean of the
    /// ranking metrics. Returns pair indices, like `epochOrder`.
    public func userUniformOrder(epoch: Int) -> [Int32] {
        let active = activeUsers
        guard !active.isEmpty else { return [] }
        var rng = generator(epoch: epoch, batch: -1 & 0x7FFF_FFFF, stream: 3)
        var order = [Int32](repeating: 0, count: count)
        for k in 0..<count {
            let user = Int(active[rng.nextInt(below: active.count)])
            order[k] = Int32(userItems.rowStart[user] + rng.nextInt(below: userItems.count(ofRow: user)))
        }
        return order
    }

    /// One uniformly drawn item per user in `users` that the user has not interacted with (rejection
    /// against the sorted positive list; users who have nearly every item fall back to an exact draw
    /// from the complement). Users who have every item get -1.
    public func negatives(for users: [Int32], epoch: Int, batch: Int) -> [Int32] {
        var out = [Int32](repeating: -1, count: users.count)
        // Fixed-size chunks, each with its own generator derived from (epoch, batch, chunk): the draws do
        // not depend on how many threads run them.
        let chunk = 512
        let chunks = (users.count + chunk - 1) / chunk
        out.withUnsafeMutableBufferPointer { o in
            let dst = UnsafeSendable(o.baseAddress!)
            let sampler = self
            Parallel.forEach(0..<chunks) { c in
                sampler.drawNegatives(users, range: (c * chunk)..<min((c + 1) * chunk, users.count),
                                      seed: sampler.generator(epoch: epoch, batch: batch, stream: 2 &+ UInt64(c) &* 0x9E37),
                                      into: dst.value)
            }
        }
        return out
    }

    /// Draws the negatives of `users[range]` into `out[range]` with one generator.
    func drawNegatives(_ users: [Int32], range: Range<Int>, seed: SeededGenerator, into out: UnsafeMutablePointer<Int32>) {
        var rng = seed
        for k in range {
            let row = Int(users[k])
            let positives = userItems.count(ofRow: row)
            if positives >= itemCount { out[k] = -1; continue }
            var found: Int32 = -1
            if positives * 2 < itemCount {
                for _ in 0..<64 {
                    let candidate = Int32(rng.nextInt(below: itemCount))
                    if !userItems.contains(row: row, col: candidate) { found = candidate; break }
                }
            }
            if found < 0 {
                // Exact: the t-th item not in the sorted positive list.
                var t = rng.nextInt(below: itemCount - positives)
                var candidate: Int32 = 0
                for p in userItems.columns(ofRow: row) {
                    let gap = Int(p - candidate)
                    if t < gap { break }
                    t -= gap
                    candidate = p + 1
                }
                found = candidate + Int32(t)
            }
            out[k] = found
        }
    }
}

/// PLD's settings (Zhang, Cao, Wu, Sun, Shen and Cheng, "Personalized Denoising Implicit Feedback for Robust
/// Recommender System", WWW 2025), with the official code's defaults: `begin_adv` (5), the first epoch (from 0)
/// that samples by loss — earlier epochs sample as `sampling=users`; `pld_pool` (5), the candidate positives per
/// user; `pld_temperature` (0.1), τ of the choice.
public struct PersonalizedDenoisingSampling: Sendable, Equatable {
    public var beginEpoch: Int
    public var poolSize: Int
    public var temperature: Float

    public init(beginEpoch: Int = 5, poolSize: Int = 5, temperature: Float = 0.1) {
        self.beginEpoch = beginEpoch
        self.poolSize = poolSize
        self.temperature = temperature
    }

    public init(_ h: inout Hyperparameters) throws {
        self.init(beginEpoch: try h.int("begin_adv", default: 5), poolSize: try h.int("pld_pool", default: 5),
                  temperature: Float(try h.float("pld_temperature", default: 0.1)))
        guard beginEpoch >= 0, poolSize > 0, temperature > 0 else {
            throw HyperparameterError.outOfRange("begin_adv/pld_pool/pld_temperature", "must be ≥ 0, positive and positive")
        }
    }
}

extension InteractionSampler {
    /// One PLD batch of `size` triples. Each sample draws a user uniformly among the users with training items (as
    /// `userUniformOrder`), a pool of `poolSize` of the user's training items (without replacement when the user has
    /// that many, else with replacement) and one negative; `score` gives the current model's scores of the pool and
    /// the negative, and the positive trained on is drawn from the pool with probability softmax(−ℓ/τ), ℓ being each
    /// candidate's BPR loss softplus(s⁻ − s⁺). Personal loss distributions separate a user's clean positives (low
    /// loss) from false ones (high loss) better than one global threshold, which is PLD's point. Every draw comes from
    /// generators keyed by (seed, epoch, batch); users who have every item are left out.
    public func personalizedBatch(size: Int, settings: PersonalizedDenoisingSampling, epoch: Int, batch: Int,
                                  score: ([Int32], [Int32]) -> [Float]) -> (users: [Int32], positives: [Int32], negatives: [Int32]) {
        guard size > 0, !activeUsers.isEmpty else { return ([], [], []) }
        let k = settings.poolSize
        // Fixed-size chunks with their own generators, as `negatives(for:)`: the draws do not depend on the threads.
        let chunk = 512
        var users = [Int32](repeating: 0, count: size)
        var pools = [Int32](repeating: 0, count: size * k)
        users.withUnsafeMutableBufferPointer { u in
            pools.withUnsafeMutableBufferPointer { p in
                let out = UnsafeSendable((u.baseAddress!, p.baseAddress!))
                let sampler = self
                Parallel.forEach(0..<((size + chunk - 1) / chunk)) { c in
                    var rng = sampler.generator(epoch: epoch, batch: batch, stream: 5 &+ UInt64(c) &* 0x9E37)
                    sampler.drawPools(users: out.value.0, pools: out.value.1, range: (c * chunk)..<min((c + 1) * chunk, size),
                                      poolSize: k, rng: &rng)
                }
            }
        }
        let drawn = negatives(for: users, epoch: epoch, batch: batch)
        let kept = drawn.indices.filter { drawn[$0] >= 0 }
        if kept.count < size {
            users = kept.map { users[$0] }
            pools = kept.flatMap { s in pools[(s * k)..<(s * k + k)] }
        }
        let negatives = kept.map { drawn[$0] }
        let n = users.count
        // Scores of the n·k candidates, then of the n negatives.
        var pairUsers = [Int32]()
        pairUsers.reserveCapacity(n * (k + 1))
        for user in users { for _ in 0..<k { pairUsers.append(user) } }
        pairUsers += users
        let scores = score(pairUsers, pools + negatives)
        var positives = [Int32](repeating: 0, count: n)
        positives.withUnsafeMutableBufferPointer { out in
            let chosen = UnsafeSendable(out.baseAddress!)
            let sampler = self
            Parallel.forEach(0..<((n + chunk - 1) / chunk)) { c in
                var rng = sampler.generator(epoch: epoch, batch: batch, stream: 7 &+ UInt64(c) &* 0x9E37)
                var weights = [Double](repeating: 0, count: k)
                for s in (c * chunk)..<min((c + 1) * chunk, n) {
                    let negativeScore = Double(scores[n * k + s])
                    for j in 0..<k {
                        let x = negativeScore - Double(scores[s * k + j])
                        let loss = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))   // softplus(s⁻ − s⁺)
                        weights[j] = -loss / Double(settings.temperature)
                    }
                    let top = weights.max()!
                    var total = 0.0
                    for j in 0..<k { weights[j] = exp(weights[j] - top); total += weights[j] }
                    var u = Double(rng.next() >> 11) * 0x1p-53 * total
                    var choice = k - 1
                    for j in 0..<k {
                        u -= weights[j]
                        if u < 0 { choice = j; break }
                    }
                    chosen.value[s] = pools[s * k + choice]
                }
            }
        }
        return (users, positives, negatives)
    }

    /// Draws `users[range]` uniformly among the active users and each one's pool of `poolSize` training items into
    /// `pools[s·poolSize …]`: without replacement (Floyd's algorithm, a uniform subset in `poolSize` draws) when the
    /// user has that many items, else with replacement.
    func drawPools(users: UnsafeMutablePointer<Int32>, pools: UnsafeMutablePointer<Int32>, range: Range<Int>, poolSize k: Int,
                   rng: inout SeededGenerator) {
        var slots = [Int](repeating: 0, count: k)
        for s in range {
            let user = activeUsers[rng.nextInt(below: activeUsers.count)]
            users[s] = user
            let start = userItems.rowStart[Int(user)], owned = userItems.count(ofRow: Int(user))
            if owned >= k {
                for (n, j) in ((owned - k)..<owned).enumerated() {
                    let t = rng.nextInt(below: j + 1)
                    slots[n] = slots[0..<n].contains(t) ? j : t
                }
            } else {
                for n in 0..<k { slots[n] = rng.nextInt(below: owned) }
            }
            for n in 0..<k { pools[s * k + n] = userItems.colIndex[start + slots[n]] }
        }
    }
}
