import AffinityKernels

extension SparseMatrix {
    /// `Y = A · X` for dense `X` (`[cols, d]`), threaded over output rows.
    /// - Complexity: O(nnz · d).
    public func multiply(_ x: Matrix) -> Matrix {
        var y = Matrix(uninitializedRows: rows, cols: x.cols)  // with beta 0 the kernel writes every row
        multiply(x, into: &y, beta: 0)
        return y
    }

    /// `Y = A · X + beta · Y`, writing into an existing `[rows, d]` matrix (no allocation).
    public func multiply(_ x: Matrix, into y: inout Matrix, beta: Float = 0) {
        multiply(x, into: &y, beta: beta, mask: nil, sum: nil)
    }

    /// `Y = A · X + beta · Y (+ addend)` skipping the columns whose `mask` entry is 0 (rows of X known to be
    /// zero), and adding each output row into `sum` too when given. The options save passes over memory in
    /// graph propagation.
    public func multiply(_ x: Matrix, into y: inout Matrix, beta: Float = 0, mask: [UInt8]?,
                         addend: UnsafePointer<Float>? = nil, sum: UnsafeMutablePointer<Float>?) {
        precondition(x.rows == cols && y.rows == rows && y.cols == x.cols, "spmm shape mismatch")
        precondition(mask == nil || mask!.count == cols, "mask length must equal the column count")
        let d = x.cols
        rowStart.withUnsafeBufferPointer { rs in
            colIndex.withUnsafeBufferPointer { ci in
                values.withUnsafeBufferPointer { vs in
                    x.storage.withUnsafeBufferPointer { xs in
                        y.storage.withUnsafeMutableBufferPointer { ys in
                            func run(_ m: UnsafePointer<UInt8>?) {
                                let starts = UnsafeRawPointer(rs.baseAddress!).assumingMemoryBound(to: Int64.self)
                                let p = UnsafeSendable((starts, ci.baseAddress, vs.baseAddress, xs.baseAddress, ys.baseAddress!, m, sum, addend))
                                Parallel.forEachChunk(0..<rows, minimumChunk: 256) { chunk in
                                    affinity_spmm_rows_ex(p.value.0, p.value.1, p.value.2, p.value.3, Int32(d), p.value.4,
                                                          Int32(chunk.lowerBound), Int32(chunk.upperBound), beta, p.value.5, p.value.7, p.value.6)
                                }
                            }
                            if let mask { mask.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
                        }
                    }
                }
            }
        }
    }

    /// Rows `rows` of `A · X` only, as a compact `[rows.count, d]` matrix (a repeated row is computed again),
    /// threaded over the list.
    public func multiply(_ x: Matrix, rows list: [Int32]) -> Matrix {
        precondition(x.rows == cols, "spmm shape mismatch")
        precondition(list.allSatisfy { $0 >= 0 && Int($0) < rows }, "spmm: row out of range")
        let d = x.cols
        var out = Matrix(uninitializedRows: list.count, cols: d)  // every listed row is written
        rowStart.withUnsafeBufferPointer { rs in
            colIndex.withUnsafeBufferPointer { ci in
                values.withUnsafeBufferPointer { vs in
                    x.storage.withUnsafeBufferPointer { xs in
                        out.storage.withUnsafeMutableBufferPointer { os in
                            list.withUnsafeBufferPointer { ls in
                                let starts = UnsafeRawPointer(rs.baseAddress!).assumingMemoryBound(to: Int64.self)
                                let p = UnsafeSendable((starts, ci.baseAddress, vs.baseAddress, xs.baseAddress, ls.baseAddress!, os.baseAddress!))
                                Parallel.forEachChunk(0..<list.count, minimumChunk: 64) { c in
                                    affinity_spmm_gather(p.value.0, p.value.1, p.value.2, p.value.3, Int32(d),
                                                         p.value.4 + c.lowerBound, Int32(c.count), p.value.5 + c.lowerBound * d)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Scalar reference of `multiply`, kept for tests.
    public func referenceMultiply(_ x: Matrix) -> Matrix {
        var y = Matrix(rows: rows, cols: x.cols)
        for r in 0..<rows {
            for p in rowStart[r]..<rowStart[r + 1] {
                for c in 0..<x.cols { y[r, c] += values[p] * x[Int(colIndex[p]), c] }
            }
        }
        return y
    }

    /// The same sparsity pattern with new values.
    public func withValues(_ newValues: [Float]) -> SparseMatrix {
        SparseMatrix(rows: rows, cols: cols, rowStart: rowStart, colIndex: colIndex, values: newValues)
    }
}

/// A sparse matrix together with its transpose, built once, so both `A·X` (forward) and `Aᵀ·G`
/// (backward) are row-parallel CSR products without transposing on every call.
public struct SparseOperator: Sendable {
    public let matrix: SparseMatrix
    public let transpose: SparseMatrix
    /// Whether `matrix` equals its transpose (then `transpose` is the same storage).
    public let isSymmetric: Bool

    public init(_ matrix: SparseMatrix, symmetric: Bool = false) {
        self.matrix = matrix
        self.isSymmetric = symmetric
        self.transpose = symmetric ? matrix : matrix.transposed()
    }
}

/// A fixed sparsity pattern whose values are learned (DCCF's edge masks, LATTICE's graph), with the CSR of its
/// transpose and where each transposed entry comes from, so `Aᵀ·G` needs no transposition per call.
public struct SparsePattern: Sendable {
    /// The pattern (its values are ignored).
    public let matrix: SparseMatrix
    /// The transpose's pattern.
    public let transpose: SparseMatrix
    /// Entry q of `transpose` is entry `transposeSource[q]` of `matrix`.
    public let transposeSource: [Int]

    public init(_ matrix: SparseMatrix) {
        self.matrix = matrix
        var start = [Int](repeating: 0, count: matrix.cols + 1)
        for c in matrix.colIndex { start[Int(c) + 1] += 1 }
        for c in 0..<matrix.cols { start[c + 1] += start[c] }
        var next = start
        var rowsOfTranspose = [Int32](repeating: 0, count: matrix.nonZeros)
        var source = [Int](repeating: 0, count: matrix.nonZeros)
        for r in 0..<matrix.rows {
            for p in matrix.rowStart[r]..<matrix.rowStart[r + 1] {
                let c = Int(matrix.colIndex[p])
                rowsOfTranspose[next[c]] = Int32(r)
                source[next[c]] = p
                next[c] += 1
            }
        }
        transpose = SparseMatrix(rows: matrix.cols, cols: matrix.rows, rowStart: start, colIndex: rowsOfTranspose,
                                 values: [Float](repeating: 1, count: matrix.nonZeros))
        transposeSource = source
    }

    public var nonZeros: Int { matrix.nonZeros }

    /// Its transpose, with `values` given in the pattern's order.
    public func transpose(values: [Float]) -> SparseMatrix {
        transpose.withValues(transposeSource.map { values[$0] })
    }

    /// Sampled dense–dense product: entry p = (r, c) gets ⟨left_r, right_c⟩ (`left` has a row per pattern row,
    /// `right` one per column), threaded over rows.
    public func sampledDots(_ left: Matrix, _ right: Matrix) -> [Float] {
        precondition(left.rows == matrix.rows && right.rows == matrix.cols && left.cols == right.cols, "sampledDots: shape mismatch")
        var out = [Float](repeating: 0, count: nonZeros)
        let d = left.cols
        matrix.rowStart.withUnsafeBufferPointer { rs in
            matrix.colIndex.withUnsafeBufferPointer { ci in
                left.storage.withUnsafeBufferPointer { l in
                    right.storage.withUnsafeBufferPointer { r in
                        out.withUnsafeMutableBufferPointer { o in
                            let starts = UnsafeRawPointer(rs.baseAddress!).assumingMemoryBound(to: Int64.self)
                            let p = UnsafeSendable((starts, ci.baseAddress, l.baseAddress, r.baseAddress, o.baseAddress))
                            Parallel.forEachChunk(0..<matrix.rows, minimumChunk: 256) { chunk in
                                affinity_sddmm_rows(p.value.0, p.value.1, p.value.2, p.value.3, Int32(d),
                                                    Int32(chunk.lowerBound), Int32(chunk.upperBound), p.value.4)
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Normalised adjacency matrices of the user–item bipartite graph.
public enum GraphNormalization {
    /// The `(users + items)` square adjacency `A = [[0, R], [Rᵀ, 0]]` of the interaction matrix `R`
    /// (`[users, items]`), symmetric-normalised: `Â = D^{-1/2} A D^{-1/2}` (LightGCN eq. 7; NGCF eq. 8).
    /// Isolated nodes keep an empty row. Users are nodes `0..<users`, items `users..<users+items`.
    public static func symmetricBipartite(_ r: SparseMatrix) -> SparseMatrix {
        let a = bipartite(r)
        let degree = (0..<a.rows).map { Float(a.count(ofRow: $0)) }
        let inverseRoot = degree.map { $0 > 0 ? 1 / $0.squareRoot() : 0 }
        var values = [Float](repeating: 0, count: a.nonZeros)
        for row in 0..<a.rows {
            for p in a.rowStart[row]..<a.rowStart[row + 1] {
                values[p] = a.values[p] * inverseRoot[row] * inverseRoot[Int(a.colIndex[p])]
            }
        }
        return a.withValues(values)
    }

    /// Row-normalised `D^{-1} A` of any sparse matrix (each non-empty row sums to 1).
    public static func rowNormalized(_ a: SparseMatrix) -> SparseMatrix {
        var values = a.values
        for row in 0..<a.rows {
            let range = a.rowStart[row]..<a.rowStart[row + 1]
            let sum = range.reduce(Float(0)) { $0 + a.values[$1] }
            if sum != 0 { for p in range { values[p] /= sum } }
        }
        return a.withValues(values)
    }

    /// The unnormalised `(users + items)` bipartite adjacency with unit weights.
    public static func bipartite(_ r: SparseMatrix) -> SparseMatrix {
        let users = r.rows, n = r.rows + r.cols
        var start = [Int](repeating: 0, count: n + 1)
        for u in 0..<users { start[u + 1] = r.count(ofRow: u) }
        let itemDegree = r.columnCounts()
        for i in 0..<r.cols { start[users + i + 1] = itemDegree[i] }
        for v in 0..<n { start[v + 1] += start[v] }
        var cols = [Int32](repeating: 0, count: start[n])
        // User rows: item columns shifted by `users` (already sorted).
        for u in 0..<users {
            var p = start[u]
            for i in r.columns(ofRow: u) { cols[p] = Int32(users) + i; p += 1 }
        }
        // Item rows: user columns in increasing order (users visited in order).
        var next = Array(start[users..<n])
        for u in 0..<users {
            for i in r.columns(ofRow: u) {
                cols[next[Int(i)]] = Int32(u)
                next[Int(i)] += 1
            }
        }
        return SparseMatrix(rows: n, cols: n, rowStart: start, colIndex: cols, values: [Float](repeating: 1, count: cols.count))
    }
}
