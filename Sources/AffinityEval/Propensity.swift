import Foundation

/// Item propensities — the probability that a relevant item is observed — estimated from training popularity,
/// as Saito et al. do for Rel-MF and its unbiased validation ("Unbiased Recommender Learning from
/// Missing-Not-At-Random Implicit Feedback", WSDM 2020, §5.2; their real-data code computes
/// `(item_freq / item_freq.max()) ** 0.5`):
///
///     p_i = max((n_i / max_j n_j)^η, clip)
///
/// η = `power` (0.5: Yang et al., RecSys 2018, fit p ∝ n^((γ+1)/2) to a power law and Saito et al. use 0.5). The
/// clip keeps inverse propensities ≤ 1/clip, trading a little bias for bounded variance; items with no training
/// interactions get p = clip. With no interactions at all every item gets 1 (nothing to reweight).
public struct PopularityPropensity: Sendable, Equatable {
    public var power: Double
    public var clip: Double

    /// Saito et al.'s evaluator floors propensities at 0.01 (`eps = 10e-3` in their real-data `metrics.py`).
    public static let evaluationDefault = PopularityPropensity(power: 0.5, clip: 0.01)

    public init(power: Double, clip: Double) {
        precondition(power >= 0 && power.isFinite, "propensity power must be ≥ 0")
        precondition(clip > 0 && clip <= 1, "propensity clip must be in (0, 1]")
        self.power = power
        self.clip = clip
    }

    /// p_i for every item.
    public func propensities(popularity: [Int]) -> [Double] {
        let most = popularity.max() ?? 0
        guard most > 0 else { return [Double](repeating: 1, count: popularity.count) }
        return popularity.map { max(pow(Double($0) / Double(most), power), clip) }
    }
}
