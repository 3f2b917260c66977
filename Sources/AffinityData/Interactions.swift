import AffinityCore

/// User–item interactions held column by column. Users and items are dense indices.
public struct Interactions: Sendable, Equatable {
    public var users: [Int32] = []
    public var items: [Int32] = []
    /// Explicit value per interaction (rating, play count…), when the data has one.
    public var ratings: [Float]? = nil
    /// Unix time in seconds, when the data has one.
    public var timestamps: [Double]? = nil

    public init() {}

    public init(users: [Int32], items: [Int32], ratings: [Float]? = nil, timestamps: [Double]? = nil) {
        precondition(users.count == items.count)
        self.users = users
        self.items = items
        self.ratings = ratings
        self.timestamps = timestamps
    }

    public var count: Int { users.count }

    /// The interactions at `positions`, in that order.
    public func subset(_ positions: [Int]) -> Interactions {
        Interactions(users: positions.map { users[$0] }, items: positions.map { items[$0] },
                     ratings: ratings.map { r in positions.map { r[$0] } },
                     timestamps: timestamps.map { t in positions.map { t[$0] } })
    }

    /// The binary user × item matrix (CSR, user rows), duplicates collapsed to 1.
    public func matrix(users userCount: Int, items itemCount: Int) -> SparseMatrix {
        let m = SparseMatrix(rows: userCount, cols: itemCount, rowIndices: users, colIndices: items)
        return SparseMatrix(rows: m.rows, cols: m.cols, rowStart: m.rowStart, colIndex: m.colIndex,
                            values: [Float](repeating: 1, count: m.nonZeros))
    }

    /// Positions of each user's interactions, in stored order.
    public func positionsByUser(userCount: Int) -> [[Int]] {
        var groups = [[Int]](repeating: [], count: userCount)
        for p in 0..<count { groups[Int(users[p])].append(p) }
        return groups
    }
}
