import AffinityKernels

extension Matrix {
    /// ⟨a[aRows[k]], b[bRows[k]]⟩ for every k: scores of (user, item) pairs from two embedding tables, outside any
    /// graph (samplers that consult the model). Each dot is one SIMD kernel call; pairs are split over the workers,
    /// each writing its own outputs, so the result does not depend on the thread count.
    public static func pairDots(_ a: Matrix, rows aRows: [Int32], _ b: Matrix, rows bRows: [Int32]) -> [Float] {
        precondition(aRows.count == bRows.count && a.cols == b.cols, "pairDots: shape mismatch")
        let n = aRows.count, d = a.cols
        var out = [Float](repeating: 0, count: n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                aRows.withUnsafeBufferPointer { ra in
                    bRows.withUnsafeBufferPointer { rb in
                        out.withUnsafeMutableBufferPointer { po in
                            let p = UnsafeSendable((pa.baseAddress!, pb.baseAddress!, ra.baseAddress!, rb.baseAddress!, po.baseAddress!))
                            Parallel.forEachChunk(0..<n, minimumChunk: 4096) { range in
                                let (pa, pb, ra, rb, po) = p.value
                                for k in range {
                                    affinity_row_dots(pa + Int(ra[k]) * d, pb + Int(rb[k]) * d, 1, Int32(d), po + k)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
