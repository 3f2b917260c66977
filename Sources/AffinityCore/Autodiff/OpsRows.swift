#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Row-wise operations: softmax, log-softmax, L2 normalisation.

extension Tensor {
    /// Softmax of each row. Gradient: dx = y ⊙ (g − ⟨g, y⟩) per row.
    public static func softmaxRows(_ a: Tensor) -> Tensor {
        let d = a.cols
        var out = a.value
        for r in 0..<a.rows { softmaxInPlace(&out.storage, r * d, d) }
        let y = out
        return Tensor(out, inputs: [a]) { node in
            let g = node.grad!
            var da = Matrix(rows: a.rows, cols: d)
            for r in 0..<a.rows {
                var dot: Float = 0
                for c in 0..<d { dot += g.storage[r * d + c] * y.storage[r * d + c] }
                for c in 0..<d { da.storage[r * d + c] = y.storage[r * d + c] * (g.storage[r * d + c] - dot) }
            }
            a.accumulate(da)
        }
    }

    /// Log-softmax of each row. Gradient: dx = g − softmax(x) · Σ g per row.
    public static func logSoftmaxRows(_ a: Tensor) -> Tensor {
        let d = a.cols
        var out = a.value
        for r in 0..<a.rows {
            let lse = logSumExp(out.storage, r * d, d)
            for c in 0..<d { out.storage[r * d + c] -= lse }
        }
        let y = out
        return Tensor(out, inputs: [a]) { node in
            let g = node.grad!
            var da = g
            for r in 0..<a.rows {
                var s: Float = 0
                for c in 0..<d { s += g.storage[r * d + c] }
                for c in 0..<d { da.storage[r * d + c] -= expf(y.storage[r * d + c]) * s }
            }
            a.accumulate(da)
        }
    }

    /// Each row divided by its L2 norm (rows of norm below `epsilon` are divided by `epsilon`, as
    /// `torch.nn.functional.normalize`). Gradient: dx = (g − y ⟨g, y⟩) / ‖x‖.
    public static func normalizeRows(_ a: Tensor, epsilon: Float = 1e-12) -> Tensor {
        let n = a.rows, d = a.cols
        var out = Matrix(uninitializedRows: n, cols: d)
        var norms = [Float](repeating: 0, count: n)
        a.value.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                norms.withUnsafeMutableBufferPointer { nb in
                    let p = UnsafeSendable((src.baseAddress!, dst.baseAddress!, nb.baseAddress!))
                    Parallel.forEachChunk(0..<n, minimumChunk: 2048) { rows in
                        let (x, y, nr) = p.value
                        for r in rows {
                            var s: Float = 0
                            for c in 0..<d { s += x[r * d + c] * x[r * d + c] }
                            let norm = max(s.squareRoot(), epsilon)
                            nr[r] = norm
                            let inv = 1 / norm
                            for c in 0..<d { y[r * d + c] = x[r * d + c] * inv }
                        }
                    }
                }
            }
        }
        return Tensor(out, inputs: [a]) { node in
            let g = node.grad!
            var da = Matrix(uninitializedRows: n, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
                out.storage.withUnsafeBufferPointer { ys in
                    da.storage.withUnsafeMutableBufferPointer { ds in
                        norms.withUnsafeBufferPointer { nb in
                            let p = UnsafeSendable((gs.baseAddress!, ys.baseAddress!, ds.baseAddress!, nb.baseAddress!))
                            Parallel.forEachChunk(0..<n, minimumChunk: 2048) { rows in
                                let (gp, yp, dp, np) = p.value
                                for r in rows {
                                    var dot: Float = 0
                                    for c in 0..<d { dot += gp[r * d + c] * yp[r * d + c] }
                                    // Below epsilon the map is linear (x / ε): only the direct term remains.
                                    if np[r] == epsilon { dot = 0 }
                                    let inv = 1 / np[r]
                                    for c in 0..<d { dp[r * d + c] = (gp[r * d + c] - yp[r * d + c] * dot) * inv }
                                }
                            }
                        }
                    }
                }
            }
            a.accumulate(da)
        }
    }
}

@inline(__always)
func logSumExp(_ x: [Float], _ offset: Int, _ n: Int) -> Float {
    var m = -Float.infinity
    for c in 0..<n { m = max(m, x[offset + c]) }
    guard m.isFinite else { return m }
    var s: Float = 0
    for c in 0..<n { s += expf(x[offset + c] - m) }
    return m + logf(s)
}

@inline(__always)
func softmaxInPlace(_ x: inout [Float], _ offset: Int, _ n: Int) {
    var m = -Float.infinity
    for c in 0..<n { m = max(m, x[offset + c]) }
    var s: Float = 0
    for c in 0..<n { x[offset + c] = expf(x[offset + c] - m); s += x[offset + c] }
    for c in 0..<n { x[offset + c] /= s }
}

extension Tensor {
    /// `h_r + ε ‖h_r‖ · n_r` per row, for a constant direction matrix `n` (a perturbation whose size follows
    /// each row's own norm). Gradient: dh_r = g_r + ε ⟨g_r, n_r⟩ · h_r / ‖h_r‖.
    public static func perturbedByRowNorm(_ h: Tensor, direction: Matrix, epsilon: Float) -> Tensor {
        precondition(direction.rows == h.rows && direction.cols == h.cols, "perturbedByRowNorm: shape mismatch")
        let n = h.rows, d = h.cols
        var norms = [Float](repeating: 0, count: n)
        var out = h.value
        for r in 0..<n {
            var s: Float = 0
            for c in 0..<d { s += h.value.storage[r * d + c] * h.value.storage[r * d + c] }
            norms[r] = s.squareRoot()
            for c in 0..<d { out.storage[r * d + c] += epsilon * norms[r] * direction.storage[r * d + c] }
        }
        return Tensor(out, inputs: [h]) { node in
            let g = node.grad!
            var dh = g
            for r in 0..<n where norms[r] > 0 {
                var dot: Float = 0
                for c in 0..<d { dot += g.storage[r * d + c] * direction.storage[r * d + c] }
                let k = epsilon * dot / norms[r]
                for c in 0..<d { dh.storage[r * d + c] += k * h.value.storage[r * d + c] }
            }
            h.accumulate(dh)
        }
    }
}
