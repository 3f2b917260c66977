import Testing
import Foundation
import AffinityCore

/// 5 nodes, 3 relations; node 3 has no facts, node 1 is the tail of three.
let relationalEdges = RelationalEdges(nodeCount: 5, heads: [0, 0, 1, 2, 2, 2, 4], relations: [0, 2, 1, 0, 1, 2, 1],
                                      tails: [1, 3, 0, 1, 4, 1, 2])

let knowledgeGradientCases: [String: GradientCase] = [
    "relationalAggregation (mean)": GradientCase(shapes: [(5, 3), (3, 3)]) { p in
        Tensor.relationalAggregation(relationalEdges, weights: relationalEdges.meanWeights(), entities: p[0], relations: p[1])
    },
    "relationalAggregation (facts dropped)": GradientCase(shapes: [(5, 3), (3, 3)]) { p in
        let weights = relationalEdges.meanWeights(keep: [true, false, true, true, false, true, true])
        return Tensor.relationalAggregation(relationalEdges, weights: weights, entities: p[0], relations: p[1])
    },
    "relationalAggregation twice (hops)": GradientCase(shapes: [(5, 3), (3, 3)]) { p in
        let once = Tensor.relationalAggregation(relationalEdges, weights: relationalEdges.meanWeights(), entities: p[0], relations: p[1])
        return Tensor.relationalAggregation(relationalEdges, weights: relationalEdges.meanWeights(), entities: once, relations: p[1])
    },
    "biInteractionLayer": GradientCase(shapes: [(4, 3), (4, 3), (3, 2), (1, 2), (3, 2), (1, 2)]) { p in
        var rng = SeededGenerator(seed: 1)
        return Tensor.biInteractionLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0, rng: &rng)
    },
    "pairwiseDependence (distance correlation)": GradientCase(shapes: [(4, 6)], fill: { 2 * $0 }) { p in
        Tensor.pairwiseDependence(p[0], measure: .distance)
    },
    "pairwiseDependence (squared cosine)": GradientCase(shapes: [(3, 5)]) { p in
        Tensor.pairwiseDependence(p[0], measure: .cosine)
    },
]

@Suite struct KnowledgeOpTests {
    @Test(arguments: knowledgeGradientCases.keys.sorted())
    func finiteDifferences(_ name: String) {
        checkFiniteDifferences(name, knowledgeGradientCases[name]!)
    }

    /// The fused bi-interaction layer against the chain of ops it replaces (same dropout draws), on a table large
    /// enough for several parallel chunks and the products' row-split path.
    @Test func biInteractionLayerMatchesTheChainOfOps() {
        var rng = SeededGenerator(seed: 12)
        func random(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let (n, din, dout) = (5000, 16, 8)
        let values = [random(n, din), random(n, din), random(din, dout), random(1, dout), random(din, dout), random(1, dout)]
        let weights = Tensor(random(n, dout))
        func run(fused: Bool) -> (Matrix, [Matrix]) {
            let p = values.map { Tensor(parameter: $0) }
            var dropoutRNG = SeededGenerator(seed: 8)
            let y: Tensor
            if fused {
                y = Tensor.biInteractionLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0.1,
                                              rng: &dropoutRNG)
            } else {
                let sum = Tensor.leakyRelu(Tensor.matmul(p[0] + p[1], p[2]) + p[3], slope: 0.2)
                let bi = Tensor.leakyRelu(Tensor.matmul(p[0] * p[1], p[4]) + p[5], slope: 0.2)
                y = Tensor.dropout(sum + bi, rate: 0.1, rng: &dropoutRNG)
            }
            Tensor.sum(y * weights).backward()
            return (y.value, p.map { $0.grad! })
        }
        let (chainValue, chainGrads) = run(fused: false), (fusedValue, fusedGrads) = run(fused: true)
        #expect(maxDifference(fusedValue, chainValue) < 1e-5)
        #expect(fusedValue.storage.contains(0), "dropout zeroed some entries")
        for k in 0..<6 {
            let scale = max(1, chainGrads[k].storage.map(abs).max() ?? 0)
            #expect(maxDifference(fusedGrads[k], chainGrads[k]) < 1e-4 * scale, "input \(k)")
        }
    }

    /// The aggregation written out: node 2's output is the mean of e_1 ⊙ w_0, e_4 ⊙ w_1, e_1 ⊙ w_2.
    @Test func relationalAggregationIsTheMeanOfGatedNeighbours() {
        let e = Matrix(rows: 5, cols: 2, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        let w = Matrix(rows: 3, cols: 2, values: [1, -1, 0.5, 2, -2, 0])
        let out = Tensor.relationalAggregation(relationalEdges, weights: relationalEdges.meanWeights(), entities: Tensor(e), relations: Tensor(w)).value
        let expected: [Float] = [(3 * 1 + 9 * 0.5 + 3 * -2) / 3, (4 * -1 + 10 * 2 + 4 * 0) / 3]
        #expect(abs(out[2, 0] - expected[0]) < 1e-6 && abs(out[2, 1] - expected[1]) < 1e-6)
        #expect(out[3, 0] == 0 && out[3, 1] == 0, "a node without facts aggregates nothing")
        // Dropping one of node 0's two facts leaves the other at weight 1.
        let weights = relationalEdges.meanWeights(keep: [true, false, true, true, true, true, true])
        #expect(weights[0] == 1 && weights[1] == 0 && weights[3] == Float(1) / 3)
    }

    /// Distance correlation is 1 for an affine function of the same sample, near 0 for unrelated samples, and
    /// matches the formula evaluated directly.
    @Test func distanceCorrelationValues() {
        let x: [Float] = [0.3, -1.2, 2.0, 0.7, -0.4, 1.5]
        let affine = x.map { 3 * $0 - 1 }
        let pair = Tensor.pairwiseDependence(Tensor(Matrix(rows: 2, cols: 6, values: x + affine)), measure: .distance).scalar
        #expect(abs(pair - 1) < 1e-3)
        // Samples on a symmetric cross: y is a function of |x| only, uncorrelated with x, dCor well below 1.
        let cross: [Float] = [-2, -1, 0, 1, 2], square: [Float] = [4, 1, 0, 1, 4]
        let dependent = Tensor.pairwiseDependence(Tensor(Matrix(rows: 2, cols: 5, values: cross + square)), measure: .distance).scalar
        #expect(dependent > 0.3 && dependent < 0.8, "\(dependent)")
        // Three rows: the sum over the three pairs; cosine of orthogonal rows is 0.
        let rows: [Float] = [1, 0, 0, 0, 1, 0, 1, 1, 0]
        let cos = Tensor.pairwiseDependence(Tensor(Matrix(rows: 3, cols: 3, values: rows)), measure: .cosine).scalar
        #expect(abs(cos - (0 + 0.5 + 0.5)) < 1e-5)
    }
}
