import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Data-parallel loops over index ranges on all cores.
public enum Parallel {
    /// Number of worker threads (the number of active processors, or `AFFINITY_THREADS`).
    public static let threads: Int = {
        if let env = getenv("AFFINITY_THREADS"), let n = Int(String(cString: env)), n > 0 { return n }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()

    /// Calls `body` once per index, spread over the threads in contiguous chunks.
    public static func forEach(_ range: Range<Int>, _ body: (Int) -> Void) {
        forEachChunk(range) { chunk in for i in chunk { body(i) } }
    }

    /// Splits `range` into contiguous chunks (several per thread, for balance) and calls `body` per chunk.
    /// `body` must only write to memory owned by its chunk.
    public static func forEachChunk(_ range: Range<Int>, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let count = range.count
        guard count > 0 else { return }
        let chunks = min(max(1, count / max(1, minimumChunk)), threads * 4)
        if chunks == 1 || threads == 1 { body(range); return }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = range.lowerBound + count * c / chunks
                let hi = range.lowerBound + count * (c + 1) / chunks
                box.value(lo..<hi)
            }
        }
    }
}

/// Carries a value across a `@Sendable` boundary where the caller guarantees disjoint access
/// (e.g. raw buffer pointers written by separate chunks of a parallel loop).
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
