import Testing
import Foundation
import AffinityServer
import AffinityPostgres
import AffinityTestSupport

/// The two store implementations; every conformance test runs against both.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// Where a fresh, empty store of this kind is: a new SQLite file, or a new database on the test server
    /// (cancels the test when PostgreSQL cannot start).
    func freshLocation() throws -> StoreLocation {
        switch self {
        case .sqlite: return .sqlite(path: Fixtures.temporaryFolder("store") + "/events.sqlite")
        case .postgres: return .postgres(url: try TestPostgres.require().makeDatabase())
        }
    }
}

@Suite("Store conformance")
struct StoreConformanceTests {
    @Test("appends, counts and reads back events with their optional fields", arguments: StoreKind.allCases)
    func appendAndRead(kind: StoreKind) async throws {
        let store = try kind.freshLocation().open()
        defer { try? store.close() }
        #expect(try store.count() == 0)
        #expect(try store.lastID() == 0)
        let batch = [Event(user: "u1", item: "a", type: "click", value: 2.5, timestamp: 1_700_000_000),
                     Event(user: "u2", item: "b"),
                     Event(user: "u1", item: "c", value: -1)]
        let ids = try #require(try await store.append(batch))
        #expect(ids.count == 3)
        #expect(try await store.append([]) == nil)
        let seeded = try #require(try store.appendNow([Event(user: "u3", item: "a")], source: "training"))
        #expect(seeded.lowerBound > ids.upperBound)
        #expect(try store.count() == 4)
        #expect(try store.count(user: "u1") == 2)
        #expect(try store.count(user: "nobody") == 0)
        #expect(try store.lastID() == seeded.upperBound)
        #expect(try store.events(of: "u1") == [batch[0], batch[2]])
        #expect(try store.events(of: "u2") == [batch[1]])
        #expect(try store.events(of: "u1", newest: 1) == [batch[2]])  // the newest, oldest first
        #expect(try store.events(of: "u1", newest: 5) == [batch[0], batch[2]])
        #expect(try store.events(of: "u1", newest: 0).isEmpty)

        var seen: [(Int64, String, String)] = []
        try store.forEachInteraction { seen.append(($0, $1, $2)) }
        #expect(seen.map(\.0) == seen.map(\.0).sorted())
        #expect(seen.map { "\($0.1)/\($0.2)" } == ["u1/a", "u2/b", "u1/c", "u3/a"])
        var later: [String] = []
        try store.forEachInteraction(after: ids.upperBound) { _, user, _ in later.append(user) }
        #expect(later == ["u3"])
    }

    @Test("deleting a user removes exactly their events", arguments: StoreKind.allCases)
    func deleteUser(kind: StoreKind) async throws {
        let store = try kind.freshLocation().open()
        defer { try? store.close() }
        try await store.append([Event(user: "gone", item: "a"), Event(user: "kept", item: "a"), Event(user: "gone", item: "b")])
        #expect(try await store.deleteUser("gone") == 2)
        #expect(try await store.deleteUser("never-seen") == 0)
        #expect(try store.count() == 1)
        #expect(try store.events(of: "gone").isEmpty)
        #expect(try store.events(of: "kept").map(\.item) == ["a"])
    }

    @Test("meta values are absent, set, then replaced", arguments: StoreKind.allCases)
    func meta(kind: StoreKind) throws {
        let store = try kind.freshLocation().open()
        defer { try? store.close() }
        #expect(try store.meta("seeded_from") == nil)
        try store.setMeta("seeded_from", "one")
        try store.setMeta("seeded_from", "two")
        try store.setMeta("other", "x")
        #expect(try store.meta("seeded_from") == "two")
        #expect(try store.meta("other") == "x")
    }

    @Test("a reopened store keeps its data, and opening again does not migrate twice", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let first = try location.open()
        try await first.append([Event(user: "u", item: "i", type: "buy")])
        try first.setMeta("k", "v")
        _ = try first.publishModel(.bytes([1, 2, 3]), note: "first", makeLive: true)
        try first.close()
        let second = try location.open()
        defer { try? second.close() }
        #expect(try second.events(of: "u") == [Event(user: "u", item: "i", type: "buy")])
        #expect(try second.meta("k") == "v")
        #expect(try second.liveModelVersion()?.note == "first")
    }

    @Test("the change feed returns other handles' deletions and surviving events once, never the handle's own",
          arguments: StoreKind.allCases)
    func changeFeed(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let writer = try location.open(), reader = try location.open()
        defer { try? writer.close(); try? reader.close() }
        try await writer.append([Event(user: "before", item: "x")])
        let start = try reader.changeCursor()
        #expect(try reader.changes(after: start).events.isEmpty)

        try await writer.append([Event(user: "u1", item: "a", value: 1), Event(user: "u2", item: "b")])
        try await reader.append([Event(user: "own", item: "c")])
        #expect(try await writer.deleteUser("u2") == 1)
        #expect(try await writer.deleteUser("before") == 1)
        try await writer.append([Event(user: "u2", item: "again")])

        let changes = try await collect(reader, from: start) { $0.events.count >= 2 && $0.deletedUsers.count >= 2 }
        #expect(changes.deletedUsers == ["u2", "before"])
        // u2's first event was deleted before the poll: only the later one survives.
        #expect(changes.events == [Event(user: "u1", item: "a", value: 1), Event(user: "u2", item: "again")])
        let repeated = try reader.changes(after: changes.next)
        #expect(repeated.events.isEmpty && repeated.deletedUsers.isEmpty)

        try await writer.append([Event(user: "u3", item: "d")])
        #expect(try await collect(reader, from: changes.next) { !$0.events.isEmpty }.events.map(\.user) == ["u3"])
        // The other direction: the writer sees the reader's event, not its own.
        #expect(try await collect(writer, from: start) { !$0.events.isEmpty }.events.map(\.user) == ["own"])
    }

    @Test("the model registry numbers versions, verifies checksums and moves the live pointer", arguments: StoreKind.allCases)
    func modelRegistry(kind: StoreKind) throws {
        let store = try kind.freshLocation().open()
        defer { try? store.close() }
        #expect(try store.liveModelVersion() == nil)
        #expect(try store.liveArtifact() == nil)

        let first = try store.publishModel(.bytes([1, 2, 3, 4]), note: "bpr events<=10", makeLive: true)
        #expect(first.version == 1 && first.byteCount == 4 && first.path == nil)
        #expect(first.checksum == "b63cfbcd")  // CRC-32 of 01 02 03 04
        #expect(try store.liveModelVersion() == first)
        #expect(try store.modelBytes(first) == [1, 2, 3, 4])

        let file = Fixtures.file("model.affinity", bytes: [9, 8, 7])
        let second = try store.publishModel(.path(file), note: "by path", makeLive: false)
        #expect(second.version == 2 && second.path == file && second.byteCount == 3)
        #expect(try store.liveModelVersion()?.version == 1)
        #expect(try store.storedModelBytes(version: 2) == nil)
        try store.makeLive(version: 2)
        #expect(try store.liveModelVersion() == second)
        #expect(try store.modelBytes(second) == [9, 8, 7])
        #expect(try store.modelVersions().map(\.version) == [1, 2])

        #expect(throws: ModelRegistryError.self) { try store.makeLive(version: 99) }
        #expect(try store.liveModelVersion()?.version == 2)
        // The file changed after publication: the checksum catches it.
        try Data([9, 8, 6]).write(to: URL(fileURLWithPath: file))
        #expect(throws: ModelRegistryError.self) { try store.modelBytes(second) }
    }
}

@Suite("Store locations")
struct StoreLocationTests {
    @Test("--store values name SQLite or PostgreSQL")
    func parsing() throws {
        #expect(StoreLocation("events.sqlite") == .sqlite(path: "events.sqlite"))
        #expect(StoreLocation("sqlite:/tmp/e.db") == .sqlite(path: "/tmp/e.db"))
        #expect(StoreLocation("postgres://u@h:5433/db") == .postgres(url: "postgres://u@h:5433/db"))
        #expect(StoreLocation("postgresql://u@h/db").isShared)
        let target = try PostgresLocation(url: "postgres://alice:secret@db.example:6543/affinity")
        #expect(target.host == "db.example" && target.port == 6543 && target.user == "alice" && target.database == "affinity")
        #expect(!target.redacted.contains("secret"))
        #expect(try PostgresLocation(url: "postgres://bob@/affinity?host=/run/pg").socketDirectory == "/run/pg")
        #expect(throws: PostgresStoreError.self) { try PostgresLocation(url: "postgres://u@h:5432/") }
        #expect(throws: PostgresStoreError.self) { try PostgresLocation(url: "postgres://h:5432/db") }
        #expect(throws: PostgresStoreError.self) { try PostgresLocation(url: "mysql://u@h/db") }
    }

    @Test("an unreachable PostgreSQL is a clear error, not a crash")
    func unreachable() throws {
        #expect {
            try PostgresEventStore(url: "postgres://nobody@127.0.0.1:1/none")
        } throws: { error in
            "\(error)".contains("cannot open postgres://nobody@127.0.0.1:1/none")
        }
    }
}

/// Polls `store`'s change feed from `start`, accumulating, until `done` holds or 10 s pass. PostgreSQL's feed
/// holds back rows while any older transaction in the cluster is still running (another test's, say), so a
/// single poll right after a write may not see it yet.
func collect(_ store: any EventStore, from start: ChangeCursor, until done: (StoreChanges) -> Bool) async throws -> StoreChanges {
    var total = StoreChanges(deletedUsers: [], events: [], next: start)
    let deadline = ContinuousClock.now + .seconds(10)
    while true {
        let step = try store.changes(after: total.next)
        total.deletedUsers += step.deletedUsers
        total.events += step.events
        total.next = step.next
        if done(total) || ContinuousClock.now > deadline { return total }
        try await Task.sleep(for: .milliseconds(20))
    }
}

@Suite("PostgreSQL advisory lock")
struct AdvisoryLockTests {
    @Test("one holder at a time; a waiter gets the lock when the holder's session ends")
    func exclusion() async throws {
        let url = try TestPostgres.require().makeDatabase()
        let first = try PostgresEventStore(url: url), second = try PostgresEventStore(url: url)
        defer { try? first.close(); try? second.close() }
        let key: Int64 = 42
        let held = try #require(try first.tryAdvisoryLock(key))
        #expect(held.isHeld)
        #expect(try second.tryAdvisoryLock(key) == nil)
        // A waiter blocks until the holder's session ends (as when a worker is killed: its connection drops).
        let waiter = Task.detached { try second.waitForAdvisoryLock(key) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try first.tryAdvisoryLock(key) == nil)
        held.release()
        let next = try await waiter.value
        #expect(next.isHeld)
        #expect(try first.tryAdvisoryLock(key) == nil)
        next.release()
        let again = try #require(try first.tryAdvisoryLock(key))
        again.release()
    }
}
