/// Each user's interactions as an item sequence, oldest first: what sequential recommenders read.
///
/// Order is by timestamp, ties broken by the interactions' order in the data (a stable sort, as RecBole's
/// `order: TO`); without timestamps the data's order is the sequence. Timestamps travel with the items
/// (interval-aware models read them).
public struct UserSequences: Sendable, Equatable {
    /// Per user, item indices oldest first.
    public private(set) var items: [[Int32]]
    /// Per user, the timestamps of `items` (0 when the data has none).
    public private(set) var times: [[Double]]

    public var userCount: Int { items.count }

    public init(items: [[Int32]], times: [[Double]]? = nil) {
        precondition(times.map { $0.count == items.count && zip($0, items).allSatisfy { $0.count == $1.count } } ?? true,
                     "UserSequences: one timestamp per item")
        self.items = items
        self.times = times ?? items.map { [Double](repeating: 0, count: $0.count) }
    }

    /// The sequences of `interactions` for users `0..<userCount`.
    public init(_ interactions: Interactions, userCount: Int) {
        self.init(items: [[Int32]](repeating: [], count: userCount))
        append(interactions)
    }

    /// Adds `interactions` after each user's existing sequence (in their own time order): the validation item
    /// joins the history before the test item is predicted, and served events join after the stored ones.
    public mutating func append(_ interactions: Interactions) {
        let t = interactions.timestamps
        for var positions in interactions.positionsByUser(userCount: userCount) where !positions.isEmpty {
            if let t { positions.sort { t[$0] < t[$1] || (t[$0] == t[$1] && $0 < $1) } }
            let user = Int(interactions.users[positions[0]])
            for p in positions {
                items[user].append(interactions.items[p])
                times[user].append(t?[p] ?? 0)
            }
        }
    }

    /// Adds one event at the end of `user`'s sequence (a served event, newest last); grows the user table.
    public mutating func append(user: Int, item: Int32, time: Double = 0) {
        while items.count <= user { items.append([]); times.append([]) }
        items[user].append(item)
        times[user].append(time)
    }

    /// The training windows of a sequence of `count` items for inputs of `maxLength` positions: ranges of at most
    /// `maxLength + 1` items whose first `count − 1` items are the input and whose last `count − 1` are the next-item
    /// targets. They are cut from the end backwards and every item after the first is a target exactly once, so a
    /// long history is used whole rather than only its last `maxLength` items.
    public static func windows(count: Int, maxLength: Int) -> [Range<Int>] {
        precondition(maxLength > 0)
        var result: [Range<Int>] = []
        var end = count
        while end >= 2 {
            let start = max(0, end - maxLength - 1)
            result.append(start..<end)
            end = start + 1
        }
        return result
    }

    /// The last `maxLength` items of `sequence`, left-padded with `padding` to exactly `maxLength` entries (the
    /// newest item is always at the last position).
    public static func leftPadded(_ sequence: ArraySlice<Int32>, maxLength: Int, padding: Int32 = -1) -> [Int32] {
        let kept = sequence.suffix(maxLength)
        return [Int32](repeating: padding, count: maxLength - kept.count) + kept
    }
}
