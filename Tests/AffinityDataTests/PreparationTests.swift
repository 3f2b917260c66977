import Testing
import AffinityData
import AffinityTestSupport

@Suite struct PreparationTests {
    func toy() throws -> Dataset {
        // u1: 5 items, u2: 3 items, u3: 1 item; ratings 1…5; a duplicate (u1, a).
        let csv = """
        user,item,rating,timestamp
        u1,a,5,1
        u1,b,4,2
        u1,c,3,3
        u1,d,2,4
        u1,e,1,5
        u2,a,5,6
        u2,b,4,7
        u2,c,1,8
        u3,a,5,9
        u1,a,2,10
        """
        return try DatasetLoader.load(path: Fixtures.file("toy.csv", csv + "\n"), format: .csv)
    }

    @Test func thresholdDropsLowRatingsAndEmptiedIds() throws {
        let d = try Preprocessing(ratingThreshold: 4, deduplicate: .none).apply(to: try toy())
        #expect(d.interactions.count == 5)  // (u1,a,5) (u1,b,4) (u2,a,5) (u2,b,4) (u3,a,5)
        #expect(d.users.rawIDs == ["u1", "u2", "u3"])
        #expect(d.items.rawIDs == ["a", "b"])
    }

    @Test func deduplicationKeepsFirstOrLast() throws {
        let first = try Preprocessing(deduplicate: .first).apply(to: try toy())
        let last = try Preprocessing(deduplicate: .last).apply(to: try toy())
        #expect(first.interactions.count == 9 && last.interactions.count == 9)
        #expect(first.interactions.ratings?.first == 5)          // (u1, a, 5) kept
        #expect(last.interactions.ratings?.contains(5) == true)
        #expect(last.interactions.timestamps?.contains(10) == true && last.interactions.timestamps?.contains(1) == false)
    }

    @Test func kCoreIsIterative() throws {
        // item_core 2 removes d, e (1 each) and u3's only… a stays (3 users). Then user_core 3 removes u3.
        let d = try Preprocessing(userCore: 3, itemCore: 2).apply(to: try toy())
        #expect(d.users.rawIDs == ["u1", "u2"])
        #expect(d.items.rawIDs == ["a", "b", "c"])
        #expect(d.interactions.count == 6)
        // A chain where removing one user pushes an item under the threshold.
        let chain = try DatasetLoader.load(path: Fixtures.file("c.csv", "user,item\nx,1\nx,2\ny,2\ny,3\nz,3\n"), format: .csv)
        let core = try Preprocessing(userCore: 2, itemCore: 2).apply(to: chain)
        #expect(core.interactions.count == 0)
    }

    @Test func thresholdWithoutRatingsIsAnError() throws {
        let d = try DatasetLoader.load(path: Fixtures.file("n.csv", "user,item\n1,2\n"), format: .csv)
        #expect(throws: DataError.self) { _ = try Preprocessing(ratingThreshold: 3).apply(to: d) }
    }

    @Test func recBoleSplitCounts() {
        #expect(DataSplit.recBoleCounts(total: 20, ratios: [0.8, 0.1, 0.1]) == [16, 2, 2])
        #expect(DataSplit.recBoleCounts(total: 25, ratios: [0.8, 0.1, 0.1]) == [21, 2, 2])
        // 0.1 · 5 = 0.5 is strictly between 0 and 1: both later parts get one.
        #expect(DataSplit.recBoleCounts(total: 5, ratios: [0.8, 0.1, 0.1]) == [3, 1, 1])
        #expect(DataSplit.recBoleCounts(total: 2, ratios: [0.8, 0.1, 0.1]) == [1, 0, 1])
        #expect(DataSplit.recBoleCounts(total: 1, ratios: [0.8, 0.1, 0.1]) == [1, 0, 0])
    }

    @Test func randomSplitIsPerUserDeterministicAndSeedDependent() throws {
        let d = try Fixtures.movieLensSmall()
        let a = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        let b = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        let c = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 1)
        #expect(a.test == b.test && a.valid == b.valid)
        #expect(a.test != c.test)
        #expect(a.train.count + a.valid.count + a.test.count == d.interactions.count)
        // Per user: sizes follow RecBole's rule.
        let perUser = d.interactions.positionsByUser(userCount: d.userCount).map(\.count)
        for u in [0, 1, 100] {
            let want = DataSplit.recBoleCounts(total: perUser[u], ratios: [0.8, 0.1, 0.1])
            #expect([a.trainMatrix.count(ofRow: u), a.validMatrix.count(ofRow: u), a.testMatrix.count(ofRow: u)] == want)
        }
    }

    @Test func leaveOneOutTakesLatestByTime() throws {
        let s = try DataSplit.make(try toy(), strategy: .leaveOneOut, seed: 0)
        // u1's latest is the duplicate (u1, a) at t=10, then e at t=5.
        #expect(s.test.timestamps?.sorted() == [8, 10])
        #expect(s.valid.timestamps?.sorted() == [5, 7])
        #expect(s.train.count == 6)
    }

    @Test func temporalSplitIsGlobal() throws {
        let s = try DataSplit.make(try toy(), strategy: .temporalRatio([0.8, 0.1, 0.1]), seed: 0)
        #expect(s.train.timestamps == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(s.valid.timestamps == [9] && s.test.timestamps == [10])
    }

    @Test func splitStrategyParsing() throws {
        #expect(try SplitStrategy(parsing: "ratio:0.8,0.1,0.1") == .userRandomRatio([0.8, 0.1, 0.1]))
        #expect(try SplitStrategy(parsing: "loo") == .leaveOneOut)
        #expect(try SplitStrategy(parsing: "fixed") == .predefined)
        #expect(throws: SplitError.self) { try SplitStrategy(parsing: "bogus") }
        #expect(throws: SplitError.self) { try SplitStrategy(parsing: "ratio:a,b") }
        #expect(throws: SplitError.self) { _ = try DataSplit.make(try toy(), strategy: .predefined, seed: 0) }
    }

    @Test func fingerprintTracksContent() throws {
        let a = try toy(), b = try toy()
        #expect(a.fingerprint == b.fingerprint)
        let c = a.filtered { $0 > 0 }
        #expect(a.fingerprint != c.fingerprint)
    }
}
