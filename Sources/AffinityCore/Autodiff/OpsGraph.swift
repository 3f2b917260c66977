import AffinityKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        // A parallel copy: `var total = e0` would copy on the first write, on one thread.
        var total = Elementwise.axpby(1, e0, 0, nil), current = e0
        var next = Matrix(uninitializedRows: e0.rows, cols: e0.cols)  // with beta 0 the kernel writes every row
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
        precondition(layers > 0, "propagationGradient: no layers")
        let sparseFraction = Double(mask.reduce(0) { $0 + Int($1) }) / Double(max(g.rows, 1))
        // Two buffers written in full by each product (beta 0), read from G first: no zero-fills, and G's storage
        // is never reused as an output (it would be copied before being overwritten).
        var h = Matrix(uninitializedRows: g.rows, cols: g.cols), buffer = Matrix(uninitializedRows: g.rows, cols: g.cols)
        g.storage.withUnsafeBufferPointer { gs in
            for step in 0..<layers {
                a.transpose.multiply(step == 0 ? g : h, into: &buffer, beta: 0, mask: step == 0 && sparseFraction < 0.5 ? mask : nil,
                                     addend: gs.baseAddress!, sum: nil)
                swap(&h, &buffer)
            }
        }
        return Elementwise.axpby(scale, h, 0, nil)
    }
}

extension Tensor {
    /// `A · X` for a sparse `A` with a fixed pattern and learnable values (`[nnz, 1]`, in the pattern's
    /// CSR order; the pattern's own values are ignored).
    public static func sparseProduct(_ pattern: SparseMatrix, values: Tensor, _ x: Tensor) -> Tensor {
        sparseProduct(SparsePattern(pattern), values: values, x)
    }

    /// `A · X` for the pattern with learnable values. Gradients: dX = Aᵀ·G (the pattern's stored transpose),
    /// dv_p = ⟨G_row(p), X_col(p)⟩ (a sampled product).
    public static func sparseProduct(_ pattern: SparsePattern, values: Tensor, _ x: Tensor) -> Tensor {
        precondition(values.rows == pattern.nonZeros && values.cols == 1 && pattern.matrix.cols == x.rows, "sparseProduct: shape mismatch")
        return Tensor(pattern.matrix.withValues(values.value.storage).multiply(x.value), inputs: [values, x]) { node in
            let g = node.grad!
            if x.requiresGrad { x.accumulate(pattern.transpose(values: values.value.storage).multiply(g)) }
            if values.requiresGrad {
                values.accumulate(Matrix(rows: pattern.nonZeros, cols: 1, values: pattern.sampledDots(g, x.value)))
            }
        }
    }

    /// `[nnz, 1]`: ⟨x_r, x_c⟩ for every entry (r, c) of a square pattern over the rows of `x` (with unit rows, the
    /// edge cosines of DCCF eq. 6), without gathering `[nnz, d]` endpoint tables. Gradient: with A_g the pattern
    /// holding the incoming gradient, dX = A_g·X + A_gᵀ·X.
    public static func edgeDots(_ pattern: SparsePattern, _ x: Tensor) -> Tensor {
        precondition(pattern.matrix.rows == x.rows && pattern.matrix.cols == x.rows, "edgeDots: shape mismatch")
        return Tensor(Matrix(rows: pattern.nonZeros, cols: 1, values: pattern.sampledDots(x.value, x.value)), inputs: [x]) { node in
            guard x.requiresGrad else { return }
            let g = node.grad!.storage
            var dx = pattern.matrix.withValues(g).multiply(x.value)
            pattern.transpose(values: g).multiply(x.value, into: &dx, beta: 1)
            x.accumulate(dx)
        }
    }

    /// `[nnz, 1]`: each value divided by the sum of its row's values, m_p = v_p / S_row(p) (DCCF's D⁻¹ of the
    /// α-weighted adjacency, eq. 7; a row summing to 0 gets 0, as the official code's `nan_to_num`).
    /// Gradient: dv_p = (g_p − Σ_{q in the row} g_q m_q) / S_row(p).
    public static func normalizeWithinRows(_ pattern: SparsePattern, values: Tensor) -> Tensor {
        precondition(values.rows == pattern.nonZeros && values.cols == 1, "normalizeWithinRows: shape mismatch")
        let starts = pattern.matrix.rowStart
        var inverseSums = [Float](repeating: 0, count: pattern.matrix.rows)
        var out = Matrix(uninitializedRows: pattern.nonZeros, cols: 1)
        values.value.storage.withUnsafeBufferPointer { v in
            out.storage.withUnsafeMutableBufferPointer { o in
                inverseSums.withUnsafeMutableBufferPointer { inv in
                    let p = UnsafeSendable((v.baseAddress, o.baseAddress, inv.baseAddress!))
                    Parallel.forEachChunk(0..<pattern.matrix.rows, minimumChunk: 1024) { rows in
                        let (v, o, inv) = p.value
                        for r in rows {
                            var sum: Float = 0
                            for q in starts[r]..<starts[r + 1] { sum += v![q] }
                            inv[r] = sum != 0 ? 1 / sum : 0
                            for q in starts[r]..<starts[r + 1] { o![q] = v![q] * inv[r] }
                        }
                    }
                }
            }
        }
        let normalized = out, inverse = inverseSums
        return Tensor(out, inputs: [values]) { node in
            var dv = Matrix(uninitializedRows: pattern.nonZeros, cols: 1)
            node.grad!.storage.withUnsafeBufferPointer { g in
                normalized.storage.withUnsafeBufferPointer { m in
                    dv.storage.withUnsafeMutableBufferPointer { d in
                        let p = UnsafeSendable((g.baseAddress, m.baseAddress, d.baseAddress))
                        Parallel.forEachChunk(0..<pattern.matrix.rows, minimumChunk: 1024) { rows in
                            let (g, m, d) = p.value
                            for r in rows {
                                var weighted: Float = 0
                                for q in starts[r]..<starts[r + 1] { weighted += g![q] * m![q] }
                                for q in starts[r]..<starts[r + 1] { d![q] = (g![q] - weighted) * inverse[r] }
                            }
                        }
                    }
                }
            }
            values.accumulate(dv)
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
    /// How often each of `rows` occurs in the list.
    public var multiplicities: [Float] {
        var counts = [Float](repeating: 0, count: rows.count)
        for slot in slots { counts[Int(slot)] += 1 }
        return counts
    }

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


/// Softmax over segments of an edge list: entries `start[s]..<start[s + 1]` form segment s (the outgoing edges
/// of head s when the list is sorted by head, or the entries of CSR row s). KGAT's attention normalises each
/// head's edge scores this way (Wang et al. 2019, eq. 5).
public enum SegmentSoftmax {
    /// y_p = exp(v_p − max_s) / Σ_{q in s} exp(v_q − max_s); an empty segment contributes nothing.
    public static func forward(_ values: [Float], start: [Int]) -> [Float] {
        precondition(start.first == 0 && start.last == values.count, "segment starts must cover the values")
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                let p = UnsafeSendable((v.baseAddress, o.baseAddress))
                Parallel.forEachChunk(0..<(start.count - 1), minimumChunk: 1024) { segments in
                    let (v, o) = p.value
                    for s in segments where start[s] < start[s + 1] {
                        var largest = -Float.infinity
                        for q in start[s]..<start[s + 1] { largest = max(largest, v![q]) }
                        var sum: Float = 0
                        for q in start[s]..<start[s + 1] {
                            o![q] = expf(v![q] - largest)
                            sum += o![q]
                        }
                        let inverse = 1 / sum
                        for q in start[s]..<start[s + 1] { o![q] *= inverse }
                    }
                }
            }
        }
        return out
    }

    /// The input gradient from the output y and its gradient g: dv_p = y_p (g_p − Σ_{q in s} g_q y_q).
    public static func backward(output y: [Float], gradient g: [Float], start: [Int]) -> [Float] {
        var dv = [Float](repeating: 0, count: y.count)
        y.withUnsafeBufferPointer { y in
            g.withUnsafeBufferPointer { g in
                dv.withUnsafeMutableBufferPointer { d in
                    let p = UnsafeSendable((y.baseAddress, g.baseAddress, d.baseAddress))
                    Parallel.forEachChunk(0..<(start.count - 1), minimumChunk: 1024) { segments in
                        let (y, g, d) = p.value
                        for s in segments {
                            var weighted: Float = 0
                            for q in start[s]..<start[s + 1] { weighted += g![q] * y![q] }
                            for q in start[s]..<start[s + 1] { d![q] = y![q] * (g![q] - weighted) }
                        }
                    }
                }
            }
        }
        return dv
    }
}

extension Tensor {
    /// `[nnz, 1]` values softmax-normalised within each segment `start[s]..<start[s + 1]` (`SegmentSoftmax`).
    public static func segmentSoftmax(_ values: Tensor, start: [Int]) -> Tensor {
        precondition(values.cols == 1 && values.rows == start.last, "segmentSoftmax: shape mismatch")
        let y = SegmentSoftmax.forward(values.value.storage, start: start)
        return Tensor(Matrix(rows: values.rows, cols: 1, values: y), inputs: [values]) { node in
            let dv = SegmentSoftmax.backward(output: y, gradient: node.grad!.storage, start: start)
            values.accumulate(Matrix(rows: values.rows, cols: 1, values: dv))
        }
    }
}
