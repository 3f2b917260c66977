/// A sparse Float32 matrix in compressed sparse row (CSR) form. Column indices within a row are sorted
/// ascending and unique.
public struct SparseMatrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    /// `rowStart[r]..<rowStart[r + 1]` indexes row `r`'s entries; `rowStart.count == rows + 1`.
    public let rowStart: [Int]
    public let colIndex: [Int32]
    public let values: [Float]

    public var nonZeros: Int { colIndex.count }

    public init(rows: Int, cols: Int, rowStart: [Int], colIndex: [Int32], values: [Float]) {
        precondition(rowStart.count == rows + 1 && colIndex.count == values.count && rowStart.last == colIndex.count,
                     "inconsistent CSR arrays")
        self.rows = rows
        self.cols = cols
        self.rowStart = rowStart
        self.colIndex = colIndex
        self.values = values
    }

    /// Builds a CSR matrix from coordinate triples. Duplicate (row, col) pairs are summed.
    /// - Complexity: O(nnz + rows) plus sorting within each row.
    public init(rows: Int, cols: Int, rowIndices: [Int32], colIndices: [Int32], values: [Float]? = nil) {
        precondition(rowIndices.count == colIndices.count)
        precondition(values == nil || values!.count == rowIndices.count)
        var counts = [Int](repeating: 0, count: rows + 1)
        for r in rowIndices { counts[Int(r) + 1] += 1 }
        for r in 0..<rows { counts[r + 1] += counts[r] }
        var next = counts
        var cols32 = [Int32](repeating: 0, count: rowIndices.count)
        var vals = [Float](repeating: 1, count: rowIndices.count)
        for e in 0..<rowIndices.count {
            let r = Int(rowIndices[e])
            let p = next[r]
            cols32[p] = colIndices[e]
            if let values { vals[p] = values[e] }
            next[r] += 1
        }
        // Sort each row by column and merge duplicates.
        var outStart = [Int](repeating: 0, count: rows + 1)
        var outCols = [Int32](); outCols.reserveCapacity(cols32.count)
        var outVals = [Float](); outVals.reserveCapacity(cols32.count)
        var order = [Int]()
        for r in 0..<rows {
            let lo = counts[r], hi = counts[r + 1]
            order.removeAll(keepingCapacity: true)
            order.append(contentsOf: lo..<hi)
            order.sort { cols32[$0] < cols32[$1] || (cols32[$0] == cols32[$1] && $0 < $1) }
            for p in order {
                if outCols.count > outStart[r], outCols.last == cols32[p] {
                    outVals[outVals.count - 1] += vals[p]
                } else {
                    outCols.append(cols32[p]); outVals.append(vals[p])
                }
            }
            outStart[r + 1] = outCols.count
        }
        self.init(rows: rows, cols: cols, rowStart: outStart, colIndex: outCols, values: outVals)
    }

    /// Column indices of row `r`.
    @inline(__always)
    public func columns(ofRow r: Int) -> ArraySlice<Int32> { colIndex[rowStart[r]..<rowStart[r + 1]] }

    /// Number of stored entries in row `r`.
    @inline(__always)
    public func count(ofRow r: Int) -> Int { rowStart[r + 1] - rowStart[r] }

    /// Whether (r, c) is stored (binary search within the row).
    public func contains(row r: Int, col c: Int32) -> Bool {
        var lo = rowStart[r], hi = rowStart[r + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            if colIndex[mid] < c { lo = mid + 1 } else { hi = mid }
        }
        return lo < rowStart[r + 1] && colIndex[lo] == c
    }

    /// The transpose, in CSR form (i.e. the CSC form of this matrix).
    /// - Complexity: O(nnz + rows + cols).
    public func transposed() -> SparseMatrix {
        SparsePattern(self).transpose(values: values)
    }

    /// Number of stored entries in each column.
    public func columnCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: cols)
        for c in colIndex { counts[Int(c)] += 1 }
        return counts
    }
}
