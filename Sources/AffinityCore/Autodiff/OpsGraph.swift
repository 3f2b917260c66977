import AffinityKernels

// Graph propagation as one fused op.

extension Tensor {
    /// The mean of the propagated layers, `(1/(K+1)) Σ_{k=0..K} Aᵏ E⁰` (LightGCN eq. 8; any linear
    /// propagation with a fixed operator A).
    ///
    /// Forward: K sparse products, each also adding its output into the running sum inside the kernel.
    /// Backward, with G = ∂L/∂output: ∂L/∂E⁰ = (1/(K+1)) Σ_k (Aᵀ)ᵏ G, evaluated by Horner's scheme
    /// H ← G + Aᵀ H (K times). When G is non-zero only in a few rows (a batch's gather), the first product
    /// skips the zero rows. Same math as chaining `spmm` and `+`, without the intermediate tensors.
    public static func meanPropagation(_ a: SparseOperator, _ e0: Tensor, layers: Int) -> Tensor {
        precondition(a.matrix.rows == a.matrix.cols && a.matrix.cols == e0.rows, "meanPropagation: shape mismatch")
        guard layers > 0 else { return e0 }
        let scale = 1 / Float(layers + 1)
        var total = e0.value
        var current = e0.value
        var next = Matrix(rows: e0.rows, cols: e0.cols)
        total.storage.withUnsafeMutableBufferPointer { sum in
            for _ in 0..<layers {
                a.matrix.multiply(current, into: &next, beta: 0, mask: nil, sum: sum.baseAddress!)
                swap(&current, &next)
            }
        }
        let out = Elementwise.axpby(scale, total, 0, nil)
        return Tensor(out, inputs: [e0]) { node in
            let g = node.grad!
            let rows = g.rows, d = g.cols
            // Which rows of G are non-zero (a gather's gradient touches only the batch rows).
            var mask = [UInt8](repeating: 0, count: rows)
            g.storage.withUnsafeBufferPointer { gs in
                mask.withUnsafeMutableBufferPointer { m in
                    let p = UnsafeSendable((gs.baseAddress!, m.baseAddress!))
                    Parallel.forEachChunk(0..<rows, minimumChunk: 1024) { c in
                        affinity_nonzero_rows(p.value.0, Int32(d), Int32(c.lowerBound), Int32(c.upperBound), p.value.1)
                    }
                }
            }
            let sparseFraction = Double(mask.reduce(0) { $0 + Int($1) }) / Double(max(rows, 1))
            // Horner: H₀ = G; H ← G + Aᵀ H.
            var h = g
            var buffer = Matrix(rows: rows, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
                for step in 0..<layers {
                    a.transpose.multiply(h, into: &buffer, beta: 0, mask: step == 0 && sparseFraction < 0.5 ? mask : nil,
                                         addend: gs.baseAddress!, sum: nil)
                    swap(&h, &buffer)
                }
            }
            e0.accumulate(Elementwise.axpby(scale, h, 0, nil))
        }
    }
}

extension Tensor {
    /// `A · X` for a sparse `A` with a fixed pattern and learnable values (`[nnz, 1]`, in the pattern's
    /// CSR order; the pattern's own values are ignored). Gradients: dX = Aᵀ·G, dv_p = ⟨G_row(p), X_col(p)⟩.
    public static func sparseProduct(_ pattern: SparseMatrix, values: Tensor, _ x: Tensor) -> Tensor {
        precondition(values.rows == pattern.nonZeros && values.cols == 1 && pattern.cols == x.rows, "sparseProduct: shape mismatch")
        let a = pattern.withValues(values.value.storage)
        return Tensor(a.multiply(x.value), inputs: [values, x]) { node in
            let g = node.grad!
            if x.requiresGrad { x.accumulate(a.transposed().multiply(g)) }
            if values.requiresGrad {
                let d = x.cols
                var dv = Matrix(rows: pattern.nonZeros, cols: 1)
                for r in 0..<pattern.rows {
                    for p in pattern.rowStart[r]..<pattern.rowStart[r + 1] {
                        let c = Int(pattern.colIndex[p])
                        var s: Float = 0
                        for k in 0..<d { s += g.storage[r * d + k] * x.value.storage[c * d + k] }
                        dv.storage[p] = s
                    }
                }
                values.accumulate(dv)
            }
        }
    }
}
