import AffinityKernels

// Dense item–item graph operations (LATTICE's learned graph).

extension Tensor {
    /// `s · a` with a learnable scalar `s` (`[1, 1]`). Gradients: da = s·g, ds = Σ g ⊙ a.
    public static func scaled(_ a: Tensor, by s: Tensor) -> Tensor {
        precondition(s.rows == 1 && s.cols == 1, "scaled(by:) takes a 1 × 1 scale")
        let factor = s.value.storage[0]
        return Tensor(Elementwise.axpby(factor, a.value, 0, nil), inputs: [a, s]) { node in
            let g = node.grad!
            if a.requiresGrad { a.accumulate(Elementwise.axpby(factor, g, 0, nil)) }
            if s.requiresGrad {
                var dot: Double = 0
                for k in 0..<g.storage.count { dot += Double(g.storage[k]) * Double(a.value.storage[k]) }
                s.accumulate(Matrix(rows: 1, cols: 1, repeating: Float(dot)))
            }
        }
    }

    /// `D^{-1/2} A D^{-1/2}` of a dense square matrix with `D` its row sums (rows summing to ≤ 0 get 0, as
    /// LATTICE's `compute_normalized_laplacian` sets the infinite inverse roots to 0).
    /// With s = d^{-1/2}, out_kl = a_kl s_k s_l, and since ∂s_k/∂a_kl = −½ d_k^{-3/2}:
    /// ∂L/∂a_kl = g_kl s_k s_l + c_k,  c_k = −½ d_k^{-3/2} (Σ_j g_kj a_kj s_j + Σ_i g_ik a_ik s_i).
    public static func symmetricNormalizeDense(_ a: Tensor) -> Tensor {
        let n = a.rows
        precondition(a.cols == n, "symmetricNormalizeDense needs a square matrix")
        var degree = [Float](repeating: 0, count: n)
        var s = [Float](repeating: 0, count: n)
        a.value.storage.withUnsafeBufferPointer { av in
            for k in 0..<n {
                var d: Float = 0
                for l in 0..<n { d += av[k * n + l] }
                degree[k] = d
                s[k] = d > 0 ? 1 / d.squareRoot() : 0
            }
        }
        var out = a.value
        out.storage.withUnsafeMutableBufferPointer { o in
            for k in 0..<n { for l in 0..<n { o[k * n + l] *= s[k] * s[l] } }
        }
        return Tensor(out, inputs: [a]) { node in
            let g = node.grad!
            var da = Matrix(rows: n, cols: n)
            var rowTerm = [Float](repeating: 0, count: n), columnTerm = [Float](repeating: 0, count: n)
            g.storage.withUnsafeBufferPointer { gv in
                a.value.storage.withUnsafeBufferPointer { av in
                    for k in 0..<n {
                        for l in 0..<n {
                            let ga = gv[k * n + l] * av[k * n + l]
                            rowTerm[k] += ga * s[l]
                            columnTerm[l] += ga * s[k]
                        }
                    }
                    da.storage.withUnsafeMutableBufferPointer { d in
                        for k in 0..<n {
                            let c = degree[k] > 0 ? -0.5 * s[k] * s[k] * s[k] * (rowTerm[k] + columnTerm[k]) : 0
                            for l in 0..<n { d[k * n + l] = gv[k * n + l] * s[k] * s[l] + c }
                        }
                    }
                }
            }
            a.accumulate(da)
        }
    }
}

/// The mask keeping each row's `k` largest entries (1) and zeroing the rest (0); ties → lower index.
/// Multiplying by it is LATTICE's `build_knn_neighbourhood`, whose gradient flows through the kept values.
public func topKRowMask(_ a: Matrix, k: Int) -> Matrix {
    var mask = Matrix(rows: a.rows, cols: a.cols)
    let kk = min(k, a.cols)
    var index = [Int32](repeating: 0, count: kk), score = [Float](repeating: 0, count: kk)
    a.storage.withUnsafeBufferPointer { av in
        for r in 0..<a.rows {
            let found = Int(affinity_topk_row(av.baseAddress! + r * a.cols, Int32(a.cols), Int32(kk), &index, &score))
            for j in 0..<found { mask.storage[r * a.cols + Int(index[j])] = 1 }
        }
    }
    return mask
}
