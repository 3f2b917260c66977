import Testing
import AffinityCore

@Suite struct ItemGraphTests {
    static func features(_ n: Int, _ d: Int, seed: UInt64) -> Matrix {
        var rng = SeededGenerator(seed: seed)
        return Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in rng.nextGaussian() })
    }

    static func cosine(_ x: Matrix, _ i: Int, _ j: Int) -> Double {
        var dot = 0.0, a = 0.0, b = 0.0
        for c in 0..<x.cols { dot += Double(x[i, c] * x[j, c]); a += Double(x[i, c] * x[i, c]); b += Double(x[j, c] * x[j, c]) }
        return dot / (a * b).squareRoot()
    }

    /// Brute force: each row keeps itself and its k − 1 most similar others, then D^{-1/2} A D^{-1/2} by row sums.
    static func bruteForce(_ x: Matrix, k: Int, similarityWeights: Bool) -> [[Double]] {
        let n = x.rows
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            a[i][i] = 1
            let others = (0..<n).filter { $0 != i }.sorted { cosine(x, i, $0) > cosine(x, i, $1) || (cosine(x, i, $0) == cosine(x, i, $1) && $0 < $1) }
            for j in others.prefix(k - 1) { a[i][j] = similarityWeights ? max(cosine(x, i, j), 0) : 1 }
        }
        let s = a.map { row in 1 / row.reduce(0, +).squareRoot() }
        return (0..<n).map { i in (0..<n).map { j in a[i][j] * s[i] * s[j] } }
    }

    static func dense(_ m: SparseMatrix) -> [[Double]] {
        var out = [[Double]](repeating: [Double](repeating: 0, count: m.cols), count: m.rows)
        for r in 0..<m.rows { for p in m.rowStart[r]..<m.rowStart[r + 1] { out[r][Int(m.colIndex[p])] = Double(m.values[p]) } }
        return out
    }

    @Test(arguments: [false, true])
    func cosineKNNEqualsBruteForce(_ similarityWeights: Bool) {
        let x = Self.features(40, 6, seed: 9)
        let graph = ItemGraphs.cosineKNN(x, k: 5, weight: similarityWeights ? .similarity : .binary)
        let expected = Self.bruteForce(x, k: 5, similarityWeights: similarityWeights)
        let got = Self.dense(graph)
        #expect(graph.nonZeros == 40 * 5)
        for i in 0..<40 { for j in 0..<40 { #expect(abs(got[i][j] - expected[i][j]) < 1e-5, "(\(i), \(j))") } }
    }

    @Test func cooccurrenceKeepsTheTopCountsPerItem() {
        // 5 users × 4 items: items 0 and 1 co-occur 3 times, 0 and 2 once, 2 and 3 twice; item 3 also with 1 once.
        let r = SparseMatrix(rows: 5, cols: 4, rowIndices: [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4], colIndices: [0, 1, 0, 1, 0, 1, 2, 2, 3, 2, 3])
        let counts: [[Double]] = {
            var c = [[Double]](repeating: [0, 0, 0, 0], count: 4)
            for u in 0..<5 { for i in r.columns(ofRow: u) { for j in r.columns(ofRow: u) where i != j { c[Int(i)][Int(j)] += 1 } } }
            return c
        }()
        let k = 2
        var kept = [[Double]](repeating: [0, 0, 0, 0], count: 4)
        for i in 0..<4 {
            let order = (0..<4).filter { $0 != i && counts[i][$0] > 0 }.sorted { counts[i][$0] > counts[i][$1] || (counts[i][$0] == counts[i][$1] && $0 < $1) }
            for j in order.prefix(k) { kept[i][j] = counts[i][j] }
        }
        let s = kept.map { 1 / $0.reduce(0, +).squareRoot() }
        let got = Self.dense(ItemGraphs.cooccurrence(r, k: k))
        for i in 0..<4 { for j in 0..<4 { #expect(abs(got[i][j] - kept[i][j] * s[i] * s[j]) < 1e-6, "(\(i), \(j))") } }
    }

    @Test func topKRowMaskKeepsTheLargestEntries() {
        let m = Matrix(rows: 2, cols: 4, values: [0.1, 0.9, 0.5, 0.7, 3, 1, 2, 0])
        #expect(topKRowMask(m, k: 2).storage == [0, 1, 0, 1, 1, 0, 1, 0])
    }
}
