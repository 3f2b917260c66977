import AffinityKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Elementwise arithmetic, activations, reductions and dropout.

extension Tensor {
    /// Elementwise map with derivative given from (input, output): the shared shape of every activation.
    static func pointwise(_ a: Tensor, _ f: @escaping (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let out = Elementwise.map(a.value, f)
        return Tensor(out, inputs: [a]) { node in
            // dx = g · f'(x, y)
            a.accumulate(Elementwise.zip3(node.grad!, a.value, out) { g, x, y in g * derivative(x, y) })
        }
    }

    public static func sigmoid(_ a: Tensor) -> Tensor {
        pointwise(a, { stableSigmoid($0) }, derivative: { _, y in y * (1 - y) })
    }

    /// log σ(x) = −softplus(−x), computed without overflow. d/dx = σ(−x) = 1 − σ(x).
    public static func logSigmoid(_ a: Tensor) -> Tensor {
        pointwise(a, { x in -softplusValue(-x) }, derivative: { x, _ in stableSigmoid(-x) })
    }

    /// softplus(x) = log(1 + eˣ). d/dx = σ(x).
    public static func softplus(_ a: Tensor) -> Tensor {
        pointwise(a, softplusValue, derivative: { x, _ in stableSigmoid(x) })
    }

    public static func tanh(_ a: Tensor) -> Tensor {
        pointwise(a, { tanhf($0) }, derivative: { _, y in 1 - y * y })
    }

    /// max(x, 0); the gradient passes where the output is positive. Written out rather than through `pointwise`
    /// (a closure call per entry), since the networks apply it to every hidden activation.
    public static func relu(_ a: Tensor) -> Tensor {
        let count = a.value.storage.count
        var out = Matrix(uninitializedRows: a.rows, cols: a.cols)
        a.value.storage.withUnsafeBufferPointer { xs in
            out.storage.withUnsafeMutableBufferPointer { ys in
                let p = UnsafeSendable((xs.baseAddress, ys.baseAddress))
                Parallel.forEachChunk(0..<count, minimumChunk: 1 << 16) { range in
                    let (xs, ys) = p.value
                    for i in range { ys![i] = max(xs![i], 0) }
                }
            }
        }
        return Tensor(out, inputs: [a]) { node in
            var g = node.grad!
            g.storage.withUnsafeMutableBufferPointer { gs in
                out.storage.withUnsafeBufferPointer { ys in
                    let p = UnsafeSendable((gs.baseAddress, ys.baseAddress))
                    Parallel.forEachChunk(0..<count, minimumChunk: 1 << 16) { range in
                        let (gs, ys) = p.value
                        for i in range { gs![i] = ys![i] > 0 ? gs![i] : 0 }  // a select, not a branch per entry
                    }
                }
            }
            a.accumulate(g)
        }
    }

    public static func leakyRelu(_ a: Tensor, slope: Float = 0.2) -> Tensor {
        pointwise(a, { $0 > 0 ? $0 : slope * $0 }, derivative: { x, _ in x > 0 ? 1 : slope })
    }

    /// `min(max(a, lower), upper)`; the gradient passes where the input is inside the bounds.
    public static func clamp(_ a: Tensor, lower: Float, upper: Float) -> Tensor {
        pointwise(a, { Swift.min(Swift.max($0, lower), upper) }, derivative: { x, _ in x > lower && x < upper ? 1 : 0 })
    }

    public static func exp(_ a: Tensor) -> Tensor {
        pointwise(a, { expf($0) }, derivative: { _, y in y })
    }

    /// Natural log (inputs must be positive).
    public static func log(_ a: Tensor) -> Tensor {
        pointwise(a, { logf($0) }, derivative: { x, _ in 1 / x })
    }

    public static func square(_ a: Tensor) -> Tensor {
        pointwise(a, { $0 * $0 }, derivative: { x, _ in 2 * x })
    }

    /// `s · a`.
    public static func scale(_ a: Tensor, _ s: Float) -> Tensor {
        Tensor(Elementwise.axpby(s, a.value, 0, nil), inputs: [a]) { node in
            a.accumulate(Elementwise.axpby(s, node.grad!, 0, nil))
        }
    }

    /// Inverted dropout: zeroes each entry with probability `p` and scales the rest by 1/(1−p); the mask is
    /// drawn from `rng` and reused by the backward pass.
    public static func dropout(_ a: Tensor, rate p: Float, rng: inout SeededGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout rate must be in [0, 1)")
        guard p > 0 else { return a }
        let mask = dropoutMask(rows: a.rows, cols: a.cols, rate: p, rng: &rng)
        let out = Elementwise.multiply(a.value, mask)
        return Tensor(out, inputs: [a]) { node in
            a.accumulate(Elementwise.multiply(node.grad!, mask))
        }
    }

    /// The inverted-dropout mask of `dropout(_:rate:rng:)`: 0 with probability `rate`, 1/(1 − rate) otherwise.
    /// One draw from `rng` seeds a counter-based generator (`affinity_dropout_mask`): each entry depends only on
    /// the seed and its index, so the mask is drawn in parallel, the same whatever the thread count, and fused
    /// ops can draw any rows of it again.
    static func dropoutMask(rows: Int, cols: Int, rate: Float, rng: inout SeededGenerator) -> Matrix {
        dropoutMask(rows: rows, cols: cols, rate: rate, seed: rng.next())
    }

    static func dropoutMask(rows: Int, cols: Int, rate: Float, seed: UInt64) -> Matrix {
        var mask = Matrix(uninitializedRows: rows, cols: cols)
        guard rows * cols > 0 else { return mask }
        mask.storage.withUnsafeMutableBufferPointer { m in
            let pointer = UnsafeSendable(m.baseAddress!)
            Parallel.forEachChunk(0..<m.count, minimumChunk: 1 << 16) { range in
                affinity_dropout_mask(seed, rate, Int64(range.lowerBound), Int64(range.upperBound), pointer.value + range.lowerBound)
            }
        }
        return mask
    }

    /// Elementwise `a + b`, or `a + b` broadcast over rows when `b` is `[1, d]` (a bias).
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        if b.rows == 1 && a.rows != 1 {
            precondition(a.cols == b.cols, "broadcast add: widths differ")
            let d = a.cols, n = a.rows
            var out = a.value
            out.storage.withUnsafeMutableBufferPointer { o in
                b.value.storage.withUnsafeBufferPointer { bias in
                    let p = UnsafeSendable((o.baseAddress!, bias.baseAddress!))
                    Parallel.forEachChunk(0..<n, minimumChunk: 4096) { rows in
                        for r in rows { for c in 0..<d { p.value.0[r * d + c] += p.value.1[c] } }
                    }
                }
            }
            return Tensor(out, inputs: [a, b]) { node in
                let g = node.grad!
                a.accumulate(g)
                if b.requiresGrad { b.accumulate(Elementwise.columnSums(g)) }
            }
        }
        return Tensor(Elementwise.axpby(1, a.value, 1, b.value), inputs: [a, b]) { node in
            a.accumulate(node.grad!)
            b.accumulate(node.grad!)
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        Tensor(Elementwise.axpby(1, a.value, -1, b.value), inputs: [a, b]) { node in
            a.accumulate(node.grad!)
            if b.requiresGrad { b.accumulate(Elementwise.axpby(-1, node.grad!, 0, nil)) }
        }
    }

    /// Elementwise (Hadamard) product. Gradients: da = g ⊙ b, db = g ⊙ a.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        Tensor(Elementwise.multiply(a.value, b.value), inputs: [a, b]) { node in
            if a.requiresGrad { a.accumulate(Elementwise.multiply(node.grad!, b.value)) }
            if b.requiresGrad { b.accumulate(Elementwise.multiply(node.grad!, a.value)) }
        }
    }

    public static prefix func - (a: Tensor) -> Tensor { scale(a, -1) }

    /// Sum of all entries, `[1, 1]`.
    public static func sum(_ a: Tensor) -> Tensor {
        var s: Double = 0
        for x in a.value.storage { s += Double(x) }
        return Tensor(Matrix(rows: 1, cols: 1, repeating: Float(s)), inputs: [a]) { node in
            a.accumulate(Matrix(rows: a.rows, cols: a.cols, repeating: node.grad!.storage[0]))
        }
    }

    /// Mean of all entries, `[1, 1]`.
    public static func mean(_ a: Tensor) -> Tensor {
        scale(sum(a), 1 / Float(max(a.value.storage.count, 1)))
    }

    /// Sum of each row's squares, as used by L2 penalties: ½‖a‖² summed is `scale(sum(square(a)), 0.5)`.
    public static func sumOfSquares(_ a: Tensor) -> Tensor { sum(square(a)) }
}

@inline(__always)
public func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

@inline(__always)
func softplusValue(_ x: Float) -> Float {
    x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x))
}

extension Tensor {
    /// ‖a‖_F, `[1, 1]`. Gradient a / ‖a‖ (0 at a = 0).
    public static func frobeniusNorm(_ a: Tensor) -> Tensor {
        var s: Double = 0
        for x in a.value.storage { s += Double(x) * Double(x) }
        let norm = Float(s.squareRoot())
        return Tensor(Matrix(rows: 1, cols: 1, repeating: norm), inputs: [a]) { node in
            let g = node.grad!.storage[0]
            var da = a.value
            let scale = norm > 0 ? g / norm : 0
            for i in 0..<da.storage.count { da.storage[i] *= scale }
            a.accumulate(da)
        }
    }
}
