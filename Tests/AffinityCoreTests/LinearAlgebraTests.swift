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
