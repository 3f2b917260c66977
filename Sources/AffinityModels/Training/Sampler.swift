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

    public init(userItems: SparseMatrix, seed: UInt64) {
        self.userItems = userItems
        self.itemCount = userItems.cols
        self.seed = seed
        var u: [Int32] = [], i: [Int32] = []
        u.reserveCapacity(userItems.nonZeros); i.reserveCapacity(userItems.nonZeros)
        for r in 0..<userItems.rows { for c in userItems.columns(ofRow: r) { u.append(Int32(r)); i.append(c) } }
        users = u
        items = i
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
        let active = (0..<userItems.rows).filter { userItems.count(ofRow: $0) > 0 }
        guard !active.isEmpty else { return [] }
        var rng = generator(epoch: epoch, batch: -1 & 0x7FFF_FFFF, stream: 3)
        var order = [Int32](repeating: 0, count: count)
        for k in 0..<count {
            let user = active[rng.nextInt(below: active.count)]
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
