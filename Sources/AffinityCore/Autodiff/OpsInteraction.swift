import AffinityKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Building blocks of feature-interaction (click-through) models: weighted bags of embedding rows (one per
// sample and field), the factorisation machine's pairwise term, a fused linear layer, row sums, reshaping and
// the sigmoid cross-entropy on logits. A `[batch, fields, d]` activation is a `[batch · fields, d]` matrix,
// which is the same storage as `[batch, fields · d]`: `reshaped` switches between the two views.

/// Weighted bags of table rows in compressed form: bag b is the entries `offsets[b] ..< offsets[b + 1]` of
/// `rows` (table rows) and `weights`. A categorical field's bag is one row with weight 1, a multi-value
/// field's its k rows with weight 1/k (mean pooling), a numeric field's one row weighted by the value.
public struct EmbeddingBags: Sendable, Equatable {
    public var offsets: [Int32]
    public var rows: [Int32]
    public var weights: [Float]

    public init() { offsets = [0]; rows = []; weights = [] }

    public init(offsets: [Int32], rows: [Int32], weights: [Float]) {
        precondition(offsets.first == 0 && Int(offsets.last!) == rows.count && rows.count == weights.count, "EmbeddingBags: inconsistent")
        self.offsets = offsets; self.rows = rows; self.weights = weights
    }

    public var count: Int { offsets.count - 1 }

    /// Appends one bag.
    public mutating func append(rows newRows: some Collection<Int32>, weights newWeights: some Collection<Float>) {
        rows.append(contentsOf: newRows)
        weights.append(contentsOf: newWeights)
        offsets.append(Int32(rows.count))
    }

    /// Appends bags `range` of `other`.
    public mutating func append(_ other: EmbeddingBags, bags range: Range<Int>) {
        let lo = Int(other.offsets[range.lowerBound]), hi = Int(other.offsets[range.upperBound])
        let shift = Int32(rows.count) - Int32(lo)
        rows.append(contentsOf: other.rows[lo..<hi])
        weights.append(contentsOf: other.weights[lo..<hi])
        for b in range { offsets.append(other.offsets[b + 1] + shift) }
    }

    public mutating func removeAll() {
        offsets.removeAll(keepingCapacity: true); offsets.append(0)
        rows.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
    }
}

extension Tensor {
    /// One row per bag: out_b = Σ_{k ∈ bag b} w_k · table[r_k] (`[bags.count, d]`). Gradient: w_k · g_b
    /// added into table row r_k (row-sparse for tables created with `sparseGradients`). Bags are independent:
    /// workers take contiguous bags, forward and backward.
    public static func embeddingBags(_ table: Tensor, _ bags: EmbeddingBags) -> Tensor {
        let d = table.cols, n = bags.count, tableRows = table.rows
        var out = Matrix(rows: n, cols: d)
        table.value.storage.withUnsafeBufferPointer { t in
        out.storage.withUnsafeMutableBufferPointer { o in
        bags.offsets.withUnsafeBufferPointer { offsets in
        bags.rows.withUnsafeBufferPointer { rows in
        bags.weights.withUnsafeBufferPointer { weights in
            let p = UnsafeSendable((t.baseAddress!, o.baseAddress!, offsets.baseAddress!, rows.baseAddress, weights.baseAddress))
            Parallel.forEachChunk(0..<n, minimumChunk: 2048) { chunk in
                let (t, o, offsets, rows, weights) = p.value
                for b in chunk {
                    let target = o + b * d
                    for k in Int(offsets[b])..<Int(offsets[b + 1]) {
                        let r = Int(rows![k]), w = weights![k]
                        precondition(r >= 0 && r < tableRows, "embeddingBags: row \(r) out of range")
                        let source = t + r * d
                        for c in 0..<d { target[c] += w * source[c] }
                    }
                }
            }
        } } } } }
        return Tensor(out, inputs: [table]) { node in
            guard table.requiresGrad, !bags.rows.isEmpty else { return }
            let g = node.grad!
            var rowGradients = Matrix(uninitializedRows: bags.rows.count, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
            rowGradients.storage.withUnsafeMutableBufferPointer { rg in
            bags.offsets.withUnsafeBufferPointer { offsets in
            bags.weights.withUnsafeBufferPointer { weights in
                let p = UnsafeSendable((gs.baseAddress!, rg.baseAddress!, offsets.baseAddress!, weights.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 2048) { chunk in
                    let (gs, rg, offsets, weights) = p.value
                    for b in chunk {
                        for k in Int(offsets[b])..<Int(offsets[b + 1]) {
                            let w = weights[k]
                            for c in 0..<d { rg[k * d + c] = w * gs[b * d + c] }
                        }
                    }
                }
            } } } }
            table.accumulateRows(bags.rows, of: rowGradients)
        }
    }

    /// The same storage seen as `[rows, cols]` (row-major, so `[b · f, d]` ↔ `[b, f · d]`).
    public static func reshaped(_ a: Tensor, rows: Int, cols: Int) -> Tensor {
        precondition(rows * cols == a.rows * a.cols, "reshaped: \(a.rows)×\(a.cols) has no \(rows)×\(cols) view")
        return Tensor(Matrix(rows: rows, cols: cols, values: a.value.storage), inputs: [a]) { node in
            a.accumulate(Matrix(rows: a.rows, cols: a.cols, values: node.grad!.storage))
        }
    }

    /// Each row's sum, `[n, 1]`. Gradient: g_i broadcast over row i.
    public static func rowSums(_ a: Tensor) -> Tensor {
        let n = a.rows, d = a.cols
        var out = Matrix(uninitializedRows: n, cols: 1)
        a.value.storage.withUnsafeBufferPointer { xs in
            out.storage.withUnsafeMutableBufferPointer { o in
                for r in 0..<n {
                    var s: Float = 0
                    for c in 0..<d { s += xs[r * d + c] }
                    o[r] = s
                }
            }
        }
        return Tensor(out, inputs: [a]) { node in
            var da = Matrix(uninitializedRows: n, cols: d)
            node.grad!.storage.withUnsafeBufferPointer { g in
                da.storage.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<n { for c in 0..<d { dst[r * d + c] = g[r] } }
                }
            }
            a.accumulate(da)
        }
    }

    /// The factorisation machine's pairwise term (Rendle 2010, eq. 1 and lemma 3.1) for each row of `x`, which
    /// holds `fields` embeddings of width d side by side (`[batch, fields · d]`):
    /// Σ_{i<j} ⟨v_i, v_j⟩ = ½ Σ_k [(Σ_i v_ik)² − Σ_i v_ik²], in O(fields · d) per row instead of O(fields² · d).
    /// Output `[batch, 1]`. Gradient: ∂/∂v_ik = g · (Σ_j v_jk − v_ik). Rows are independent (workers take chunks).
    public static func factorizationMachine(_ x: Tensor, fields: Int) -> Tensor {
        precondition(fields > 0 && x.cols % fields == 0, "factorizationMachine: \(x.cols) columns are not \(fields) fields")
        let n = x.rows, d = x.cols / fields, width = x.cols
        var out = Matrix(uninitializedRows: n, cols: 1)
        // Σ_i v_ik per row, kept for the backward pass.
        var sums = [Float](repeating: 0, count: n * d)
        x.value.storage.withUnsafeBufferPointer { xs in
        sums.withUnsafeMutableBufferPointer { ss in
        out.storage.withUnsafeMutableBufferPointer { o in
            let p = UnsafeSendable((xs.baseAddress!, ss.baseAddress!, o.baseAddress!))
            Parallel.forEachChunk(0..<n, minimumChunk: 1024) { chunk in
                let (xs, sums, o) = p.value
                for r in chunk {
                    var squares: Float = 0
                    for f in 0..<fields {
                        for k in 0..<d {
                            let v = xs[r * width + f * d + k]
                            sums[r * d + k] += v
                            squares += v * v
                        }
                    }
                    var squareOfSum: Float = 0
                    for k in 0..<d { squareOfSum += sums[r * d + k] * sums[r * d + k] }
                    o[r] = 0.5 * (squareOfSum - squares)
                }
            }
        } } }
        return Tensor(out, inputs: [x]) { node in
            var dx = Matrix(uninitializedRows: n, cols: width)
            node.grad!.storage.withUnsafeBufferPointer { g in
            x.value.storage.withUnsafeBufferPointer { xs in
            sums.withUnsafeBufferPointer { ss in
            dx.storage.withUnsafeMutableBufferPointer { dxs in
                let p = UnsafeSendable((g.baseAddress!, xs.baseAddress!, ss.baseAddress!, dxs.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 1024) { chunk in
                    let (g, xs, sums, dxs) = p.value
                    for r in chunk {
                        let gr = g[r]
                        for f in 0..<fields {
                            for k in 0..<d {
                                let i = r * width + f * d + k
                                dxs[i] = gr * (sums[r * d + k] - xs[i])
                            }
                        }
                    }
                }
            } } } }
            x.accumulate(dx)
        }
    }

    /// A fully connected layer, x · W + b, with `weight` `[in, out]` and `bias` `[1, out]`, and ReLU applied when
    /// `relu` is set (one op: the bias and the activation are applied in place, the mask read back from the output).
    /// Gradients, with g̃ = g ⊙ 1[y > 0] under ReLU (else g): dx = g̃ · Wᵀ, dW = xᵀ · g̃, db = Σ_rows g̃. The products
    /// are `BLAS.batchMatmul`'s (mini-batch shapes on Affinity's workers).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool = false) -> Tensor {
        precondition(x.cols == weight.rows && (bias.map { $0.rows == 1 && $0.cols == weight.cols } ?? true), "linear: shape mismatch")
        var out = BLAS.batchMatmul(x.value, weight.value)
        let n = out.rows, m = out.cols
        if bias != nil || relu { Self.addBiasAndActivation(&out, bias: bias?.value.storage, relu: relu) }
        return Tensor(out, inputs: bias.map { [x, weight, $0] } ?? [x, weight]) { node in
            var g = node.grad!
            if relu {
                g.storage.withUnsafeMutableBufferPointer { gs in
                    node.value.storage.withUnsafeBufferPointer { ys in
                        let p = UnsafeSendable((gs.baseAddress!, ys.baseAddress!))
                        Parallel.forEachChunk(0..<(n * m), minimumChunk: 1 << 16) { range in
                            let (gs, ys) = p.value
                            affinity_relu_mask(gs, ys, Int64(range.lowerBound), Int64(range.upperBound))
                        }
                    }
                }
            }
            if x.requiresGrad { x.accumulate(BLAS.batchMatmul(g, weight.value, transB: true)) }
            if weight.requiresGrad { weight.accumulate(BLAS.batchMatmul(x.value, g, transA: true)) }
            if let bias, bias.requiresGrad { bias.accumulate(Elementwise.columnSums(g)) }
        }
    }
}

extension Tensor {
    /// m[r, c] += bias[c] (bias nil: nothing), then ReLU if `relu`, in place over row chunks on the workers (a
    /// vectorised C loop: branch-free, about half the entries are clipped). `linear`'s epilogue, and serving paths'.
    public static func addBiasAndActivation(_ m: inout Matrix, bias: [Float]?, relu: Bool) {
        let n = m.rows, cols = m.cols
        precondition(bias.map { $0.count == cols } ?? true, "addBiasAndActivation: one bias per column")
        m.storage.withUnsafeMutableBufferPointer { o in
            (bias ?? []).withUnsafeBufferPointer { b in
                let p = UnsafeSendable((o.baseAddress!, b.isEmpty ? nil : b.baseAddress))
                Parallel.forEachChunk(0..<n, minimumChunk: 512) { rows in
                    let (o, b) = p.value
                    affinity_bias_activation_rows(o, Int64(rows.lowerBound), Int64(rows.upperBound), Int64(cols), b, relu ? 1 : 0)
                }
            }
        }
    }
}

extension Loss {
    /// Binary cross-entropy of σ(logit) against 0/1 labels, from the logits (PyTorch's `BCEWithLogitsLoss`):
    /// mean_i [softplus(z_i) − y_i z_i], computed without overflow. Gradient: (σ(z_i) − y_i) / n.
    public static func sigmoidCrossEntropy(logits: Tensor, labels: [Float]) -> Tensor {
        precondition(logits.cols == 1 && logits.rows == labels.count, "sigmoidCrossEntropy: one logit per label")
        let n = labels.count
        var total = 0.0
        for i in 0..<n {
            let z = logits.value.storage[i]
            total += Double(softplusValue(z) - labels[i] * z)
        }
        return Tensor(Matrix(rows: 1, cols: 1, repeating: Float(total / Double(max(n, 1)))), inputs: [logits]) { node in
            let scale = node.grad!.storage[0] / Float(max(n, 1))
            var dz = Matrix(uninitializedRows: n, cols: 1)
            for i in 0..<n { dz.storage[i] = scale * (stableSigmoid(logits.value.storage[i]) - labels[i]) }
            logits.accumulate(dz)
        }
    }
}

extension Tensor {
    /// Element-wise products of field pairs: for `x` holding `fields` embeddings of width d per row
    /// (`[rows, fields · d]`), block p of the output is v_i ⊙ v_j for `pairs[p]` = (i, j), `[rows, pairs.count · d]`
    /// (the "factorized" interaction of product networks and OptInter). Gradients: dv_i += g_p ⊙ v_j, dv_j += g_p ⊙ v_i.
    public static func pairwiseProducts(_ x: Tensor, fields: Int, pairs: [(Int, Int)]) -> Tensor {
        precondition(fields > 0 && x.cols % fields == 0, "pairwiseProducts: \(x.cols) columns are not \(fields) fields")
        precondition(pairs.allSatisfy { $0.0 >= 0 && $0.0 < fields && $0.1 >= 0 && $0.1 < fields }, "pairwiseProducts: field out of range")
        let n = x.rows, d = x.cols / fields, width = x.cols, outWidth = pairs.count * d
        var out = Matrix(uninitializedRows: n, cols: outWidth)
        x.value.storage.withUnsafeBufferPointer { xs in
            out.storage.withUnsafeMutableBufferPointer { o in
                let p = UnsafeSendable((xs.baseAddress!, o.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 512) { chunk in
                    let (xs, o) = p.value
                    for r in chunk {
                        for (p, (i, j)) in pairs.enumerated() {
                            for k in 0..<d { o[r * outWidth + p * d + k] = xs[r * width + i * d + k] * xs[r * width + j * d + k] }
                        }
                    }
                }
            }
        }
        return Tensor(out, inputs: [x]) { node in
            var dx = Matrix(rows: n, cols: width)
            x.value.storage.withUnsafeBufferPointer { xs in
            node.grad!.storage.withUnsafeBufferPointer { gs in
            dx.storage.withUnsafeMutableBufferPointer { dxs in
                let p = UnsafeSendable((xs.baseAddress!, gs.baseAddress!, dxs.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 512) { chunk in
                    let (xs, gs, dxs) = p.value
                    for r in chunk {
                        for (p, (i, j)) in pairs.enumerated() {
                            for k in 0..<d {
                                let gk = gs[r * outWidth + p * d + k]
                                dxs[r * width + i * d + k] += gk * xs[r * width + j * d + k]
                                dxs[r * width + j * d + k] += gk * xs[r * width + i * d + k]
                            }
                        }
                    }
                }
            } } }
            x.accumulate(dx)
        }
    }

    /// Block p of every row of `x` (`[rows, blocks · d]`) times the scalar s_p of `scales` (`[1, blocks]`): per-block
    /// weights such as OptInter's architecture weights. Gradients: dx = g ⊙ s_p, ds_p = Σ_rows ⟨g_p, x_p⟩.
    public static func scaleBlocks(_ x: Tensor, by scales: Tensor) -> Tensor {
        let blocks = scales.cols
        precondition(scales.rows == 1 && blocks > 0 && x.cols % blocks == 0, "scaleBlocks: \(x.cols) columns are not \(blocks) blocks")
        let n = x.rows, d = x.cols / blocks, width = x.cols
        // y[r, p·d + k] = s_p · x[r, p·d + k], for the forward (x, s) and the input gradient (g, s).
        func scaled(_ source: Matrix) -> Matrix {
            var out = Matrix(uninitializedRows: n, cols: width)
            source.storage.withUnsafeBufferPointer { xs in
            scales.value.storage.withUnsafeBufferPointer { ss in
            out.storage.withUnsafeMutableBufferPointer { o in
                let p = UnsafeSendable((xs.baseAddress!, ss.baseAddress!, o.baseAddress!))
                Parallel.forEachChunk(0..<n, minimumChunk: 512) { chunk in
                    let (xs, ss, o) = p.value
                    for r in chunk { for p in 0..<blocks { for k in 0..<d { o[r * width + p * d + k] = ss[p] * xs[r * width + p * d + k] } } }
                }
            } } }
            return out
        }
        return Tensor(scaled(x.value), inputs: [x, scales]) { node in
            let g = node.grad!
            if x.requiresGrad { x.accumulate(scaled(g)) }
            if scales.requiresGrad {
                // Partial sums over fixed blocks of rows, added in order: the same result for any thread count.
                let rowBlock = 1024, rowBlocks = (n + rowBlock - 1) / rowBlock
                var partials = [Float](repeating: 0, count: rowBlocks * blocks)
                g.storage.withUnsafeBufferPointer { gs in
                x.value.storage.withUnsafeBufferPointer { xs in
                partials.withUnsafeMutableBufferPointer { ps in
                    let p = UnsafeSendable((gs.baseAddress!, xs.baseAddress!, ps.baseAddress!))
                    Parallel.forEach(0..<rowBlocks) { b in
                        let (gs, xs, ps) = p.value
                        for r in (b * rowBlock)..<min(n, (b + 1) * rowBlock) {
                            for p in 0..<blocks {
                                var dot: Float = 0
                                for k in 0..<d { dot += gs[r * width + p * d + k] * xs[r * width + p * d + k] }
                                ps[b * blocks + p] += dot
                            }
                        }
                    }
                } } }
                var ds = Matrix(rows: 1, cols: blocks)
                for b in 0..<rowBlocks { for p in 0..<blocks { ds.storage[p] += partials[b * blocks + p] } }
                scales.accumulate(ds)
            }
        }
    }
}
