#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AffinityKernels

/// Which keys a query may attend to in `Tensor.multiHeadAttention`.
public struct AttentionMask: Sendable {
    /// Query position i sees only keys j ≤ i (left-to-right sequence models).
    public var causal: Bool
    /// One flag per row of the keys (`sequences · length`): true marks a padding position no query attends to.
    public var keyPadding: [Bool]?

    public init(causal: Bool = false, keyPadding: [Bool]? = nil) {
        self.causal = causal
        self.keyPadding = keyPadding
    }

    public static let none = AttentionMask()
}

extension Tensor {
    /// Multi-head scaled dot-product attention (Vaswani et al. 2017, eq. 1), one op forward and backward, over
    /// sequences stored flat: `query`, `key` and `value` are `[sequences · length, d]`, position t of sequence s in
    /// row s · length + t, and head h uses columns h·d/H ..< (h+1)·d/H. For each sequence and head,
    /// out_i = Σ_j P̃_ij v_j with P = softmax_j(⟨q_i, k_j⟩ / √(d/H)) over the keys the mask allows and P̃ = P with
    /// inverted dropout of rate `dropout` (PyTorch's `nn.MultiheadAttention` drops attention weights so). A query
    /// that may see no key gets a zero row. Projections in and out are `linear` layers around this op.
    ///
    /// `relationKeys` and `relationValues`, `[sequences · length · length, d]` (row (s · length + i) · length + j for
    /// query i and key j of sequence s), add a term per query–key pair to the key and the value that pair sees
    /// (relation-aware attention, Shaw et al. 2018; TiSASRec's time intervals, Li et al. 2020, eq. 6–7):
    /// S_ij = ⟨q_i, k_j + rk_ij⟩ / √(d/H) and out_i = Σ_j P̃_ij (v_j + rv_ij).
    ///
    /// Backward, with dP̃_ij = ⟨g_i, v_j + rv_ij⟩ and dP = dP̃ ⊙ mask/(1 − p): dv_j = Σ_i P̃_ij g_i, drv_ij = P̃_ij g_i,
    /// dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'), dq_i = Σ_j dS_ij (k_j + rk_ij) / √(d/H), dk_j = Σ_i dS_ij q_i / √(d/H),
    /// drk_ij = dS_ij q_i / √(d/H).
    /// Sequences are independent, so workers take whole sequences and results do not depend on the thread count.
    public static func multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, length: Int, heads: Int,
                                          mask: AttentionMask = .none, dropout: Float = 0, seed: UInt64 = 0,
                                          relationKeys: Tensor? = nil, relationValues: Tensor? = nil) -> Tensor {
        let rows = query.rows, d = query.cols
        precondition(length > 0 && rows % length == 0, "multiHeadAttention: \(rows) rows are not sequences of \(length)")
        precondition(heads > 0 && d % heads == 0, "multiHeadAttention: width \(d) is not \(heads) heads")
        precondition(key.rows == rows && value.rows == rows && key.cols == d && value.cols == d, "multiHeadAttention: shape mismatch")
        precondition(mask.keyPadding.map { $0.count == rows } ?? true, "multiHeadAttention: one padding flag per key row")
        precondition(dropout >= 0 && dropout < 1, "multiHeadAttention: dropout rate must be in [0, 1)")
        for relation in [relationKeys, relationValues] {
            precondition(relation.map { $0.rows == rows * length && $0.cols == d } ?? true,
                         "multiHeadAttention: relations must be [sequences · length · length, \(d)]")
        }
        let sequences = rows / length, headWidth = d / heads, scale = 1 / Float(headWidth).squareRoot()
        let matrices = sequences * heads * length * length
        // Attention weights P, [sequence, head, query, key], kept for the backward pass.
        var weights = [Float](repeating: 0, count: matrices)
        // The inverted-dropout multipliers of P, same layout (empty without dropout).
        let keepScale: [Float] = dropout > 0 ? dropoutMask(rows: sequences * heads * length, cols: length, rate: dropout, seed: seed).storage : []
        var out = Matrix(rows: rows, cols: d)
        let padding = mask.keyPadding ?? [], causal = mask.causal
        let noRelations: [Float] = []
        let scratchCount = Int(affinity_attention_scratch(Int64(length), Int64(headWidth)))
        // Without relations the loops are in C (attention.c): with AutoInt's 7 fields × 8 columns per head, scalar
        // loops were 40 % of an epoch. Workers take whole sequences, each with its own scratch. TiSASRec's relation
        // terms take the Swift loops below, which read raw pointers only (no optional or bounds-checked array access
        // per entry).
        query.value.storage.withUnsafeBufferPointer { qs in
        key.value.storage.withUnsafeBufferPointer { ks in
        value.value.storage.withUnsafeBufferPointer { vs in
        weights.withUnsafeMutableBufferPointer { ws in
        out.storage.withUnsafeMutableBufferPointer { os in
        keepScale.withUnsafeBufferPointer { ms in
        padding.withUnsafeBufferPointer { pads in
        (relationKeys?.value.storage ?? noRelations).withUnsafeBufferPointer { rks in
        (relationValues?.value.storage ?? noRelations).withUnsafeBufferPointer { rvs in
            let p = UnsafeSendable((qs.baseAddress!, ks.baseAddress!, vs.baseAddress!, ws.baseAddress!, os.baseAddress!,
                                    ms.isEmpty ? nil : ms.baseAddress, pads.isEmpty ? nil : pads.baseAddress,
                                    rks.isEmpty ? nil : rks.baseAddress, rvs.isEmpty ? nil : rvs.baseAddress))
            Parallel.forEachChunk(0..<sequences, minimumChunk: 64) { chunk in
                let (q, k, v, w, o, m, pad, rk, rv) = p.value
                if rk == nil && rv == nil {
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                    defer { scratch.deallocate() }
                    affinity_attention_forward(q, k, v, Int64(d), Int64(length), Int64(heads), causal ? 1 : 0, pad, m,
                                               Int64(chunk.lowerBound), Int64(chunk.upperBound), w, o, scratch)
                    return
                }
                for s in chunk {
                    for h in 0..<heads {
                        let column = h * headWidth
                        for i in 0..<length {
                            let qi = q + (s * length + i) * d + column
                            let wi = w + ((s * heads + h) * length + i) * length
                            // Row (s · length + i) · length of the relations: query i's pair with key 0.
                            let pairs = ((s * length + i) * length) * d + column
                            let visible = causal ? i + 1 : length
                            var maximum = -Float.infinity
                            for j in 0..<length {
                                if j >= visible || (pad != nil && pad![s * length + j]) { wi[j] = -.infinity; continue }
                                let kj = k + (s * length + j) * d + column
                                var dot: Float = 0
                                for c in 0..<headWidth { dot += qi[c] * kj[c] }
                                if let rk {
                                    let rkij = rk + pairs + j * d
                                    for c in 0..<headWidth { dot += qi[c] * rkij[c] }
                                }
                                wi[j] = dot * scale
                                maximum = max(maximum, wi[j])
                            }
                            guard maximum > -.infinity else {
                                for j in 0..<length { wi[j] = 0 }
                                continue
                            }
                            var total: Float = 0
                            for j in 0..<length {
                                let e = wi[j] == -.infinity ? 0 : expf(wi[j] - maximum)
                                wi[j] = e
                                total += e
                            }
                            let oi = o + (s * length + i) * d + column
                            let mi = m.map { $0 + ((s * heads + h) * length + i) * length }
                            for j in 0..<length {
                                wi[j] /= total
                                let weight = mi == nil ? wi[j] : wi[j] * mi![j]
                                guard weight != 0 else { continue }
                                let vj = v + (s * length + j) * d + column
                                for c in 0..<headWidth { oi[c] += weight * vj[c] }
                                if let rv {
                                    let rvij = rv + pairs + j * d
                                    for c in 0..<headWidth { oi[c] += weight * rvij[c] }
                                }
                            }
                        }
                    }
                }
            }
        } } } } } } } } }
        return Tensor(out, inputs: [query, key, value] + [relationKeys, relationValues].compactMap { $0 }) { node in
            let g = node.grad!
            var dq = Matrix(rows: rows, cols: d), dk = Matrix(rows: rows, cols: d), dv = Matrix(rows: rows, cols: d)
            var drk = relationKeys == nil ? Matrix(rows: 0, cols: 0) : Matrix(rows: rows * length, cols: d)
            var drv = relationValues == nil ? Matrix(rows: 0, cols: 0) : Matrix(rows: rows * length, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
            query.value.storage.withUnsafeBufferPointer { qs in
            key.value.storage.withUnsafeBufferPointer { ks in
            value.value.storage.withUnsafeBufferPointer { vs in
            weights.withUnsafeBufferPointer { ws in
            dq.storage.withUnsafeMutableBufferPointer { dqs in
            dk.storage.withUnsafeMutableBufferPointer { dks in
            dv.storage.withUnsafeMutableBufferPointer { dvs in
            keepScale.withUnsafeBufferPointer { ms in
            (relationKeys?.value.storage ?? noRelations).withUnsafeBufferPointer { rks in
            (relationValues?.value.storage ?? noRelations).withUnsafeBufferPointer { rvs in
            drk.storage.withUnsafeMutableBufferPointer { drks in
            drv.storage.withUnsafeMutableBufferPointer { drvs in
                let p = UnsafeSendable((gs.baseAddress!, qs.baseAddress!, ks.baseAddress!, vs.baseAddress!, ws.baseAddress!,
                                        dqs.baseAddress!, dks.baseAddress!, dvs.baseAddress!, ms.isEmpty ? nil : ms.baseAddress))
                // Relation pairs belong to one sequence each, so their gradients are written without races.
                let r = UnsafeSendable((rks.isEmpty ? nil : rks.baseAddress, rvs.isEmpty ? nil : rvs.baseAddress,
                                        drks.isEmpty ? nil : drks.baseAddress, drvs.isEmpty ? nil : drvs.baseAddress))
                Parallel.forEachChunk(0..<sequences, minimumChunk: 64) { chunk in
                    let (g, q, k, v, w, dq, dk, dv, m) = p.value
                    let (rk, rv, drk, drv) = r.value
                    if rk == nil && rv == nil {
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                        defer { scratch.deallocate() }
                        affinity_attention_backward(g, q, k, v, w, m, Int64(d), Int64(length), Int64(heads),
                                                    Int64(chunk.lowerBound), Int64(chunk.upperBound), dq, dk, dv, scratch)
                        return
                    }
                    let dWeights = UnsafeMutablePointer<Float>.allocate(capacity: length)
                    defer { dWeights.deallocate() }
                    for s in chunk {
                        for h in 0..<heads {
                            let column = h * headWidth
                            for i in 0..<length {
                                let gi = g + (s * length + i) * d + column
                                let wi = w + ((s * heads + h) * length + i) * length
                                let mi = m.map { $0 + ((s * heads + h) * length + i) * length }
                                let pairs = ((s * length + i) * length) * d + column
                                var weighted: Float = 0
                                for j in 0..<length {
                                    guard wi[j] != 0 else { dWeights[j] = 0; continue }
                                    let keep: Float = mi == nil ? 1 : mi![j]
                                    let vj = v + (s * length + j) * d + column, dvj = dv + (s * length + j) * d + column
                                    let scaled = wi[j] * keep
                                    var dot: Float = 0
                                    for c in 0..<headWidth {
                                        dot += gi[c] * vj[c]
                                        dvj[c] += scaled * gi[c]
                                    }
                                    if let rv, let drv {
                                        let rvij = rv + pairs + j * d, drvij = drv + pairs + j * d
                                        for c in 0..<headWidth {
                                            dot += gi[c] * rvij[c]
                                            drvij[c] = scaled * gi[c]
                                        }
                                    }
                                    dWeights[j] = dot * keep
                                    weighted += wi[j] * dWeights[j]
                                }
                                let qi = q + (s * length + i) * d + column, dqi = dq + (s * length + i) * d + column
                                for j in 0..<length where wi[j] != 0 {
                                    let ds = wi[j] * (dWeights[j] - weighted) * scale
                                    let kj = k + (s * length + j) * d + column, dkj = dk + (s * length + j) * d + column
                                    for c in 0..<headWidth {
                                        dqi[c] += ds * kj[c]
                                        dkj[c] += ds * qi[c]
                                    }
                                    if let rk, let drk {
                                        let rkij = rk + pairs + j * d, drkij = drk + pairs + j * d
                                        for c in 0..<headWidth {
                                            dqi[c] += ds * rkij[c]
                                            drkij[c] = ds * qi[c]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } } } } } } } } } } } } }
            if query.requiresGrad { query.accumulate(dq) }
            if key.requiresGrad { key.accumulate(dk) }
            if value.requiresGrad { value.accumulate(dv) }
            if let relationKeys, relationKeys.requiresGrad { relationKeys.accumulate(drk) }
            if let relationValues, relationValues.requiresGrad { relationValues.accumulate(drv) }
        }
    }
}
