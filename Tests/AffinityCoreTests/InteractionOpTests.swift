import Testing
import Foundation
import AffinityCore

/// Bags of a 6-row table: a categorical field (one row, weight 1), a multi-value field mean-pooled (three rows,
/// one repeated, weight 1/3), a numeric field (one row scaled by 0.4) and an empty multi-value bag.
let interactionBags = EmbeddingBags(offsets: [0, 1, 4, 5, 5, 6], rows: [2, 0, 5, 5, 3, 1], weights: [1, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0.4, 1])

/// Key padding for two sequences of length 4: the last key of the first sequence and the first of the second.
let attentionPadding = [false, false, false, true, true, false, false, false]

/// Feature-interaction and attention ops: finite-difference gradients and values against their definitions.
let interactionGradientCases: [String: GradientCase] = [
    "embeddingBags": GradientCase(shapes: [(6, 3)]) { Tensor.embeddingBags($0[0], interactionBags) },
    "embeddingBags (sparse table)": GradientCase(shapes: [(6, 3)], sparseFirstInput: true) { Tensor.embeddingBags($0[0], interactionBags) },
    "factorizationMachine": GradientCase(shapes: [(3, 12)]) { Tensor.factorizationMachine($0[0], fields: 4) },
    "factorizationMachine over bags": GradientCase(shapes: [(6, 3)]) { p in
        // Five bags as one row of five fields.
        Tensor.factorizationMachine(Tensor.reshaped(Tensor.embeddingBags(p[0], interactionBags), rows: 1, cols: 15), fields: 5)
    },
    "pairwiseProducts": GradientCase(shapes: [(3, 12)]) { Tensor.pairwiseProducts($0[0], fields: 4, pairs: [(0, 1), (0, 3), (2, 3), (1, 2)]) },
    "scaleBlocks": GradientCase(shapes: [(3, 12), (1, 4)]) { Tensor.scaleBlocks($0[0], by: $0[1]) },
    "gumbel-softmax mixture of two interactions": GradientCase(shapes: [(3, 6), (2, 3)]) { p in
        // OptInter's search: per pair, softmax over (memorize, factorize, none) scales each candidate's block.
        let weights = Tensor.softmaxRows(Tensor.scale(p[1] + Tensor(Matrix(rows: 2, cols: 3, values: [0.3, -0.2, 0.1, 0.5, 0, -0.4])), 2))
        let memorized = Tensor.tanh(p[0]), factorized = Tensor.pairwiseProducts(p[0], fields: 3, pairs: [(0, 1), (1, 2)])
        return Tensor.scaleBlocks(Tensor.sliceColumns(memorized, 0..<4), by: Tensor.reshaped(Tensor.sliceColumns(weights, 0..<1), rows: 1, cols: 2))
            + Tensor.scaleBlocks(factorized, by: Tensor.reshaped(Tensor.sliceColumns(weights, 1..<2), rows: 1, cols: 2))
    },
    "reshaped": GradientCase(shapes: [(4, 3)]) { Tensor.reshaped($0[0], rows: 2, cols: 6) },
    "rowSums": GradientCase(shapes: [(4, 3)]) { Tensor.rowSums($0[0]) },
    "linear": GradientCase(shapes: [(4, 3), (3, 5), (1, 5)]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) },
    "mlp (dropout, linear, relu, twice)": GradientCase(shapes: [(5, 4), (4, 6), (1, 6), (6, 3), (1, 3)]) { p in
        var rng = SeededGenerator(seed: 3)  // the same masks at every evaluation
        let h = Tensor.relu(Tensor.linear(Tensor.dropout(p[0], rate: 0.2, rng: &rng), weight: p[1], bias: p[2]))
        return Tensor.relu(Tensor.linear(Tensor.dropout(h, rate: 0.2, rng: &rng), weight: p[3], bias: p[4]))
    },
    "sigmoidCrossEntropy": GradientCase(shapes: [(6, 1)], fill: { 4 * $0 }) { p in
        Loss.sigmoidCrossEntropy(logits: p[0], labels: [1, 0, 0, 1, 1, 0])
    },
    "multiHeadAttention": GradientCase(shapes: [(8, 6), (8, 6), (8, 6)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 2)
    },
    "multiHeadAttention causal": GradientCase(shapes: [(8, 6), (8, 6), (8, 6)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 3, mask: AttentionMask(causal: true))
    },
    "multiHeadAttention key padding and causal": GradientCase(shapes: [(8, 4), (8, 4), (8, 4)]) { p in
        // The second sequence's first query may see no key (causal, key 0 padded): its output row is zero.
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 2,
                                  mask: AttentionMask(causal: true, keyPadding: attentionPadding))
    },
    "multiHeadAttention with dropout": GradientCase(shapes: [(8, 6), (8, 6), (8, 6)]) { p in
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 4, heads: 2, dropout: 0.3, seed: 11)
    },
    "multiHeadAttention kernel at AutoInt's shape": GradientCase(shapes: [(21, 16), (21, 16), (21, 16)]) { p in
        // Three rows of 7 fields, 2 heads of 8 columns (a full AVX-512 vector plus the key loop's tail), dropout.
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 7, heads: 2, dropout: 0.2, seed: 5)
    },
    "multiHeadAttention kernel with a wide head": GradientCase(shapes: [(10, 37), (10, 37), (10, 37)]) { p in
        // SASRec's shape in small: one head wider than a vector with a remainder, causal, key padding.
        Tensor.multiHeadAttention(query: p[0], key: p[1], value: p[2], length: 5, heads: 1,
                                  mask: AttentionMask(causal: true, keyPadding: [false, true, false, false, false, true, false, false, false, false]))
    },
    "self-attention block with residual": GradientCase(shapes: [(6, 4), (4, 4), (4, 4), (4, 4), (4, 4)]) { p in
        // One AutoInt interacting layer: projections, attention over 3 fields, output projection, residual, ReLU.
        let x = p[0]
        let attended = Tensor.multiHeadAttention(query: Tensor.matmul(x, p[1]), key: Tensor.matmul(x, p[2]), value: Tensor.matmul(x, p[3]),
                                                 length: 3, heads: 2)
        return Tensor.tanh(Tensor.matmul(attended, p[4]) + x)
    },
]

@Suite struct InteractionOpTests {
    @Test(arguments: interactionGradientCases.keys.sorted())
    func finiteDifferences(_ name: String) {
        checkFiniteDifferences(name, interactionGradientCases[name]!)
    }

    static func random(_ r: Int, _ c: Int, seed: UInt64) -> Matrix {
        var rng = SeededGenerator(seed: seed)
        return Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 })
    }

    /// ½[(Σv)² − Σv²] equals the naive Σ_{i<j} ⟨v_i, v_j⟩, and so does its gradient Σ_{j≠i} v_j.
    @Test func factorizationMachineEqualsTheNaivePairwiseSum() {
        let (rows, fields, d) = (7, 5, 4)
        let x = Self.random(rows, fields * d, seed: 4)
        let t = Tensor(parameter: x)
        let y = Tensor.factorizationMachine(t, fields: fields)
        Tensor.sum(y).backward()
        for r in 0..<rows {
            var naive: Float = 0
            for i in 0..<fields {
                for j in (i + 1)..<fields {
                    for k in 0..<d { naive += x[r, i * d + k] * x[r, j * d + k] }
                }
            }
            #expect(abs(y.value.storage[r] - naive) < 1e-4)
            for i in 0..<fields {
                for k in 0..<d {
                    var others: Float = 0
                    for j in 0..<fields where j != i { others += x[r, j * d + k] }
                    #expect(abs(t.grad![r, i * d + k] - others) < 1e-4)
                }
            }
        }
    }

    @Test func embeddingBagsPoolAndScale() {
        let table = Matrix(rows: 6, cols: 2, values: [0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51])
        let y = Tensor.embeddingBags(Tensor(table), interactionBags).value
        // Row 2; the mean of rows 0, 5, 5; 0.4 × row 3; nothing; row 1.
        let expected = Matrix(rows: 5, cols: 2, values: [20, 21, 100.0 / 3, 103.0 / 3, 12, 12.4, 0, 0, 10, 11])
        #expect(maxDifference(y, expected) < 1e-5)
    }

    /// Attention against the definition written with elementary ops, one head at a time, with both masks: keys
    /// masked out get no weight, and a query that may see no key gets a zero row.
    @Test func attentionMatchesTheDefinition() {
        let (length, heads, d) = (4, 2, 6)
        let q = Self.random(8, d, seed: 1), k = Self.random(8, d, seed: 2), v = Self.random(8, d, seed: 3)
        let mask = AttentionMask(causal: true, keyPadding: attentionPadding)
        let y = Tensor.multiHeadAttention(query: Tensor(q), key: Tensor(k), value: Tensor(v), length: length, heads: heads, mask: mask).value
        let w = d / heads
        for s in 0..<2 {
            for h in 0..<heads {
                for i in 0..<length {
                    var scores: [Float] = []
                    var allowed: [Int] = []
                    for j in 0..<length where j <= i && !attentionPadding[s * length + j] {
                        var dot: Float = 0
                        for c in 0..<w { dot += q[s * length + i, h * w + c] * k[s * length + j, h * w + c] }
                        scores.append(dot / Float(w).squareRoot())
                        allowed.append(j)
                    }
                    let m = scores.max() ?? 0
                    let e = scores.map { expf($0 - m) }, total = e.reduce(0, +)
                    for c in 0..<w {
                        var expected: Float = 0
                        for (a, j) in allowed.enumerated() { expected += e[a] / total * v[s * length + j, h * w + c] }
                        #expect(abs(y[s * length + i, h * w + c] - expected) < 1e-5)
                    }
                }
            }
        }
        // Sequence 2, query 0: its only causal key is padded.
        #expect((0..<d).allSatisfy { y[length, $0] == 0 })
    }

    @Test func sigmoidCrossEntropyMatchesItsDefinition() {
        let z: [Float] = [-30, -1, 0, 2, 40]
        let labels: [Float] = [0, 1, 1, 0, 1]
        let loss = Loss.sigmoidCrossEntropy(logits: Tensor(Matrix(rows: 5, cols: 1, values: z)), labels: labels).scalar
        var expected = 0.0
        for (x, y) in zip(z, labels) {
            let p = 1 / (1 + exp(-Double(x)))
            expected -= Double(y) * log(max(p, 1e-300)) + (1 - Double(y)) * log(max(1 - p, 1e-300))
        }
        #expect(abs(Double(loss) - expected / 5) < 1e-5)
        #expect(loss.isFinite)
    }
}
