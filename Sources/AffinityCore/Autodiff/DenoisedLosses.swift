#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a batch's per-sample losses become one loss, following Wang, Feng, He, Nie and Chua, "Denoising Implicit
/// Feedback for Recommendation" (WSDM 2021): false-positive interactions are hard to fit, so early in training
/// they are the positives with the largest losses. Both forms are written as a weighted mean Σ_k w_k ℓ_k / D
/// whose weights are constants of the batch: no gradient flows through the choice of samples or their weights.
public enum Denoising: Sendable, Equatable {
    /// The plain mean.
    case none
    /// T-CE, the truncated loss (eq. 3): the ⌊rate · n⌋ positives of largest loss among the batch's n get weight
    /// 0 (no gradient), every other sample 1, and the mean is over the kept samples. In the pairwise (BPR) form
    /// the pairs are the samples. The official code counts the rate against positives and negatives together,
    /// all of it taken from the positives, so with one negative per positive its rate r drops 2r of the positives;
    /// here the rate is the fraction of positives dropped, as the paper states it.
    case truncated(dropRate: Double)
    /// R-CE, the reweighted loss (eq. 4): each sample's loss is weighted by the model's probability of its own
    /// label raised to β, held constant — σ(s⁺)^β for a positive, (1 − σ(s⁻))^β = σ(−s⁻)^β for a negative — so
    /// positives the model finds implausible (likely false positives) count less. In the pairwise form the label
    /// is the pair's order and its probability σ(s⁺ − s⁻): the pair is weighted by σ(s⁺ − s⁻)^β. The mean is over
    /// all samples, as in the official code.
    case reweighted(beta: Float)

    /// T-CE's drop-rate schedule (eq. 3 of the paper): ε(t) = min(t · ε_max / ε_N, ε_max) after t iterations
    /// (batches), rising linearly from 0 to `maximum` over `gradualIterations` and constant after. (The official
    /// code's `np.linspace(0, ε_max, ε_N)[t]` reaches ε_max one iteration earlier.)
    public static func dropRate(iteration: Int, maximum: Double, gradualIterations: Int) -> Double {
        guard gradualIterations > 0 else { return maximum }
        return min(Double(iteration) * maximum / Double(gradualIterations), maximum)
    }

    /// How many of `count` positives T-CE drops at `rate`: ⌊rate · count⌋ (a hair of slack absorbs the
    /// representation error of decimal rates, so 0.3 · 10 drops 3).
    public static func droppedCount(_ count: Int, rate: Double) -> Int {
        max(0, min(count, Int((rate * Double(count) + 1e-9).rounded(.down))))
    }

    /// T-CE's choice among `losses`: false for the ⌊rate · n⌋ largest (ties: the later sample is dropped first).
    public static func truncationKeeps(_ losses: [Float], rate: Double) -> [Bool] {
        let dropped = droppedCount(losses.count, rate: rate)
        var keeps = [Bool](repeating: true, count: losses.count)
        guard dropped > 0 else { return keeps }
        let order = losses.indices.sorted { losses[$0] < losses[$1] || (losses[$0] == losses[$1] && $0 < $1) }
        for k in order.suffix(dropped) { keeps[k] = false }
        return keeps
    }
}

/// The loss on a (positive, negative) score pair.
public enum PairLossForm: String, Sendable, CaseIterable {
    /// BPR's pairwise loss, ℓ = −log σ(s⁺ − s⁻) = softplus(s⁻ − s⁺) per pair.
    case bpr
    /// Pointwise binary cross-entropy (NCF's), the positive labelled 1 and the negative 0: two samples,
    /// ℓ⁺ = −log σ(s⁺) = softplus(−s⁺) and ℓ⁻ = −log(1 − σ(s⁻)) = softplus(s⁻), averaged over all 2n samples.
    case bce
}

extension Loss {
    /// The loss of a batch of score pairs (`positive`, `negative`: `[n, 1]`) in `form`, combined by `denoising`.
    /// With `.bpr` and `.none` it equals `bpr(positive:negative:)`.
    public static func pairLoss(positive: Tensor, negative: Tensor, form: PairLossForm, denoising: Denoising) -> Tensor {
        let n = positive.rows
        precondition(negative.rows == n && positive.cols == 1 && negative.cols == 1, "pairLoss: scores must be [n, 1] each")
        let value: Float, positiveSlopes: [Float], negativeSlopes: [Float]
        switch form {
        case .bpr:
            let margins = (0..<n).map { positive.value.storage[$0] - negative.value.storage[$0] }
            let objective = pairwiseObjective(margins: margins, denoising: denoising)
            value = objective.value
            positiveSlopes = objective.slopes
            negativeSlopes = objective.slopes.map { -$0 }
        case .bce:
            (value, positiveSlopes, negativeSlopes) = pointwiseObjective(positive: positive.value.storage, negative: negative.value.storage,
                                                                         denoising: denoising)
        }
        return Tensor(Matrix(rows: 1, cols: 1, repeating: value), inputs: [positive, negative]) { node in
            let g = node.grad!.storage[0]
            positive.accumulate(Matrix(rows: n, cols: 1, values: positiveSlopes.map { g * $0 }))
            negative.accumulate(Matrix(rows: n, cols: 1, values: negativeSlopes.map { g * $0 }))
        }
    }

    /// BPR on margins x_k = s⁺_k − s⁻_k: the value Σ w_k softplus(−x_k) / D and its slopes ∂/∂x_k = −w_k σ(−x_k) / D,
    /// with (w, D) from `denoising`. The plain mean has w = 1, D = n.
    static func pairwiseObjective(margins: [Float], denoising: Denoising) -> (value: Float, slopes: [Float]) {
        let n = margins.count
        guard n > 0 else { return (0, []) }
        var weights: [Float]? = nil
        var denominator = Double(n)
        switch denoising {
        case .none: break
        case .truncated(let rate):
            let keeps = Denoising.truncationKeeps(margins.map { softplusValue(-$0) }, rate: rate)
            weights = keeps.map { $0 ? 1 : 0 }
            denominator = Double(keeps.lazy.filter { $0 }.count)
        case .reweighted(let beta):
            // σ(x)^β = exp(−β softplus(−x)), without underflow for very negative margins.
            weights = margins.map { expf(-beta * softplusValue(-$0)) }
        }
        guard denominator > 0 else { return (0, [Float](repeating: 0, count: n)) }
        var total = 0.0
        var slopes = [Float](repeating: 0, count: n)
        let inverse = Float(1 / denominator)
        for k in 0..<n {
            let w = weights?[k] ?? 1
            guard w != 0 else { continue }
            total += Double(w) * Double(softplusValue(-margins[k]))
            slopes[k] = -w * stableSigmoid(-margins[k]) * inverse
        }
        return (Float(total / denominator), slopes)
    }

    /// Pointwise BCE on scores: the value (Σ w⁺_k softplus(−s⁺_k) + Σ w⁻_k softplus(s⁻_k)) / D and its slopes
    /// ∂/∂s⁺_k = −w⁺_k σ(−s⁺_k) / D and ∂/∂s⁻_k = w⁻_k σ(s⁻_k) / D. Plain: w = 1, D = 2n. T-CE truncates the
    /// positives only (negatives are kept), D = the kept count; R-CE weights both, D = 2n.
    static func pointwiseObjective(positive: [Float], negative: [Float], denoising: Denoising)
        -> (value: Float, positiveSlopes: [Float], negativeSlopes: [Float]) {
        let n = positive.count
        guard n > 0 else { return (0, [], []) }
        let positiveLosses = positive.map { softplusValue(-$0) }
        var positiveWeights: [Float]? = nil, negativeWeights: [Float]? = nil
        var denominator = Double(2 * n)
        switch denoising {
        case .none: break
        case .truncated(let rate):
            let keeps = Denoising.truncationKeeps(positiveLosses, rate: rate)
            positiveWeights = keeps.map { $0 ? 1 : 0 }
            denominator = Double(n + keeps.lazy.filter { $0 }.count)
        case .reweighted(let beta):
            positiveWeights = positive.map { expf(-beta * softplusValue(-$0)) }   // σ(s⁺)^β
            negativeWeights = negative.map { expf(-beta * softplusValue($0)) }    // (1 − σ(s⁻))^β = σ(−s⁻)^β
        }
        var total = 0.0
        var positiveSlopes = [Float](repeating: 0, count: n), negativeSlopes = positiveSlopes
        let inverse = Float(1 / denominator)
        for k in 0..<n {
            let wp = positiveWeights?[k] ?? 1, wn = negativeWeights?[k] ?? 1
            if wp != 0 {
                total += Double(wp) * Double(positiveLosses[k])
                positiveSlopes[k] = -wp * stableSigmoid(-positive[k]) * inverse
            }
            total += Double(wn) * Double(softplusValue(negative[k]))
            negativeSlopes[k] = wn * stableSigmoid(negative[k]) * inverse
        }
        return (Float(total / denominator), positiveSlopes, negativeSlopes)
    }
}
