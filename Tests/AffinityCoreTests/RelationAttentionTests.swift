import Testing
import Foundation
import AffinityCore

/// Relation-aware attention (per query–key pair terms added to keys and values, TiSASRec's time intervals):
/// finite-difference gradients for every input, with masks and dropout, and values against the definition.
let relationAttentionCases: [String: GradientCase] = [
    "multiHeadAttention with relations": GradientCase(shapes: [(8, 4), (8, 4), (8, 4), (32, 4), (32, 4)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 2,
                                  relationKeys: p[3], relationValues: p[4])
    },
    "multiHeadAttention with relations, causal, key padding and dropout": GradientCase(shapes: [(8, 4), (8, 4), (8, 4), (32, 4), (32, 4)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 2,
                                  mask: AttentionMask(causal: true, keyPadding: attentionPadding), dropout: 0.25, seed: 5,
                                  relationKeys: p[3], relationValues: p[4])
    },
    "multiHeadAttention with relation keys only": GradientCase(shapes: [(8, 6), (8, 6), (8, 6), (32, 6)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 3, mask: AttentionMask(causal: true),
                                  relationKeys: p[3])
    },
]

@Suite struct RelationAttentionTests {
    @Test(arguments: relationAttentionCases.keys.sorted())
    func finiteDifferences(_ name: String) {
        checkFiniteDifferences(name, relationAttentionCases[name]!)
    }

    /// S_ij = ⟨q_i, k_j + rk_ij⟩ / √(d/H) over the keys the masks allow, out_i = Σ_j P_ij (v_j + rv_ij), per head.
    @Test func relationAttentionMatchesTheDefinition() {
        let (length, heads, d) = (4, 2, 6)
        let q = InteractionOpTests.random(8, d, seed: 1), k = InteractionOpTests.random(8, d, seed: 2)
        let v = InteractionOpTests.random(8, d, seed: 3)
        let rk = InteractionOpTests.random(32, d, seed: 4), rv = InteractionOpTests.random(32, d, seed: 5)
        let y = Tensor.multiHeadAttention(query: Tensor(q), key: Tensor(k), value: Tensor(v), length: length, heads: heads,
                                          mask: AttentionMask(causal: true, keyPadding: attentionPadding),
                                          relationKeys: Tensor(rk), relationValues: Tensor(rv)).value
        let w = d / heads
        for s in 0..<2 {
            for h in 0..<heads {
                for i in 0..<length {
                    var scores: [Float] = [], allowed: [Int] = []
                    for j in 0...i where !attentionPadding[s * length + j] {
                        let pair = (s * length + i) * length + j
                        var dot: Float = 0
                        for c in 0..<w { dot += q[s * length + i, h * w + c] * (k[s * length + j, h * w + c] + rk[pair, h * w + c]) }
                        scores.append(dot / Float(w).squareRoot())
                        allowed.append(j)
                    }
                    let m = scores.max() ?? 0
                    let e = scores.map { expf($0 - m) }, total = e.reduce(0, +)
                    for c in 0..<w {
                        var expected: Float = 0
                        for (a, j) in allowed.enumerated() {
                            let pair = (s * length + i) * length + j
                            expected += e[a] / total * (v[s * length + j, h * w + c] + rv[pair, h * w + c])
                        }
                        #expect(abs(y[s * length + i, h * w + c] - expected) < 1e-5)
                    }
                }
            }
        }
    }

    /// Zero relations leave attention unchanged (to rounding: the plain op runs the C kernel, the relation-aware one
    /// the Swift loops, which sum in a different order).
    @Test func zeroRelationsAreThePlainOp() {
        let q = InteractionOpTests.random(8, 4, seed: 6), k = InteractionOpTests.random(8, 4, seed: 7), v = InteractionOpTests.random(8, 4, seed: 8)
        let mask = AttentionMask(causal: true, keyPadding: attentionPadding)
        let plain = Tensor.multiHeadAttention(query: Tensor(q), key: Tensor(k), value: Tensor(v), length: 4, heads: 2, mask: mask).value
        let zero = Tensor(Matrix(rows: 32, cols: 4))
        let related = Tensor.multiHeadAttention(query: Tensor(q), key: Tensor(k), value: Tensor(v), length: 4, heads: 2, mask: mask,
                                                relationKeys: zero, relationValues: zero).value
        #expect(maxDifference(plain, related) < 1e-6)
    }
}
