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
        let out = Elementwise.axpby(scale, layerSums(a, e0.value, hops: layers).sum, 0, nil)
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
        let d = e0.cols, scale = 1 / Float(layers + 1)
        let batch = DistinctRows(rows, bound: e0.rows)
        let (total, current) = layerSums(a, e0.value, hops: layers - 1)
        let lastHop = a.matrix.multiply(current, rows: batch.rows)  // each distinct row once
        var out = Matrix(rows: rows.count, cols: d)
        total.storage.withUnsafeBufferPointer { sum in
            lastHop.storage.withUnsafeBufferPointer { last in
                out.storage.withUnsafeMutableBufferPointer { dst in
                    for (i, r) in rows.enumerated() {
                        affinity_axpby(Int64(d), scale, sum.baseAddress! + Int(r) * d, scale,
                                       last.baseAddress! + Int(batch.slots[i]) * d, dst.baseAddress! + i * d)
                    }
                }
            }
        }
        return Tensor(out, inputs: [e0]) { node in
            let g = scatteredRows(node.grad!, at: rows, rowCount: e0.rows)
            e0.accumulate(propagationGradient(a, g, nonZeroRows: batch.listed, layers: layers, scale: scale))
        }
    }

    /// E⁰ + A E⁰ + … + Aʰ E⁰ (`hops` products, each adding into the sum inside the kernel) and Aʰ E⁰.
    private static func layerSums(_ a: SparseOperator, _ e0: Matrix, hops: Int) -> (sum: Matrix, last: Matrix) {
        guard hops > 0 else { return (e0, e0) }
        var total = e0, current = e0
        var next = Matrix(rows: e0.rows, cols: e0.cols)
        total.storage.withUnsafeMutableBufferPointer { sum in
            for _ in 0..<hops {
                a.matrix.multiply(current, into: &next, beta: 0, mask: nil, sum: sum.baseAddress!)
                swap(&current, &next)
            }
        }
        return (total, current)
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

/// A row list (e.g. a batch's users, positives and negatives) reduced to its distinct rows, in order of first
/// appearance, with where each entry sits among them: work per node is done once and read back per entry.
public struct DistinctRows: Sendable {
    /// Each listed row once.
    public let rows: [Int32]
    /// `slots[i]`: the position of the list's entry i in `rows`.
    public let slots: [Int32]
    /// `listed[r]` = 1 for the rows in the list (length `bound`).
    public let listed: [UInt8]

    public init(_ list: [Int32], bound: Int) {
        var slotOf = [Int32](repeating: -1, count: bound)
        var rows: [Int32] = []
        rows.reserveCapacity(list.count)
        slots = list.map { r in
            precondition(r >= 0 && Int(r) < bound, "row \(r) out of range 0..<\(bound)")
            if slotOf[Int(r)] < 0 { slotOf[Int(r)] = Int32(rows.count); rows.append(r) }
            return slotOf[Int(r)]
        }
        self.rows = rows
        listed = slotOf.map { $0 >= 0 ? 1 : 0 }
    }
}

