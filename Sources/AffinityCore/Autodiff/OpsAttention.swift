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
    /// Backward, with dP̃_ij = ⟨g_i, v_j⟩ and dP = dP̃ ⊙ mask/(1 − p): dv_j = Σ_i P̃_ij g_i,
    /// dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'), dq_i = Σ_j dS_ij k_j / √(d/H), dk_j = Σ_i dS_ij q_i / √(d/H).
    /// Sequences are independent, so workers take whole sequences and results do not depend on the thread count.
    public static func multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, length: Int, heads: Int,
                                          mask: AttentionMask = .none, dropout: Float = 0, seed: UInt64 = 0) -> Tensor {
        let rows = query.rows, d = query.cols
        precondition(length > 0 && rows % length == 0, "multiHeadAttention: \(rows) rows are not sequences of \(length)")
        precondition(heads > 0 && d % heads == 0, "multiHeadAttention: width \(d) is not \(heads) heads")
        precondition(key.rows == rows && value.rows == rows && key.cols == d && value.cols == d, "multiHeadAttention: shape mismatch")
        precondition(mask.keyPadding.map { $0.count == rows } ?? true, "multiHeadAttention: one padding flag per key row")
        precondition(dropout >= 0 && dropout < 1, "multiHeadAttention: dropout rate must be in [0, 1)")
        let sequences = rows / length, headWidth = d / heads
        let matrices = sequences * heads * length * length
        // Attention weights P, [sequence, head, query, key], kept for the backward pass.
        var weights = [Float](repeating: 0, count: matrices)
        // The inverted-dropout multipliers of P, same layout (empty without dropout).
        let keepScale: [Float] = dropout > 0 ? dropoutMask(rows: sequences * heads * length, cols: length, rate: dropout, seed: seed).storage : []
        var out = Matrix(rows: rows, cols: d)
        let padding = mask.keyPadding ?? [], causal: Int32 = mask.causal ? 1 : 0
        let scratchCount = Int(affinity_attention_scratch(Int64(length), Int64(headWidth)))
        // The loops are in C (attention.c): with AutoInt's 7 fields × 8 columns per head, scalar loops were 40 % of
        // an epoch. Workers take whole sequences, each with its own scratch.
        query.value.storage.withUnsafeBufferPointer { qs in
        key.value.storage.withUnsafeBufferPointer { ks in
        value.value.storage.withUnsafeBufferPointer { vs in
        weights.withUnsafeMutableBufferPointer { ws in
        out.storage.withUnsafeMutableBufferPointer { os in
        keepScale.withUnsafeBufferPointer { ms in
        padding.withUnsafeBufferPointer { pads in
            let p = UnsafeSendable((qs.baseAddress!, ks.baseAddress!, vs.baseAddress!, ws.baseAddress!, os.baseAddress!,
                                    ms.isEmpty ? nil : ms.baseAddress, pads.isEmpty ? nil : pads.baseAddress))
            Parallel.forEachChunk(0..<sequences, minimumChunk: 64) { chunk in
                let (q, k, v, w, o, m, pad) = p.value
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                defer { scratch.deallocate() }
                affinity_attention_forward(q, k, v, Int64(d), Int64(length), Int64(heads), causal, pad, m,
                                           Int64(chunk.lowerBound), Int64(chunk.upperBound), w, o, scratch)
            }
        } } } } } } }
        return Tensor(out, inputs: [query, key, value]) { node in
            let g = node.grad!
            var dq = Matrix(rows: rows, cols: d), dk = Matrix(rows: rows, cols: d), dv = Matrix(rows: rows, cols: d)
            g.storage.withUnsafeBufferPointer { gs in
            query.value.storage.withUnsafeBufferPointer { qs in
            key.value.storage.withUnsafeBufferPointer { ks in
            value.value.storage.withUnsafeBufferPointer { vs in
            weights.withUnsafeBufferPointer { ws in
            dq.storage.withUnsafeMutableBufferPointer { dqs in
            dk.storage.withUnsafeMutableBufferPointer { dks in
            dv.storage.withUnsafeMutableBufferPointer { dvs in
            keepScale.withUnsafeBufferPointer { ms in
                let p = UnsafeSendable((gs.baseAddress!, qs.baseAddress!, ks.baseAddress!, vs.baseAddress!, ws.baseAddress!,
                                        dqs.baseAddress!, dks.baseAddress!, dvs.baseAddress!, ms.isEmpty ? nil : ms.baseAddress))
                Parallel.forEachChunk(0..<sequences, minimumChunk: 64) { chunk in
                    let (g, q, k, v, w, dq, dk, dv, m) = p.value
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                    defer { scratch.deallocate() }
                    affinity_attention_backward(g, q, k, v, w, m, Int64(d), Int64(length), Int64(heads),
                                                Int64(chunk.lowerBound), Int64(chunk.upperBound), dq, dk, dv, scratch)
                }
            } } } } } } } } }
            if query.requiresGrad { query.accumulate(dq) }
            if key.requiresGrad { key.accumulate(dk) }
            if value.requiresGrad { value.accumulate(dv) }
        }
    }
}
