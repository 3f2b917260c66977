import AffinityCore

/// Random: every (user, item) pair gets a score drawn from a generator seeded by (seed, user), so the
/// ranking is a fixed random permutation per user. The chance level of every metric.
public final class RandomRanking: Recommender, ColdStartCapable {
    public static let name = "random"
    public static let summary = "a seeded random ranking per user (chance level)"

    public private(set) var itemCount = 0
    private var seed: UInt64 = 0

    public init(_ hyperparameters: inout Hyperparameters) throws {}

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        itemCount = data.itemCount
        seed = context.seed
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        let n = itemCount
        for (r, u) in users.enumerated() {
            var rng = SeededGenerator(seed: seed).derived(stream: UInt64(UInt32(bitPattern: u)))
            for i in 0..<n { out[r * n + i] = rng.nextFloat() }
        }
    }
}
