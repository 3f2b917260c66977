import AffinityKernels

/// Item–item graphs built from features or co-occurrence, stored sparse (the multimodal models' item
/// semantic graphs).
public enum ItemGraphs {
    public enum EdgeWeight: Sendable {
        /// Every kept edge weighs 1 (FREEDOM's frozen graph).
        case binary
        /// Edges keep their cosine similarity (LATTICE's initial graph).
        case similarity
    }

    /// Cosine kNN graph over feature rows: each item's row holds itself and its `k − 1` most similar other
    /// items (MMRec keeps the top k of the full similarity row, which includes the item itself at 1), then
    /// `D^{-1/2} A D^{-1/2}` with D the row sums (MMRec's `compute_normalized_laplacian`).
    /// Memory O(block · items): no items × items matrix is formed.
    public static func cosineKNN(_ features: Matrix, k: Int, weight: EdgeWeight = .binary) -> SparseMatrix {
        let n = features.rows
        precondition(k >= 1, "k must be at least 1")
        let others = min(k - 1, max(n - 1, 0))
        let (indices, sims) = others > 0 ? CosineNeighbours.compute(features, k: others) : ([], [])
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        rows.reserveCapacity(n * (others + 1)); cols.reserveCapacity(n * (others + 1)); values.reserveCapacity(n * (others + 1))
        for i in 0..<n {
            let selfNorm = (0..<features.cols).reduce(Float(0)) { $0 + features[i, $1] * features[i, $1] }
            rows.append(Int32(i)); cols.append(Int32(i)); values.append(weight == .binary || selfNorm > 0 ? 1 : 0)
            for j in 0..<others where indices[i * others + j] >= 0 {
                rows.append(Int32(i)); cols.append(indices[i * others + j])
                values.append(weight == .binary ? 1 : max(sims[i * others + j], 0))
            }
        }
        return symmetricNormalized(SparseMatrix(rows: n, cols: n, rowIndices: rows, colIndices: cols, values: values))
    }

    /// `D^{-1/2} A D^{-1/2}` with `D` the row sums of `A` (rows summing to 0 stay empty-valued).
    public static func symmetricNormalized(_ a: SparseMatrix) -> SparseMatrix {
        var inverseRoot = [Float](repeating: 0, count: a.rows)
        for r in 0..<a.rows {
            let s = a.values[a.rowStart[r]..<a.rowStart[r + 1]].reduce(0, +)
            inverseRoot[r] = s > 0 ? 1 / s.squareRoot() : 0
        }
        var values = a.values
        for r in 0..<a.rows {
            for p in a.rowStart[r]..<a.rowStart[r + 1] {
                let c = Int(a.colIndex[p])
                values[p] *= inverseRoot[r] * (c < a.rows ? inverseRoot[c] : 0)
            }
        }
        return a.withValues(values)
    }

    /// Weighted sum `Σ w_m A_m` of same-shaped sparse matrices (union of their patterns).
    public static func mix(_ graphs: [SparseMatrix], weights: [Float]) -> SparseMatrix {
        precondition(!graphs.isEmpty && graphs.count == weights.count)
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        for (g, w) in zip(graphs, weights) {
            for r in 0..<g.rows {
                for p in g.rowStart[r]..<g.rowStart[r + 1] { rows.append(Int32(r)); cols.append(g.colIndex[p]); values.append(w * g.values[p]) }
            }
        }
        return SparseMatrix(rows: graphs[0].rows, cols: graphs[0].cols, rowIndices: rows, colIndices: cols, values: values)
    }

    /// Item–item co-occurrence graph of an interaction matrix `R` (`[users, items]`): for each item the `k`
    /// items most often co-interacted with it (`RᵀR` without the diagonal; ties → lower index), weighted by
    /// the counts, then symmetric-normalised by row sums. Items without interactions get empty rows.
    /// - Complexity: O(Σ_u |R_u|²) time plus a sort of each item's co-occurring items; O(items) scratch per thread.
    public static func cooccurrence(_ r: SparseMatrix, k: Int) -> SparseMatrix {
        let items = r.cols
        let byItem = r.transposed()
        var indices = [Int32](repeating: -1, count: items * k)
        var counts = [Float](repeating: 0, count: items * k)
        let out = UnsafeSendable((indices.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                  counts.withUnsafeMutableBufferPointer { $0.baseAddress! }))
        Parallel.forEachChunk(0..<items, minimumChunk: 64) { chunk in
            var row = [Float](repeating: 0, count: items)
            var touched: [Int32] = []
            for i in chunk {
                for u in byItem.columns(ofRow: i) {
                    for j in r.columns(ofRow: Int(u)) where Int(j) != i {
                        if row[Int(j)] == 0 { touched.append(j) }
                        row[Int(j)] += 1
                    }
                }
                touched.sort { row[Int($0)] > row[Int($1)] || (row[Int($0)] == row[Int($1)] && $0 < $1) }
                for (slot, j) in touched.prefix(k).enumerated() {
                    out.value.0[i * k + slot] = j
                    out.value.1[i * k + slot] = row[Int(j)]
                }
                for j in touched { row[Int(j)] = 0 }
                touched.removeAll(keepingCapacity: true)
            }
        }
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        for i in 0..<items {
            for j in 0..<k where indices[i * k + j] >= 0 && counts[i * k + j] > 0 {
                rows.append(Int32(i)); cols.append(indices[i * k + j]); values.append(counts[i * k + j])
            }
        }
        return symmetricNormalized(SparseMatrix(rows: items, cols: items, rowIndices: rows, colIndices: cols, values: values))
    }
}
