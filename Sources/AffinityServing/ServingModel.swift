import AffinityCore
import AffinityData
import AffinityKernels

/// One recommended item with its score.
public struct ScoredItem: Sendable, Equatable {
    public let item: Int32
    public let score: Float
}

/// How a user's embedding is solved from the items they interacted with (fold-in), without retraining.
///
/// The objective is the implicit-feedback ridge regression of iALS (Hu, Koren & Volinsky, ICDM 2008;
/// "fold-in" as in Rendle et al., "Revisiting the performance of iALS", 2022), on the model's own item
/// embeddings Q:
///
///     min_u  Σ_{i ∈ I_u} (1 − uᵀq_i)²  +  α Σ_{j ∈ all items} (uᵀq_j)²  +  λ ‖u − u₀‖²
///     ⇒  (Q_Iᵀ Q_I + α QᵀQ + λ I) u = Q_Iᵀ 1 + λ u₀
///
/// The α term (every item scored towards zero, through the precomputed d × d Gram matrix) keeps the solution
/// from simply pointing at the most popular direction; u₀ is the trained embedding of a known user (zero for
/// a new one), so a few new events move a known user instead of replacing what training learned.
/// Both weights are scale-free: α = `unobservedWeight` / items and λ = `ridge` · mean ‖q‖².
public struct FoldInSettings: Sendable, Equatable {
    public var unobservedWeight: Float
    public var ridge: Float
    public init(unobservedWeight: Float = 1, ridge: Float = 0.1) {
        self.unobservedWeight = unobservedWeight
        self.ridge = ridge
    }
}

/// An immutable, servable snapshot of an embedding model: id maps, embeddings, the Gram matrix for fold-in
/// and unit-norm item rows for similar-item queries. Every method is thread-safe and allocation-light;
/// the service swaps whole snapshots when it retrains.
public final class ServingModel: Sendable {
    public let header: ModelArtifact.Header
    public let users: IDMap
    public let items: IDMap
    public let userEmbeddings: Matrix
    public let itemEmbeddings: Matrix
    public let foldIn: FoldInSettings
    public var dimension: Int { itemEmbeddings.cols }
    public var itemCount: Int { itemEmbeddings.rows }

    /// The item table in transposed panels of 16 items (see `affinity_score_panels`), zero-padded; and the
    /// unit-norm rows the same way (cosine similarity between items).
    private let panels: [Float]
    private let unitPanels: [Float]

    /// Which table a query is scored against.
    public enum Table: Sendable {
        /// Item embeddings: user–item scores.
        case items
        /// Unit-norm item embeddings: cosine similarity to a unit query.
        case unitItems
    }
    private var panelCount: Int { (itemCount + 15) / 16 }
    private let gram: [Float]
    private let meanSquaredNorm: Float

    public init(artifact: ModelArtifact, foldIn: FoldInSettings = FoldInSettings()) {
        header = artifact.header
        users = IDMap(rawIDs: artifact.header.userIDs)
        items = IDMap(rawIDs: artifact.header.itemIDs)
        userEmbeddings = artifact.userEmbeddings
        itemEmbeddings = artifact.itemEmbeddings
        self.foldIn = foldIn
        let d = artifact.itemEmbeddings.cols, n = artifact.itemEmbeddings.rows
        var unit = artifact.itemEmbeddings
        var total: Float = 0
        for r in 0..<n {
            var s: Float = 0
            for c in 0..<d { s += unit.storage[r * d + c] * unit.storage[r * d + c] }
            total += s
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for c in 0..<d { unit.storage[r * d + c] *= inv }
        }
        func paneled(_ table: [Float]) -> [Float] {
            var panels = [Float](repeating: 0, count: ((n + 15) / 16) * 16 * d)
            for i in 0..<n {
                let base = (i / 16) * 16 * d, lane = i % 16
                for c in 0..<d { panels[base + c * 16 + lane] = table[i * d + c] }
            }
            return panels
        }
        panels = paneled(artifact.itemEmbeddings.storage)
        unitPanels = paneled(unit.storage)
        meanSquaredNorm = n > 0 ? total / Float(n) : 1
        gram = BLAS.matmul(artifact.itemEmbeddings, artifact.itemEmbeddings, transA: true).storage
    }

    /// The trained embedding of dense user `u`.
    public func userVector(_ u: Int32) -> [Float] {
        Array(userEmbeddings.storage[(Int(u) * dimension)..<((Int(u) + 1) * dimension)])
    }

    /// Width of a score row as the panel kernel writes it (the catalogue rounded up to 16).
    public var paddedItemCount: Int { panelCount * 16 }

    /// Scores of every item for each of `vectors` (each `dimension` long, concatenated), written row by row
    /// into `out` with row stride `paddedItemCount`.
    public func scores(_ vectors: [Float], users: Int, table: Table = .items, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(vectors.count == users * dimension && out.count >= users * paddedItemCount)
        (table == .items ? panels : unitPanels).withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { x in
                affinity_score_panels(q.baseAddress, Int64(panelCount), Int32(dimension), x.baseAddress, Int32(users),
                                      out.baseAddress, Int64(paddedItemCount))
            }
        }
    }

    /// Scores of every item for `vector` (length `dimension`), written into `out` (length `paddedItemCount`).
    public func scores(_ vector: [Float], into out: UnsafeMutableBufferPointer<Float>) {
        scores(vector, users: 1, into: out)
    }

    /// The `k` best items for `vector`, never any item in `exclude`.
    public func recommend(_ vector: [Float], k: Int, exclude: [Int32] = []) -> [ScoredItem] {
        recommend([(vector, exclude, k)])[0]
    }

    /// Several users' top-k lists in one pass over the item table (how the service ranks concurrent requests).
    public func recommend(_ requests: [(vector: [Float], exclude: [Int32], k: Int)], table: Table = .items) -> [[ScoredItem]] {
        let width = paddedItemCount
        var vectors: [Float] = []
        vectors.reserveCapacity(requests.count * dimension)
        for r in requests { vectors += r.vector }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: requests.count * width) { buffer in
            scores(vectors, users: requests.count, table: table, into: buffer)
            return requests.enumerated().map { (row, r) in
                let scores = UnsafeMutableBufferPointer(rebasing: buffer[(row * width)..<(row * width + itemCount)])
                for i in r.exclude where i >= 0 && Int(i) < itemCount { scores[Int(i)] = -.infinity }
                return Self.top(scores, k: r.k)
            }
        }
    }

    /// The unit-norm embedding of `item`: the query of a similar-items request.
    public func unitVector(_ item: Int32) -> [Float] {
        let row = itemEmbeddings.storage[(Int(item) * dimension)..<((Int(item) + 1) * dimension)]
        let squared = row.reduce(Float(0)) { $0 + $1 * $1 }
        let inverse = squared > 0 ? 1 / squared.squareRoot() : 0  // as the unit panels were built
        return row.map { $0 * inverse }
    }

    /// The `k` items nearest to `item` by cosine similarity of their embeddings (the item itself excluded).
    public func similar(to item: Int32, k: Int) -> [ScoredItem] {
        recommend([(unitVector(item), [item], k)], table: .unitItems)[0]
    }

    /// A user embedding solved from `items` (see `FoldInSettings`), anchored at `prior` when given.
    public func foldIn(items interacted: [Int32], prior: [Float]? = nil) -> [Float] {
        let d = dimension
        let alpha = foldIn.unobservedWeight / Float(max(itemCount, 1))
        let lambda = foldIn.ridge * meanSquaredNorm
        var a = [Float](repeating: 0, count: d * d)
        var b = [Float](repeating: 0, count: d)
        for idx in 0..<(d * d) { a[idx] = alpha * gram[idx] }
        for c in 0..<d { a[c * d + c] += lambda }
        if let prior { for c in 0..<d { b[c] = lambda * prior[c] } }
        itemEmbeddings.storage.withUnsafeBufferPointer { q in
            for item in Set(interacted) where item >= 0 && Int(item) < itemCount {
                let row = q.baseAddress! + Int(item) * d
                for r in 0..<d {
                    b[r] += row[r]
                    for c in 0..<d { a[r * d + c] += row[r] * row[c] }
                }
            }
        }
        return solveSymmetricPositiveDefinite(a, b, n: d)
    }

    // MARK: Helpers

    /// The `k` best entries of `scores` (highest first; `-infinity` entries never).
    public static func top(_ scores: UnsafeMutableBufferPointer<Float>, k: Int) -> [ScoredItem] {
        let kk = max(0, min(k, scores.count))
        var index = [Int32](repeating: 0, count: kk)
        var value = [Float](repeating: 0, count: kk)
        let found = index.withUnsafeMutableBufferPointer { i in
            value.withUnsafeMutableBufferPointer { v in
                TopK.select(UnsafeBufferPointer(scores), k: kk, index: i.baseAddress!, score: v.baseAddress!)
            }
        }
        return (0..<found).map { ScoredItem(item: index[$0], score: value[$0]) }
    }
}

/// Solves A x = b for a small symmetric positive-definite A (row-major n × n) by Cholesky factorisation.
func solveSymmetricPositiveDefinite(_ matrix: [Float], _ rhs: [Float], n: Int) -> [Float] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = Double(matrix[i * n + j])
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            if i == j {
                l[i * n + i] = s > 1e-12 ? s.squareRoot() : 1e-6
            } else {
                l[i * n + j] = s / l[j * n + j]
            }
        }
    }
    var y = [Double](repeating: 0, count: n)
    for i in 0..<n {
        var s = Double(rhs[i])
        for k in 0..<i { s -= l[i * n + k] * y[k] }
        y[i] = s / l[i * n + i]
    }
    var x = [Double](repeating: 0, count: n)
    for i in stride(from: n - 1, through: 0, by: -1) {
        var s = y[i]
        for k in (i + 1)..<n { s -= l[k * n + i] * x[k] }
        x[i] = s / l[i * n + i]
    }
    return x.map { Float($0) }
}
