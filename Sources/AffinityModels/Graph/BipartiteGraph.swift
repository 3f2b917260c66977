import AffinityCore

/// What every model on the user–item graph shares: node indexing (users are nodes `0..<users`, items
/// `users..<users + items`), the symmetric-normalised adjacency `D^{-1/2} A D^{-1/2}`, and the layer-0 node
/// table (users then items, one matrix, so propagation never concatenates).
struct BipartiteGraph {
    let userCount: Int
    let itemCount: Int
    let adjacency: SparseOperator

    init(_ data: TrainingData) {
        userCount = data.userCount
        itemCount = data.itemCount
        adjacency = SparseOperator(GraphNormalization.symmetricBipartite(data.userItems), symmetric: true)
    }

    var nodeCount: Int { userCount + itemCount }

    /// Node indices of item indices.
    func nodes(ofItems items: [Int32]) -> [Int32] {
        let offset = Int32(userCount)
        return items.map { $0 + offset }
    }

    /// A `[users + items, d]` parameter: the user table, then the item table, each drawn by `initialize`
    /// in that order (RecBole initialises the two embedding tables separately).
    func nodeTable(dimension: Int, rng: inout SeededGenerator,
                   initialize: (Int, Int, inout SeededGenerator) -> Matrix) -> Tensor {
        let users = initialize(userCount, dimension, &rng)
        let items = initialize(itemCount, dimension, &rng)
        return Tensor(parameter: Matrix(rows: nodeCount, cols: dimension, values: users.storage + items.storage))
    }

    /// A node matrix split into its user rows and its item rows (copied once, where the final embeddings
    /// are computed, so scoring reads them without copying).
    func split(_ nodes: Matrix) -> (users: Matrix, items: Matrix) {
        (rowSlice(nodes, 0..<userCount), rowSlice(nodes, userCount..<nodeCount))
    }
}
