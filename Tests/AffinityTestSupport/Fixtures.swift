import Foundation
import AffinityData

/// Temporary files and shared-data locations for tests.
public enum Fixtures {
    /// A fresh temporary folder (removed at process exit is not guaranteed; they live under /tmp).
    public static func temporaryFolder(_ label: String = "affinity") -> String {
        let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `contents` to `name` in a fresh temporary folder and returns the file's path.
    @discardableResult
    public static func file(_ name: String, _ contents: String, in folder: String? = nil) -> String {
        let dir = folder ?? temporaryFolder()
        let path = dir + "/" + name
        try! contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Writes raw bytes.
    @discardableResult
    public static func file(_ name: String, bytes: [UInt8], in folder: String? = nil) -> String {
        let dir = folder ?? temporaryFolder()
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// The `affinity` executable built beside this test bundle (SwiftPM builds it with the tests).
    public static func affinityExecutable() -> String? {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().path + "/affinity")
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/affinity")
        candidates += ["debug", "release"].map { Fixtures.repositoryRoot + "/.build/\($0)/affinity" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The repository root (this file is Tests/AffinityTestSupport/Fixtures.swift).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `../shared/data/NAME` beside the repository, when it exists. Tests that need it are skipped visibly
    /// without it: `@Test(.enabled(if: Fixtures.sharedData(NAME) != nil, "…absent"))`, never by returning early.
    public static func sharedData(_ name: String) -> String? {
        let path = repositoryRoot + "/../shared/data/" + name
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The built-in demo dataset, loaded from the repository.
    public static func movieLensSmall() throws -> Dataset {
        var d = try DatasetLoader.load(path: repositoryRoot + "/data/ml-latest-small/ratings.csv", format: .csv)
        d.name = "ml-latest-small"
        return d
    }
}

/// Runs blocking work on a Dispatch thread and awaits it, so that a test which blocks (on a semaphore, a lock, a
/// child process) never holds one of the few cooperative threads: on a 2-core machine the pool has two, and two
/// tests blocked there on work that needs the pool deadlock the whole suite.
public func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, Error>) in
        DispatchQueue.global().async { done.resume(with: Result { try body() }) }
    }
}
