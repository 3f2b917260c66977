import Testing
import Foundation
@testable import AffinityCLI
import AffinityServing
import AffinityTestSupport

/// Starts `process` and waits for its exit status without holding a thread (the suite's other tests share the
/// few cooperative threads; a blocking wait on a slow subprocess would stall them all).
func exitStatus(of process: Process) async throws -> Int32 {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<Int32, Error>) in
        process.terminationHandler = { done.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch {
            process.terminationHandler = nil
            done.resume(throwing: error)
        }
    }
}

/// Runs the built `affinity` binary with `input` on standard input; returns its exit status and both outputs.
func runAffinity(_ arguments: [String], input: String, environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
    let executable = try #require(Fixtures.affinityExecutable(), "the affinity executable was not built beside the tests")
    let folder = Fixtures.temporaryFolder("score-run")
    let inputPath = Fixtures.file("in.txt", input, in: folder), outPath = folder + "/out.txt", errPath = folder + "/err.txt"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardInput = FileHandle(forReadingAtPath: inputPath)
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    let status = try await exitStatus(of: process)
    return (status, try String(contentsOfFile: outPath, encoding: .utf8), try String(contentsOfFile: errPath, encoding: .utf8))
}

@Suite struct ScoreCommandTests {
    /// A saved BPR model of 30 users over 12 items (the CLI tests' fixture data).
    static let modelFile: String = {
        var lines = ["user,item,rating,timestamp"]
        for u in 0..<30 {
            for i in 0..<12 where (u + i) % 3 != 0 || i < 2 { lines.append("u\(u),i\(i),\(1 + (u + i) % 5),\(u * 100 + i)") }
        }
        let data = Fixtures.file("toy.csv", lines.joined(separator: "\n") + "\n")
        let file = Fixtures.temporaryFolder("score") + "/bpr.affinity"
        var command = try! AffinityCommand.parseAsRoot(["train", "--data", data, "--model", "bpr", "--set", "epochs=2",
                                                        "--set", "embedding_size=8", "--quiet", "--save", file])
        try! command.run()
        return file
    }()

    struct Line: Decodable, Equatable {
        struct Item: Decodable, Equatable { let id: String; let score: Float }
        let user: String
        let items: [Item]
        let source: String
    }

    func parse(_ stdout: String) throws -> [Line] {
        try stdout.split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
    }

    @Test func scoresEachUserInOrderAndReportsBadLines() async throws {
        let artifact = try ModelArtifact.read(from: Self.modelFile)
        let model = ServingModel(artifact: artifact)
        let result = try await runAffinity(["score", "--model", Self.modelFile, "-k", "3"], input: "u1\nu2\n\nnobody\nu3\r\n")
        #expect(result.status != 0)  // one bad line
        #expect(result.stderr.contains("line 3: empty line"))
        let lines = try parse(result.stdout)
        #expect(lines.map(\.user) == ["u1", "u2", "nobody", "u3"])
        for line in lines where line.user != "nobody" {
            let u = try #require(model.users.dense(line.user))
            let expected = model.recommend(model.userVector(u), k: 3).map { Line.Item(id: model.items.raw($0.item), score: $0.score) }
            #expect(line.items == expected && line.source == "model")
        }
        // An unknown user gets the most popular training items, scored by their training interactions.
        var counts = [String: Int]()
        for i in artifact.training.items { counts[model.items.raw(i), default: 0] += 1 }
        let fallback = try #require(lines.first { $0.user == "nobody" })
        #expect(fallback.source == "popularity" && fallback.items.count == 3)
        #expect(fallback.items.map { Int($0.score) } == counts.values.sorted(by: >).prefix(3).map { $0 })
        #expect(fallback.items.allSatisfy { Float(counts[$0.id]!) == $0.score })
    }

    @Test func excludeSeenLeavesOutTrainingItems() async throws {
        let artifact = try ModelArtifact.read(from: Self.modelFile)
        let model = ServingModel(artifact: artifact)
        let result = try await runAffinity(["score", "--model", Self.modelFile, "-k", "5", "--exclude-seen"], input: "u4\n")
        #expect(result.status == 0 && result.stderr.isEmpty)
        let line = try #require(try parse(result.stdout).first)
        let u = try #require(model.users.dense("u4"))
        let seen = Set((0..<artifact.training.count).filter { artifact.training.users[$0] == u }.map { model.items.raw(artifact.training.items[$0]) })
        #expect(!seen.isEmpty && line.items.count == 5 && line.items.allSatisfy { !seen.contains($0.id) })
    }

    /// More users than one block: the output is the same whatever the thread count, line for line.
    @Test func blocksAndThreadsDoNotChangeTheOutput() async throws {
        let users = (0..<2500).map { $0 % 7 == 0 ? "stranger\($0)" : "u\($0 % 30)" }
        let input = users.joined(separator: "\n") + "\n"
        let many = try await runAffinity(["score", "--model", Self.modelFile, "-k", "4"], input: input)
        let one = try await runAffinity(["score", "--model", Self.modelFile, "-k", "4"], input: input, environment: ["AFFINITY_THREADS": "1"])
        #expect(many.status == 0 && one.status == 0)
        #expect(try parse(many.stdout).map(\.user) == users)
        #expect(many.stdout == one.stdout)
    }

    @Test func badArgumentsFail() async throws {
        #expect(try await runAffinity(["score", "--model", "/nonexistent/m.affinity"], input: "u1\n").status != 0)
        #expect(try await runAffinity(["score", "--model", Self.modelFile, "-k", "0"], input: "u1\n").status != 0)
    }
}

/// Java and a Python with pyspark (`scripts/setup.sh --spark` installs both; CI runs it).
enum SparkEnvironment {
    /// The venv's Python, when it imports pyspark and a Java runtime is on PATH or under JAVA_HOME.
    static let python: String? = {
        let environment = ProcessInfo.processInfo.environment
        let java = (environment["JAVA_HOME"].map { [$0 + "/bin/java"] } ?? [])
            + (environment["PATH"] ?? "").split(separator: ":").map { $0 + "/java" }
        guard java.contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
        let venv = environment["AFFINITY_SPARK_VENV"] ?? NSHomeDirectory() + "/.cache/affinity-spark/venv"
        let python = venv + "/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return nil }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = ["-c", "import pyspark"]
        check.standardError = FileHandle.nullDevice
        guard (try? check.run()) != nil else { return nil }
        check.waitUntilExit()
        return check.terminationStatus == 0 ? python : nil
    }()
}

@Suite struct SparkScoringTests {
    /// examples/spark/score_users.py in `local[2]` over four partitions writes exactly the single-process output.
    @Test(.enabled(if: SparkEnvironment.python != nil,
                   "pyspark or java is absent (scripts/setup.sh --spark installs openjdk-17-jre-headless and pyspark)"))
    func pipedPartitionsEqualTheSingleProcessOutput() async throws {
        let python = try #require(SparkEnvironment.python)
        let executable = try #require(Fixtures.affinityExecutable())
        let users = (0..<400).map { $0 % 9 == 0 ? "stranger\($0)" : "u\($0 % 30)" }
        let folder = Fixtures.temporaryFolder("spark")
        let usersFile = Fixtures.file("users.txt", users.joined(separator: "\n") + "\n", in: folder)
        let single = try await runAffinity(["score", "--model", ScoreCommandTests.modelFile, "-k", "5"], input: users.joined(separator: "\n") + "\n")
        #expect(single.status == 0)

        let output = folder + "/top.jsonl", log = folder + "/spark.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let job = Process()
        job.executableURL = URL(fileURLWithPath: python)
        job.arguments = [Fixtures.repositoryRoot + "/examples/spark/score_users.py", "--users", usersFile,
                         "--model", ScoreCommandTests.modelFile, "--output", output, "--affinity", executable, "-k", "5",
                         "--master", "local[2]", "--partitions", "4"]
        job.standardOutput = FileHandle(forWritingAtPath: log)
        job.standardError = FileHandle(forWritingAtPath: log)
        let status = try await exitStatus(of: job)
        let messages = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(status == 0, "the Spark job failed:\n\(messages.suffix(3000))")
        #expect(messages.contains("scored 400 users") && messages.contains("over 4 partitions"))
        let piped = try String(contentsOfFile: output, encoding: .utf8)
        #expect(piped.split(separator: "\n").count == users.count)
        // The partitions' union, in order, is the single process's output line for line.
        #expect(piped == single.stdout)
    }
}
