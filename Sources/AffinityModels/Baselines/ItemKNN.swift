import AffinityCore

/// Item-based k-nearest-neighbours on the binary interaction matrix (Sarwar et al., WWW 2001;
/// Aiolli, RecSys 2013), with RecBole 1.2.1's definitions:
///
/// sim(i, j) = |U_i ∩ U_j| / (‖x_i‖‖x_j‖ + shrink + 1e-6), self-similarity 0; for every item i only
/// its `k` most similar items j keep a weight W[j, i]; the score of item i for user u is Σ_{j ∈ u} W[j, i].
public final class ItemKNN: Recommender {
    public static let name = "itemknn"
    public static let summary = "item-item cosine kNN with shrinkage (RecBole's ItemKNN)"

    /// Neighbours kept per item (RecBole default 100).
    public let neighbours: Int
    /// Shrinkage added to the cosine denominator (RecBole default 0).
    public let shrink: Float

    /// W in row form: `weights` row j lists (i, W[j, i]) — the items whose neighbourhood contains j.
    public private(set) var weights: SparseMatrix?
    private var userItems: SparseMatrix?
    public var itemCount: Int { weights?.cols ?? 0 }

    public init(_ hyperparameters: inout Hyperparameters) throws {
        neighbours = try hyperparameters.int("k", default: 100)
        shrink = Float(try hyperparameters.float("shrink", default: 0))
        guard neighbours > 0 else { throw HyperparameterError.outOfRange("k", "must be positive") }
        guard shrink >= 0 else { throw HyperparameterError.outOfRange("shrink", "must be non-negative") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let n = data.itemCount
        let k = min(neighbours, n)
        let norms = (0..<n).map { Float(data.itemUsers.count(ofRow: $0)).squareRoot() }
        // Neighbour lists per item i (its column of W), filled in parallel: each chunk owns its items.
        var neighbourItems = [[Int32]](repeating: [], count: n)
        var neighbourWeights = [[Float]](repeating: [], count: n)
        let progress = context.progress("itemknn similarities", total: n)
        let out = UnsafeSendable((neighbourItems.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                  neighbourWeights.withUnsafeMutableBufferPointer { $0.baseAddress! }))
        let shrink = self.shrink
        Parallel.forEachChunk(0..<n) { chunk in
            var overlap = [Float](repeating: 0, count: n)
            var touched: [Int32] = []
            var sims = [Float](repeating: -.infinity, count: n)
            var topIndex = [Int32](repeating: 0, count: k)
            var topScore = [Float](repeating: 0, count: k)
            for i in chunk {
                touched.removeAll(keepingCapacity: true)
                for u in data.itemUsers.columns(ofRow: i) {
                    for j in data.userItems.columns(ofRow: Int(u)) {
                        if overlap[Int(j)] == 0 { touched.append(j) }
                        overlap[Int(j)] += 1
                    }
                }
                overlap[i] = 0  // RecBole zeroes self-similarity
                for j in touched {
                    let s = overlap[Int(j)] / (norms[i] * norms[Int(j)] + shrink + 1e-6)
                    if s != 0 { sims[Int(j)] = s }
                }
                let found = sims.withUnsafeBufferPointer { s in
                    TopK.select(s, k: k, index: topIndex.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                score: topScore.withUnsafeMutableBufferPointer { $0.baseAddress! })
                }
                out.value.0[i] = Array(topIndex[0..<found])
                out.value.1[i] = Array(topScore[0..<found])
                for j in touched { overlap[Int(j)] = 0; sims[Int(j)] = -.infinity }
                sims[i] = -.infinity
            }
            progress.update(chunk.upperBound)
        }
        // Row form of W: entry (j, i) for each neighbour j of i.
        var rows: [Int32] = [], cols: [Int32] = [], vals: [Float] = []
        for i in 0..<n {
            for (j, w) in zip(neighbourItems[i], neighbourWeights[i]) {
                rows.append(j); cols.append(Int32(i)); vals.append(w)
            }
        }
        weights = SparseMatrix(rows: n, cols: n, rowIndices: rows, colIndices: cols, values: vals)
        userItems = data.userItems
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        guard let w = weights, let ui = userItems else { return }
        let n = w.cols
        let dst = UnsafeSendable(out.baseAddress!)
        Parallel.forEach(0..<users.count) { r in
            let row = dst.value + r * n
            row.initialize(repeating: 0, count: n)
            for j in ui.columns(ofRow: Int(users[r])) {
                let jj = Int(j)
                for p in w.rowStart[jj]..<w.rowStart[jj + 1] { row[Int(w.colIndex[p])] += w.values[p] }
            }
        }
    }
}
