/// Maps raw ids (strings as they appear in the files) to dense indices `0..<count` and back.
/// Indices are assigned in order of first appearance.
public struct IDMap: Sendable, Equatable {
    public private(set) var rawIDs: [String] = []
    private var index: [String: Int32] = [:]

    public init() {}

    public init(rawIDs: [String]) {
        for id in rawIDs { _ = intern(id) }
    }

    public var count: Int { rawIDs.count }

    /// The dense index of `raw`, adding it if new.
    @inline(__always)
    public mutating func intern(_ raw: String) -> Int32 {
        if let i = index[raw] { return i }
        let i = Int32(rawIDs.count)
        rawIDs.append(raw)
        index[raw] = i
        return i
    }

    /// The dense index of `raw`, or nil if unknown.
    public func dense(_ raw: String) -> Int32? { index[raw] }

    /// The raw id of dense index `i`.
    public func raw(_ i: Int32) -> String { rawIDs[Int(i)] }

    /// A map keeping only the ids where `keep[i]` is true, and the old→new index table (-1 for dropped).
    public func compacted(keeping keep: [Bool]) -> (IDMap, [Int32]) {
        var map = IDMap()
        var remap = [Int32](repeating: -1, count: count)
        for i in 0..<count where keep[i] { remap[i] = map.intern(rawIDs[i]) }
        return (map, remap)
    }
}
