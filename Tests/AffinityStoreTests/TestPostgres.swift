import Foundation
import Testing

/// A throwaway PostgreSQL server for the tests: `initdb` into a temporary folder, a free loopback port, the Unix
/// socket in that folder, `fsync` off; no system service, no root. Started once per test process (on first
/// use) and stopped at exit. As root (CI containers) the server runs as the `postgres` user, because initdb
/// refuses to run as root. Tests that need it are cancelled with the reason when it cannot start.
final class TestPostgres: Sendable {
    let folder: String
    let port: Int
    let binaries: String
    /// The user the server process runs as when the tests run as root.
    let serverUser: String?

    /// The shared server, or why there is none.
    static let shared: Result<TestPostgres, StartFailure> = {
        do {
            let server = try TestPostgres()
            atexit { if case .success(let server) = TestPostgres.shared { server.stop() } }
            return .success(server)
        } catch let failure as StartFailure {
            return .failure(failure)
        } catch {
            return .failure(StartFailure(reason: "\(error)"))
        }
    }()

    struct StartFailure: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The server, or cancels the calling test with the reason it could not start.
    static func require() throws -> TestPostgres {
        switch shared {
        case .success(let server): return server
        case .failure(let failure):
            _ = announceSkip
            try Test.cancel("PostgreSQL is unavailable: \(failure.reason)")
        }
    }

    /// Said once on standard error, because the console does not list cancelled test cases.
    private static let announceSkip: Void = {
        if case .failure(let failure) = shared {
            FileHandle.standardError.write(Data("note: the PostgreSQL cases of the store tests are skipped: \(failure.reason)\n".utf8))
        }
    }()

    /// A server of the caller's own, for a test that stops and restarts it (the shared one serves other tests);
    /// the caller stops it. Cancels the test with the reason when PostgreSQL cannot start.
    static func dedicated() throws -> TestPostgres {
        do { return try TestPostgres() } catch {
            try Test.cancel("PostgreSQL is unavailable: \(error)")
        }
    }

    private init() throws {
        guard let binaries = Self.findBinaries() else {
            throw StartFailure(reason: "no initdb/pg_ctl found (set AFFINITY_PG_BIN, or install Debian's postgresql package)")
        }
        self.binaries = binaries
        if getuid() == 0 {
            guard Self.run("/usr/bin/id", ["-u", "postgres"]).status == 0 else {
                throw StartFailure(reason: "running as root and there is no 'postgres' user to run the server as")
            }
            serverUser = "postgres"
        } else {
            serverUser = nil
        }
        folder = NSTemporaryDirectory() + "affinity-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let serverUser {
            let chown = Self.run("/bin/chown", [serverUser, folder])
            guard chown.status == 0 else { throw StartFailure(reason: "chown \(folder): \(chown.output)") }
        }
        let initdb = Self.run(binaries + "/initdb", ["-D", folder + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                              as: serverUser)
        guard initdb.status == 0 else { throw StartFailure(reason: "initdb failed: \(initdb.output.suffix(400))") }
        var started: (port: Int, output: String)?
        var lastOutput = ""
        for _ in 0..<3 {
            let port = Self.freePort()
            let start = Self.startServer(binaries: binaries, folder: folder, port: port, as: serverUser)
            if start.status == 0 { started = (port, start.output); break }
            lastOutput = start.output + ((try? String(contentsOfFile: folder + "/server.log", encoding: .utf8))?.suffix(400).description ?? "")
        }
        guard let started else {
            try? FileManager.default.removeItem(atPath: folder)
            throw StartFailure(reason: "pg_ctl start failed: \(lastOutput.suffix(400))")
        }
        port = started.port
    }

    /// A new empty database on the server; its URL.
    func makeDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let create = Self.run(binaries + "/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", String(name)])
        guard create.status == 0 else { throw StartFailure(reason: "createdb failed: \(create.output)") }
        return "postgres://postgres@127.0.0.1:\(port)/\(name)"
    }

    private static func startServer(binaries: String, folder: String, port: Int, as serverUser: String?) -> (status: Int32, output: String) {
        let options = "-c listen_addresses=127.0.0.1 -p \(port) -k \(folder) -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        return run(binaries + "/pg_ctl", ["-D", folder + "/data", "-l", folder + "/server.log", "-o", options, "-w", "-t", "30", "start"],
                   as: serverUser)
    }

    /// Stops the server as an operator restarting it would (`-m fast`: open sessions are terminated); the data stays.
    func stopServer() -> (status: Int32, output: String) {
        Self.run(binaries + "/pg_ctl", ["-D", folder + "/data", "-m", "fast", "-w", "stop"], as: serverUser)
    }

    /// Starts the stopped server again, on the same port.
    func restartServer() -> (status: Int32, output: String) {
        Self.startServer(binaries: binaries, folder: folder, port: port, as: serverUser)
    }

    func stop() {
        _ = Self.run(binaries + "/pg_ctl", ["-D", folder + "/data", "-m", "immediate", "-w", "stop"], as: serverUser)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// `$AFFINITY_PG_BIN`, else the newest `/usr/lib/postgresql/N/bin` (Debian), else a `pg_ctl` on the PATH.
    private static func findBinaries() -> String? {
        let fm = FileManager.default
        if let given = ProcessInfo.processInfo.environment["AFFINITY_PG_BIN"] { return fm.fileExists(atPath: given + "/initdb") ? given : nil }
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() where fm.isExecutableFile(atPath: "/usr/lib/postgresql/\(v)/bin/initdb") {
            return "/usr/lib/postgresql/\(v)/bin"
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where fm.isExecutableFile(atPath: "\(dir)/initdb") && fm.isExecutableFile(atPath: "\(dir)/pg_ctl") {
            return String(dir)
        }
        return nil
    }

    /// A loopback port nobody listens on now (the kernel's choice for port 0).
    private static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : Int.random(in: 20_000..<60_000)
    }

    /// Runs a program to completion (through `runuser` as `user` when given); its status and output. posix_spawn
    /// and waitpid directly: Foundation's `Process.waitUntilExit` can miss the exit of a child whose own child
    /// (the server pg_ctl starts) lives on.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], as user: String? = nil) -> (status: Int32, output: String) {
        let argv = user.map { ["/usr/sbin/runuser", "-u", $0, "--", program] + arguments } ?? [program] + arguments
        let outputPath = NSTemporaryDirectory() + "affinity-pg-output-\(UUID().uuidString)"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for a in cArguments { free(a) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { return (-1, "\(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS by hand (C macros): a signal is reported as -signal.
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
        return (exitStatus, output)
    }
}
