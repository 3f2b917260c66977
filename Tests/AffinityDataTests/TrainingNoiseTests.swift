import Testing
import AffinityCore
import AffinityData
import AffinityTestSupport

@Suite struct TrainingNoiseTests {
    /// 6 users × 40 items: user u trains on 2u + 1 items, validates on 1 and tests on 1 (user 5 has nearly every
    /// item, so few remain unseen for them).
    func split() -> DataSplit {
        var train = Interactions(), valid = Interactions(), test = Interactions()
        for u in 0..<6 {
            let owned = u == 5 ? 36 : 2 * u + 1
            for i in 0..<owned {
                train.users.append(Int32(u)); train.items.append(Int32((i * 7 + u) % 40))
            }
            valid.users.append(Int32(u)); valid.items.append(Int32((owned * 7 + u) % 40))
            test.users.append(Int32(u)); test.items.append(Int32(((owned + 1) * 7 + u) % 40))
        }
        train.ratings = train.users.indices.map { Float($0 % 5 + 1) }
        train.timestamps = train.users.indices.map { Double($0) }
        return DataSplit(userCount: 6, itemCount: 40, train: train, valid: valid, test: test)
    }

    @Test func addsFloorOfTheFractionOfUnseenItemsPerUserToTrainingOnly() {
        let clean = split()
        let (noisy, added) = clean.withTrainingNoise(fraction: 0.4, seed: 7)
        #expect(noisy.valid == clean.valid && noisy.test == clean.test)
        var total = 0
        for u in 0..<6 {
            let before = clean.trainMatrix.count(ofRow: u)
            let seen = Set(clean.trainMatrix.columns(ofRow: u) + clean.validMatrix.columns(ofRow: u) + clean.testMatrix.columns(ofRow: u))
            let new = Set(noisy.trainMatrix.columns(ofRow: u)).subtracting(clean.trainMatrix.columns(ofRow: u))
            // ⌊0.4 · n⌋, capped by the 2 items user 5 has not seen.
            let expected = min(Int(0.4 * Double(before)), 40 - seen.count)
            #expect(new.count == expected, "user \(u)")
            #expect(new.isDisjoint(with: seen))
            #expect(noisy.trainMatrix.count(ofRow: u) == before + expected)  // no duplicates
            total += expected
        }
        #expect(added == total && noisy.train.count == clean.train.count + total)
        // Added interactions carry ratings and timestamps copied from the same user's training interactions.
        for p in clean.train.count..<noisy.train.count {
            let u = noisy.train.users[p]
            let twins = clean.train.users.indices.filter { clean.train.users[$0] == u }
            #expect(twins.contains { clean.train.ratings![$0] == noisy.train.ratings![p] && clean.train.timestamps![$0] == noisy.train.timestamps![p] })
        }
    }

    @Test func theSeedFixesTheNoise() {
        let clean = split()
        #expect(clean.withTrainingNoise(fraction: 0.5, seed: 1).split.train == clean.withTrainingNoise(fraction: 0.5, seed: 1).split.train)
        #expect(clean.withTrainingNoise(fraction: 0.5, seed: 1).split.train != clean.withTrainingNoise(fraction: 0.5, seed: 2).split.train)
        #expect(clean.withTrainingNoise(fraction: 0, seed: 1).split.train == clean.train)
    }
}
