#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Thin, non-generic wrappers over the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
/// Everything that multiplies dense matrices goes through here, so another backend has one seam to replace.
public enum BLAS {
    /// `C = alpha · op(A) · op(B) + beta · C` on row-major buffers.
    /// `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`; `lda`, `ldb`, `ldc` are the row strides
    /// of the buffers as stored (before transposition).
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        // Small products run on one thread: BLAS threads gain nothing there, and while they spin-wait
        // (sched_yield) they fight Affinity's own parallel loops for the cores.
        if 2 * m * n * k < smallProductFlops && threads > 1 {
            singleThreaded {
                cblas_sgemm(
                    CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasInt(m), blasInt(n), blasInt(k), alpha, a, blasInt(lda), b, blasInt(ldb), beta, c, blasInt(ldc))
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasInt(m), blasInt(n), blasInt(k), alpha, a, blasInt(lda), b, blasInt(ldb), beta, c, blasInt(ldc))
    }

    /// Below this many floating-point operations a product runs single-threaded.
    public static let smallProductFlops = 1 << 25

    /// Returns `op(A) · op(B)` as a new matrix.
    public static func matmul(_ a: Matrix, _ b: Matrix, transA: Bool = false, transB: Bool = false) -> Matrix {
        let m = transA ? a.cols : a.rows, ka = transA ? a.rows : a.cols
        let kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols
        precondition(ka == kb, "matmul: inner dimensions \(ka) and \(kb) differ")
        var c = Matrix(rows: m, cols: n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: ka, alpha: 1,
                          a: pa.baseAddress!, lda: max(a.cols, 1), b: pb.baseAddress!, ldb: max(b.cols, 1),
                          beta: 0, c: pc.baseAddress!, ldc: max(n, 1))
                }
            }
        }
        return c
    }

    /// Inverts a symmetric positive-definite `n × n` matrix in place (Cholesky: LAPACK `spotrf` + `spotri`),
    /// then mirrors the computed triangle so the whole matrix holds the inverse.
    /// - Throws: `LinearAlgebraError.notPositiveDefinite` when the factorisation fails.
    public static func invertSymmetricPositiveDefinite(_ a: inout Matrix) throws {
        precondition(a.rows == a.cols, "matrix must be square")
        var n = lapackInt(a.rows), lda = n, info = lapackInt(0)
        // Row-major storage is the column-major transpose; the matrix is symmetric, so "U" in column-major
        // terms is the lower triangle of our rows.
        var uplo = CChar(UInt8(ascii: "U"))
        a.storage.withUnsafeMutableBufferPointer { p in
            spotrf_(&uplo, &n, p.baseAddress!, &lda, &info)
        }
        guard info == 0 else { throw LinearAlgebraError.notPositiveDefinite(minor: Int(info)) }
        a.storage.withUnsafeMutableBufferPointer { p in
            spotri_(&uplo, &n, p.baseAddress!, &lda, &info)
        }
        guard info == 0 else { throw LinearAlgebraError.singular }
        let size = a.rows
        a.storage.withUnsafeMutableBufferPointer { p in
            // Column-major upper triangle == row-major lower triangle (row r, col c with c <= r).
            Parallel.forEach(0..<size) { r in
                for c in (r + 1)..<max(r + 1, size) { p[r * size + c] = p[c * size + r] }
            }
        }
    }

    /// The name of the BLAS kernel set in use (for benchmark records).
    public static var coreName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
        #endif
    }

    /// Runs `body` with the BLAS library single-threaded, for callers that parallelise above BLAS
    /// (each worker thread doing its own small products), then restores the previous setting.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        #if canImport(Accelerate)
        return try body()
        #else
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
        #endif
    }

    /// Threads the BLAS library uses.
    public static var threads: Int {
        #if canImport(Accelerate)
        return 0
        #else
        return Int(openblas_get_num_threads())
        #endif
    }
}

public enum LinearAlgebraError: Error, CustomStringConvertible {
    case notPositiveDefinite(minor: Int)
    case singular

    public var description: String {
        switch self {
        case .notPositiveDefinite(let minor): return "matrix is not positive definite (leading minor \(minor))"
        case .singular: return "matrix is singular"
        }
    }
}

#if canImport(Accelerate)
@inline(__always) private func blasInt(_ x: Int) -> Int32 { Int32(x) }
@inline(__always) private func lapackInt(_ x: Int) -> __CLPK_integer { __CLPK_integer(x) }
#else
@inline(__always) private func blasInt(_ x: Int) -> blasint { blasint(x) }
@inline(__always) private func lapackInt(_ x: Int) -> Int32 { Int32(x) }
#endif
