import Foundation
import AffinityCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How interactions are divided into train / validation / test.
public enum SplitStrategy: Sendable, Equatable, CustomStringConvertible {
    /// Per user, shuffle (seeded) then cut by ratios — RecBole's `RS` with `group_by: user`, `order: RO`.
    case userRandomRatio([Double])
    /// Per user, by timestamp: the last interaction is the test item, the one before it the validation item.
    case leaveOneOut
    /// Global cut by timestamp at the given ratios (earliest → train).
    case temporalRatio([Double])
    /// Use the split given with the data (e.g. LightGCN's train.txt / test.txt).
    case predefined
    /// Cold-start items: the items (not the interactions) are shuffled (seeded) and cut by the ratios, and
    /// every interaction goes to its item's part, so validation and test items have no training
    /// interactions at all.
    case coldItems([Double])

    /// Parses `ratio:0.8,0.1,0.1`, `loo`, `temporal:0.8,0.1,0.1` or `fixed`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        func ratios() throws -> [Double] {
            guard parts.count == 2 else { throw SplitError.invalid("'\(text)' needs ratios, e.g. \(parts[0]):0.8,0.1,0.1") }
            let r = parts[1].split(separator: ",").compactMap { Double($0) }
            guard r.count == parts[1].split(separator: ",").count, (2...3).contains(r.count), r.allSatisfy({ $0 >= 0 }),
                  abs(r.reduce(0, +) - 1) < 1e-6 || r.reduce(0, +) > 0 else {
                throw SplitError.invalid("'\(text)': give 2 or 3 non-negative ratios")
            }
            let sum = r.reduce(0, +)
            return r.map { $0 / sum }
        }
        switch parts[0] {
        case "ratio", "random": self = .userRandomRatio(try ratios())
        case "loo", "leave-one-out": self = .leaveOneOut
        case "temporal": self = .temporalRatio(try ratios())
        case "fixed", "predefined": self = .predefined
        case "cold", "cold-items": self = .coldItems(try ratios())
        default: throw SplitError.invalid("unknown split '\(text)' (use ratio:0.8,0.1,0.1, loo, temporal:0.8,0.1,0.1, cold:0.8,0.1,0.1 or fixed)")
        }
    }

    public var description: String {
        func r(_ x: [Double]) -> String { x.map { String(format: "%g", $0) }.joined(separator: ",") }
        switch self {
        case .userRandomRatio(let x): return "ratio:" + r(x)
        case .leaveOneOut: return "loo"
        case .temporalRatio(let x): return "temporal:" + r(x)
        case .predefined: return "fixed"
        case .coldItems(let x): return "cold:" + r(x)
        }
    }
}

public enum SplitError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case .invalid(let s) = self { return s }; return "" }
}

/// A dataset divided into train, validation and test, with the binary user × item matrices each
/// part induces. Validation may be empty (e.g. for a two-way predefined split).
public struct DataSplit: Sendable {
    public let userCount: Int
    public let itemCount: Int
    public let train: Interactions
    public let valid: Interactions
    public let test: Interactions
    /// User → items (CSR) of each part.
    public let trainMatrix: SparseMatrix
    public let validMatrix: SparseMatrix
    public let testMatrix: SparseMatrix

    public init(userCount: Int, itemCount: Int, train: Interactions, valid: Interactions, test: Interactions) {
        self.userCount = userCount
        self.itemCount = itemCount
        self.train = train
        self.valid = valid
        self.test = test
        trainMatrix = train.matrix(users: userCount, items: itemCount)
        validMatrix = valid.matrix(users: userCount, items: itemCount)
        testMatrix = test.matrix(users: userCount, items: itemCount)
    }

    /// Splits `dataset` with `strategy`; `seed` fixes any random choice.
    public static func make(_ dataset: Dataset, strategy: SplitStrategy, seed: UInt64) throws -> DataSplit {
        let inter = dataset.interactions
        var parts = [SplitPart](repeating: .train, count: inter.count)
        switch strategy {
        case .predefined:
            guard let given = dataset.predefinedSplit else {
                throw SplitError.invalid("dataset '\(dataset.name)' has no predefined split; use ratio:0.8,0.1,0.1, loo or temporal")
            }
            parts = given
        case .userRandomRatio(let ratios):
            var rng = SeededGenerator(seed: seed)
            for var positions in inter.positionsByUser(userCount: dataset.userCount) where !positions.isEmpty {
                positions.seededShuffle(using: &rng)
                let counts = recBoleCounts(total: positions.count, ratios: ratios)
                assign(positions, counts: counts, into: &parts)
            }
        case .leaveOneOut:
            let times = inter.timestamps
            for var positions in inter.positionsByUser(userCount: dataset.userCount) where !positions.isEmpty {
                if let t = times { positions.sort { t[$0] < t[$1] || (t[$0] == t[$1] && $0 < $1) } }
                let n = positions.count
                if n >= 2 { parts[positions[n - 1]] = .test }
                if n >= 3 { parts[positions[n - 2]] = .valid }
            }
        case .coldItems(let ratios):
            var rng = SeededGenerator(seed: seed)
            var items = Array(0..<dataset.itemCount)
            items.seededShuffle(using: &rng)
            let counts = recBoleCounts(total: items.count, ratios: ratios)
            var partOfItem = [SplitPart](repeating: .train, count: dataset.itemCount)
            var start = 0
            for (k, c) in counts.enumerated() {
                for i in items[start..<(start + c)] { partOfItem[i] = [.train, .valid, .test][k] }
                start += c
            }
            for p in 0..<inter.count { parts[p] = partOfItem[Int(inter.items[p])] }
        case .temporalRatio(let ratios):
            guard let t = inter.timestamps else {
                throw SplitError.invalid("a temporal split needs timestamps, and '\(dataset.name)' has none")
            }
            let order = (0..<inter.count).sorted { t[$0] < t[$1] || (t[$0] == t[$1] && $0 < $1) }
            assign(order, counts: recBoleCounts(total: order.count, ratios: ratios), into: &parts)
        }
        var trainPos: [Int] = [], validPos: [Int] = [], testPos: [Int] = []
        for p in 0..<inter.count {
            switch parts[p] {
            case .train: trainPos.append(p)
            case .valid: validPos.append(p)
            case .test: testPos.append(p)
            }
        }
        return DataSplit(userCount: dataset.userCount, itemCount: dataset.itemCount,
                         train: inter.subset(trainPos), valid: inter.subset(validPos), test: inter.subset(testPos))
    }

    /// Part sizes for `total` items at `ratios`, by RecBole 1.2.1's rule (`_calcu_split_ids`): every
    /// part but the first gets ⌊ratio·total⌋; the first takes the rest; then, while the first keeps more
    /// than one, a later part whose share is strictly between 0 and 1 gets one moved to it.
    public static func recBoleCounts(total: Int, ratios: [Double]) -> [Int] {
        var counts = ratios.map { Int($0 * Double(total)) }
        counts[0] = total - counts.dropFirst().reduce(0, +)
        for i in 1..<ratios.count {
            if counts[0] <= 1 { break }
            let share = ratios[ratios.count - i] * Double(total)
            if share > 0 && share < 1 {
                counts[ratios.count - i] += 1
                counts[0] -= 1
            }
        }
        return counts
    }

    private static func assign(_ positions: [Int], counts: [Int], into parts: inout [SplitPart]) {
        let kinds: [SplitPart] = counts.count == 2 ? [.train, .test] : [.train, .valid, .test]
        var offset = 0
        for (k, c) in zip(kinds, counts) {
            for p in positions[offset..<(offset + c)] { parts[p] = k }
            offset += c
        }
    }
}

extension DataSplit {
    /// Writes the split as RecBole benchmark files `DIR/NAME/NAME.{train,valid,test}.inter`, so RecBole
    /// (`benchmark_filename: [train, valid, test]`) can be run on exactly this split.
    public func exportRecBole(dataset: Dataset, folder: String) throws {
        let dir = folder + "/" + dataset.name
        _ = mkdir(folder, 0o755)
        _ = mkdir(dir, 0o755)
        for (part, inter) in [("train", train), ("valid", valid), ("test", test)] {
            let path = "\(dir)/\(dataset.name).\(part).inter"
            guard let f = fopen(path, "w") else { throw DataError(file: path, .unreadable("cannot open for writing")) }
            defer { fclose(f) }
            var text = "user_id:token\titem_id:token" + (inter.ratings != nil ? "\trating:float" : "")
                + (inter.timestamps != nil ? "\ttimestamp:float" : "") + "\n"
            for p in 0..<inter.count {
                text += dataset.users.raw(inter.users[p]) + "\t" + dataset.items.raw(inter.items[p])
                if let r = inter.ratings { text += "\t\(r[p])" }
                if let t = inter.timestamps { text += "\t\(Int64(t[p]))" }
                text += "\n"
            }
            fputs(text, f)
        }
    }
}
