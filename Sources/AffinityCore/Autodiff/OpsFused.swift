import AffinityKernels

// Fused ops for layers whose chain of small elementwise ops would otherwise make one pass over the whole node
// table per op (and keep an intermediate tensor for each). Same math as the chain; each has a gradient check
// and an equality test against the chain.

extension Tensor {
    /// One NGCF layer after its message sum, fused (Wang et al., SIGIR 2019, eq. 7 in matrix form, with the
    /// official code's message dropout and row normalisation):
    ///
    ///     y = normalize(dropout(LeakyReLU((x + s)·W1 + b1 + (x ⊙ s)·W2 + b2)))
    ///
    /// `x` is the layer input and `s` its propagated messages (`Â·x`), both `[n, d_in]`; `W1`, `W2` are
    /// `[d_in, d_out]`, `b1`, `b2` are `[1, d_out]`. The two products are one: `[x + s | x ⊙ s] · [W1; W2]`, so
    /// forward and backward each run one product per output (and one packing of its operands), with one row pass
    /// before and after. The dropout mask is drawn as by `dropout(_:rate:rng:)`, so the chain with the same
    /// generator matches.
    public static func ngcfLayer(input x: Tensor, side s: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                                 slope: Float, dropout rate: Float, rng: inout SeededGenerator,
                                 epsilon: Float = 1e-12) -> Tensor {
        let n = x.rows, din = x.cols, dout = w1.cols
        precondition(n > 0 && din > 0 && dout > 0, "ngcfLayer: empty input")
        precondition(s.rows == n && s.cols == din && w1.rows == din && w2.rows == din && w2.cols == dout
                     && b1.rows == 1 && b1.cols == dout && b2.rows == 1 && b2.cols == dout, "ngcfLayer: shape mismatch")
        // features = [x + s | x ⊙ s], [n, 2·d_in]; weights = [W1; W2], [2·d_in, d_out].
        var features = Matrix(uninitializedRows: n, cols: 2 * din)
        withPointers(x.value, s.value) { xp, sp in
            features.storage.withUnsafeMutableBufferPointer { fs in
                let p = UnsafeSendable((xp, sp, fs.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                    let (x, s, features) = p.value
                    affinity_sum_product_rows(x, s, Int32(din), Int64(rows.lowerBound), Int64(rows.upperBound), features)
                }
            }
        }
        let weights = Matrix(rows: 2 * din, cols: dout, values: w1.value.storage + w2.value.storage)
        var z = BLAS.matmul(features, weights)
        let mask: Matrix? = rate > 0 ? dropoutMask(rows: n, cols: dout, rate: rate, rng: &rng) : nil
        var y = Matrix(uninitializedRows: n, cols: dout)
        var norms = [Float](repeating: 0, count: n)
        let bias = zip(b1.value.storage, b2.value.storage).map { $0 + $1 }
        // The row pass adds b1 + b2 to z and keeps it as the activation's input.
        z.storage.withUnsafeMutableBufferPointer { zs in
            y.storage.withUnsafeMutableBufferPointer { ys in
                norms.withUnsafeMutableBufferPointer { ns in
                    bias.withUnsafeBufferPointer { bs in
                        withOptionalPointer(mask) { m in
                            let p = UnsafeSendable((zs.baseAddress!, ys.baseAddress!, ns.baseAddress!, bs.baseAddress!, m))
                            Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                                let (z, y, norms, bias, mask) = p.value
                                affinity_ngcf_forward_rows(z, bias, mask, slope, epsilon, Int32(dout),
                                                           Int64(rows.lowerBound), Int64(rows.upperBound), y, norms)
                            }
                        }
                    }
                }
            }
        }
        let preActivation = z
        return Tensor(y, inputs: [x, s, w1, b1, w2, b2]) { node in
            // ∂L/∂z: through the normalisation, the dropout mask and the LeakyReLU slope.
            var gz = Matrix(uninitializedRows: n, cols: dout)
            withPointers(node.grad!, y) { gp, yp in
                preActivation.storage.withUnsafeBufferPointer { zs in
                    norms.withUnsafeBufferPointer { ns in
                        gz.storage.withUnsafeMutableBufferPointer { out in
                            withOptionalPointer(mask) { m in
                                let p = UnsafeSendable((gp, yp, zs.baseAddress!, m, ns.baseAddress!, out.baseAddress!))
                                Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                                    let (g, y, z, mask, norms, out) = p.value
                                    affinity_ngcf_backward_rows(g, y, z, mask, norms, slope, epsilon, Int32(dout),
                                                                Int64(rows.lowerBound), Int64(rows.upperBound), out)
                                }
                            }
                        }
                    }
                }
            }
            if b1.requiresGrad || b2.requiresGrad {
                let biasGradient = Elementwise.columnSums(gz)
                b1.accumulate(biasGradient)
                b2.accumulate(biasGradient)
            }
            if w1.requiresGrad || w2.requiresGrad {
                let gWeights = BLAS.matmul(features, gz, transA: true)   // [2·d_in, d_out]: ∂W1 on top of ∂W2
                let half = din * dout
                w1.accumulate(Matrix(rows: din, cols: dout, values: Array(gWeights.storage[0..<half])))
                w2.accumulate(Matrix(rows: din, cols: dout, values: Array(gWeights.storage[half...])))
            }
            guard x.requiresGrad || s.requiresGrad else { return }
            // ∂[x + s | x ⊙ s]; then x + s passes its part to both, x ⊙ s passes g ⊙ s to x and g ⊙ x to s.
            let gFeatures = BLAS.matmul(gz, weights, transB: true)
            var gx = Matrix(uninitializedRows: x.requiresGrad ? n : 0, cols: din)
            var gs = Matrix(uninitializedRows: s.requiresGrad ? n : 0, cols: din)
            withPointers(gFeatures, x.value) { gp, xp in
                s.value.storage.withUnsafeBufferPointer { ss in
                    gx.storage.withUnsafeMutableBufferPointer { gxBuffer in
                        gs.storage.withUnsafeMutableBufferPointer { gsBuffer in
                            let p = UnsafeSendable((gp, xp, ss.baseAddress!, x.requiresGrad ? gxBuffer.baseAddress : nil,
                                                    s.requiresGrad ? gsBuffer.baseAddress : nil))
                            Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                                let (g, x, s, gx, gs) = p.value
                                affinity_sum_product_grad_rows(g, x, s, Int32(din), Int64(rows.lowerBound), Int64(rows.upperBound),
                                                               gx, gs)
                            }
                        }
                    }
                }
            }
            if x.requiresGrad { x.accumulate(gx) }
            if s.requiresGrad { s.accumulate(gs) }
        }
    }
}

/// Calls `body` with the base addresses of two non-empty matrices.
private func withPointers<T>(_ a: Matrix, _ b: Matrix, _ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> T) -> T {
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in body(pa.baseAddress!, pb.baseAddress!) }
    }
}

/// Calls `body` with the matrix's base address, or nil.
private func withOptionalPointer<T>(_ m: Matrix?, _ body: (UnsafePointer<Float>?) -> T) -> T {
    guard let m else { return body(nil) }
    return m.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
}
