import AffinityKernels

/// Elementwise loops over whole matrices: contiguous pointer loops (vectorisable), split across threads
/// above `parallelThreshold` elements. The building blocks of the autodiff's elementwise ops.
enum Elementwise {
    static let parallelThreshold = 1 << 16

    /// out[i] = f(a[i]) — `f` is inlined into each call site's specialisation.
    @inline(__always)
    static func map(_ a: Matrix, _ f: @escaping (Float) -> Float) -> Matrix {
        var out = Matrix(uninitializedRows: a.rows, cols: a.cols)
        a.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                let p = UnsafeSendable((src.baseAddress!, dst.baseAddress!))
                run(src.count) { range in
                    let (s, d) = p.value
                    for i in range { d[i] = f(s[i]) }
                }
            }
        }
        return out
    }

    /// out[i] = f(a[i], b[i], c[i]).
    @inline(__always)
    static func zip3(_ a: Matrix, _ b: Matrix, _ c: Matrix, _ f: @escaping (Float, Float, Float) -> Float) -> Matrix {
        var out = Matrix(uninitializedRows: a.rows, cols: a.cols)
        a.storage.withUnsafeBufferPointer { sa in
            b.storage.withUnsafeBufferPointer { sb in
                c.storage.withUnsafeBufferPointer { sc in
                    out.storage.withUnsafeMutableBufferPointer { dst in
                        let p = UnsafeSendable((sa.baseAddress!, sb.baseAddress!, sc.baseAddress!, dst.baseAddress!))
                        run(dst.count) { range in
                            let (x, y, z, d) = p.value
                            for i in range { d[i] = f(x[i], y[i], z[i]) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// a·x + b·y (or a·x when `y` is nil), by the C kernel.
    static func axpby(_ a: Float, _ x: Matrix, _ b: Float, _ y: Matrix?) -> Matrix {
        if let y { precondition(x.rows == y.rows && x.cols == y.cols, "elementwise: shapes \(x.rows)×\(x.cols) and \(y.rows)×\(y.cols) differ") }
        var out = Matrix(uninitializedRows: x.rows, cols: x.cols)
        x.storage.withUnsafeBufferPointer { sx in
            out.storage.withUnsafeMutableBufferPointer { dst in
                func go(_ sy: UnsafePointer<Float>?) {
                    let p = UnsafeSendable((sx.baseAddress!, sy, dst.baseAddress!))
                    run(dst.count) { r in
                        affinity_axpby(Int64(r.count), a, p.value.0 + r.lowerBound, b, p.value.1.map { $0 + r.lowerBound }, p.value.2 + r.lowerBound)
                    }
                }
                if let y { y.storage.withUnsafeBufferPointer { go($0.baseAddress!) } } else { go(nil) }
            }
        }
        return out
    }

    /// x ⊙ y, by the C kernel.
    static func multiply(_ x: Matrix, _ y: Matrix) -> Matrix {
        precondition(x.rows == y.rows && x.cols == y.cols, "elementwise: shapes \(x.rows)×\(x.cols) and \(y.rows)×\(y.cols) differ")
        var out = Matrix(uninitializedRows: x.rows, cols: x.cols)
        x.storage.withUnsafeBufferPointer { sx in
            y.storage.withUnsafeBufferPointer { sy in
                out.storage.withUnsafeMutableBufferPointer { dst in
                    let p = UnsafeSendable((sx.baseAddress!, sy.baseAddress!, dst.baseAddress!))
                    run(dst.count) { r in
                        affinity_mul(Int64(r.count), p.value.0 + r.lowerBound, p.value.1 + r.lowerBound, p.value.2 + r.lowerBound)
                    }
                }
            }
        }
        return out
    }

    /// `[1, d]`: the sum of `m`'s rows (a bias gradient), by fixed blocks of rows added in order, so the result is
    /// the same whatever the thread count.
    static func columnSums(_ m: Matrix) -> Matrix {
        let block = 4096, blocks = (m.rows + block - 1) / block, d = m.cols
        guard blocks > 0, d > 0 else { return Matrix(rows: 1, cols: d) }
        var partials = [Float](repeating: 0, count: blocks * d)
        m.storage.withUnsafeBufferPointer { source in
            partials.withUnsafeMutableBufferPointer { out in
                let p = UnsafeSendable((source.baseAddress!, out.baseAddress!))
                Parallel.forEach(0..<blocks) { b in
                    for r in (b * block)..<min(m.rows, (b + 1) * block) {
                        affinity_axpy(Int32(d), 1, p.value.0 + r * d, p.value.1 + b * d)
                    }
                }
            }
        }
        var sums = Matrix(rows: 1, cols: d)
        for b in 0..<blocks { for c in 0..<d { sums.storage[c] += partials[b * d + c] } }
        return sums
    }

    /// a[i] += b[i], in place.
    static func addInPlace(_ a: inout Matrix, _ b: Matrix) {
        precondition(a.rows == b.rows && a.cols == b.cols, "gradient shape mismatch")
        a.storage.withUnsafeMutableBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                let p = UnsafeSendable((pa.baseAddress!, pb.baseAddress!))
                run(pa.count) { r in
                    affinity_axpby(Int64(r.count), 1, p.value.0 + r.lowerBound, 1, p.value.1 + r.lowerBound, p.value.0 + r.lowerBound)
                }
            }
        }
    }

    @inline(__always)
    static func run(_ count: Int, _ body: (Range<Int>) -> Void) {
        if count < parallelThreshold { body(0..<count) } else { Parallel.forEachChunk(0..<count, minimumChunk: parallelThreshold / 4, body) }
    }
}
