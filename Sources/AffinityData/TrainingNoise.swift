import AffinityCore

extension DataSplit {
    /// The split with random false positives added to its training part, as the noise benchmarks of the denoising
    /// papers build them (PLD, WWW 2025): every user gets ⌊fraction · |train_u|⌋ items drawn uniformly, without
    /// replacement, among the items they have not interacted with in any part (fewer if fewer remain). Validation and
    /// test are untouched. An added interaction copies the rating and timestamp of one of the user's training
    /// interactions drawn at random, so only its item tells it apart. `seed` fixes the draw (one generator per user,
    /// derived from it), so every model of a run, and every run with that seed, trains on the same noise.
    public func withTrainingNoise(fraction: Double, seed: UInt64) -> (split: DataSplit, added: Int) {
        precondition(fraction >= 0 && fraction.isFinite, "withTrainingNoise: fraction must be non-negative")
        let trainPositions = train.positionsByUser(userCount: userCount)
        let known = [trainMatrix, validMatrix, testMatrix]
        var users = train.users, items = train.items
        var ratings = train.ratings, timestamps = train.timestamps
        let base = SeededGenerator(seed: seed).derived(stream: 0x4E01_5E)
        for user in 0..<userCount {
            let own = trainPositions[user]
            let seen = Set(known.flatMap { $0.columns(ofRow: user) })
            let wanted = min(Int((fraction * Double(own.count) + 1e-9).rounded(.down)), itemCount - seen.count)
            guard wanted > 0 else { continue }
            var rng = base.derived(stream: UInt64(user))
            var added = Set<Int32>()
            // Rejection while the unseen items are plentiful; an exact draw from the remaining ones otherwise.
            while added.count < wanted {
                let free = itemCount - seen.count - added.count
                let item: Int32
                if free * 2 >= itemCount {
                    let candidate = Int32(rng.nextInt(below: itemCount))
                    if seen.contains(candidate) || added.contains(candidate) { continue }
                    item = candidate
                } else {
                    let remaining = (0..<Int32(itemCount)).filter { !seen.contains($0) && !added.contains($0) }
                    item = remaining[rng.nextInt(below: remaining.count)]
                }
                added.insert(item)
                let twin = own[rng.nextInt(below: own.count)]
                users.append(Int32(user))
                items.append(item)
                ratings?.append(train.ratings![twin])
                timestamps?.append(train.timestamps![twin])
            }
        }
        let noisy = Interactions(users: users, items: items, ratings: ratings, timestamps: timestamps)
        return (DataSplit(userCount: userCount, itemCount: itemCount, train: noisy, valid: valid, test: test),
                noisy.count - train.count)
    }
}
