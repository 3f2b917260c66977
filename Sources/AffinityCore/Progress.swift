#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of long work: a bar with rate and ETA on a terminal, plain log lines (every 10%) otherwise.
/// Writes to standard error so standard output stays clean for results.
public final class ProgressReporter: @unchecked Sendable {
    public let label: String
    public let total: Int
    private let start = ContinuousClock.now
    private var lastDraw = ContinuousClock.now
    private var lastDecile = -1
    private let interactive: Bool
    private let enabled: Bool
    private let lock = NSLockLike()

    /// `enabled: false` makes every call a no-op (quiet mode, tests).
    public init(label: String, total: Int, enabled: Bool = true) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled
        self.interactive = isatty(2) != 0 && getenv("CI") == nil
    }

    public func update(_ done: Int) {
        guard enabled else { return }
        lock.withLock {
            let now = ContinuousClock.now
            let elapsed = seconds(now - start)
            let fraction = Double(min(done, total)) / Double(total)
            if interactive {
                guard done >= total || seconds(now - lastDraw) > 0.1 else { return }
                lastDraw = now
                let width = 30, filled = Int(fraction * Double(width))
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                let rate = elapsed > 0 ? Double(done) / elapsed : 0
                let eta = rate > 0 ? Double(total - done) / rate : 0
                let line = "\r\(label) \(bar) \(done)/\(total) \(format(rate))/s ETA \(format(eta))s "
                writeStandardError(line)
                if done >= total { writeStandardError("\n") }
            } else {
                // Plain logs only for work that lasts: short loops (an epoch of a small model) stay quiet.
                let decile = Int(fraction * 10)
                guard decile > lastDecile, elapsed >= 1 || (lastDecile >= 0 && done >= total) else { return }
                lastDecile = decile
                writeStandardError("[\(label)] \(done)/\(total) (\(decile * 10)%) \(format(elapsed))s\n")
            }
        }
    }

    private func seconds(_ d: Duration) -> Double { d.inSeconds }

    private func format(_ x: Double) -> String {
        x >= 100 ? String(Int(x.rounded())) : String(Double(Int(x * 10)) / 10)
    }
}

/// A minimal mutex (pthread), so the core does not need Foundation.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// Writes text to standard error unbuffered (safe from any thread).
public func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { return }
        offset += n
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (epoch logs, run records, progress lines).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
