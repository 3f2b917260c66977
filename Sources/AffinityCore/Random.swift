/// A small, fast, seedable PRNG (xoshiro256**, seeded through SplitMix64). Every random choice in
/// Affinity — splits, sampling, initialisation — draws from one of these, so a seed fixes a run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&x); s1 = splitMix(&x); s2 = splitMix(&x); s3 = splitMix(&x)
    }

    /// The generator's whole state (for training checkpoints); `init(state:)` continues from it.
    public var state: [UInt64] { [s0, s1, s2, s3] }

    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
    }

    /// An independent stream for `stream` (e.g. a thread or a user), derived from this generator's seed.
    public func derived(stream: UInt64) -> SeededGenerator {
        SeededGenerator(seed: s0 ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ s3)
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// Uniform integer in `0..<bound` (Lemire's nearly-divisionless method).
    @inlinable
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        var m = next().multipliedFullWidth(by: UInt64(bound))
        if m.low < UInt64(bound) {
            let t = (0 &- UInt64(bound)) % UInt64(bound)
            while m.low < t { m = next().multipliedFullWidth(by: UInt64(bound)) }
        }
        return Int(m.high)
    }

    /// Uniform Float in [0, 1).
    @inline(__always)
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    @inlinable @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension MutableCollection where Self: RandomAccessCollection, Index == Int {
    /// Fisher–Yates shuffle with Affinity's generator (the standard library's shuffle algorithm is not
    /// documented as stable across releases, so splits would not be reproducible across toolchains).
    @inlinable
    public mutating func seededShuffle(using rng: inout SeededGenerator) {
        guard count > 1 else { return }
        var i = endIndex - 1
        while i > startIndex {
            let j = startIndex + rng.nextInt(below: i - startIndex + 1)
            swapAt(i, j)
            i -= 1
        }
    }
}
