#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import AffinityKernels
#if canImport(Glibc)
import Glibc
#endif

/// Thin, non-generic wrappers over the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
/// Everything that multiplies dense matrices goes through here, so another backend has one seam to replace.
public enum BLAS {
    /// Which code multiplies: `automatic` picks per shape and CPU; `library` always calls the system BLAS;
    /// `direct` takes Affinity's direct kernel for any product without a transposed `A` when the CPU has it
    /// (`directProducts`), else the library. Benchmarks and tests compare the two paths in one process.
    public enum Path: Sendable { case automatic, library, direct }

    /// `C = alpha · op(A) · op(B) + beta · C` on row-major buffers.
    /// `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`; `lda`, `ldb`, `ldc` are the row strides
    /// of the buffers as stored (before transposition).
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, path: Path = .automatic
    ) {
        guard m > 0, n > 0 else { return }
        let direct = switch path {
        case .automatic: m >= directMinimumRows && n <= directMaximumSide && k <= directMaximumSide
        case .library: false
        case .direct: true
        }
        if direct && directProducts && !transA && k > 0 {
            sgemmDirect(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
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
        // Narrow products (a thin output, e.g. a graph layer's `[nodes, d] · [d, d]` or its weight gradient
        // `[d, nodes] · [nodes, d]`) run on Affinity's workers with BLAS single-threaded: split by output rows, or
        // by the long inner dimension with partial products summed in a fixed order. OpenBLAS's own threads would
        // spin-wait (sched_yield) after each product and fight the elementwise loops around it for the cores.
        if threads > 1 && Parallel.threads > 1 {
            if n <= narrowWidth && m >= 2 * splitBlock {
                sgemmByRows(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                            beta: beta, c: c, ldc: ldc)
                return
            }
            if m <= narrowWidth && n <= narrowWidth && k >= 2 * splitBlock {
                sgemmByDepth(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                             beta: beta, c: c, ldc: ldc)
                return
            }
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasInt(m), blasInt(n), blasInt(k), alpha, a, blasInt(lda), b, blasInt(ldb), beta, c, blasInt(ldc))
    }

    /// `y = A · x` for a row-major `rows × cols` matrix `A` with row stride `lda`, on one thread. For one query
    /// against a table (a served user's scores over the catalogue) this reads `A` once, where `sgemm` with one row
    /// would first pack the whole table into its panel layout.
    public static func sgemv(rows: Int, cols: Int, a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        singleThreaded {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, blasInt(rows), blasInt(cols), 1, a, blasInt(lda), x, 1, 0, y, 1)
        }
    }

    /// Below this many floating-point operations a product runs single-threaded.
    public static let smallProductFlops = 1 << 25
    /// Outputs at most this wide (and, for the depth split, this tall) are split on Affinity's workers.
    static let narrowWidth = 256
    /// Rows of the output (row split) or of the inner dimension (depth split) per piece, at least.
    static let splitBlock = 2048

    /// Whether tall products with a small right operand run on Affinity's direct kernel (`sgemmDirect`): on CPUs
    /// where it was measured faster than OpenBLAS (AVX2 with FMA), unless `AFFINITY_DIRECT_GEMM=0`.
    public static let directProducts: Bool = {
        if let env = getenv("AFFINITY_DIRECT_GEMM"), String(cString: env) == "0" { return false }
        return affinity_gemm_direct_available() != 0
    }()
    /// The direct kernel's shapes: `op(B)` at most this many rows and columns (its 16-column panels stay in L1/L2)…
    static let directMaximumSide = 256
    /// …and at least this many rows of `A` (below that a product is too small for either path to matter).
    static let directMinimumRows = 64

    /// `C = α·A·op(B) + β·C` with `op(B)` packed once into 16-column panels and `A` read in place, rows split
    /// across Affinity's workers. OpenBLAS would copy every block of the tall `A` before multiplying it: for a
    /// `[nodes, 128]·[128, 64]` layer product that copy is a pass over `A` as long as the arithmetic. Each row's
    /// result is the same whatever the split, so it does not depend on the thread count.
    private static func sgemmDirect(
        transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        #if arch(x86_64)
        directPanels(b, ldb: ldb, transposed: transB, depth: k, columns: n).withUnsafeBufferPointer { packed in
            let pointers = UnsafeSendable((a, packed.baseAddress!, c))
            Parallel.forEachChunk(0..<m, minimumChunk: 1024) { rows in
                let (a, panels, c) = pointers.value
                affinity_sgemm_direct_rows(Int64(rows.lowerBound), Int64(rows.upperBound), Int32(n), Int32(k), alpha,
                                           a, Int64(lda), panels, beta, c, Int64(ldc))
            }
        }
        #else
        preconditionFailure("the direct kernel is x86-64 only; directProducts is false elsewhere")
        #endif
    }

    #if arch(x86_64)
    /// `op(B)` (`depth × columns`; B row-major with row stride `ldb`, read transposed when `transposed`) in the
    /// direct kernel's 16-column panels. Packing writes every entry, padding included, so the buffer starts
    /// uninitialised.
    static func directPanels(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, depth: Int, columns: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: (columns + 15) / 16 * 16 * depth) { packed, count in
            affinity_gemm_pack_panels(b, Int64(ldb), transposed ? 1 : 0, Int32(depth), Int32(columns), packed.baseAddress!)
            count = packed.count
        }
    }
    #endif

    /// Row blocks of `C` on separate workers: each block is an independent single-threaded product.
    private static func sgemmByRows(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, block: Int = splitBlock
    ) {
        let pointers = UnsafeSendable((a, b, c))
        singleThreaded {
            Parallel.forEachChunk(0..<m, minimumChunk: block) { rows in
                let (a, b, c) = pointers.value
                // Rows of op(A): rows of A, or columns of A when it is transposed.
                let aRows = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
                cblas_sgemm(
                    CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasInt(rows.count), blasInt(n), blasInt(k), alpha, aRows, blasInt(lda), b, blasInt(ldb),
                    beta, c + rows.lowerBound * ldc, blasInt(ldc))
            }
        }
    }

    /// `C = β·C + α·Σ_p op(A)[:, p] · op(B)[p, :]` over fixed-size pieces p of the inner dimension: the pieces are
    /// the same whatever the thread count and are summed in order, so the result does not depend on it.
    private static func sgemmByDepth(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, block splitBlock: Int = splitBlock
    ) {
        let pieces = (k + splitBlock - 1) / splitBlock
        var partials = [Float](repeating: 0, count: pieces * m * n)
        partials.withUnsafeMutableBufferPointer { buffer in
            let pointers = UnsafeSendable((a, b, buffer.baseAddress!))
            singleThreaded {
                Parallel.forEach(0..<pieces) { p in
                    let (a, b, partial) = pointers.value
                    let lo = p * splitBlock, depth = min(splitBlock, k - lo)
                    // Columns lo… of op(A) and rows lo… of op(B), in their stored layouts.
                    let aPiece = transA ? a + lo * lda : a + lo
                    let bPiece = transB ? b + lo : b + lo * ldb
                    cblas_sgemm(
                        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        blasInt(m), blasInt(n), blasInt(depth), 1, aPiece, blasInt(lda), bPiece, blasInt(ldb),
                        0, partial + p * m * n, blasInt(n))
                }
            }
            let partial = buffer.baseAddress!
            for r in 0..<m {
                for col in 0..<n {
                    var sum: Float = 0
                    for p in 0..<pieces { sum += partial[p * m * n + r * n + col] }
                    let old = beta == 0 ? 0 : beta * c[r * ldc + col]
                    c[r * ldc + col] = old + alpha * sum
                }
            }
        }
    }

    /// `op(A) · op(B)` for the products of a network layer over a mini-batch (`[batch, in] · [in, out]`, its input
    /// gradient `[batch, out] · [in, out]ᵀ` and its weight gradient `[batch, in]ᵀ · [batch, out]`), on Affinity's
    /// workers with BLAS single-threaded: batch rows split in pieces of at least `block` (products of rows), or the
    /// batch dimension cut into fixed pieces of `block` whose partial products are summed in order (the weight
    /// gradient, `transA`). A batch is too short for `matmul`'s splits (they start at 4,096 rows) and OpenBLAS's own
    /// threads spin-wait (`sched_yield`) between such products, taking the cores from the elementwise work around
    /// them. Results do not depend on the thread count.
    public static func batchMatmul(_ a: Matrix, _ b: Matrix, transA: Bool = false, transB: Bool = false, block: Int = 256) -> Matrix {
        let m = transA ? a.cols : a.rows, ka = transA ? a.rows : a.cols
        let kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols
        precondition(ka == kb, "batchMatmul: inner dimensions \(ka) and \(kb) differ")
        guard Parallel.threads > 1, (transA ? ka : m) >= 2 * block, m > 0, n > 0, ka > 0 else { return matmul(a, b, transA: transA, transB: transB) }
        var c = Matrix(uninitializedRows: m, cols: n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    if transA {
                        sgemmByDepth(transA: true, transB: transB, m: m, n: n, k: ka, alpha: 1, a: pa.baseAddress!, lda: a.cols,
                                     b: pb.baseAddress!, ldb: b.cols, beta: 0, c: pc.baseAddress!, ldc: n, block: block)
                    } else {
                        sgemmByRows(transA: false, transB: transB, m: m, n: n, k: ka, alpha: 1, a: pa.baseAddress!, lda: a.cols,
                                    b: pb.baseAddress!, ldb: b.cols, beta: 0, c: pc.baseAddress!, ldc: n, block: block)
                    }
                }
            }
        }
        return c
    }

    /// Returns `op(A) · op(B)` as a new matrix.
    public static func matmul(_ a: Matrix, _ b: Matrix, transA: Bool = false, transB: Bool = false) -> Matrix {
        let m = transA ? a.cols : a.rows, ka = transA ? a.rows : a.cols
        let kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols
        precondition(ka == kb, "matmul: inner dimensions \(ka) and \(kb) differ")
        var c = Matrix(uninitializedRows: m, cols: n)  // beta = 0 writes every entry
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
