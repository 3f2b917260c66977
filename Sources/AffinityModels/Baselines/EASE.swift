import AffinityCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// EASE^R: Embarrassingly Shallow Autoencoders (Steck, WWW 2019).
///
/// Closed form (eq. 8 of the paper): P = (XᵀX + λI)⁻¹, B = I − P · diagMat(1 ⊘ diag(P)), i.e.
/// B[i, j] = −P[i, j] / P[j, j] off the diagonal and 0 on it. Scores = X B.
/// Needs a dense items × items Float32 matrix: it refuses, with the required size, when that does not fit.
public final class EASE: Recommender {
    public static let name = "ease"
    public static let summary = "closed-form linear item-item autoencoder, L2 λ (Steck 2019)"

    /// λ, the L2 weight (RecBole default 250).
    public let regularization: Float
    /// Memory EASE may use; 0 = 80% of the memory available now.
    public let memoryLimitBytes: Int

    public private(set) var weights = Matrix(rows: 0, cols: 0)
    private var userItems: SparseMatrix?
    public var itemCount: Int { weights.rows }

    public init(_ hyperparameters: inout Hyperparameters) throws {
        regularization = Float(try hyperparameters.float("reg_weight", default: 250))
        memoryLimitBytes = Int(try hyperparameters.float("max_memory_gb", default: 0) * 1_073_741_824)
        guard regularization > 0 else { throw HyperparameterError.outOfRange("reg_weight", "must be positive") }
    }

    /// Bytes needed for `items` items (one n × n Float32 matrix, inverted in place).
    public static func requiredBytes(items: Int) -> Int { items * items * 4 }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let n = data.itemCount
        let need = Self.requiredBytes(items: n)
        let limit = memoryLimitBytes > 0 ? memoryLimitBytes : Int(Double(Self.availableMemory()) * 0.8)
        guard need <= limit else {
            throw ModelError.tooLarge(
                "EASE needs a dense \(n) × \(n) item matrix (\(Self.gigabytes(need)) GB) but only \(Self.gigabytes(limit)) GB may be used; " +
                "reduce the catalogue (e.g. --set item_core=5) or use itemknn")
        }
        // G = XᵀX + λI, built row by row from the sparse matrices (each chunk owns its rows).
        var g = Matrix(rows: n, cols: n)
        let lambda = regularization
        g.storage.withUnsafeMutableBufferPointer { buf in
            let p = UnsafeSendable(buf.baseAddress!)
            Parallel.forEach(0..<n) { i in
                let row = p.value + i * n
                for u in data.itemUsers.columns(ofRow: i) {
                    for j in data.userItems.columns(ofRow: Int(u)) { row[Int(j)] += 1 }
                }
                row[i] += lambda
            }
        }
        context.log("ease: inverting \(n) × \(n) Gram matrix")
        try BLAS.invertSymmetricPositiveDefinite(&g)
        // B[i, j] = −P[i, j] / P[j, j], B[j, j] = 0.
        g.storage.withUnsafeMutableBufferPointer { buf in
            let p = UnsafeSendable(buf.baseAddress!)
            var inverseDiagonal = [Float](repeating: 0, count: n)
            for j in 0..<n { inverseDiagonal[j] = -1 / p.value[j * n + j] }
            inverseDiagonal.withUnsafeBufferPointer { d in
                let dd = UnsafeSendable(d.baseAddress!)
                Parallel.forEach(0..<n) { i in
                    let row = p.value + i * n
                    for j in 0..<n { row[j] *= dd.value[j] }
                    row[i] = 0
                }
            }
        }
        weights = g
        userItems = data.userItems
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        guard let ui = userItems else { return }
        let n = itemCount
        let dst = UnsafeSendable(out.baseAddress!)
        weights.storage.withUnsafeBufferPointer { w in
            let src = UnsafeSendable(w.baseAddress!)
            Parallel.forEach(0..<users.count) { r in
                let row = dst.value + r * n
                row.initialize(repeating: 0, count: n)
                for j in ui.columns(ofRow: Int(users[r])) { addScaledRow(row, src.value + Int(j) * n, n) }
            }
        }
    }

    static func availableMemory() -> Int {
        #if os(Linux)
        if let f = fopen("/proc/meminfo", "r") {
            defer { fclose(f) }
            var line = [CChar](repeating: 0, count: 256)
            while fgets(&line, 256, f) != nil {
                let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if s.hasPrefix("MemAvailable:") {
                    let kb = s.split(separator: " ").compactMap { Int($0) }.first ?? 0
                    return kb * 1024
                }
            }
        }
        #endif
        return Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func gigabytes(_ bytes: Int) -> String {
        let gb = Double(bytes) / 1_073_741_824
        return String(Double(Int(gb * 100)) / 100)
    }
}
