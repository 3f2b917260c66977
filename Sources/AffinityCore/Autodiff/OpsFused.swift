import AffinityKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
                                 epsilon: Float = 1e-12, chunked: Bool = Tensor.chunkedLayers) -> Tensor {
        let n = x.rows, din = x.cols, dout = w1.cols
        precondition(n > 0 && din > 0 && dout > 0, "ngcfLayer: empty input")
        precondition(s.rows == n && s.cols == din && w1.rows == din && w2.rows == din && w2.cols == dout
                     && b1.rows == 1 && b1.cols == dout && b2.rows == 1 && b2.cols == dout, "ngcfLayer: shape mismatch")
        #if arch(x86_64)
        if chunked && chunkedLayers {
            return chunkedNGCFLayer(input: x, side: s, w1: w1, b1: b1, w2: w2, b2: b2, slope: slope, dropout: rate,
                                    rng: &rng, epsilon: epsilon)
        }
        #endif
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
            // [2·d_in, d_out]: ∂W1 on top of ∂W2.
            let weightGradient = w1.requiresGrad || w2.requiresGrad ? BLAS.matmul(features, gz, transA: true).storage : nil
            accumulateLayerParameters(weightGradient, Elementwise.columnSums(gz), w1: w1, b1: b1, w2: w2, b2: b2)
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

extension Tensor {
    /// Hands an NGCF layer's parameter gradients out: `weights` is ∂[W1; W2] (`[2·d_in, d_out]`, nil when neither
    /// needs it), `bias` is ∂z summed over rows, the gradient of both b1 and b2.
    fileprivate static func accumulateLayerParameters(_ weights: [Float]?, _ bias: Matrix, w1: Tensor, b1: Tensor,
                                                      w2: Tensor, b2: Tensor) {
        b1.accumulate(bias)
        b2.accumulate(bias)
        guard let weights else { return }
        let half = w1.rows * w1.cols
        w1.accumulate(Matrix(rows: w1.rows, cols: w1.cols, values: Array(weights[0..<half])))
        w2.accumulate(Matrix(rows: w2.rows, cols: w2.cols, values: Array(weights[half...])))
    }

    /// Whether `ngcfLayer` sweeps the table in L2-sized chunks of rows with Affinity's direct product kernel
    /// (x86-64 with AVX2 and FMA), unless `AFFINITY_CHUNKED_LAYERS=0`; else it runs table-wide passes and the
    /// system BLAS. Same math; sums run in another order, so results agree to rounding.
    public static let chunkedLayers: Bool = {
        if let env = getenv("AFFINITY_CHUNKED_LAYERS"), String(cString: env) == "0" { return false }
        return affinity_ngcf_layer_direct_available() != 0
    }()

    /// Rows per block of the backward pass's weight and bias gradient partial sums: fixed, so the sums do not
    /// depend on the thread count.
    static let chunkedLayerBlockRows = 4096

    #if arch(x86_64)
    /// `ngcfLayer` in chunks of rows: each chunk's features `[x + s | x ⊙ s]`, their product with the weights, its
    /// dropout mask and the epilogue (and backward, the mask again, ∂z, its share of ∂W and ∂b, and ∂x, ∂s) are done
    /// while the chunk is in cache, so neither the `[n, 2·d_in]` features nor their gradient, the pre-activations or
    /// the mask exist as tables, and no operand is repacked.
    private static func chunkedNGCFLayer(input x: Tensor, side s: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                                         slope: Float, dropout rate: Float, rng: inout SeededGenerator,
                                         epsilon: Float) -> Tensor {
        let n = x.rows, din = x.cols, dout = w1.cols, width = 2 * din
        let weights = w1.value.storage + w2.value.storage   // [W1; W2], [2·d_in, d_out]
        let panels = BLAS.directPanels(weights, ldb: dout, transposed: false, depth: width, columns: dout)
        // The mask is drawn chunk by chunk, forward and again backward, from the seed `dropoutMask` would use.
        let seed: UInt64 = rate > 0 ? rng.next() : 0
        let bias = zip(b1.value.storage, b2.value.storage).map { $0 + $1 }
        var y = Matrix(uninitializedRows: n, cols: dout)
        var norms = [Float](repeating: 0, count: n)
        withPointers(x.value, s.value) { xp, sp in
            y.storage.withUnsafeMutableBufferPointer { ys in
                norms.withUnsafeMutableBufferPointer { ns in
                    let p = UnsafeSendable((xp, sp, panels, bias, ys.baseAddress!, ns.baseAddress!))
                    Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                        let (x, s, panels, bias, y, norms) = p.value
                        affinity_ngcf_layer_forward_rows(x, s, Int32(din), Int32(dout), panels, bias, seed, rate, slope,
                                                         epsilon, Int64(rows.lowerBound), Int64(rows.upperBound), y, norms)
                    }
                }
            }
        }
        return Tensor(y, inputs: [x, s, w1, b1, w2, b2]) { node in
            let wantsWeights = w1.requiresGrad || w2.requiresGrad
            let transposedPanels = BLAS.directPanels(weights, ldb: dout, transposed: true, depth: dout, columns: width)
            let blocks = (n + chunkedLayerBlockRows - 1) / chunkedLayerBlockRows
            var weightPartials = [Float](repeating: 0, count: wantsWeights ? blocks * width * dout : 0)
            var biasPartials = [Float](repeating: 0, count: blocks * dout)
            var gx = Matrix(uninitializedRows: x.requiresGrad ? n : 0, cols: din)
            var gs = Matrix(uninitializedRows: s.requiresGrad ? n : 0, cols: din)
            withPointers(node.grad!, y) { gp, yp in
                withPointers(x.value, s.value) { xp, sp in
                    weightPartials.withUnsafeMutableBufferPointer { wg in
                        biasPartials.withUnsafeMutableBufferPointer { bg in
                            gx.storage.withUnsafeMutableBufferPointer { gxs in
                                gs.storage.withUnsafeMutableBufferPointer { gss in
                                    let p = UnsafeSendable((gp, yp, norms, xp, sp, transposedPanels,
                                                            wantsWeights ? wg.baseAddress : nil, bg.baseAddress!,
                                                            x.requiresGrad ? gxs.baseAddress : nil,
                                                            s.requiresGrad ? gss.baseAddress : nil))
                                    Parallel.forEach(0..<blocks) { b in
                                        let (g, y, norms, x, s, panels, wg, bg, gx, gs) = p.value
                                        let lo = b * chunkedLayerBlockRows, hi = min(n, lo + chunkedLayerBlockRows)
                                        affinity_ngcf_layer_backward_rows(g, y, seed, rate, norms, slope, epsilon, x, s,
                                                                          Int32(din), Int32(dout), panels, Int64(lo), Int64(hi),
                                                                          wg.map { $0 + b * width * dout }, bg + b * dout, gx, gs)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // Block partial sums, added in block order.
            var biasGradient = Matrix(rows: 1, cols: dout)
            for b in 0..<blocks { for c in 0..<dout { biasGradient.storage[c] += biasPartials[b * dout + c] } }
            var weightGradient: [Float]? = nil
            if wantsWeights {
                var total = [Float](repeating: 0, count: width * dout)
                for b in 0..<blocks { for i in 0..<(width * dout) { total[i] += weightPartials[b * width * dout + i] } }
                weightGradient = total
            }
            accumulateLayerParameters(weightGradient, biasGradient, w1: w1, b1: b1, w2: w2, b2: b2)
            if x.requiresGrad { x.accumulate(gx) }
            if s.requiresGrad { s.accumulate(gs) }
        }
    }

    #endif
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
