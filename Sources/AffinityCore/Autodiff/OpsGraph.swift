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
            // Which rows of G are non-zero (a gather's gradient touches only the batch rows).
            var mask = [UInt8](repeating: 0, count: g.rows)
            g.storage.withUnsafeBufferPointer { gs in
                mask.withUnsafeMutableBufferPointer { m in
                    let p = UnsafeSendable((gs.baseAddress!, m.baseAddress!))
                    Parallel.forEachChunk(0..<g.rows, minimumChunk: 1024) { c in
                        affinity_nonzero_rows(p.value.0, Int32(g.cols), Int32(c.lowerBound), Int32(c.upperBound), p.value.1)
                    }
                }
            }
            e0.accumulate(propagationGradient(a, g, nonZeroRows: mask, layers: layers, scale: scale))
        }
    }

    /// `meanPropagation(a, e0, layers:)` read at `rows` only: a `[rows.count, d]` tensor whose row i is row
    /// `rows[i]` of the mean of layers (repeats allowed). The same math as gathering from the full result,
    /// but the last hop is computed for the listed rows alone — a batch's loss reads nothing else — and the
    /// backward pass knows which rows of the gradient are non-zero without scanning it.
    public static func meanPropagation(_ a: SparseOperator, _ e0: Tensor, layers: Int, at rows: [Int32]) -> Tensor {
        precondition(a.matrix.rows == a.matrix.cols && a.matrix.cols == e0.rows, "meanPropagation: shape mismatch")
        guard layers > 0 else { return gather(e0, rows: rows) }
        let n = e0.rows, d = e0.cols
        let scale = 1 / Float(layers + 1)
        var selected = [UInt8](repeating: 0, count: n)
        var distinct: [Int32] = []
        distinct.reserveCapacity(rows.count)
        for r in rows {
            precondition(r >= 0 && Int(r) < n, "meanPropagation: row \(r) out of range")
            if selected[Int(r)] == 0 { selected[Int(r)] = 1; distinct.append(r) }
        }
        var total = e0.value
        var current = e0.value
        var next = Matrix(rows: n, cols: d)
        total.storage.withUnsafeMutableBufferPointer { sum in
            for _ in 0..<(layers - 1) {
                a.matrix.multiply(current, into: &next, beta: 0, mask: nil, sum: sum.baseAddress!)
                swap(&current, &next)
            }
            // Last hop: only the rows that are read.
            let m = a.matrix
            m.rowStart.withUnsafeBufferPointer { rs in
                m.colIndex.withUnsafeBufferPointer { ci in
                    m.values.withUnsafeBufferPointer { vs in
                        current.storage.withUnsafeBufferPointer { xs in
                            next.storage.withUnsafeMutableBufferPointer { ys in
                                distinct.withUnsafeBufferPointer { list in
                                    let starts = UnsafeRawPointer(rs.baseAddress!).assumingMemoryBound(to: Int64.self)
                                    let p = UnsafeSendable((starts, ci.baseAddress!, vs.baseAddress!, xs.baseAddress!, ys.baseAddress!,
                                                            list.baseAddress!, sum.baseAddress!))
                                    Parallel.forEachChunk(0..<list.count, minimumChunk: 64) { c in
                                        affinity_spmm_row_list(p.value.0, p.value.1, p.value.2, p.value.3, Int32(d), p.value.4,
                                                               p.value.5 + c.lowerBound, Int32(c.count), p.value.6)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var out = Matrix(rows: rows.count, cols: d)
        total.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for (i, r) in rows.enumerated() {
                    affinity_axpby(Int64(d), scale, src.baseAddress! + Int(r) * d, 0, nil, dst.baseAddress! + i * d)
                }
            }
        }
        return Tensor(out, inputs: [e0]) { node in
            let gathered = node.grad!
            var g = Matrix(rows: n, cols: d)
            gathered.storage.withUnsafeBufferPointer { gs in
                g.storage.withUnsafeMutableBufferPointer { full in
                    for (i, r) in rows.enumerated() {
                        affinity_axpy(Int32(d), 1, gs.baseAddress! + i * d, full.baseAddress! + Int(r) * d)
                    }
                }
            }
            e0.accumulate(propagationGradient(a, g, nonZeroRows: selected, layers: layers, scale: scale))
        }
    }

    /// ∂L/∂E⁰ = scale · Σ_{k=0..K} (Aᵀ)ᵏ G by Horner's scheme, H₀ = G, H ← G + Aᵀ H (K times); the first
    /// product skips the rows of G flagged zero in `nonZeroRows` when they are the majority.
    private static func propagationGradient(_ a: SparseOperator, _ g: Matrix, nonZeroRows mask: [UInt8], layers: Int, scale: Float) -> Matrix {
        let sparseFraction = Double(mask.reduce(0) { $0 + Int($1) }) / Double(max(g.rows, 1))
        var h = g
        var buffer = Matrix(rows: g.rows, cols: g.cols)
        g.storage.withUnsafeBufferPointer { gs in
            for step in 0..<layers {
                a.transpose.multiply(h, into: &buffer, beta: 0, mask: step == 0 && sparseFraction < 0.5 ? mask : nil,
                                     addend: gs.baseAddress!, sum: nil)
                swap(&h, &buffer)
            }
        }
        return Elementwise.axpby(scale, h, 0, nil)
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
