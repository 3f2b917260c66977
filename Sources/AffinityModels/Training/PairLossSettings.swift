import AffinityCore

/// The loss a pair-trained model (BPR-MF, LightGCN) puts on its (user, positive, negative) triples, read from
/// its settings: `loss` (`bpr`, the pairwise default, or `bce`, pointwise binary cross-entropy on the positive
/// and the sampled negative as in NCF) and `denoise` (`none`; `tce`, the truncated loss, with `drop_rate`, the
/// largest fraction of positives dropped (0.2), reached linearly after `num_gradual` batches (30,000); `rce`, the
/// reweighted loss with exponent `beta` (0.25)) — Wang et al., "Denoising Implicit Feedback for Recommendation",
/// WSDM 2021; defaults from the official code and the paper (see `Denoising`).
public struct PairLossSettings: Sendable, Equatable {
    public var form: PairLossForm
    /// `none`, `tce` or `rce`.
    public var denoise: String
    public var maxDropRate: Double
    public var gradualIterations: Int
    public var beta: Float

    public init(_ h: inout Hyperparameters) throws {
        form = PairLossForm(rawValue: try h.string("loss", default: "bpr", allowed: PairLossForm.allCases.map(\.rawValue)))!
        denoise = try h.string("denoise", default: "none", allowed: ["none", "tce", "rce"])
        maxDropRate = 0
        gradualIterations = 0
        beta = 0
        // The method's own settings are read only when it is chosen, so a stray `beta` is reported as unused.
        if denoise == "tce" {
            maxDropRate = try h.float("drop_rate", default: 0.2)
            gradualIterations = try h.int("num_gradual", default: 30_000)
            guard maxDropRate >= 0, maxDropRate < 1 else { throw HyperparameterError.outOfRange("drop_rate", "must be in [0, 1)") }
            guard gradualIterations >= 0 else { throw HyperparameterError.outOfRange("num_gradual", "must be non-negative") }
        } else if denoise == "rce" {
            beta = Float(try h.float("beta", default: 0.25))
            guard beta >= 0 else { throw HyperparameterError.outOfRange("beta", "must be non-negative") }
        }
    }

    /// BPR without denoising: models keep their own (fused) plain path for it.
    public var isPlainBPR: Bool { form == .bpr && denoise == "none" }

    /// The combination after `iteration` batches of training (T-CE's drop rate follows its schedule).
    public func denoising(iteration: Int) -> Denoising {
        switch denoise {
        case "tce": return .truncated(dropRate: Denoising.dropRate(iteration: iteration, maximum: maxDropRate,
                                                                   gradualIterations: gradualIterations))
        case "rce": return .reweighted(beta: beta)
        default: return .none
        }
    }

    /// The batch loss on `[n, 1]` positive and negative scores after `iteration` batches.
    public func loss(positive: Tensor, negative: Tensor, iteration: Int) -> Tensor {
        isPlainBPR ? Loss.bpr(positive: positive, negative: negative)
            : Loss.pairLoss(positive: positive, negative: negative, form: form, denoising: denoising(iteration: iteration))
    }
}
