import AffinityKernels

// Ops of knowledge-graph recommenders: relational aggregation over an edge list, the dependence measures that
// keep KGIN's intents apart, and KGAT's fused bi-interaction layer.

/// Typed edges (head, relation, tail) over `nodeCount` nodes, sorted by head, with the tail-sorted order of the
/// same edges, so both an aggregation into heads and its gradient into tails run one node per worker.
public struct RelationalEdges: Sendable {
    public let nodeCount: Int
    public let heads: [Int32]
    public let relations: [Int32]
    public let tails: [Int32]
    /// The edges of head h are `headStart[h]..<headStart[h + 1]`.
    public let headStart: [Int]
    /// The edges with tail t are `byTail[tailStart[t]..<tailStart[t + 1]]` (edge positions).
    public let tailStart: [Int]
    public let byTail: [Int32]

    public init(nodeCount: Int, heads: [Int32], relations: [Int32], tails: [Int32]) {
        precondition(heads.count == relations.count && heads.count == tails.count, "RelationalEdges: ragged lists")
        precondition(zip(heads, heads.dropFirst()).allSatisfy { $0 <= $1 }, "RelationalEdges: edges must be sorted by head")
        self.nodeCount = nodeCount
        self.heads = heads
        self.relations = relations
        self.tails = tails
        var start = [Int](repeating: 0, count: nodeCount + 1), tailCount = start
        for h in heads { start[Int(h) + 1] += 1 }
        for t in tails { tailCount[Int(t) + 1] += 1 }
        for n in 0..<nodeCount {
            start[n + 1] += start[n]
            tailCount[n + 1] += tailCount[n]
        }
        headStart = start
        tailStart = tailCount
        var next = tailCount, order = [Int32](repeating: 0, count: tails.count)
        for (p, t) in tails.enumerated() {
            order[next[Int(t)]] = Int32(p)
            next[Int(t)] += 1
        }
        byTail = order
    }

    public var count: Int { heads.count }

    /// Per-edge weights 1/(kept edges of its head) over the edges flagged in `keep` (all when nil), 0 on the others:
    /// the weights that make `relationalAggregation` a mean over each head's (kept) neighbours.
    public func meanWeights(keep: [Bool]? = nil) -> [Float] {
        var weights = [Float](repeating: 0, count: count)
        for h in 0..<nodeCount {
            let range = headStart[h]..<headStart[h + 1]
            let kept = keep.map { k in range.reduce(0) { $0 + (k[$1] ? 1 : 0) } } ?? range.count
            guard kept > 0 else { continue }
            for p in range where keep?[p] ?? true { weights[p] = 1 / Float(kept) }
        }
        return weights
    }
}

extension Tensor {
    /// `[nodeCount, d]`: out_h = Σ_{edges p = (h, r, t)} c_p · (e_t ⊙ w_r), with entity rows `e` (`[nodeCount, d]`)
    /// and relation rows `w` (`[relations, d]`). With `edges.meanWeights()` this is KGIN's relational path-aware
    /// aggregation (Wang et al., WWW 2021, eq. 6–7: the mean over h's neighbours of the neighbour's embedding
    /// gated by the relation's). Weights are constants (node dropout zeroes some).
    /// Gradients, with G = ∂L/∂out: ∂e_t = Σ_{p: tail t} c_p G_{h_p} ⊙ w_{r_p}, ∂w_r = Σ_{p: relation r} c_p G_{h_p} ⊙ e_{t_p};
    /// the second summed over fixed blocks of heads in block order, so it does not depend on the thread count.
    public static func relationalAggregation(_ edges: RelationalEdges, weights: [Float], entities e: Tensor, relations w: Tensor) -> Tensor {
        let n = edges.nodeCount, d = e.cols
        precondition(e.rows == n && w.cols == d && weights.count == edges.count, "relationalAggregation: shape mismatch")
        precondition(edges.relations.allSatisfy { $0 >= 0 && Int($0) < w.rows }, "relationalAggregation: relation out of range")
        var out = Matrix(rows: n, cols: d)
        e.value.storage.withUnsafeBufferPointer { es in
            w.value.storage.withUnsafeBufferPointer { ws in
                out.storage.withUnsafeMutableBufferPointer { os in
                    let p = UnsafeSendable((es.baseAddress!, ws.baseAddress!, os.baseAddress!))
                    Parallel.forEachChunk(0..<n, minimumChunk: 512) { heads in
                        let (e, w, out) = p.value
                        for h in heads {
                            let o = out + h * d
                            for q in edges.headStart[h]..<edges.headStart[h + 1] where weights[q] != 0 {
                                let c = weights[q], et = e + Int(edges.tails[q]) * d, wr = w + Int(edges.relations[q]) * d
                                for k in 0..<d { o[k] += c * et[k] * wr[k] }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(out, inputs: [e, w]) { node in
            let g = node.grad!
            if e.requiresGrad {
                var de = Matrix(rows: n, cols: d)
                g.storage.withUnsafeBufferPointer { gs in
                    w.value.storage.withUnsafeBufferPointer { ws in
                        de.storage.withUnsafeMutableBufferPointer { ds in
                            let p = UnsafeSendable((gs.baseAddress!, ws.baseAddress!, ds.baseAddress!))
                            Parallel.forEachChunk(0..<n, minimumChunk: 512) { tails in
                                let (g, w, de) = p.value
                                for t in tails {
                                    let o = de + t * d
                                    for slot in edges.tailStart[t]..<edges.tailStart[t + 1] {
                                        let q = Int(edges.byTail[slot])
                                        guard weights[q] != 0 else { continue }
                                        let c = weights[q], gh = g + Int(edges.heads[q]) * d, wr = w + Int(edges.relations[q]) * d
                                        for k in 0..<d { o[k] += c * gh[k] * wr[k] }
                                    }
                                }
                            }
                        }
                    }
                }
                e.accumulate(de)
            }
            if w.requiresGrad {
                let r = w.rows, blockHeads = 4096, blocks = (n + blockHeads - 1) / blockHeads
                var partials = [Float](repeating: 0, count: blocks * r * d)
                g.storage.withUnsafeBufferPointer { gs in
                    e.value.storage.withUnsafeBufferPointer { es in
                        partials.withUnsafeMutableBufferPointer { ps in
                            let p = UnsafeSendable((gs.baseAddress!, es.baseAddress!, ps.baseAddress!))
                            Parallel.forEach(0..<blocks) { b in
                                let (g, e, partials) = p.value
                                let dw = partials + b * r * d
                                for h in (b * blockHeads)..<min(n, (b + 1) * blockHeads) {
                                    let gh = g + h * d
                                    for q in edges.headStart[h]..<edges.headStart[h + 1] where weights[q] != 0 {
                                        let c = weights[q], et = e + Int(edges.tails[q]) * d, o = dw + Int(edges.relations[q]) * d
                                        for k in 0..<d { o[k] += c * gh[k] * et[k] }
                                    }
                                }
                            }
                        }
                    }
                }
                var dw = Matrix(rows: r, cols: d)
                for b in 0..<blocks { for k in 0..<(r * d) { dw.storage[k] += partials[b * r * d + k] } }
                w.accumulate(dw)
            }
        }
    }
}

/// How dependent two vectors are, as KGIN's intent independence loss measures it (Wang et al., WWW 2021, eq. 3;
/// the official code's `_cul_cor`).
public enum DependenceMeasure: String, Sendable, CaseIterable {
    /// Distance correlation (Székely et al. 2007), in [0, 1], 0 only for independent samples: the official default.
    case distance
    /// The squared cosine of the two vectors.
    case cosine
}

extension Tensor {
    /// Σ_{i<j} dependence(row i, row j) of `a` (`[rows, n]`): KGIN's independence loss over the intents' relation
    /// weights. Computed in Double (the rows are few and short). Distance correlation as the official code:
    /// a_kl = √((x_k − x_l)² + 1e-8), A its double centring (B likewise for y), dCov²(x, y) = Σ A∘B / n²,
    /// dCov = √(max(dCov², 0) + 1e-8), dCor = dCov(x, y) / √(dCov(x, x) · dCov(y, y) + 1e-8).
    /// Gradient: double centring is an orthogonal projection, so ∂Σ A∘B/∂a = B; then ∂a_kl/∂x_k = (x_k − x_l)/a_kl.
    public static func pairwiseDependence(_ a: Tensor, measure: DependenceMeasure) -> Tensor {
        let rows = a.rows, n = a.cols
        let values = a.value.storage.map(Double.init)
        func row(_ i: Int) -> ArraySlice<Double> { values[(i * n)..<((i + 1) * n)] }
        var total = 0.0
        var gradient = [Double](repeating: 0, count: rows * n)
        for i in 0..<rows {
            for j in (i + 1)..<max(rows, i + 1) {
                let (value, gx, gy) = measure == .distance ? distanceCorrelation(Array(row(i)), Array(row(j)))
                                                           : squaredCosine(Array(row(i)), Array(row(j)))
                total += value
                for k in 0..<n {
                    gradient[i * n + k] += gx[k]
                    gradient[j * n + k] += gy[k]
                }
            }
        }
        return Tensor(Matrix(rows: 1, cols: 1, values: [Float(total)]), inputs: [a]) { node in
            let g = Double(node.grad!.storage[0])
            a.accumulate(Matrix(rows: rows, cols: n, values: gradient.map { Float(g * $0) }))
        }
    }

    /// dCor(x, y) and its gradients with respect to x and y.
    static func distanceCorrelation(_ x: [Double], _ y: [Double]) -> (Double, [Double], [Double]) {
        let n = x.count, nn = Double(n * n)
        func centred(_ v: [Double]) -> (distances: [Double], centred: [Double]) {
            var dist = [Double](repeating: 0, count: n * n)
            for k in 0..<n { for l in 0..<n { dist[k * n + l] = ((v[k] - v[l]) * (v[k] - v[l]) + 1e-8).squareRoot() } }
            var rowMean = [Double](repeating: 0, count: n), colMean = rowMean, mean = 0.0
            for k in 0..<n {
                for l in 0..<n {
                    rowMean[k] += dist[k * n + l] / Double(n)
                    colMean[l] += dist[k * n + l] / Double(n)
                    mean += dist[k * n + l] / nn
                }
            }
            var c = dist
            for k in 0..<n { for l in 0..<n { c[k * n + l] = dist[k * n + l] - rowMean[k] - colMean[l] + mean } }
            return (dist, c)
        }
        let (da, a) = centred(x), (db, b) = centred(y)
        func inner(_ p: [Double], _ q: [Double]) -> Double { zip(p, q).reduce(0) { $0 + $1.0 * $1.1 } / nn }
        let sAB = inner(a, b), sAA = inner(a, a), sBB = inner(b, b)
        let cAB = (max(sAB, 0) + 1e-8).squareRoot(), cAA = (max(sAA, 0) + 1e-8).squareRoot(), cBB = (max(sBB, 0) + 1e-8).squareRoot()
        let denominator = (cAA * cBB + 1e-8).squareRoot()
        let value = cAB / denominator
        // ∂value/∂s for the three sums (0 where max(s, 0) clamps).
        let dAB = sAB > 0 ? 1 / denominator / (2 * cAB) : 0
        let dAA = sAA > 0 ? -cAB * cBB / (2 * denominator * denominator * denominator) / (2 * cAA) : 0
        let dBB = sBB > 0 ? -cAB * cAA / (2 * denominator * denominator * denominator) / (2 * cBB) : 0
        // ∂value/∂(distance matrices): ∂s_AB/∂a = B/n², ∂s_AA/∂a = 2A/n².
        func distanceGradient(_ v: [Double], _ dist: [Double], _ g: (Int) -> Double) -> [Double] {
            var out = [Double](repeating: 0, count: n)
            for k in 0..<n {
                for l in 0..<n where l != k {
                    // a_kl and a_lk both depend on x_k; the matrices are symmetric.
                    out[k] += 2 * g(k * n + l) * (v[k] - v[l]) / dist[k * n + l]
                }
            }
            return out
        }
        let gx = distanceGradient(x, da) { (dAB * b[$0] + dAA * 2 * a[$0]) / nn }
        let gy = distanceGradient(y, db) { (dAB * a[$0] + dBB * 2 * b[$0]) / nn }
        return (value, gx, gy)
    }

    /// (x̂ · ŷ)² with x̂ = x / ‖x‖, and its gradients: 2c (ŷ − c x̂) / ‖x‖ for x, symmetrically for y.
    static func squaredCosine(_ x: [Double], _ y: [Double]) -> (Double, [Double], [Double]) {
        let nx = max(x.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12), ny = max(y.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        let xh = x.map { $0 / nx }, yh = y.map { $0 / ny }
        let c = zip(xh, yh).reduce(0) { $0 + $1.0 * $1.1 }
        let gx = zip(xh, yh).map { 2 * c * ($1 - c * $0) / nx }
        let gy = zip(xh, yh).map { 2 * c * ($0 - c * $1) / ny }
        return (c * c, gx, gy)
    }
}

extension Tensor {
    /// KGAT's bi-interaction aggregator (Wang et al., KDD 2019, eq. 8) with its message dropout, fused:
    ///
    ///     y = dropout(LeakyReLU((x + s)·W1 + b1) + LeakyReLU((x ⊙ s)·W2 + b2))
    ///
    /// `x` is the layer input and `s` its attentive messages (`A·x`), both `[n, d_in]`; `W1`, `W2` are
    /// `[d_in, d_out]`, `b1`, `b2` `[1, d_out]`. The chain of ops makes a pass over the whole node table (and keeps
    /// a table) per op; here one row pass builds `[x + s | x ⊙ s]`, two strided products give both
    /// pre-activations side by side, and one row pass applies biases, activations, sum and mask. Backward: one row
    /// pass for both pre-activation gradients, two strided products each for the weight and the feature gradients,
    /// one row pass back to x and s. The mask is drawn as by `dropout(_:rate:rng:)`, so the chain with the same
    /// generator matches.
    public static func biInteractionLayer(input x: Tensor, side s: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                                          slope: Float, dropout rate: Float, rng: inout SeededGenerator) -> Tensor {
        let n = x.rows, din = x.cols, dout = w1.cols, width = 2 * din, zWidth = 2 * dout
        precondition(n > 0 && din > 0 && dout > 0, "biInteractionLayer: empty input")
        precondition(s.rows == n && s.cols == din && w1.rows == din && w2.rows == din && w2.cols == dout
                     && b1.rows == 1 && b1.cols == dout && b2.rows == 1 && b2.cols == dout, "biInteractionLayer: shape mismatch")
        var features = Matrix(uninitializedRows: n, cols: width)
        var z = Matrix(uninitializedRows: n, cols: zWidth)
        x.value.storage.withUnsafeBufferPointer { xs in
            s.value.storage.withUnsafeBufferPointer { ss in
                features.storage.withUnsafeMutableBufferPointer { fs in
                    let p = UnsafeSendable((xs.baseAddress!, ss.baseAddress!, fs.baseAddress!))
                    Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                        let (x, s, f) = p.value
                        affinity_sum_product_rows(x, s, Int32(din), Int64(rows.lowerBound), Int64(rows.upperBound), f)
                    }
                }
            }
        }
        // z = [(x + s)·W1 | (x ⊙ s)·W2]: each half of the features times its weights, written into its half of z.
        features.storage.withUnsafeBufferPointer { fs in
            z.storage.withUnsafeMutableBufferPointer { zs in
                for (half, w) in [w1, w2].enumerated() {
                    w.value.storage.withUnsafeBufferPointer { ws in
                        BLAS.sgemm(transA: false, transB: false, m: n, n: dout, k: din, alpha: 1, a: fs.baseAddress! + half * din, lda: width,
                                   b: ws.baseAddress!, ldb: dout, beta: 0, c: zs.baseAddress! + half * dout, ldc: zWidth)
                    }
                }
            }
        }
        let mask: Matrix? = rate > 0 ? dropoutMask(rows: n, cols: dout, rate: rate, rng: &rng) : nil
        var y = Matrix(uninitializedRows: n, cols: dout)
        let bias = b1.value.storage + b2.value.storage
        // Adds the biases into z (kept: the activations' inputs) and writes y.
        z.storage.withUnsafeMutableBufferPointer { zs in
            y.storage.withUnsafeMutableBufferPointer { ys in
                withOptionalBuffer(mask) { m in
                    let p = UnsafeSendable((zs.baseAddress!, ys.baseAddress!, m))
                    Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                        let (z, y, mask) = p.value
                        for r in rows {
                            let zr = z + r * zWidth, yr = y + r * dout, mr = mask.map { $0 + r * dout }
                            for c in 0..<zWidth { zr[c] += bias[c] }
                            for c in 0..<dout {
                                let a = zr[c], b = zr[dout + c]
                                let v = (a > 0 ? a : slope * a) + (b > 0 ? b : slope * b)
                                yr[c] = mr.map { v * $0[c] } ?? v
                            }
                        }
                    }
                }
            }
        }
        let preActivations = z, featureTable = features
        return Tensor(y, inputs: [x, s, w1, b1, w2, b2]) { node in
            // ∂z = [g ⊙ mask ⊙ LeakyReLU'(z1) | g ⊙ mask ⊙ LeakyReLU'(z2)].
            var gz = Matrix(uninitializedRows: n, cols: zWidth)
            node.grad!.storage.withUnsafeBufferPointer { gs in
                preActivations.storage.withUnsafeBufferPointer { zs in
                    gz.storage.withUnsafeMutableBufferPointer { out in
                        withOptionalBuffer(mask) { m in
                            let p = UnsafeSendable((gs.baseAddress!, zs.baseAddress!, out.baseAddress!, m))
                            Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                                let (g, z, out, mask) = p.value
                                for r in rows {
                                    let gr = g + r * dout, zr = z + r * zWidth, o = out + r * zWidth, mr = mask.map { $0 + r * dout }
                                    for c in 0..<dout {
                                        let gc = mr.map { gr[c] * $0[c] } ?? gr[c]
                                        o[c] = zr[c] > 0 ? gc : slope * gc
                                        o[dout + c] = zr[dout + c] > 0 ? gc : slope * gc
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let biasGradient = Elementwise.columnSums(gz).storage
            b1.accumulate(Matrix(rows: 1, cols: dout, values: Array(biasGradient[0..<dout])))
            b2.accumulate(Matrix(rows: 1, cols: dout, values: Array(biasGradient[dout...])))
            var gFeatures = Matrix(uninitializedRows: x.requiresGrad || s.requiresGrad ? n : 0, cols: width)
            featureTable.storage.withUnsafeBufferPointer { fs in
                gz.storage.withUnsafeBufferPointer { gzs in
                    for (half, w) in [w1, w2].enumerated() {
                        if w.requiresGrad {
                            // ∂W = (this half of the features)ᵀ · (this half of ∂z).
                            var dw = Matrix(uninitializedRows: din, cols: dout)
                            dw.storage.withUnsafeMutableBufferPointer { dws in
                                BLAS.sgemm(transA: true, transB: false, m: din, n: dout, k: n, alpha: 1, a: fs.baseAddress! + half * din,
                                           lda: width, b: gzs.baseAddress! + half * dout, ldb: zWidth, beta: 0, c: dws.baseAddress!, ldc: dout)
                            }
                            w.accumulate(dw)
                        }
                        if gFeatures.rows > 0 {
                            // ∂(this half of the features) = (this half of ∂z) · Wᵀ.
                            w.value.storage.withUnsafeBufferPointer { ws in
                                gFeatures.storage.withUnsafeMutableBufferPointer { gfs in
                                    BLAS.sgemm(transA: false, transB: true, m: n, n: din, k: dout, alpha: 1, a: gzs.baseAddress! + half * dout,
                                               lda: zWidth, b: ws.baseAddress!, ldb: dout, beta: 0, c: gfs.baseAddress! + half * din, ldc: width)
                                }
                            }
                        }
                    }
                }
            }
            guard gFeatures.rows > 0 else { return }
            // x + s passes its part to both; x ⊙ s passes g ⊙ s to x and g ⊙ x to s.
            var gx = Matrix(uninitializedRows: x.requiresGrad ? n : 0, cols: din)
            var gs = Matrix(uninitializedRows: s.requiresGrad ? n : 0, cols: din)
            gFeatures.storage.withUnsafeBufferPointer { gfs in
                x.value.storage.withUnsafeBufferPointer { xs in
                    s.value.storage.withUnsafeBufferPointer { ss in
                        gx.storage.withUnsafeMutableBufferPointer { gxs in
                            gs.storage.withUnsafeMutableBufferPointer { gss in
                                let p = UnsafeSendable((gfs.baseAddress!, xs.baseAddress!, ss.baseAddress!,
                                                        x.requiresGrad ? gxs.baseAddress : nil, s.requiresGrad ? gss.baseAddress : nil))
                                Parallel.forEachChunk(0..<n, minimumChunk: 1024) { rows in
                                    let (g, x, s, gx, gs) = p.value
                                    affinity_sum_product_grad_rows(g, x, s, Int32(din), Int64(rows.lowerBound), Int64(rows.upperBound), gx, gs)
                                }
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

/// Calls `body` with the matrix's base address, or nil.
private func withOptionalBuffer<T>(_ m: Matrix?, _ body: (UnsafePointer<Float>?) -> T) -> T {
    guard let m else { return body(nil) }
    return m.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
}
