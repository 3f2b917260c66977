import AffinityCore
import Foundation

/// Settings of the approximate unlearning step.
public struct UnlearningSettings: Sendable, Equatable {
    /// Passes over the forgotten interactions.
    public var steps: Int
    public var learningRate: Float
    /// Retained interactions sampled per affected item (and per affected user) in each pass.
    public var retainedSamples: Int
    /// Weight of the reverse-BPR step on each forgotten interaction, relative to the retained steps.
    public var reverseWeight: Float
    // Defaults chosen on ml-latest-small (Benchmarks/unlearning.sh): the forgotten items' rank lands near a
    // retrained model's while test recall stays within 1% of it.
    public init(steps: Int = 20, learningRate: Float = 0.01, retainedSamples: Int = 50, reverseWeight: Float = 0.15) {
        self.steps = steps
        self.learningRate = learningRate
        self.retainedSamples = retainedSamples
        self.reverseWeight = reverseWeight
    }
}

/// Approximate unlearning of interactions from a dot-product embedding model, without retraining: a few
/// passes of *reverse-BPR* fine-tuning in the spirit of MMRecUn (Sinha et al., 2024). For each forgotten
/// interaction (u, i) and a sampled item j, the step ascends the BPR loss, i.e. descends −log σ(s_uj − s_ui),
/// pushing i below items u never chose; at the same time ordinary BPR steps on *retained* interactions of the
/// affected items and users keep what the rest of the data says about them. Only the rows of affected users
/// and items move, so the cost is proportional to the forgotten data, not to the data set. At full weight
/// reverse-BPR overshoots: it pushes forgotten items to the bottom of the user's ranking, where a model that
/// never saw them would not put them (they are still plausible), and the moves spill onto everyone's rankings
/// of those items. A reverse weight of 0.15 against the retained steps lands them near a retrained model's
/// ranking (docs/benchmarks.md).
///
/// The served tables are the model's final embeddings (for LightGCN, after propagation), treated here as free
/// factors; retraining (`POST /v1/admin/retrain`) is the exact alternative.
public enum Unlearning {
    /// - Parameters:
    ///   - forget: the interactions to forget, as (user, item) dense indices.
    ///   - retainedByUser: each user's retained items, sorted (CSR rows of the remaining training data).
    ///   - retainedByItem: each item's retained users.
    /// - Returns: the updated embedding tables.
    public static func forget(
        users: Matrix, items: Matrix,
        forget: [(user: Int32, item: Int32)],
        retainedByUser: SparseMatrix, retainedByItem: SparseMatrix,
        settings: UnlearningSettings = UnlearningSettings(), seed: UInt64 = 2020
    ) -> (users: Matrix, items: Matrix) {
        var u = users, q = items
        let d = users.cols, itemCount = items.rows
        guard !forget.isEmpty, itemCount > 1 else { return (u, q) }
        var rng = SeededGenerator(seed: seed)
        let affectedItems = Array(Set(forget.map { $0.item })).sorted()
        let affectedUsers = Array(Set(forget.map { $0.user })).sorted()
        let movable = Set(affectedItems)

        var gu = [Float](repeating: 0, count: d), gi = [Float](repeating: 0, count: d)
        func negative(for user: Int32, avoiding item: Int32) -> Int32 {
            // Rejection sampling; a user who has (nearly) every item gets any other item after 100 tries.
            for _ in 0..<100 {
                let j = Int32(rng.nextInt(below: itemCount))
                if j != item && !retainedByUser.contains(row: Int(user), col: j) { return j }
            }
            return (item + 1) % Int32(itemCount)
        }
        // One pairwise step on (user, i ≻ j) — or j ≻ i when `reverse` — moving the user row when `moveUser`
        // and any of i, j that are affected items.
        func step(_ user: Int32, _ i: Int32, _ j: Int32, reverse: Bool, moveUser: Bool, weight: Float = 1) {
            let ub = Int(user) * d, ib = Int(i) * d, jb = Int(j) * d
            var x: Float = 0
            for c in 0..<d { x += u.storage[ub + c] * (q.storage[ib + c] - q.storage[jb + c]) }
            if reverse { x = -x }
            let g = 1 / (1 + exp(x))  // −∂/∂x log σ(x)
            let sign: Float = reverse ? -1 : 1
            for c in 0..<d {
                gu[c] = sign * g * (q.storage[ib + c] - q.storage[jb + c])
                gi[c] = sign * g * u.storage[ub + c]  // and −gi for j
            }
            let lr = settings.learningRate * weight
            if moveUser { for c in 0..<d { u.storage[ub + c] += lr * gu[c] } }
            if movable.contains(i) { for c in 0..<d { q.storage[ib + c] += lr * gi[c] } }
            if movable.contains(j) { for c in 0..<d { q.storage[jb + c] -= lr * gi[c] } }
        }

        // Retained steps on `count` random entries of a CSR row; `pair(entry)` gives (user, positive item).
        func retainedSteps(_ row: ArraySlice<Int32>, moveUser: Bool, _ pair: (Int32) -> (Int32, Int32)) {
            for _ in 0..<min(settings.retainedSamples, row.count) {
                let (user, item) = pair(row[row.startIndex + rng.nextInt(below: row.count)])
                step(user, item, negative(for: user, avoiding: item), reverse: false, moveUser: moveUser)
            }
        }

        for _ in 0..<settings.steps {
            for (user, item) in forget {
                step(user, item, negative(for: user, avoiding: item), reverse: true, moveUser: true, weight: settings.reverseWeight)
            }
            for item in affectedItems {
                retainedSteps(retainedByItem.columns(ofRow: Int(item)), moveUser: false) { ($0, item) }
            }
            for user in affectedUsers {
                retainedSteps(retainedByUser.columns(ofRow: Int(user)), moveUser: true) { (user, $0) }
            }
        }
        return (u, q)
    }
}
