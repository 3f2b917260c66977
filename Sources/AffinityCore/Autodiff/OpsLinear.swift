import AffinityKernels

// Linear-algebra operations: products, sparse products, row gather, concatenation and slicing.

extension Tensor {
    /// `op(A) · op(B)` (BLAS). Gradients (C = A·B): dA = dC·Bᵀ, dB = Aᵀ·dC, with the transposed variants.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let out = BLAS.matmul(a.value, b.value, transA: transposeA, transB: transposeB)
        return Tensor(out, inputs: [a, b]) { node in
            let g = node.grad!
            if a.requiresGrad {
                // dA = dC · op(B)ᵀ  (or its transpose when A was transposed).
                let da = transposeA
                    ? BLAS.matmul(b.value, g, transA: transposeB, transB: true)   // [k, m] = op(B) · dCᵀ
                    : BLAS.matmul(g, b.value, transA: false, transB: !transposeB)  // [m, k] = dC · op(B)ᵀ
                a.accumulate(da)
            }
            if b.requiresGrad {
                // dB = op(A)ᵀ · dC  (or its transpose when B was transposed).
                let db = transposeB
                    ? BLAS.matmul(g, a.value, transA: true, transB: transposeA)    // [n, k] = dCᵀ · op(A)
                    : BLAS.matmul(a.value, g, transA: !transposeA, transB: false)  // [k, n] = op(A)ᵀ · dC
                b.accumulate(db)
            }
        }
    }

    /// `A · X` for a constant sparse `A` (graph propagation). Gradient: dX = Aᵀ · dY, by the cached transpose.
    public static func spmm(_ a: SparseOperator, _ x: Tensor) -> Tensor {
        Tensor(a.matrix.multiply(x.value), inputs: [x]) { node in
            if x.grad == nil {
                x.grad = a.transpose.multiply(node.grad!)
            } else {
                a.transpose.multiply(node.grad!, into: &x.grad!, beta: 1)
            }
        }
    }

    /// Rows `rows` of `A · X` (`[rows.count, d]`, repeats allowed), computing only those rows: the same as
    /// `gather(spmm(a, x), rows:)` when a batch reads only its own rows. Gradient: Aᵀ times the scattered rows,
    /// skipping the columns of Aᵀ no listed row touches.
    public static func spmm(_ a: SparseOperator, _ x: Tensor, at rows: [Int32]) -> Tensor {
        precondition(a.matrix.cols == x.rows, "spmm: shape mismatch")
        return Tensor(a.matrix.multiply(x.value, rows: rows), inputs: [x]) { node in
            guard x.requiresGrad else { return }
            let listed = DistinctRows(rows, bound: a.matrix.rows).listed
            // The masked product reads the listed rows of g only, so the others are never written (no zero-fill of
            // a full table), and with beta 0 it writes every row of a fresh gradient.
            var g = Matrix(uninitializedRows: a.matrix.rows, cols: node.cols)
            let d = node.cols
            g.storage.withUnsafeMutableBufferPointer { full in
                for r in rows { (full.baseAddress! + Int(r) * d).update(repeating: 0, count: d) }
                Tensor.addRows(node.grad!, at: rows, into: full.baseAddress!)
            }
            let beta: Float = x.grad == nil ? 0 : 1
            if x.grad == nil { x.grad = Matrix(uninitializedRows: x.rows, cols: x.cols) }
            a.transpose.multiply(g, into: &x.grad!, beta: beta, mask: listed, sum: nil)
        }
    }

    /// The `[rowCount, d]` matrix with row `rows[i]` of it the sum of the rows i of `g` listed there: the
    /// gradient of reading `rows` from a full table, zero elsewhere.
    static func scatteredRows(_ g: Matrix, at rows: [Int32], rowCount: Int) -> Matrix {
        var full = Matrix(rows: rowCount, cols: g.cols)
        full.storage.withUnsafeMutableBufferPointer { Tensor.addRows(g, at: rows, into: $0.baseAddress!) }
        return full
    }

    /// Rows `rows` of `table` (embedding lookup), `[rows.count, d]`. Gradient: scatter-add into the
    /// table's rows, recorded row-sparse when the table was created with `sparseGradients`.
    public static func gather(_ table: Tensor, rows: [Int32]) -> Tensor {
        let d = table.cols
        var out = Matrix(uninitializedRows: rows.count, cols: d)
        table.value.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for (i, r) in rows.enumerated() {
                    precondition(r >= 0 && Int(r) < table.rows, "gather: row \(r) out of range")
                    (dst.baseAddress! + i * d).update(from: src.baseAddress! + Int(r) * d, count: d)
                }
            }
        }
        return Tensor(out, inputs: [table]) { node in table.accumulateRows(rows, of: node.grad!) }
    }

    /// `[A | B | …]` side by side (same row count).
    public static func concatColumns(_ parts: [Tensor]) -> Tensor {
        let rows = parts[0].rows
        precondition(parts.allSatisfy { $0.rows == rows }, "concatColumns: row counts differ")
        let total = parts.reduce(0) { $0 + $1.cols }
        var out = Matrix(uninitializedRows: rows, cols: total)
        var offset = 0
        for part in parts {
            copyColumns(from: part.value, sourceOffset: 0, to: &out, destinationOffset: offset, width: part.cols)
            offset += part.cols
        }
        return Tensor(out, inputs: parts) { node in
            var offset = 0
            for part in parts {
                if part.requiresGrad {
                    var gp = Matrix(uninitializedRows: rows, cols: part.cols)
                    copyColumns(from: node.grad!, sourceOffset: offset, to: &gp, destinationOffset: 0, width: part.cols)
                    part.accumulate(gp)
                }
                offset += part.cols
            }
        }
    }

    /// Columns `range` of `a` (the inverse of `concatColumns`).
    public static func sliceColumns(_ a: Tensor, _ range: Range<Int>) -> Tensor {
        var out = Matrix(uninitializedRows: a.rows, cols: range.count)
        copyColumns(from: a.value, sourceOffset: range.lowerBound, to: &out, destinationOffset: 0, width: range.count)
        return Tensor(out, inputs: [a]) { node in
            var ga = Matrix(rows: a.rows, cols: a.cols)
            copyColumns(from: node.grad!, sourceOffset: 0, to: &ga, destinationOffset: range.lowerBound, width: range.count)
            a.accumulate(ga)
        }
    }

    /// Copies `width` columns starting at `sourceOffset` of every row of `source` into `destination` at
    /// `destinationOffset` (row segments, parallel over rows).
    static func copyColumns(from source: Matrix, sourceOffset: Int, to destination: inout Matrix, destinationOffset: Int, width: Int) {
        let sc = source.cols, dc = destination.cols
        source.storage.withUnsafeBufferPointer { s in
            destination.storage.withUnsafeMutableBufferPointer { d in
                let p = UnsafeSendable((s.baseAddress!, d.baseAddress!))
                Parallel.forEachChunk(0..<source.rows, minimumChunk: 4096) { rows in
                    for r in rows {
                        (p.value.1 + r * dc + destinationOffset).update(from: p.value.0 + r * sc + sourceOffset, count: width)
                    }
                }
            }
        }
    }

    /// `[A; B; …]` stacked (same column count).
    public static func concatRows(_ parts: [Tensor]) -> Tensor {
        let cols = parts[0].cols
        precondition(parts.allSatisfy { $0.cols == cols }, "concatRows: column counts differ")
        var storage: [Float] = []
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.value.storage.count })
        for p in parts { storage.append(contentsOf: p.value.storage) }
        let out = Matrix(rows: storage.count / max(cols, 1), cols: cols, values: storage)
        return Tensor(out, inputs: parts) { node in
            let g = node.grad!
            var offset = 0
            for p in parts {
                let n = p.value.storage.count
                if p.requiresGrad { p.accumulate(Matrix(rows: p.rows, cols: cols, values: Array(g.storage[offset..<(offset + n)]))) }
                offset += n
            }
        }
    }

    /// Rows `range` of `a`.
    public static func sliceRows(_ a: Tensor, _ range: Range<Int>) -> Tensor {
        let d = a.cols
        let out = Matrix(rows: range.count, cols: d, values: Array(a.value.storage[(range.lowerBound * d)..<(range.upperBound * d)]))
        return Tensor(out, inputs: [a]) { node in
            let g = node.grad!
            g.storage.withUnsafeBufferPointer { gs in
                guard !gs.isEmpty else { return }
                a.withGradBuffer { ga in affinity_axpy(Int32(gs.count), 1, gs.baseAddress!, ga.baseAddress! + range.lowerBound * d) }
            }
        }
    }

    /// Row-wise dot products `[n, 1]`: out[i] = ⟨a_i, b_i⟩. Gradients: da_i = g_i · b_i, db_i = g_i · a_i.
    public static func rowDot(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rows == b.rows && a.cols == b.cols, "rowDot: shapes differ")
        let n = a.rows, d = a.cols
        var out = Matrix(rows: n, cols: 1)
        a.value.storage.withUnsafeBufferPointer { pa in
            b.value.storage.withUnsafeBufferPointer { pb in
                out.storage.withUnsafeMutableBufferPointer { po in
                    affinity_row_dots(pa.baseAddress, pb.baseAddress, Int32(n), Int32(d), po.baseAddress)
                }
            }
        }
        return Tensor(out, inputs: [a, b]) { node in
            let g = node.grad!
            // d/da_i = g_i · b_i and d/db_i = g_i · a_i: each row of the other input scaled.
            func scaledRows(_ source: Matrix) -> Matrix {
                var result = Matrix(rows: n, cols: d)
                g.storage.withUnsafeBufferPointer { gs in
                    source.storage.withUnsafeBufferPointer { src in
                        result.storage.withUnsafeMutableBufferPointer { dst in
                            for i in 0..<n {
                                let s = gs[i]
                                for c in 0..<d { dst[i * d + c] = s * src[i * d + c] }
                            }
                        }
                    }
                }
                return result
            }
            if a.requiresGrad { a.accumulate(scaledRows(b.value)) }
            if b.requiresGrad { b.accumulate(scaledRows(a.value)) }
        }
    }
}
