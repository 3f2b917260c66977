import Testing
import AffinityCore

@Suite struct LinearAlgebraTests {
    func naive(_ a: Matrix, _ b: Matrix, _ ta: Bool, _ tb: Bool) -> Matrix {
        let m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols, n = tb ? b.rows : b.cols
        var c = Matrix(rows: m, cols: n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += (ta ? a[p, i] : a[i, p]) * (tb ? b[j, p] : b[p, j]) }
            c[i, j] = s
        } }
        return c
    }

    func random(_ r: Int, _ c: Int, _ rng: inout SeededGenerator) -> Matrix {
        Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in rng.nextFloat() - 0.5 })
    }

    /// Matrices are filled (large ones by all workers in chunks): every entry is set, whatever the size's remainder.
    @Test(arguments: [(0, 5), (7, 3), (1 << 18, 1), (1031, 257), (4099, 64)])
    func largeFillsSetEveryEntry(rows: Int, cols: Int) {
        for value: Float in [-2.5, 0] {  // the zero fill may reuse the freed -2.5 block
            let m = Matrix(rows: rows, cols: cols, repeating: value)
            #expect(m.storage.count == rows * cols)
            #expect(m.storage.allSatisfy { $0 == value })
        }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmMatchesNaiveForEveryTransposeCombination(ta: Bool, tb: Bool) {
        var rng = SeededGenerator(seed: 3)
        let a = ta ? random(5, 4, &rng) : random(4, 5, &rng)
        let b = tb ? random(3, 5, &rng) : random(5, 3, &rng)
        let c = BLAS.matmul(a, b, transA: ta, transB: tb)
        let ref = naive(a, b, ta, tb)
        #expect(c.rows == 4 && c.cols == 3)
        for i in 0..<c.storage.count { #expect(abs(c.storage[i] - ref.storage[i]) < 1e-5) }
    }

    /// Tall products (split by output rows) and deep ones (split by pieces of the inner dimension, summed in
    /// order) run on Affinity's workers; they match BLAS's own product, with α, β and every transpose.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func splitProductsMatchBLAS(ta: Bool, tb: Bool) {
        var rng = SeededGenerator(seed: 9)
        for (m, n, k) in [(9000, 16, 24), (12, 20, 9000)] {
            let a = ta ? random(k, m, &rng) : random(m, k, &rng)
            let b = tb ? random(n, k, &rng) : random(k, n, &rng)
            let start = random(m, n, &rng)
            func product() -> Matrix {
                var c = start
                a.storage.withUnsafeBufferPointer { pa in
                    b.storage.withUnsafeBufferPointer { pb in
                        c.storage.withUnsafeMutableBufferPointer { pc in
                            BLAS.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: a.cols,
                                       b: pb.baseAddress!, ldb: b.cols, beta: 0.75, c: pc.baseAddress!, ldc: n)
                        }
                    }
                }
                return c
            }
            let split = product(), reference = BLAS.singleThreaded { product() }
            let worst = zip(split.storage, reference.storage).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            #expect(worst < 1e-3, "m \(m) n \(n) k \(k): max difference \(worst)")
            #expect(split.storage != start.storage)
        }
    }

    /// The direct kernel (where the CPU has it, `BLAS.directProducts`; else the path falls back to the library):
    /// ragged row blocks (not a multiple of 6), ragged column panels (not a multiple of 16), strided operands, a
    /// transposed B, α and β, and β = 0 never reading C (NaN there must not leak).
    @Test(arguments: [false, true])
    func directProductsMatchNaive(transB: Bool) {
        var rng = SeededGenerator(seed: 21)
        for (m, n, k) in [(1003, 64, 128), (257, 40, 7), (130, 130, 64), (5, 16, 1), (70, 3, 300)] {
            let lda = k + 3, ldb = (transB ? k : n) + 2, ldc = n + 5
            let a = random(m, lda, &rng), b = transB ? random(n, ldb, &rng) : random(k, ldb, &rng)
            for beta: Float in [0, 0.75] {
                var c = random(m, ldc, &rng)
                if beta == 0 { c.storage = c.storage.map { _ in .nan } }
                let start = c
                a.storage.withUnsafeBufferPointer { pa in
                    b.storage.withUnsafeBufferPointer { pb in
                        c.storage.withUnsafeMutableBufferPointer { pc in
                            BLAS.sgemm(transA: false, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!,
                                       lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc,
                                       path: .direct)
                        }
                    }
                }
                var worst: Double = 0
                for i in 0..<m {
                    for j in 0..<ldc {
                        guard j < n else {   // padding columns of C are never written
                            #expect(c[i, j].bitPattern == start[i, j].bitPattern)
                            continue
                        }
                        var sum: Double = 0
                        for p in 0..<k { sum += Double(a[i, p]) * Double(transB ? b[j, p] : b[p, j]) }
                        let expected = 0.5 * sum + (beta == 0 ? 0 : Double(beta) * Double(start[i, j]))
                        worst = max(worst, abs(Double(c[i, j]) - expected))
                    }
                }
                #expect(worst < 1e-4, "m \(m) n \(n) k \(k) β \(beta) transB \(transB): max error \(worst)")
            }
        }
    }

    @Test func choleskyInverseTimesMatrixIsIdentity() throws {
        var rng = SeededGenerator(seed: 5)
        let x = random(12, 6, &rng)
        var g = BLAS.matmul(x, x, transA: true)  // 6 × 6, positive definite with + I
        for i in 0..<6 { g[i, i] += 1 }
        var inv = g
        try BLAS.invertSymmetricPositiveDefinite(&inv)
        let id = BLAS.matmul(g, inv)
        for i in 0..<6 { for j in 0..<6 { #expect(abs(id[i, j] - (i == j ? 1 : 0)) < 1e-4) } }
        for i in 0..<6 { for j in 0..<6 { #expect(inv[i, j] == inv[j, i]) } }
    }

    @Test func inversionRejectsIndefiniteMatrix() {
        var m = Matrix(rows: 2, cols: 2, values: [1, 2, 2, 1])
        #expect(throws: LinearAlgebraError.self) { try BLAS.invertSymmetricPositiveDefinite(&m) }
    }

    @Test func blasReportsItsCore() {
        #expect(!BLAS.coreName.isEmpty)
    }
}
