import Foundation

/// How the learning rate moves over training, set by `lr_schedule`:
/// - `constant` (default; RecBole's trainer): `learning_rate` throughout.
/// - `cosine`: from `learning_rate` down to `lr_min` along a half cosine over the `epochs` budget, updated every
///   batch (Loshchilov & Hutter, "SGDR", ICLR 2017, eq. 5, one cycle without restarts).
/// - `step`: × `lr_decay` every `lr_step` epochs (MMRec's LATTICE: × 0.96 every 50).
public enum LearningRateSchedule: Sendable, Equatable {
    case constant
    case cosine(minimum: Float)
    case step(factor: Float, every: Int)

    public init(_ h: inout Hyperparameters) throws {
        switch try h.string("lr_schedule", default: "constant", allowed: ["constant", "cosine", "step"]) {
        case "cosine":
            let minimum = Float(try h.float("lr_min", default: 0))
            guard minimum >= 0 else { throw HyperparameterError.outOfRange("lr_min", "must be ≥ 0") }
            self = .cosine(minimum: minimum)
        case "step":
            let factor = Float(try h.float("lr_decay", default: 0.96)), every = try h.int("lr_step", default: 50)
            guard factor > 0, factor <= 1, every > 0 else {
                throw HyperparameterError.outOfRange("lr_decay/lr_step", "need 0 < lr_decay ≤ 1 and lr_step > 0")
            }
            self = .step(factor: factor, every: every)
        default:
            self = .constant
        }
    }

    /// The rate for batch `batch` of `batches` in epoch `epoch` of a budget of `epochs`.
    public func rate(base: Float, epoch: Int, batch: Int, batches: Int, epochs: Int) -> Float {
        switch self {
        case .constant:
            return base
        case .cosine(let minimum):
            let progress = (Double(epoch) + Double(batch) / Double(max(batches, 1))) / Double(max(epochs, 1))
            return minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * min(progress, 1))))
        case .step(let factor, let every):
            return base * powf(factor, Float(epoch / every))
        }
    }
}
