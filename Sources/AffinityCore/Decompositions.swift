#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import AffinityKernels

/// Matrix factorisations built on LAPACK.
public enum Decompositions {
    /// Replaces the columns of a row-major `[m, l]` matrix (m ≥ l) by an orthonormal basis of their span
    /// (Householder QR: LAPACK `sgeqrf` + `sorgqr`).
    public static func orthonormalizeColumns(_ y: inout Matrix) throws {
        let m = y.rows, l = y.cols
        precondition(m >= l, "need at least as many rows as columns")
        // LAPACK is column-major: copy into a column-major buffer and back.
        var a = [Float](repeating: 0, count: m * l)
        for r in 0..<m { for c in 0..<l { a[c * m + r] = y[r, c] } }
        var tau = [Float](repeating: 0, count: l)
        var mm = Int32(m), ll = Int32(l), lda = Int32(m), info: Int32 = 0
        var lwork = Int32(max(1, l * 64))
        var work = [Float](repeating: 0, count: Int(lwork))
        sgeqrf_(&mm, &ll, &a, &lda, &tau, &work, &lwork, &info)
        guard info == 0 else { throw LinearAlgebraError.singular }
        sorgqr_(&mm, &ll, &ll, &a, &lda, &tau, &work, &lwork, &info)
        guard info == 0 else { throw LinearAlgebraError.singular }
        for r in 0..<m { for c in 0..<l { y[r, c] = a[c * m + r] } }
    }

    /// Thin SVD of a small dense row-major `[m, n]` matrix: `A = U diag(S) Vᵀ` with `U` `[m, k]`,
    /// `S` descending (k = min(m, n)), `V` `[n, k]` (LAPACK `sgesvd`).
    public static func svd(_ matrix: Matrix) throws -> (u: Matrix, s: [Float], v: Matrix) {
        let m = matrix.rows, n = matrix.cols, k = min(m, n)
        // Column-major copy of A.
        var a = [Float](repeating: 0, count: m * n)
        for r in 0..<m { for c in 0..<n { a[c * m + r] = matrix[r, c] } }
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: m * k)
        var vt = [Float](repeating: 0, count: k * n)
        var jobu = CChar(UInt8(ascii: "S")), jobvt = CChar(UInt8(ascii: "S"))
        var mm = Int32(m), nn = Int32(n), lda = Int32(m), ldu = Int32(m), ldvt = Int32(k), info: Int32 = 0
        var lwork: Int32 = -1, query: Float = 0
        sgesvd_(&jobu, &jobvt, &mm, &nn, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &info)
        lwork = Int32(query)
        var work = [Float](repeating: 0, count: Int(max(1, lwork)))
        sgesvd_(&jobu, &jobvt, &mm, &nn, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &info)
        guard info == 0 else { throw LinearAlgebraError.singular }
        var uOut = Matrix(rows: m, cols: k), vOut = Matrix(rows: n, cols: k)
        for r in 0..<m { for c in 0..<k { uOut[r, c] = u[c * m + r] } }
        for r in 0..<n { for c in 0..<k { vOut[r, c] = vt[r * k + c] } }  // Vᵀ column-major [k, n] → V[r, c] = Vᵀ[c, r]
        return (uOut, s, vOut)
    }

    /// Truncated randomized SVD of a sparse matrix (Halko, Martinsson & Tropp 2011, Alg. 4.4 with power
    /// iterations; what `torch.svd_lowrank` computes): `A ≈ U diag(S) Vᵀ` with `U` `[rows, rank]`,
    /// `V` `[cols, rank]`. Only products with `A` and `Aᵀ` are formed; nothing dense of size rows × cols.
    public static func randomizedSVD(_ a: SparseOperator, rank: Int, oversampling: Int = 10,
                                     powerIterations: Int = 2, seed: UInt64 = 0) throws -> (u: Matrix, s: [Float], v: Matrix) {
        let m = a.matrix.rows, n = a.matrix.cols
        let l = min(rank + oversampling, m, n)
        precondition(rank > 0 && rank <= l, "rank must be in 1...min(rows, cols)")
        var rng = SeededGenerator(seed: seed)
        var omega = Matrix(rows: n, cols: l)
        for i in 0..<omega.storage.count { omega.storage[i] = rng.nextGaussian() }
        var y = a.matrix.multiply(omega)                    // A Ω        [m, l]
        try orthonormalizeColumns(&y)
        for _ in 0..<powerIterations {
            var z = a.transpose.multiply(y)                 // Aᵀ Q       [n, l]
            try orthonormalizeColumns(&z)
            y = a.matrix.multiply(z)                        // A Q'       [m, l]
            try orthonormalizeColumns(&y)
        }
        let bt = a.transpose.multiply(y)                    // Bᵀ = Aᵀ Q  [n, l]
        // Bᵀ = Ṽ Σ Ũᵀ  ⇒  A ≈ Q B = (Q Ũ) Σ Ṽᵀ.
        let (vFull, s, uSmall) = try svd(bt)
        let uFull = BLAS.matmul(y, uSmall)                  // [m, l]
        func firstColumns(_ x: Matrix, _ k: Int) -> Matrix {
            var out = Matrix(rows: x.rows, cols: k)
            for r in 0..<x.rows { for c in 0..<k { out[r, c] = x[r, c] } }
            return out
        }
        return (firstColumns(uFull, rank), Array(s.prefix(rank)), firstColumns(vFull, rank))
    }
}

/// Nearest neighbours by cosine similarity between the rows of a feature matrix.
public enum CosineNeighbours {
    /// For each row, the `k` most cosine-similar other rows (self excluded; ties → lower index) and their
    /// similarities, as `[rows, k]` index and value matrices (-1 / 0 where fewer than k exist). Rows are
    /// compared in blocks (block × rows scores at a time), so memory stays O(block · rows).
    /// - Complexity: O(rows² · features) multiply-adds through BLAS.
    public static func compute(_ features: Matrix, k: Int, block: Int = 256) -> (indices: [Int32], similarities: [Float]) {
        let n = features.rows, f = features.cols
        let kk = min(k, max(n - 1, 0))
        var normalized = features
        for r in 0..<n {
            var s: Float = 0
            for c in 0..<f { s += normalized[r, c] * normalized[r, c] }
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for c in 0..<f { normalized[r, c] *= inv }
        }
        var indices = [Int32](repeating: -1, count: n * k)
        var sims = [Float](repeating: 0, count: n * k)
        let out = UnsafeSendable((indices.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                  sims.withUnsafeMutableBufferPointer { $0.baseAddress! }))
        let blocks = (n + block - 1) / block
        normalized.storage.withUnsafeBufferPointer { x in
            let xp = UnsafeSendable(x.baseAddress!)
            BLAS.singleThreaded {
                Parallel.forEachChunk(0..<blocks) { chunk in
                    var scores = [Float](repeating: 0, count: block * n)
                    for b in chunk {
                        let lo = b * block, hi = min(lo + block, n)
                        scores.withUnsafeMutableBufferPointer { sp in
                            BLAS.sgemm(transA: false, transB: true, m: hi - lo, n: n, k: f, alpha: 1,
                                       a: xp.value + lo * f, lda: f, b: xp.value, ldb: f, beta: 0, c: sp.baseAddress!, ldc: n)
                            for r in lo..<hi {
                                let row = sp.baseAddress! + (r - lo) * n
                                row[r] = -.infinity
                                _ = affinity_topk_row(row, Int32(n), Int32(kk), out.value.0 + r * k, out.value.1 + r * k)
                            }
                        }
                    }
                }
            }
        }
        return (indices, sims)
    }
}

extension SeededGenerator {
    /// Standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextFloat(), 1e-12), u2 = nextFloat()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * Float.pi * u2)
    }
}
