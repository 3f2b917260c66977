/// Turning raw interactions into the implicit-feedback data a model trains on.
public struct Preprocessing: Sendable, Equatable {
    /// Keep only interactions with rating ≥ this value (nil keeps all, as RecBole does by default).
    public var ratingThreshold: Float?
    /// What to do with repeated (user, item) pairs.
    public var deduplicate: Deduplication
    /// Iterative k-core: drop users with fewer than `userCore` and items with fewer than `itemCore`
    /// interactions, repeatedly, until both hold (0 disables).
    public var userCore: Int
    public var itemCore: Int

    public enum Deduplication: String, Sendable, CaseIterable {
        /// Keep every repeat.
        case none
        /// Keep the earliest occurrence (by timestamp when present, else file order).
        case first
        /// Keep the latest occurrence.
        case last
    }

    public init(ratingThreshold: Float? = nil, deduplicate: Deduplication = .first, userCore: Int = 0, itemCore: Int = 0) {
        self.ratingThreshold = ratingThreshold
        self.deduplicate = deduplicate
        self.userCore = userCore
        self.itemCore = itemCore
    }

    /// Applies threshold, then de-duplication, then k-core filtering.
    public func apply(to dataset: Dataset) throws -> Dataset {
        var data = dataset
        if let threshold = ratingThreshold {
            guard let ratings = data.interactions.ratings else {
                throw DataError(file: data.name, .invalidValue("a rating threshold was given but the data has no rating column"))
            }
            data = data.filtered { ratings[$0] >= threshold }
        }
        if deduplicate != .none {
            data = Self.deduplicated(data, keepLast: deduplicate == .last)
        }
        if userCore > 1 || itemCore > 1 {
            data = Self.kCore(data, userCore: userCore, itemCore: itemCore)
        }
        return data
    }

    static func deduplicated(_ data: Dataset, keepLast: Bool) -> Dataset {
        let inter = data.interactions
        var order = Array(0..<inter.count)
        if let t = inter.timestamps { order.sort { t[$0] < t[$1] || (t[$0] == t[$1] && $0 < $1) } }
        if keepLast { order.reverse() }
        var seen = Set<UInt64>(minimumCapacity: inter.count)
        var keep = [Bool](repeating: false, count: inter.count)
        for p in order {
            let key = UInt64(UInt32(bitPattern: inter.users[p])) << 32 | UInt64(UInt32(bitPattern: inter.items[p]))
            if seen.insert(key).inserted { keep[p] = true }
        }
        if keep.allSatisfy({ $0 }) { return data }
        return data.filtered { keep[$0] }
    }

    /// Iterative k-core filtering; converges because each round only removes interactions.
    static func kCore(_ data: Dataset, userCore: Int, itemCore: Int) -> Dataset {
        let inter = data.interactions
        var alive = [Bool](repeating: true, count: inter.count)
        while true {
            var userDeg = [Int](repeating: 0, count: data.userCount)
            var itemDeg = [Int](repeating: 0, count: data.itemCount)
            for p in 0..<inter.count where alive[p] {
                userDeg[Int(inter.users[p])] += 1
                itemDeg[Int(inter.items[p])] += 1
            }
            var changed = false
            for p in 0..<inter.count where alive[p] {
                if userDeg[Int(inter.users[p])] < userCore || itemDeg[Int(inter.items[p])] < itemCore {
                    alive[p] = false
                    changed = true
                }
            }
            if !changed { break }
        }
        return data.filtered { alive[$0] }
    }
}
