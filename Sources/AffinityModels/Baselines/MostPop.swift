import AffinityCore

/// Most popular: every user gets the items with the most training interactions.
/// The floor any learned model must clear (RecBole's `Pop`).
public final class MostPop: Recommender, ColdStartCapable {
    public static let name = "mostpop"
    public static let summary = "items ranked by training interaction count (RecBole's Pop)"

    public private(set) var popularity: [Float] = []
    public var itemCount: Int { popularity.count }

    public init(_ hyperparameters: inout Hyperparameters) throws {}

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        popularity = data.itemUsers.rowStart.indices.dropLast().map { Float(data.itemUsers.count(ofRow: $0)) }
    }

    public func score(users: [Int32], into out: UnsafeMutableBufferPointer<Float>) {
        let n = itemCount
        popularity.withUnsafeBufferPointer { pop in
            for r in 0..<users.count {
                _ = UnsafeMutableBufferPointer(rebasing: out[(r * n)..<((r + 1) * n)]).update(fromContentsOf: pop)
            }
        }
    }
}
