#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AffinityKernels

/// Gradient-descent optimizers over `Tensor` parameters. A parameter with a dense gradient is updated
/// everywhere; one with a row-sparse gradient (embedding tables read by `gather`) only in the rows the batch
/// touched ("lazy" updates, as TensorFlow's LazyAdam and PyTorch's SparseAdam). `step` consumes and clears
/// the gradients.
public protocol Optimizer: AnyObject {
    /// The step size; a learning-rate schedule changes it between steps.
    var learningRate: Float { get set }
    func step(_ parameters: [Tensor])
    /// What the optimizer carries between steps for these parameters (for training checkpoints).
    func state(for parameters: [Tensor]) -> OptimizerState
    /// Continues from a saved state of the same parameters (same order and shapes); throws
    /// `OptimizerStateMismatch` when the state was not this kind of optimizer's for these parameters.
    func restore(_ state: OptimizerState, for parameters: [Tensor]) throws
}

public struct OptimizerStateMismatch: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// An optimizer's carried state: its step count and, per parameter, its slots (Adam's moments; empty when
/// the parameter has none yet or the optimizer keeps none).
public struct OptimizerState: Sendable, Equatable {
    public var steps: Int
    public var slots: [[Float]]

    public init(steps: Int, slots: [[Float]]) {
        self.steps = steps
        self.slots = slots
    }
}

/// Plain SGD with optional L2 weight decay: p ← p − lr (g + λ p).
public final class SGD: Optimizer {
    public var learningRate: Float
    public var weightDecay: Float
    private var coalescer = RowCoalescer()

    public init(learningRate: Float, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    /// SGD keeps nothing between steps.
    public func state(for parameters: [Tensor]) -> OptimizerState {
        OptimizerState(steps: 0, slots: parameters.map { _ in [] })
    }

    public func restore(_ state: OptimizerState, for parameters: [Tensor]) throws {
        guard state.slots.allSatisfy(\.isEmpty) else { throw OptimizerStateMismatch(description: "SGD keeps no per-parameter state") }
    }

    public func step(_ parameters: [Tensor]) {
        let lr = learningRate, wd = weightDecay
        for p in parameters {
            let d = p.cols
            if let g = p.grad {
                p.updateValue { v in
                    g.storage.withUnsafeBufferPointer { gs in
                        for i in 0..<v.count { v[i] -= lr * (gs[i] + wd * v[i]) }
                    }
                }
            }
            if let sparse = p.sparseGrad, !sparse.indices.isEmpty, wd == 0 {
                // Linear in the gradient: repeated rows need no summing first. Threads own ranges of table rows.
                let tableRows = p.rows
                p.updateValue { v in
                    sparse.indices.withUnsafeBufferPointer { rows in
                        sparse.values.withUnsafeBufferPointer { grads in
                            let ptrs = UnsafeSendable((v.baseAddress!, rows.baseAddress!, grads.baseAddress!, rows.count))
                            Parallel.forEachChunk(0..<tableRows, minimumChunk: max(1, tableRows / Parallel.threads)) { owned in
                                let (xp, rp, gp, count) = ptrs.value
                                affinity_sgd_scatter(xp, rp, gp, Int32(count), Int32(d), lr, Int32(owned.lowerBound), Int32(owned.upperBound))
                            }
                        }
                    }
                }
            } else if let sparse = p.sparseGrad, !sparse.indices.isEmpty {
                coalescer.coalesce(sparse, tableRows: p.rows) { rows, grads in
                    p.updateValue { v in
                        // Rows are distinct after coalescing, so threads can split them.
                        let ptrs = UnsafeSendable((v.baseAddress!, rows.baseAddress!, grads.baseAddress!))
                        Parallel.forEachChunk(0..<rows.count, minimumChunk: 512) { chunk in
                            let (xp, rp, gp) = ptrs.value
                            affinity_sgd_rows(xp, rp + chunk.lowerBound, gp + chunk.lowerBound * d, Int32(chunk.count), Int32(d), lr, wd)
                        }
                    }
                }
            }
            p.zeroGrad()
        }
    }
}

/// Adam (Kingma & Ba, ICLR 2015, Algorithm 1) with L2 weight decay added to the gradient as PyTorch's
/// `Adam(weight_decay=…)` does, or decoupled (AdamW, Loshchilov & Hutter 2019) when `decoupled` is set.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public var weightDecay: Float
    public let decoupled: Bool
    /// Number of steps taken (for bias correction), shared by all parameters like torch's per-group step.
    public private(set) var steps = 0
    /// Per parameter: first and second moments interleaved by row (`[rows, 2d]`: m then v).
    private var state: [ObjectIdentifier: [Float]] = [:]
    private var coalescer = RowCoalescer()

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    public func state(for parameters: [Tensor]) -> OptimizerState {
        OptimizerState(steps: steps, slots: parameters.map { state[ObjectIdentifier($0)] ?? [] })
    }

    public func restore(_ saved: OptimizerState, for parameters: [Tensor]) throws {
        guard saved.slots.count == parameters.count,
              zip(parameters, saved.slots).allSatisfy({ $1.isEmpty || $1.count == $0.value.storage.count * 2 }) else {
            throw OptimizerStateMismatch(description: "Adam's moments do not match the parameters' shapes")
        }
        steps = saved.steps
        state = [:]
        for (p, slot) in zip(parameters, saved.slots) where !slot.isEmpty { state[ObjectIdentifier(p)] = slot }
    }

    public func step(_ parameters: [Tensor]) {
        steps += 1
        let params = affinity_adam_params(
            beta1: beta1, beta2: beta2, epsilon: epsilon,
            step_size: learningRate / (1 - powf(beta1, Float(steps))), correction2: 1 - powf(beta2, Float(steps)),
            learning_rate: learningRate, weight_decay: weightDecay, decoupled: decoupled ? 1 : 0)
        for p in parameters {
            let key = ObjectIdentifier(p)
            var moments = state.removeValue(forKey: key) ?? [Float](repeating: 0, count: p.value.storage.count * 2)
            let d = p.cols, rowCount = p.rows  // read before `updateValue` holds the value exclusively
            if let g = p.grad {
                p.updateValue { x in
                    g.storage.withUnsafeBufferPointer { gs in
                        moments.withUnsafeMutableBufferPointer { mv in
                            let ptrs = UnsafeSendable((x.baseAddress!, gs.baseAddress!, mv.baseAddress!))
                            Parallel.forEachChunk(0..<rowCount, minimumChunk: max(1, (1 << 16) / max(d, 1))) { chunk in
                                let (xp, gp, mp) = ptrs.value
                                affinity_adam_rows(xp, mp, nil, Int32(chunk.lowerBound), gp + chunk.lowerBound * d,
                                                   Int32(chunk.count), Int32(d), params)
                            }
                        }
                    }
                }
            }
            if let sparse = p.sparseGrad, !sparse.indices.isEmpty {
                coalescer.coalesce(sparse, tableRows: p.rows) { rows, grads in
                    p.updateValue { x in
                        moments.withUnsafeMutableBufferPointer { mv in
                            // Rows are distinct after coalescing, so threads can split them.
                            let ptrs = UnsafeSendable((x.baseAddress!, mv.baseAddress!, rows.baseAddress!, grads.baseAddress!))
                            Parallel.forEachChunk(0..<rows.count, minimumChunk: 512) { chunk in
                                let (xp, mp, rp, gp) = ptrs.value
                                affinity_adam_rows(xp, mp, rp + chunk.lowerBound, 0, gp + chunk.lowerBound * d,
                                                   Int32(chunk.count), Int32(d), params)
                            }
                        }
                    }
                }
            }
            state[key] = moments
            p.zeroGrad()
        }
    }
}

/// Sums the repeated rows of a row-sparse gradient, reusing its buffers between calls.
struct RowCoalescer {
    private var slot: [Int32] = []
    private var rows: [Int32] = []
    private var sums: [Float] = []

    /// Calls `body(rows, sums)` with each distinct row once and its summed gradient (`sums[k·d …]` for `rows[k]`).
    mutating func coalesce(_ g: SparseRowGradient, tableRows: Int,
                           _ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Float>) -> Void) {
        let d = g.width
        // Work on locals (moved out of `self`, so no closure below touches `self`), then hand them back.
        var slot = self.slot, rows = self.rows, sums = self.sums
        self.slot = []; self.rows = []; self.sums = []
        if slot.count < tableRows { slot = [Int32](repeating: -1, count: tableRows) }
        rows.removeAll(keepingCapacity: true)
        // First pass: give each distinct row a slot; second: sum the gradient rows into their slots.
        for r in g.indices where slot[Int(r)] < 0 {
            slot[Int(r)] = Int32(rows.count)
            rows.append(r)
        }
        sums.removeAll(keepingCapacity: true)
        sums.append(contentsOf: repeatElement(0, count: rows.count * d))
        // Threads own disjoint ranges of slots; each scans all entries and adds those in its range, so every
        // slot is summed in entry order whatever the thread count.
        g.values.withUnsafeBufferPointer { values in
            sums.withUnsafeMutableBufferPointer { s in
                g.indices.withUnsafeBufferPointer { indices in
                    slot.withUnsafeBufferPointer { slots in
                        let p = UnsafeSendable((values.baseAddress!, s.baseAddress!, indices.baseAddress!, slots.baseAddress!))
                        Parallel.forEachChunk(0..<rows.count, minimumChunk: 1024) { owned in
                            let (vp, sp, ip, slotp) = p.value
                            for i in 0..<indices.count {
                                let k = Int(slotp[Int(ip[i])])
                                if owned.contains(k) { affinity_axpy(Int32(d), 1, vp + i * d, sp + k * d) }
                            }
                        }
                    }
                }
            }
        }
        for r in rows { slot[Int(r)] = -1 }
        rows.withUnsafeBufferPointer { r in sums.withUnsafeBufferPointer { s in body(r, s) } }
        self.slot = slot; self.rows = rows; self.sums = sums
    }
}
