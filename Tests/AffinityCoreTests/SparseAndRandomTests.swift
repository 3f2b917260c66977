import Testing
import AffinityCore

@Suite struct SparseMatrixTests {
    @Test func buildsSortedRowsAndSumsDuplicates() {
        let m = SparseMatrix(rows: 3, cols: 4, rowIndices: [2, 0, 0, 2, 0], colIndices: [1, 3, 0, 1, 3], values: [1, 2, 3, 4, 5])
        #expect(m.rowStart == [0, 2, 2, 3])
        #expect(m.colIndex == [0, 3, 1])
        #expect(m.values == [3, 7, 5])
        #expect(m.contains(row: 0, col: 3) && !m.contains(row: 0, col: 1) && !m.contains(row: 1, col: 0))
    }

    @Test func transposeRoundTrips() {
        let m = SparseMatrix(rows: 3, cols: 4, rowIndices: [0, 0, 1, 2, 2], colIndices: [1, 3, 0, 1, 2], values: [1, 2, 3, 4, 5])
        let t = m.transposed()
        #expect(t.rows == 4 && t.cols == 3)
        #expect(Array(t.columns(ofRow: 1)) == [0, 2])
        #expect(t.transposed() == m)
        #expect(m.columnCounts() == [1, 2, 1, 1])
    }
}

@Suite struct RandomTests {
    @Test func sameSeedSameStream() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let xa = (0..<10).map { _ in a.next() }, xb = (0..<10).map { _ in b.next() }, xc = (0..<10).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
    }

    @Test func boundedIntsAreInRangeAndRoughlyUniform() {
        var rng = SeededGenerator(seed: 1)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[rng.nextInt(below: 7)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
        for _ in 0..<1000 { let f = rng.nextFloat(); #expect(f >= 0 && f < 1) }
    }

    @Test func seededShuffleIsAPermutationAndReproducible() {
        var r1 = SeededGenerator(seed: 9), r2 = SeededGenerator(seed: 9)
        var a = Array(0..<100), b = Array(0..<100)
        a.seededShuffle(using: &r1); b.seededShuffle(using: &r2)
        #expect(a == b)
        #expect(a.sorted() == Array(0..<100))
        #expect(a != Array(0..<100))
    }

    /// Dropout masks: the rate, the scale, reproducible from the seed, and counter-based (an entry depends on the
    /// seed and its index only, so a smaller table's mask is the prefix of a larger one's, as chunked layers need).
    @Test func dropoutMasksHaveTheRateAndDependOnlyOnSeedAndIndex() {
        func mask(rows: Int, seed: UInt64) -> [Float] {
            var rng = SeededGenerator(seed: seed)
            return Tensor.dropout(Tensor(Matrix(rows: rows, cols: 100, repeating: 1)), rate: 0.3, rng: &rng).value.storage
        }
        let big = mask(rows: 2000, seed: 4)
        let zeros = big.filter { $0 == 0 }.count
        #expect(abs(Double(zeros) / Double(big.count) - 0.3) < 0.01)
        #expect(big.allSatisfy { $0 == 0 || abs($0 - 1 / Float(0.7)) < 1e-6 })
        for column in [0, 37, 99] {   // no column (a fixed index modulo the width) is biased
            let dropped = (0..<2000).filter { big[$0 * 100 + column] == 0 }.count
            #expect(abs(Double(dropped) / 2000 - 0.3) < 0.05, "column \(column)")
        }
        #expect(mask(rows: 2000, seed: 4) == big)
        #expect(Array(big[0..<1000]) == mask(rows: 10, seed: 4))
        #expect(mask(rows: 10, seed: 5) != mask(rows: 10, seed: 4))
    }

    @Test func parallelForEachVisitsEveryIndexOnce() {
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { buf in
            let p = UnsafeSendable(buf.baseAddress!)
            Parallel.forEach(0..<1000) { p.value[$0] += 1 }
        }
        #expect(hits.allSatisfy { $0 == 1 })
    }
}
