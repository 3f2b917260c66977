import AffinityCore

/// PureSVD (Cremonesi, Koren & Turrin, RecSys 2010): the truncated SVD of the binary user × item matrix,
/// R ≈ U Σ Vᵀ, scoring r̂_u = r_u V Vᵀ. As an embedding model the user embeddings are U Σ (= R V) and the
/// item embeddings V. Computed by randomized SVD (no dense matrix of size users × items), in seconds, so it
/// is also the quickest servable model.
public final class PureSVD: EmbeddingModel {
    public static let name = "puresvd"
    public static let summary = "truncated SVD of the interaction matrix (Cremonesi et al. 2010)"

    public let rank: Int
    public let powerIterations: Int
    public private(set) var userEmbeddings = Matrix(rows: 0, cols: 0)
    public private(set) var itemEmbeddings = Matrix(rows: 0, cols: 0)

    public init(_ h: inout Hyperparameters) throws {
        rank = try h.int("rank", default: 64)
        powerIterations = try h.int("power_iterations", default: 4)
        guard rank > 0 else { throw HyperparameterError.outOfRange("rank", "must be positive") }
        guard powerIterations >= 0 else { throw HyperparameterError.outOfRange("power_iterations", "must not be negative") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        let r = min(rank, data.userCount, data.itemCount)
        let (u, s, v) = try Decompositions.randomizedSVD(SparseOperator(data.userItems), rank: r,
                                                         powerIterations: powerIterations, seed: context.seed)
        var users = u
        for row in 0..<users.rows { for c in 0..<r { users[row, c] *= s[c] } }
        userEmbeddings = users
        itemEmbeddings = v
    }
}
