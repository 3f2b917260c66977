import AffinityKernels

/// Top-k selection over rows of scores.
public enum TopK {
    /// The `k` best entries of `scores` (highest first; ties go to the lower index). Entries set to
    /// `-Float.infinity` are excluded, as are NaNs, so fewer than `k` may be returned.
    public static func select(_ scores: UnsafeBufferPointer<Float>, k: Int,
                              index: UnsafeMutablePointer<Int32>, score: UnsafeMutablePointer<Float>) -> Int {
        Int(affinity_topk_row(scores.baseAddress, Int32(scores.count), Int32(k), index, score))
    }

    /// Convenience form returning arrays.
    public static func select(_ scores: [Float], k: Int) -> (indices: [Int32], scores: [Float]) {
        let kk = max(0, min(k, scores.count))
        var idx = [Int32](repeating: 0, count: kk)
        var sc = [Float](repeating: 0, count: kk)
        let n = scores.withUnsafeBufferPointer { s in
            idx.withUnsafeMutableBufferPointer { i in
                sc.withUnsafeMutableBufferPointer { v in select(s, k: kk, index: i.baseAddress!, score: v.baseAddress!) }
            }
        }
        return (Array(idx.prefix(n)), Array(sc.prefix(n)))
    }

    /// Reference implementation: a full stable sort. Kept beside the fast kernel for tests.
    public static func referenceSelect(_ scores: [Float], k: Int) -> [Int32] {
        let candidates = scores.indices.filter { scores[$0] > -Float.infinity }
        let sorted = candidates.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return sorted.prefix(max(0, k)).map(Int32.init)
    }
}
