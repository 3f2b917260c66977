import AffinityCore
import AffinityEval

/// Models whose score is the inner product of a user and an item embedding. They get scoring (BLAS, in
/// batches) for free; most write only their forward pass and loss.
public protocol EmbeddingModel: Recommender {
    /// Final user embeddings `[users, d]` used for scoring.
    var userEmbeddings: Matrix { get }
    /// Final item embeddings `[items, d]` used for scoring.
    var itemEmbeddings: Matrix { get }
}

extension EmbeddingModel {
    public var itemCount: Int { itemEmbeddings.rows }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        EmbeddingScorer(userEmbeddings: userEmbeddings, itemEmbeddings: itemEmbeddings).score(users: users, into: out)
    }
}

/// Xavier/Glorot normal initialisation of a `[rows, cols]` table (PyTorch's `xavier_normal_` on an
/// embedding weight, as RecBole initialises embeddings): N(0, 2 / (rows + cols)).
public func xavierNormal(rows: Int, cols: Int, rng: inout SeededGenerator) -> Matrix {
    gaussianTable(rows: rows, cols: cols, std: (2 / Float(rows + cols)).squareRoot(), rng: &rng)
}

/// N(0, std²) initialisation of a `[rows, cols]` table (PyTorch's `normal_(std=…)`).
public func gaussianTable(rows: Int, cols: Int, std: Float, rng: inout SeededGenerator) -> Matrix {
    var m = Matrix(rows: rows, cols: cols)
    for i in 0..<m.storage.count { m.storage[i] = rng.nextGaussian() * std }
    return m
}

/// Xavier/Glorot uniform initialisation (PyTorch's `xavier_uniform_` on an embedding weight):
/// U(−a, a) with a = √(6 / (rows + cols)).
public func xavierUniform(rows: Int, cols: Int, rng: inout SeededGenerator) -> Matrix {
    let a = (6 / Float(rows + cols)).squareRoot()
    var m = Matrix(rows: rows, cols: cols)
    for i in 0..<m.storage.count { m.storage[i] = (2 * rng.nextFloat() - 1) * a }
    return m
}

/// Rows `range` of `m` as a new matrix (e.g. the user or item part of a node table).
func rowSlice(_ m: Matrix, _ range: Range<Int>) -> Matrix {
    Matrix(rows: range.count, cols: m.cols, values: Array(m.storage[(range.lowerBound * m.cols)..<(range.upperBound * m.cols)]))
}

