import Testing
import Foundation
import AffinityCore

/// The sequence and transformer building blocks: finite-difference gradients, and values against the
/// definitions written out with elementary ops.
let sequenceGradientCases: [String: GradientCase] = [
    "layerNorm": GradientCase(shapes: [(4, 6), (1, 6), (1, 6)]) { p in Tensor.layerNorm(p[0], gain: p[1], bias: p[2], epsilon: 1e-5) },
    "gelu": GradientCase(shapes: [(3, 5)], fill: { 3 * $0 }) { Tensor.gelu($0[0]) },
    "gruCell": GradientCase(shapes: [(3, 4), (3, 5), (4, 15), (5, 15), (1, 15), (1, 15)]) { p in
        Tensor.gruCell(input: p[0], hidden: p[1], inputWeights: p[2], hiddenWeights: p[3], inputBias: p[4], hiddenBias: p[5])
    },
    "gruCell unrolled over three steps": GradientCase(shapes: [(2, 3), (2, 3), (2, 3), (3, 12), (4, 12), (1, 12), (1, 12)]) { p in
        var h = Tensor(Matrix(rows: 2, cols: 4))
        for t in 0..<3 {
            h = Tensor.gruCell(input: p[t], hidden: h, inputWeights: p[3], hiddenWeights: p[4], inputBias: p[5], hiddenBias: p[6])
        }
        return h
    },
    "embeddingLookup with padding": GradientCase(shapes: [(5, 3)]) { p in Tensor.embeddingLookup(p[0], ids: [4, -1, 0, 4, -1, 2]) },
    "addPositionEmbeddings": GradientCase(shapes: [(6, 3), (3, 3)]) { p in Tensor.addPositionEmbeddings(p[0], positions: p[1], length: 3) },
    "sampledBinaryCrossEntropy": GradientCase(shapes: [(4, 3), (6, 3)]) { p in
        Loss.sampledBinaryCrossEntropy(hidden: p[0], itemTable: p[1], positives: [5, 0, 2, 2], negatives: [1, 3, 5, 4])
    },
    "softmaxCrossEntropy with padding weights": GradientCase(shapes: [(4, 3), (7, 3)]) { p in
        Loss.softmaxCrossEntropy(hidden: p[0], itemTable: p[1], targets: [6, 0, 3, 3], weights: [1, 1, 2, 1])
    },
]

@Suite struct SequenceOpTests {
    @Test(arguments: sequenceGradientCases.keys.sorted())
    func finiteDifferences(_ name: String) {
        checkFiniteDifferences(name, sequenceGradientCases[name]!)
    }

    @Test func embeddingLookupZeroesPaddingAndSendsItNoGradient() {
        let table = Tensor(parameter: Matrix(rows: 3, cols: 2, values: [1, 2, 3, 4, 5, 6]))
        let x = Tensor.embeddingLookup(table, ids: [-1, 2, 0])
        #expect(x.value.storage == [0, 0, 5, 6, 1, 2])
        Tensor.sum(x).backward()
        #expect(table.grad!.storage == [1, 1, 0, 0, 1, 1])
    }

    @Test func sampledBinaryCrossEntropyMatchesItsDefinition() {
        // h = [1, 0], e_0 = [2, 0], e_1 = [−1, 0]: −log σ(2) − log(1 − σ(−1)) = softplus(−2) + softplus(−1).
        let loss = Loss.sampledBinaryCrossEntropy(hidden: Tensor(Matrix(rows: 1, cols: 2, values: [1, 0])),
                                                  itemTable: Tensor(Matrix(rows: 2, cols: 2, values: [2, 0, -1, 0])),
                                                  positives: [0], negatives: [1])
        let expected = Foundation.log(1 + Foundation.exp(-2.0)) + Foundation.log(1 + Foundation.exp(-1.0))
        #expect(abs(Double(loss.scalar) - expected) < 1e-6)
    }

    @Test func layerNormRowsHaveZeroMeanAndUnitVariance() {
        let x = Tensor(Matrix(rows: 2, cols: 4, values: [1, 2, 3, 4, -2, 0, 0, 10]))
        let y = Tensor.layerNorm(x, gain: Tensor(Matrix(rows: 1, cols: 4, repeating: 1)), bias: Tensor(Matrix(rows: 1, cols: 4)), epsilon: 0).value
        for r in 0..<2 {
            let row = Array(y.row(r))
            let mean = row.reduce(0, +) / 4
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            #expect(abs(mean) < 1e-6 && abs(variance - 1) < 1e-5)
        }
        // [1, 2, 3, 4]: mean 2.5, variance 1.25.
        #expect(abs(y[0, 0] - (1 - 2.5) / Float(1.25).squareRoot()) < 1e-6)
    }

    @Test func geluMatchesItsDefinition() {
        let y = Tensor.gelu(Tensor(Matrix(rows: 1, cols: 3, values: [-1, 0, 2]))).value
        #expect(abs(y[0, 0] - (-0.15865525)) < 1e-6 && y[0, 1] == 0 && abs(y[0, 2] - 1.9544997) < 1e-6)
    }

    /// The fused cell against its equations written with elementary ops: same value, same gradients.
    @Test func gruCellMatchesItsEquations() {
        var rng = SeededGenerator(seed: 41)
        func random(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let (b, input, units) = (5, 3, 4)
        let values = [random(b, input), random(b, units), random(input, 3 * units), random(units, 3 * units), random(1, 3 * units), random(1, 3 * units)]
        let weights = Tensor(random(b, units))
        func run(fused: Bool) -> (Matrix, [Matrix]) {
            let p = values.map { Tensor(parameter: $0) }
            let y: Tensor
            if fused {
                y = Tensor.gruCell(input: p[0], hidden: p[1], inputWeights: p[2], hiddenWeights: p[3], inputBias: p[4], hiddenBias: p[5])
            } else {
                let a = Tensor.matmul(p[0], p[2]) + p[4], hh = Tensor.matmul(p[1], p[3]) + p[5]
                func part(_ t: Tensor, _ k: Int) -> Tensor { Tensor.sliceColumns(t, (k * units)..<((k + 1) * units)) }
                let r = Tensor.sigmoid(part(a, 0) + part(hh, 0)), z = Tensor.sigmoid(part(a, 1) + part(hh, 1))
                let n = Tensor.tanh(part(a, 2) + r * part(hh, 2))
                let one = Tensor(Matrix(rows: b, cols: units, repeating: 1))
                y = (one - z) * n + z * p[1]
            }
            Tensor.sum(y * weights).backward()
            return (y.value, p.map { $0.grad! })
        }
        let (fusedValue, fusedGrads) = run(fused: true), (chainValue, chainGrads) = run(fused: false)
        #expect(maxDifference(fusedValue, chainValue) < 1e-6)
        for k in 0..<6 { #expect(maxDifference(fusedGrads[k], chainGrads[k]) < 1e-5, "input \(k)") }
    }
}
