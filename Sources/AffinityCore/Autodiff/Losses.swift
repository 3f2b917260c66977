#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AffinityKernels

/// The losses the model zoo shares. Each has its own finite-difference test.
public enum Loss {
    /// Bayesian personalised ranking (Rendle et al., UAI 2009, eq. 4 without the prior):
    /// −mean_i log σ(pos_i − neg_i). `pos` and `neg` are `[n, 1]` scores.
    public static func bpr(positive: Tensor, negative: Tensor) -> Tensor {
        Tensor.scale(Tensor.mean(Tensor.logSigmoid(positive - negative)), -1)
    }

    /// BPR on the rows of user, positive and negative embeddings `[n, d]`, plus `penalty` ·
    /// `embeddingPenalty([u, i, j])` (skipped when 0): the loss of most BPR-trained embedding models.
    public static func bpr(users u: Tensor, positives i: Tensor, negatives j: Tensor, penalty: Float, squared: Bool) -> Tensor {
        let ranking = bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j))
        guard penalty > 0 else { return ranking }
        return ranking + Tensor.scale(embeddingPenalty([u, i, j], batchSize: u.rows, squared: squared), penalty)
    }

    /// Logits per tile in `infoNCE` by default: 32 MB, one tile per worker at a time.
    public static let infoNCETileFloats = 1 << 23

    /// InfoNCE (van den Oord et al. 2018) with temperature τ, as used by SGL, SimGCL, LightGCL, DCCF and SIGE:
    /// for anchor row i with positive candidate p_i,
    /// −mean_i [ ⟨a_i, c_{p_i}⟩/τ − log Σ_j exp(⟨a_i, c_j⟩/τ) ].
    /// In-batch negatives: `candidates` is the other view of the same batch and `positives = 0..<n`; all
    /// negatives: `candidates` is every node's embedding. Inputs are used as given (normalise them first for
    /// cosine similarity). `weights` (one per row) turn the mean into Σ w_i ℓ_i / Σ w_i: a batch that lists a
    /// node k times can pass it once with weight k, the same loss and gradients for less work.
    ///
    /// Fused and tiled: the `[n, m]` logits are never formed whole. Anchors are cut into fixed pieces, each on
    /// one worker, and each piece into tiles of at most `maxTileFloats` logits; a tile's softmax gives its rows'
    /// losses and, at once, its share of the gradient (the loss is a scalar, so the backward pass only rescales):
    /// ∂/∂logits = w_i (softmax − onehot(p)) / Σw, dA = ∂·C / τ, dC = ∂ᵀ·A / τ. The pieces' parts of dC are summed
    /// in piece order, and the pieces depend only on n, so results do not depend on the thread count.
    public static func infoNCE(anchors: Tensor, candidates: Tensor, positives: [Int32], weights: [Float]? = nil,
                               temperature: Float, maxTileFloats: Int = infoNCETileFloats) -> Tensor {
        let n = anchors.rows, m = candidates.rows, d = anchors.cols
        precondition(positives.count == n && anchors.cols == candidates.cols, "infoNCE: shape mismatch")
        precondition(positives.allSatisfy { $0 >= 0 && Int($0) < m }, "infoNCE: positive out of range")
        precondition(weights.map { $0.count == n && $0.allSatisfy { $0 > 0 } } ?? true, "infoNCE: one positive weight per row")
        guard n > 0 else { return Tensor(Matrix(rows: 1, cols: 1)) }
        let needAnchors = anchors.requiresGrad, needCandidates = candidates.requiresGrad
        // Pieces depend on n alone (determinism); tiles as tall as the budget allows, since each GEMM call
        // re-packs the [m, d] candidates: 70-row tiles spent ~20% of the time packing on Gowalla.
        let pieces = min(8, (n + 15) / 16)
        let tileRows = min(max(16, maxTileFloats / max(m, 1)), (n + pieces - 1) / pieces)
        var rowLoss = [Double](repeating: 0, count: n)
        var dAnchors = Matrix(uninitializedRows: needAnchors ? n : 0, cols: d)
        var partials = [Float](repeating: 0, count: needCandidates ? pieces * m * d : 0)
        // The candidates transposed, [d, m], once: OpenBLAS then packs them for each tile's logits with its
        // faster non-transposed copy.
        var candidatesT = [Float](unsafeUninitializedCapacity: m * d) { _, count in count = m * d }
        candidates.value.storage.withUnsafeBufferPointer { c in
            candidatesT.withUnsafeMutableBufferPointer { ct in
                for j in 0..<m { for k in 0..<d { ct[k * m + j] = c[j * d + k] } }
            }
        }
        candidatesT.withUnsafeBufferPointer { ct in
        anchors.value.storage.withUnsafeBufferPointer { a in
        candidates.value.storage.withUnsafeBufferPointer { c in
        positives.withUnsafeBufferPointer { pos in
        (weights ?? []).withUnsafeBufferPointer { w in
        rowLoss.withUnsafeMutableBufferPointer { loss in
        dAnchors.storage.withUnsafeMutableBufferPointer { da in
        partials.withUnsafeMutableBufferPointer { dc in
            let p = UnsafeSendable((a.baseAddress!, c.baseAddress!, pos.baseAddress!, loss.baseAddress!, da.baseAddress, dc.baseAddress,
                                    weights == nil ? nil : w.baseAddress, ct.baseAddress!))
            BLAS.singleThreaded {
                Parallel.forEach(0..<pieces) { piece in
                    let (a, c, pos, loss, da, dc, w, ct) = p.value
                    // Written in full by the logits GEMM (β = 0) before it is read.
                    var tile = [Float](unsafeUninitializedCapacity: tileRows * m) { _, count in count = tileRows * m }
                    tile.withUnsafeMutableBufferPointer { t in
                        let t = t.baseAddress!
                        var start = n * piece / pieces
                        let end = n * (piece + 1) / pieces
                        while start < end {
                            let b = min(tileRows, end - start)
                            BLAS.sgemm(transA: false, transB: false, m: b, n: m, k: d, alpha: 1, a: a + start * d, lda: d,
                                       b: ct, ldb: m, beta: 0, c: t, ldc: m)
                            // Softmax of logits/τ per row, in place; loss_i = log Σ exp − logit_pos.
                            affinity_softmax_rows(t, Int64(b), Int64(m), 1 / temperature, pos + start, loss + start)
                            for i in 0..<b { t[i * m + Int(pos[start + i])] -= 1 }
                            if let w {
                                for i in 0..<b where w[start + i] != 1 {
                                    let row = t + i * m, weight = w[start + i]
                                    for j in 0..<m { row[j] *= weight }
                                }
                            }
                            if let da {
                                BLAS.sgemm(transA: false, transB: false, m: b, n: d, k: m, alpha: 1, a: t, lda: m,
                                           b: c, ldb: d, beta: 0, c: da + start * d, ldc: d)
                            }
                            if let dc {
                                BLAS.sgemm(transA: true, transB: false, m: m, n: d, k: b, alpha: 1, a: t, lda: m,
                                           b: a + start * d, ldb: d, beta: 1, c: dc + piece * m * d, ldc: d)
                            }
                            start += b
                        }
                    }
                }
            }
        } } } } } } } }
        var dCandidates = Matrix(rows: 0, cols: d)
        if needCandidates {
            dCandidates = Matrix(uninitializedRows: m, cols: d)
            dCandidates.storage.withUnsafeMutableBufferPointer { out in
                partials.withUnsafeBufferPointer { parts in
                    let p = UnsafeSendable((out.baseAddress!, parts.baseAddress!))
                    Parallel.forEachChunk(0..<(m * d), minimumChunk: 1 << 16) { range in
                        let (out, parts) = p.value
                        for k in range {
                            var sum: Float = 0
                            for piece in 0..<pieces { sum += parts[piece * m * d + k] }
                            out[k] = sum
                        }
                    }
                }
            }
        }
        var total = 0.0, weightSum = Double(n)
        if let weights {
            weightSum = weights.reduce(0) { $0 + Double($1) }
            for i in 0..<n { total += rowLoss[i] * Double(weights[i]) }
        } else {
            total = rowLoss.reduce(0, +)
        }
        return Tensor(Matrix(rows: 1, cols: 1, repeating: Float(total / weightSum)), inputs: [anchors, candidates]) { node in
            let scale = node.grad!.storage[0] / (Float(weightSum) * temperature)
            if needAnchors { anchors.accumulate(Elementwise.axpby(scale, dAnchors, 0, nil)) }
            if needCandidates { candidates.accumulate(Elementwise.axpby(scale, dCandidates, 0, nil)) }
        }
    }

    /// 1 − mean_i cos(a_i, b_i): pulls paired rows to the same direction (BM3's alignment loss up to a constant).
    public static func cosineAlignment(_ a: Tensor, _ b: Tensor) -> Tensor {
        let cos = Tensor.rowDot(Tensor.normalizeRows(a), Tensor.normalizeRows(b))
        return Tensor.scale(Tensor.mean(cos), -1) + Tensor(Matrix(rows: 1, cols: 1, repeating: 1))
    }

    /// Mean squared error over all entries.
    public static func mse(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        Tensor.mean(Tensor.square(prediction - target))
    }
}

extension Loss {
    /// BPR for matrix factorisation, fused: −mean_k log σ(⟨u_k, i_k⟩ − ⟨u_k, j_k⟩) with u, i, j rows of the
    /// user and item tables. Equal to `bpr(rowDot(gather(U, users), gather(I, pos)), rowDot(…, gather(I, neg)))`
    /// but without the six intermediate `[n, d]` tensors; the gradient rows go straight into the tables'
    /// (row-sparse or dense) gradients. ∂/∂diff_k = −σ(−diff_k) / n. `denoising` truncates or reweights the pairs
    /// (T-CE, R-CE: see `Denoising`); the plain mean keeps its own arithmetic.
    public static func bprFactorization(userTable: Tensor, itemTable: Tensor,
                                        users: [Int32], positives: [Int32], negatives: [Int32],
                                        denoising: Denoising = .none) -> Tensor {
        let n = users.count, d = userTable.cols
        precondition(positives.count == n && negatives.count == n && itemTable.cols == d, "bprFactorization: shape mismatch")
        var diff = [Float](repeating: 0, count: n)
        let chunk = 256
        userTable.value.storage.withUnsafeBufferPointer { ut in
            itemTable.value.storage.withUnsafeBufferPointer { it in
                diff.withUnsafeMutableBufferPointer { df in
                    let p = UnsafeSendable((ut.baseAddress!, it.baseAddress!, df.baseAddress!))
                    users.withUnsafeBufferPointer { us in positives.withUnsafeBufferPointer { ps in negatives.withUnsafeBufferPointer { ns in
                        let q = UnsafeSendable((us.baseAddress!, ps.baseAddress!, ns.baseAddress!))
                        Parallel.forEach(0..<((n + chunk - 1) / chunk)) { c in
                            let lo = c * chunk, count = min(chunk, n - lo)
                            affinity_bpr_forward(p.value.0, p.value.1, q.value.0 + lo, q.value.1 + lo, q.value.2 + lo,
                                                 Int32(count), Int32(d), p.value.2 + lo)
                        }
                    } } }
                }
            }
        }
        var total: Double = 0
        for x in diff { total -= Double(-softplusValue(-x)) }   // −log σ(x) = softplus(−x)
        let denoised = denoising == .none ? nil : pairwiseObjective(margins: diff, denoising: denoising)
        let value = denoised?.value ?? Float(total / Double(n))
        return Tensor(Matrix(rows: 1, cols: 1, repeating: value), inputs: [userTable, itemTable]) { node in
            let g = node.grad!.storage[0]
            let coef = denoised.map { $0.slopes.map { g * $0 } } ?? diff.map { -g * stableSigmoid(-$0) / Float(n) }
            var du = [Float](repeating: 0, count: n * d), dpos = du, dneg = du
            userTable.value.storage.withUnsafeBufferPointer { ut in
                itemTable.value.storage.withUnsafeBufferPointer { it in
                    du.withUnsafeMutableBufferPointer { a in dpos.withUnsafeMutableBufferPointer { b in dneg.withUnsafeMutableBufferPointer { c2 in
                        let p = UnsafeSendable((ut.baseAddress!, it.baseAddress!, a.baseAddress!, b.baseAddress!, c2.baseAddress!))
                        users.withUnsafeBufferPointer { us in positives.withUnsafeBufferPointer { ps in negatives.withUnsafeBufferPointer { ns in
                            coef.withUnsafeBufferPointer { cf in
                                let q = UnsafeSendable((us.baseAddress!, ps.baseAddress!, ns.baseAddress!, cf.baseAddress!))
                                Parallel.forEach(0..<((n + chunk - 1) / chunk)) { c in
                                    let lo = c * chunk, count = min(chunk, n - lo), off = lo * d
                                    affinity_bpr_backward(p.value.0, p.value.1, q.value.0 + lo, q.value.1 + lo, q.value.2 + lo,
                                                          Int32(count), Int32(d), q.value.3 + lo,
                                                          p.value.2 + off, p.value.3 + off, p.value.4 + off)
                                }
                            }
                        } } }
                    } } }
                }
            }
            userTable.accumulateRows(users, du)
            itemTable.accumulateRows(positives, dpos)
            itemTable.accumulateRows(negatives, dneg)
        }
    }
}

extension Loss {
    /// The embedding penalty of a batch (RecBole's `EmbLoss`): (Σ_E ‖E‖) / batch, or with `squared`,
    /// (Σ_E ½‖E‖²) / batch — LightGCN's eq. 15 and BPR's Gaussian prior. Unweighted: callers scale it.
    public static func embeddingPenalty(_ embeddings: [Tensor], batchSize: Int, squared: Bool) -> Tensor {
        let terms = embeddings.map { squared ? Tensor.sumOfSquares($0) : Tensor.frobeniusNorm($0) }
        var total = terms[0]
        for t in terms.dropFirst() { total = total + t }
        return Tensor.scale(total, (squared ? 0.5 : 1) / Float(batchSize))
    }
}
