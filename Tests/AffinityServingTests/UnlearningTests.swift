import Testing
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing

@Suite struct UnlearningTests {
    /// Two clusters of users and items; user 0 (cluster A) also chose three cluster-B items, which are then
    /// forgotten.
    func clusteredData(withBridge: Bool) -> Interactions {
        var rng = SeededGenerator(seed: 3)
        var data = Interactions()
        for u in 0..<60 {
            let base = u < 30 ? 0 : 30
            var chosen = Set<Int32>()
            while chosen.count < 10 { chosen.insert(Int32(base + rng.nextInt(below: 30))) }
            for i in chosen.sorted() { data.users.append(Int32(u)); data.items.append(i) }
        }
        if withBridge { for i: Int32 in [30, 31, 32] where !data.items.indices.contains(where: { data.users[$0] == 0 && data.items[$0] == i }) {
            data.users.append(0); data.items.append(i)
        } }
        return data
    }

    func train(_ data: Interactions) throws -> BPRMF {
        var h = Hyperparameters(["embedding_size": "16", "epochs": "150", "learning_rate": "0.02", "train_batch_size": "128"])
        let model = try BPRMF(&h)
        try model.fit(TrainingData(userCount: 60, itemCount: 60, interactions: data), context: TrainingContext(seed: 5))
        return model
    }

    /// Mean rank (0 = best) of `items` for user 0 among the items user 0 still has not chosen.
    func meanRank(_ users: Matrix, _ items: Matrix, _ targets: [Int32], retained: Set<Int32>) -> Double {
        let scores = (0..<60).map { i in (0..<users.cols).reduce(Float(0)) { $0 + users[0, $1] * items[i, $1] } }
        let candidates = (0..<60).filter { !retained.contains(Int32($0)) }
        let ranked = candidates.sorted { scores[$0] > scores[$1] }
        return targets.map { t in Double(ranked.firstIndex(of: Int(t))!) }.reduce(0, +) / Double(targets.count)
    }

    @Test func reverseBPRMovesForgottenScoresToTheRetrainedLevel() throws {
        let full = clusteredData(withBridge: true)
        let kept = clusteredData(withBridge: false)
        let forgotten: [Int32] = [30, 31, 32]
        let original = try train(full)
        let retrained = try train(kept)
        let retainedByUser = kept.matrix(users: 60, items: 60)
        let retained0 = Set(retainedByUser.columns(ofRow: 0))
        let (u, q) = Unlearning.forget(users: original.userEmbeddings, items: original.itemEmbeddings,
                                       forget: forgotten.map { (0, $0) }, retainedByUser: retainedByUser,
                                       retainedByItem: retainedByUser.transposed(),
                                       // Stronger than the defaults (calibrated on MovieLens, where a user forgets
                                       // dozens of items): here one user forgets three, far from their cluster.
                                       settings: UnlearningSettings(steps: 50, learningRate: 0.02, reverseWeight: 0.3))
        let rOriginal = meanRank(original.userEmbeddings, original.itemEmbeddings, forgotten, retained: retained0)
        let rRetrained = meanRank(retrained.userEmbeddings, retrained.itemEmbeddings, forgotten, retained: retained0)
        let rUnlearned = meanRank(u, q, forgotten, retained: retained0)
        // Trained on them, the model ranks the three B items near the top; without them they fall among the
        // other B items; unlearning must land much nearer the retrained rank than the original one.
        #expect(rOriginal < 10)
        #expect(rRetrained > 15)
        #expect(abs(rUnlearned - rRetrained) < abs(rOriginal - rRetrained) / 3)
        // The rest of user 0's preferences survive: unseen cluster-A items still outrank the other B items.
        let unseenA = (0..<30).map(Int32.init).filter { !retained0.contains($0) }
        let otherB = (33..<60).map(Int32.init)
        #expect(meanRank(u, q, unseenA, retained: retained0) < meanRank(u, q, otherB, retained: retained0))
        // Rows of unaffected users never move.
        #expect(Array(u.storage[16..<(60 * 16)]) == Array(original.userEmbeddings.storage[16..<(60 * 16)]))
    }
}
