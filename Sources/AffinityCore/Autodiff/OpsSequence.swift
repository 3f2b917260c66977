import Foundation

// Building blocks of sequential and transformer models: layer normalisation, GELU, the GRU cell, and the
// softmax cross-entropy over a whole item table. Sequences are stored flat: a `[batch, length, d]` activation is
// a `[batch · length, d]` matrix, position t of sequence b in row b · length + t.

extension Tensor {
    /// Layer normalisation of every row (Ba, Kiros & Hinton 2016): y = γ ⊙ (x − μ) / √(σ² + ε) + β, with μ and σ²
    /// the row's mean and (biased) variance; `gain` γ and `bias` β are `[1, d]`.
    /// Backward, with x̂ = (x − μ)·s, s = 1/√(σ² + ε) and g' = g ⊙ γ:
    /// dx = s/d · (d·g' − Σ g' − x̂ · Σ g' ⊙ x̂), dγ = Σ_rows g ⊙ x̂, dβ = Σ_rows g.
    public static func layerNorm(_ x: Tensor, gain: Tensor, bias: Tensor, epsilon: Float = 1e-12) -> Tensor {
        let n = x.rows, d = x.cols
        precondition(gain.rows == 1 && gain.cols == d && bias.rows == 1 && bias.cols == d, "layerNorm: gain and bias must be [1, \(d)]")
        var normalized = Matrix(uninitializedRows: n, cols: d)
        var inverseDeviation = [Float](repeating: 0, count: n)
        var out = Matrix(uninitializedRows: n, cols: d)
        let gamma = gain.value.storage, beta = bias.value.storage
        x.value.storage.withUnsafeBufferPointer { xs in
            normalized.storage.withUnsafeMutableBufferPointer { xh in
                out.storage.withUnsafeMutableBufferPointer { o in
                    for r in 0..<n {
                        let row = r * d
                        var mean: Float = 0
                        for c in 0..<d { mean += xs[row + c] }
                        mean /= Float(d)
                        var variance: Float = 0
                        for c in 0..<d { let t = xs[row + c] - mean; variance += t * t }
                        let s = 1 / (variance / Float(d) + epsilon).squareRoot()
                        inverseDeviation[r] = s
                        for c in 0..<d {
                            let h = (xs[row + c] - mean) * s
                            xh[row + c] = h
                            o[row + c] = gamma[c] * h + beta[c]
                        }
                    }
                }
            }
        }
        return Tensor(out, inputs: [x, gain, bias]) { node in
            let g = node.grad!
            if gain.requiresGrad { gain.accumulate(Elementwise.columnSums(Elementwise.multiply(g, normalized))) }
            if bias.requiresGrad { bias.accumulate(Elementwise.columnSums(g)) }
            guard x.requiresGrad else { return }
            var dx = Matrix(uninitializedRows: n, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
                normalized.storage.withUnsafeBufferPointer { xh in
                    dx.storage.withUnsafeMutableBufferPointer { out in
                        for r in 0..<n {
                            let row = r * d
                            var sum: Float = 0, dot: Float = 0
                            for c in 0..<d {
                                let gp = gs[row + c] * gamma[c]
                                sum += gp
                                dot += gp * xh[row + c]
                            }
                            let s = inverseDeviation[r] / Float(d)
                            for c in 0..<d {
                                let gp = gs[row + c] * gamma[c]
                                out[row + c] = s * (Float(d) * gp - sum - xh[row + c] * dot)
                            }
                        }
                    }
                }
            }
            x.accumulate(dx)
        }
    }

    /// GELU, the exact form x · Φ(x) = ½ x (1 + erf(x/√2)) (Hendrycks & Gimpel 2016; BERT4Rec's and RecBole's
    /// SASRec's activation). d/dx = Φ(x) + x φ(x).
    public static func gelu(_ a: Tensor) -> Tensor {
        let invSqrt2: Float = 0.70710678, invSqrt2Pi: Float = 0.39894228
        return pointwise(a, { x in 0.5 * x * (1 + erff(x * invSqrt2)) },
                         derivative: { x, _ in 0.5 * (1 + erff(x * invSqrt2)) + x * invSqrt2Pi * expf(-0.5 * x * x) })
    }

    /// One step of a gated recurrent unit (Cho et al. 2014), in PyTorch's `nn.GRU` form (GRU4Rec's cell):
    /// with [a_r | a_z | a_n] = x·W_ih + b_ih and [h_r | h_z | h_n] = h·W_hh + b_hh,
    /// r = σ(a_r + h_r), z = σ(a_z + h_z), n = tanh(a_n + r ⊙ h_n), h' = (1 − z) ⊙ n + z ⊙ h.
    /// Shapes: x `[batch, input]`, h `[batch, hidden]`, W_ih `[input, 3·hidden]`, W_hh `[hidden, 3·hidden]`,
    /// biases `[1, 3·hidden]`. Unroll it over time for a sequence; its backward is the chain rule through the
    /// gates (two products each way, no `[batch, 3·hidden]` op chain on the tape).
    public static func gruCell(input x: Tensor, hidden h: Tensor, inputWeights wIH: Tensor, hiddenWeights wHH: Tensor,
                               inputBias bIH: Tensor, hiddenBias bHH: Tensor) -> Tensor {
        let b = x.rows, units = h.cols, width = 3 * units
        precondition(h.rows == b && wIH.rows == x.cols && wIH.cols == width && wHH.rows == units && wHH.cols == width
                     && bIH.rows == 1 && bIH.cols == width && bHH.rows == 1 && bHH.cols == width, "gruCell: shape mismatch")
        var fromInput = BLAS.matmul(x.value, wIH.value), fromHidden = BLAS.matmul(h.value, wHH.value)
        addRowVector(bIH.value, to: &fromInput)
        addRowVector(bHH.value, to: &fromHidden)
        // Gates kept for the backward pass: r, z, n, and the hidden part of the candidate h_n.
        var reset = [Float](repeating: 0, count: b * units), update = reset, candidate = reset
        var out = Matrix(uninitializedRows: b, cols: units)
        let previous = h.value.storage
        for i in 0..<b {
            for u in 0..<units {
                let k = i * units + u, row = i * width
                let r = stableSigmoid(fromInput.storage[row + u] + fromHidden.storage[row + u])
                let z = stableSigmoid(fromInput.storage[row + units + u] + fromHidden.storage[row + units + u])
                let c = tanhf(fromInput.storage[row + 2 * units + u] + r * fromHidden.storage[row + 2 * units + u])
                reset[k] = r; update[k] = z; candidate[k] = c
                out.storage[k] = (1 - z) * c + z * previous[k]
            }
        }
        return Tensor(out, inputs: [x, h, wIH, wHH, bIH, bHH]) { node in
            let g = node.grad!
            // Gradients of the pre-activation products: dA = [da_r | da_z | da_n], dH = [da_r | da_z | da_n ⊙ r].
            var dA = Matrix(uninitializedRows: b, cols: width), dH = Matrix(uninitializedRows: b, cols: width)
            var dPrevious = Matrix(uninitializedRows: b, cols: units)
            for i in 0..<b {
                for u in 0..<units {
                    let k = i * units + u, row = i * width
                    let r = reset[k], z = update[k], c = candidate[k], gk = g.storage[k]
                    let dn = gk * (1 - z) * (1 - c * c)  // through tanh
                    let dz = gk * (previous[k] - c) * z * (1 - z)
                    let dr = dn * fromHidden.storage[row + 2 * units + u] * r * (1 - r)
                    dA.storage[row + u] = dr; dA.storage[row + units + u] = dz; dA.storage[row + 2 * units + u] = dn
                    dH.storage[row + u] = dr; dH.storage[row + units + u] = dz; dH.storage[row + 2 * units + u] = dn * r
                    dPrevious.storage[k] = gk * z
                }
            }
            if x.requiresGrad { x.accumulate(BLAS.matmul(dA, wIH.value, transB: true)) }
            if wIH.requiresGrad { wIH.accumulate(BLAS.matmul(x.value, dA, transA: true)) }
            if bIH.requiresGrad { bIH.accumulate(Elementwise.columnSums(dA)) }
            if wHH.requiresGrad { wHH.accumulate(BLAS.matmul(h.value, dH, transA: true)) }
            if bHH.requiresGrad { bHH.accumulate(Elementwise.columnSums(dH)) }
            if h.requiresGrad {
                addInPlace(&dPrevious, BLAS.matmul(dH, wHH.value, transB: true))
                h.accumulate(dPrevious)
            }
        }
    }

    /// Embedding lookup with padding: row i of the result is row `ids[i]` of `table`, or zeros where `ids[i]` is
    /// `padding` (negative: the left padding of a short sequence), `[ids.count, d]`. Gradient: the rows of real
    /// ids are added into the table's rows (row-sparse for `sparseGradients` tables); padding rows send nothing,
    /// so no table row stands for "no item" and the same table can score items.
    public static func embeddingLookup(_ table: Tensor, ids: [Int32], padding: Int32 = -1) -> Tensor {
        let d = table.cols, n = ids.count
        var out = Matrix(uninitializedRows: n, cols: d)
        var realRows: [Int32] = [], realPositions: [Int] = []
        realRows.reserveCapacity(n)
        realPositions.reserveCapacity(n)
        table.value.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for (i, id) in ids.enumerated() {
                    let row = dst.baseAddress! + i * d
                    if id == padding {
                        row.update(repeating: 0, count: d)
                    } else {
                        precondition(id >= 0 && Int(id) < table.rows, "embeddingLookup: id \(id) out of range")
                        row.update(from: src.baseAddress! + Int(id) * d, count: d)
                        realRows.append(id)
                        realPositions.append(i)
                    }
                }
            }
        }
        return Tensor(out, inputs: [table]) { node in
            guard !realRows.isEmpty else { return }
            let g = node.grad!
            var compact = Matrix(uninitializedRows: realRows.count, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
                compact.storage.withUnsafeMutableBufferPointer { cs in
                    for (k, i) in realPositions.enumerated() {
                        (cs.baseAddress! + k * d).update(from: gs.baseAddress! + i * d, count: d)
                    }
                }
            }
            table.accumulateRows(realRows, of: compact)
        }
    }

    /// Learned absolute position embeddings (Kang & McAuley 2018, eq. 2; BERT): row b · length + t of `x`, position
    /// t of sequence b, gets row t of `positions` (`[length, d]`) added. Gradient: dx = g, dP_t = Σ_b g_{b·length+t}.
    public static func addPositionEmbeddings(_ x: Tensor, positions: Tensor, length: Int) -> Tensor {
        let n = x.rows, d = x.cols
        precondition(length > 0 && n % length == 0 && positions.rows == length && positions.cols == d,
                     "addPositionEmbeddings: \(n) rows of width \(d) are not sequences of the [\(positions.rows), \(positions.cols)] table")
        var out = x.value
        out.storage.withUnsafeMutableBufferPointer { o in
            positions.value.storage.withUnsafeBufferPointer { p in
                for r in 0..<n {
                    let t = r % length
                    for c in 0..<d { o[r * d + c] += p[t * d + c] }
                }
            }
        }
        return Tensor(out, inputs: [x, positions]) { node in
            let g = node.grad!
            if x.requiresGrad { x.accumulate(g) }
            guard positions.requiresGrad else { return }
            var dp = Matrix(rows: length, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
                dp.storage.withUnsafeMutableBufferPointer { ps in
                    for r in 0..<n {
                        let t = r % length
                        for c in 0..<d { ps[t * d + c] += gs[r * d + c] }
                    }
                }
            }
            positions.accumulate(dp)
        }
    }

    /// Adds the `[1, d]` row `v` to every row of `m`.
    private static func addRowVector(_ v: Matrix, to m: inout Matrix) {
        let d = m.cols
        m.storage.withUnsafeMutableBufferPointer { s in
            for r in 0..<m.rows { for c in 0..<d { s[r * d + c] += v.storage[c] } }
        }
    }
}

extension Loss {
    /// Cross-entropy of a softmax over the whole item table, as sequential models train next-item prediction
    /// (SASRec with cross-entropy, GRU4Rec, BERT4Rec): for hidden state h_i and target item t_i,
    /// −mean_i [ ⟨h_i, e_{t_i}⟩ − log Σ_j exp ⟨h_i, e_j⟩ ]. It is `infoNCE` at temperature 1 with the item table
    /// as candidates, so the `[rows, items]` logits are never formed whole; `weights` leave out padding
    /// positions (pass only the real positions' rows, or weight them).
    public static func softmaxCrossEntropy(hidden: Tensor, itemTable: Tensor, targets: [Int32], weights: [Float]? = nil) -> Tensor {
        infoNCE(anchors: hidden, candidates: itemTable, positives: targets, weights: weights, temperature: 1)
    }
}

extension Loss {
    /// Binary cross-entropy with one sampled negative per position, SASRec's training loss (Kang & McAuley 2018,
    /// eq. 9): for hidden state h_i, its next item p_i and a sampled item n_i,
    /// −mean_i [ log σ(⟨h_i, e_{p_i}⟩) + log(1 − σ(⟨h_i, e_{n_i}⟩)) ], over the item table `itemTable`.
    /// Fused: the scores are row dots, and backward, with a_i = σ(s_p) − 1 and b_i = σ(s_n),
    /// dh_i = (a_i e_{p_i} + b_i e_{n_i}) / n, de_{p_i} += a_i h_i / n, de_{n_i} += b_i h_i / n (rows of the table).
    public static func sampledBinaryCrossEntropy(hidden: Tensor, itemTable: Tensor, positives: [Int32], negatives: [Int32]) -> Tensor {
        let n = hidden.rows, d = hidden.cols
        precondition(positives.count == n && negatives.count == n && itemTable.cols == d, "sampledBinaryCrossEntropy: shape mismatch")
        precondition((positives + negatives).allSatisfy { $0 >= 0 && Int($0) < itemTable.rows }, "sampledBinaryCrossEntropy: item out of range")
        guard n > 0 else { return Tensor(Matrix(rows: 1, cols: 1)) }
        var positiveGrad = [Float](repeating: 0, count: n), negativeGrad = positiveGrad
        var total = 0.0
        hidden.value.storage.withUnsafeBufferPointer { h in
            itemTable.value.storage.withUnsafeBufferPointer { e in
                for i in 0..<n {
                    let hi = h.baseAddress! + i * d
                    let p = e.baseAddress! + Int(positives[i]) * d, q = e.baseAddress! + Int(negatives[i]) * d
                    var sp: Float = 0, sn: Float = 0
                    for c in 0..<d { sp += hi[c] * p[c]; sn += hi[c] * q[c] }
                    // −log σ(s) = softplus(−s), −log(1 − σ(s)) = softplus(s).
                    total += Double(softplusValue(-sp) + softplusValue(sn))
                    positiveGrad[i] = stableSigmoid(sp) - 1
                    negativeGrad[i] = stableSigmoid(sn)
                }
            }
        }
        return Tensor(Matrix(rows: 1, cols: 1, repeating: Float(total / Double(n))), inputs: [hidden, itemTable]) { node in
            let scale = node.grad!.storage[0] / Float(n)
            var dh = Matrix(uninitializedRows: n, cols: d)
            var dItems = Matrix(uninitializedRows: 2 * n, cols: d)
            hidden.value.storage.withUnsafeBufferPointer { h in
            itemTable.value.storage.withUnsafeBufferPointer { e in
            dh.storage.withUnsafeMutableBufferPointer { dhs in
            dItems.storage.withUnsafeMutableBufferPointer { des in
                for i in 0..<n {
                    let a = scale * positiveGrad[i], b = scale * negativeGrad[i]
                    let hi = h.baseAddress! + i * d
                    let p = e.baseAddress! + Int(positives[i]) * d, q = e.baseAddress! + Int(negatives[i]) * d
                    let dhi = dhs.baseAddress! + i * d, dp = des.baseAddress! + i * d, dq = des.baseAddress! + (n + i) * d
                    for c in 0..<d {
                        dhi[c] = a * p[c] + b * q[c]
                        dp[c] = a * hi[c]
                        dq[c] = b * hi[c]
                    }
                }
            } } } }
            if hidden.requiresGrad { hidden.accumulate(dh) }
            if itemTable.requiresGrad { itemTable.accumulateRows(positives + negatives, of: dItems) }
        }
    }
}
