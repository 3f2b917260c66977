import Testing
import AffinityCore

/// One differentiable computation to check: input shapes, how to fill them, and the graph.
struct GradientCase: @unchecked Sendable {
    var shapes: [(Int, Int)]
    /// Keeps inputs away from kinks/poles (relu at 0, log at ≤ 0): maps a uniform draw in [-1, 1).
    var fill: (Float) -> Float = { $0 }
    var sparseFirstInput = false
    var build: ([Tensor]) -> Tensor
}

let adjacency: SparseOperator = {
    let a = SparseMatrix(rows: 4, cols: 5, rowIndices: [0, 0, 1, 2, 2, 3, 3], colIndices: [1, 4, 0, 2, 3, 1, 4],
                         values: [0.5, -1.2, 2, 0.3, 0.7, -0.4, 1.1])
    return SparseOperator(a)
}()

/// A square, non-symmetric operator for propagation tests.
let square: SparseOperator = {
    let a = SparseMatrix(rows: 5, cols: 5, rowIndices: [0, 0, 1, 2, 2, 3, 3, 4], colIndices: [1, 4, 0, 2, 3, 1, 4, 0],
                         values: [0.5, -0.7, 0.9, 0.3, 0.6, -0.4, 0.8, 0.2])
    return SparseOperator(a)
}()

let gradientCases: [String: GradientCase] = [
    "matmul": GradientCase(shapes: [(3, 4), (4, 2)]) { Tensor.matmul($0[0], $0[1]) },
    "matmul Aᵀ": GradientCase(shapes: [(4, 3), (4, 2)]) { Tensor.matmul($0[0], $0[1], transposeA: true) },
    "matmul Bᵀ": GradientCase(shapes: [(3, 4), (2, 4)]) { Tensor.matmul($0[0], $0[1], transposeB: true) },
    "matmul AᵀBᵀ": GradientCase(shapes: [(4, 3), (2, 4)]) { Tensor.matmul($0[0], $0[1], transposeA: true, transposeB: true) },
    "spmm": GradientCase(shapes: [(5, 3)]) { Tensor.spmm(adjacency, $0[0]) },
    "meanPropagation K=3": GradientCase(shapes: [(5, 3)]) { p in
        Tensor.meanPropagation(square, p[0], layers: 3)
    },
    "meanPropagation then gather (sparse first hop)": GradientCase(shapes: [(5, 3)]) { p in
        Tensor.gather(Tensor.meanPropagation(square, p[0], layers: 2), rows: [3, 0])
    },
    "spmm at rows": GradientCase(shapes: [(5, 3)]) { Tensor.spmm(adjacency, $0[0], at: [3, 0, 3]) },
    "meanPropagation at rows (last hop restricted)": GradientCase(shapes: [(5, 3)]) { p in
        Tensor.meanPropagation(square, p[0], layers: 3, at: [3, 0, 3])
    },
    "meanPropagation at rows, one layer": GradientCase(shapes: [(5, 3)]) { p in
        Tensor.meanPropagation(square, p[0], layers: 1, at: [4, 1])
    },
    "gather dense": GradientCase(shapes: [(5, 3)]) { Tensor.gather($0[0], rows: [4, 0, 4, 2]) },
    "gather sparse": GradientCase(shapes: [(5, 3)], sparseFirstInput: true) { Tensor.gather($0[0], rows: [4, 0, 4, 2]) },
    // A table read by rows and whole: the gathered rows wait for the dense gradient (`pendingRows`), whichever
    // arrives first, for an intermediate tensor and for a parameter.
    "gather and whole, rows first": GradientCase(shapes: [(5, 3)]) { p in
        let t = Tensor.tanh(p[0])
        return Tensor.concatRows([Tensor.gather(t, rows: [4, 0, 4]), t])
    },
    "gather and whole, whole first": GradientCase(shapes: [(5, 3)]) { p in
        let t = Tensor.tanh(p[0])
        return Tensor.concatRows([t, Tensor.gather(t, rows: [4, 0, 4])])
    },
    "gather and whole, parameter": GradientCase(shapes: [(5, 3)]) { p in
        Tensor.concatRows([Tensor.gather(p[0], rows: [1, 1, 3]), Tensor.spmm(adjacency, p[0])])
    },
    "gather and spmm at rows": GradientCase(shapes: [(5, 3)]) { p in
        let t = Tensor.tanh(p[0])
        return Tensor.concatRows([Tensor.gather(t, rows: [2, 4]), Tensor.spmm(adjacency, t, at: [3, 0, 3])])
    },
    "concatColumns": GradientCase(shapes: [(3, 2), (3, 4)]) { Tensor.concatColumns([$0[0], $0[1]]) },
    "sliceColumns": GradientCase(shapes: [(3, 5)]) { Tensor.sliceColumns($0[0], 1..<4) },
    "concatRows": GradientCase(shapes: [(2, 3), (4, 3)]) { Tensor.concatRows([$0[0], $0[1]]) },
    "sliceRows": GradientCase(shapes: [(5, 3)]) { Tensor.sliceRows($0[0], 1..<3) },
    "rowDot": GradientCase(shapes: [(4, 3), (4, 3)]) { Tensor.rowDot($0[0], $0[1]) },
    "add": GradientCase(shapes: [(3, 4), (3, 4)]) { $0[0] + $0[1] },
    "add broadcast": GradientCase(shapes: [(3, 4), (1, 4)]) { $0[0] + $0[1] },
    "sub": GradientCase(shapes: [(3, 4), (3, 4)]) { $0[0] - $0[1] },
    "mul": GradientCase(shapes: [(3, 4), (3, 4)]) { $0[0] * $0[1] },
    "neg": GradientCase(shapes: [(3, 4)]) { -$0[0] },
    "scale": GradientCase(shapes: [(3, 4)]) { Tensor.scale($0[0], 2.5) },
    "sum": GradientCase(shapes: [(3, 4)]) { Tensor.sum($0[0]) },
    "perturbedByRowNorm": GradientCase(shapes: [(3, 4)]) { p in
        Tensor.perturbedByRowNorm(p[0], direction: Matrix(rows: 3, cols: 4, values: (0..<12).map { Float($0 % 5) * 0.2 - 0.4 }), epsilon: 0.3)
    },
    "sparseProduct (learnable values)": GradientCase(shapes: [(7, 1), (5, 3)]) { p in
        Tensor.sparseProduct(adjacency.matrix, values: p[0], p[1])
    },
    "sparseProduct (stored pattern, square)": GradientCase(shapes: [(8, 1), (5, 3)]) { p in
        Tensor.sparseProduct(SparsePattern(square.matrix), values: p[0], p[1])
    },
    "edgeDots": GradientCase(shapes: [(5, 3)]) { Tensor.edgeDots(SparsePattern(square.matrix), $0[0]) },
    // Positive values, as DCCF's (cos + 1)/2 weights: every row sum is away from 0.
    "normalizeWithinRows": GradientCase(shapes: [(8, 1)], fill: { abs($0) + 0.2 }) { p in
        Tensor.normalizeWithinRows(SparsePattern(square.matrix), values: p[0])
    },
    // Segments of 2, 0, 3, 1 and 2 entries (an empty one included), scores spread over [-3, 3).
    "segmentSoftmax": GradientCase(shapes: [(8, 1)], fill: { 3 * $0 }) { p in
        Tensor.segmentSoftmax(p[0], start: [0, 2, 2, 5, 6, 8])
    },
    "scaled by a learnable scalar": GradientCase(shapes: [(3, 4), (1, 1)]) { Tensor.scaled($0[0], by: $0[1]) },
    // Positive entries (rows must have positive sums): |x| + 0.2.
    "symmetricNormalizeDense": GradientCase(shapes: [(4, 4)], fill: { abs($0) + 0.2 }) { Tensor.symmetricNormalizeDense($0[0]) },
    "mean": GradientCase(shapes: [(3, 4)]) { Tensor.mean($0[0]) },
    "sigmoid": GradientCase(shapes: [(3, 4)], fill: { 3 * $0 }) { Tensor.sigmoid($0[0]) },
    "logSigmoid": GradientCase(shapes: [(3, 4)], fill: { 4 * $0 }) { Tensor.logSigmoid($0[0]) },
    "softplus": GradientCase(shapes: [(3, 4)], fill: { 4 * $0 }) { Tensor.softplus($0[0]) },
    "tanh": GradientCase(shapes: [(3, 4)], fill: { 2 * $0 }) { Tensor.tanh($0[0]) },
    "relu": GradientCase(shapes: [(3, 4)], fill: { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }) { Tensor.relu($0[0]) },
    // Entries kept away from the kinks at ±0.5: |x| in [0.1, 0.4) (inside) or [0.7, 1.7) (clamped).
    "clamp": GradientCase(shapes: [(3, 4)], fill: { u in
        let m = abs(u) < 0.5 ? 0.1 + 0.6 * abs(u) : 0.7 + 2 * (abs(u) - 0.5)
        return u < 0 ? -m : m
    }) { Tensor.clamp($0[0], lower: -0.5, upper: 0.5) },
    "leakyRelu": GradientCase(shapes: [(3, 4)], fill: { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }) { Tensor.leakyRelu($0[0], slope: 0.2) },
    "exp": GradientCase(shapes: [(3, 4)]) { Tensor.exp($0[0]) },
    "log": GradientCase(shapes: [(3, 4)], fill: { 1.5 + $0 }) { Tensor.log($0[0]) },
    "square": GradientCase(shapes: [(3, 4)]) { Tensor.square($0[0]) },
    "dropout": GradientCase(shapes: [(4, 5)]) { x in
        var rng = SeededGenerator(seed: 99)  // same mask on every evaluation
        return Tensor.dropout(x[0], rate: 0.4, rng: &rng)
    },
    "softmaxRows": GradientCase(shapes: [(3, 5)], fill: { 2 * $0 }) { Tensor.softmaxRows($0[0]) },
    "logSoftmaxRows": GradientCase(shapes: [(3, 5)], fill: { 2 * $0 }) { Tensor.logSoftmaxRows($0[0]) },
    "normalizeRows": GradientCase(shapes: [(3, 5)]) { Tensor.normalizeRows($0[0]) },
    "loss bpr": GradientCase(shapes: [(6, 1), (6, 1)], fill: { 3 * $0 }) { Loss.bpr(positive: $0[0], negative: $0[1]) },
    "loss bpr via embeddings": GradientCase(shapes: [(4, 3), (6, 3)], sparseFirstInput: true) { p in
        let u = Tensor.gather(p[0], rows: [0, 1, 3, 1]), i = Tensor.gather(p[1], rows: [2, 5, 0, 2]), j = Tensor.gather(p[1], rows: [1, 1, 4, 3])
        return Loss.bpr(positive: Tensor.rowDot(u, i), negative: Tensor.rowDot(u, j))
    },
    "loss bpr fused (dense tables)": GradientCase(shapes: [(4, 3), (6, 3)]) { p in
        Loss.bprFactorization(userTable: p[0], itemTable: p[1], users: [0, 1, 3, 1], positives: [2, 5, 0, 2], negatives: [1, 1, 4, 3])
    },
    "loss bpr fused (sparse user table), width 20": GradientCase(shapes: [(4, 20), (6, 20)], sparseFirstInput: true) { p in
        Loss.bprFactorization(userTable: p[0], itemTable: p[1], users: [0, 1, 3, 1], positives: [2, 5, 0, 2], negatives: [1, 1, 4, 3])
    },
    "loss infoNCE in-batch": GradientCase(shapes: [(4, 3), (4, 3)]) { p in
        Loss.infoNCE(anchors: Tensor.normalizeRows(p[0]), candidates: Tensor.normalizeRows(p[1]), positives: [0, 1, 2, 3], temperature: 0.2)
    },
    "loss infoNCE all negatives": GradientCase(shapes: [(3, 4), (7, 4)]) { p in
        Loss.infoNCE(anchors: p[0], candidates: p[1], positives: [6, 0, 3], temperature: 0.5)
    },
    "loss infoNCE weighted rows": GradientCase(shapes: [(3, 4), (7, 4)]) { p in
        Loss.infoNCE(anchors: p[0], candidates: p[1], positives: [6, 0, 3], weights: [2, 1, 3], temperature: 0.5)
    },
    "loss cosineAlignment": GradientCase(shapes: [(4, 3), (4, 3)]) { Loss.cosineAlignment($0[0], $0[1]) },
    "loss embeddingPenalty squared": GradientCase(shapes: [(4, 3), (4, 3)]) { Loss.embeddingPenalty($0, batchSize: 4, squared: true) },
    "loss embeddingPenalty norm": GradientCase(shapes: [(4, 3), (4, 3)]) { Loss.embeddingPenalty($0, batchSize: 4, squared: false) },
    "loss mse": GradientCase(shapes: [(4, 3), (4, 3)]) { Loss.mse($0[0], $0[1]) },
    "ngcfLayer": GradientCase(shapes: [(4, 3), (4, 3), (3, 3), (1, 3), (3, 3), (1, 3)]) { p in
        var rng = SeededGenerator(seed: 5)
        return Tensor.ngcfLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0, rng: &rng)
    },
    "ngcfLayer with dropout": GradientCase(shapes: [(4, 3), (4, 3), (3, 3), (1, 3), (3, 3), (1, 3)]) { p in
        var rng = SeededGenerator(seed: 5)  // the same mask at every evaluation
        return Tensor.ngcfLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0.3, rng: &rng)
    },
    "ngcfLayer table-wide": GradientCase(shapes: [(4, 3), (4, 3), (3, 3), (1, 3), (3, 3), (1, 3)]) { p in
        var rng = SeededGenerator(seed: 5)
        return Tensor.ngcfLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0.3,
                                rng: &rng, chunked: false)
    },
    "two-layer graph model": GradientCase(shapes: [(5, 3), (3, 3), (1, 3)]) { p in
        // spmm → dense layer with bias → leaky relu → spmmᵀ-free second hop, as NGCF-like stacks do.
        let h = Tensor.leakyRelu(Tensor.matmul(Tensor.spmm(adjacency, p[0]), p[1]) + p[2])
        return Tensor.concatColumns([h, Tensor.tanh(h)])
    },
]

@Suite struct GradientTests {
    @Test(arguments: gradientCases.keys.sorted())
    func finiteDifferences(_ name: String) {
        checkFiniteDifferences(name, gradientCases[name]!)
    }

    /// The fused NGCF layer, chunked (where the CPU runs it) and table-wide, equals the chain of ops it replaces
    /// (same dropout generator), in value and in the gradient of every input. Enough rows for several chunks and
    /// two blocks of partial sums, and widths that are not multiples of the kernel's 16-column panels.
    @Test(arguments: [(4500, 6, 5), (400, 64, 64)])
    func ngcfLayerMatchesTheChainOfOps(rows: Int, din: Int, dout: Int) {
        var rng = SeededGenerator(seed: 29)
        func random(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let values = [random(rows, din), random(rows, din), random(din, dout), random(1, dout), random(din, dout), random(1, dout)]
        let weights = Tensor(random(rows, dout))
        func run(fused: Bool, chunked: Bool = false) -> (Matrix, [Matrix]) {
            let p = values.map { Tensor(parameter: $0) }
            var dropoutRNG = SeededGenerator(seed: 8)
            let y: Tensor
            if fused {
                y = Tensor.ngcfLayer(input: p[0], side: p[1], w1: p[2], b1: p[3], w2: p[4], b2: p[5], slope: 0.2, dropout: 0.25,
                                     rng: &dropoutRNG, chunked: chunked)
            } else {
                let z = Tensor.matmul(p[0] + p[1], p[2]) + p[3] + (Tensor.matmul(p[0] * p[1], p[4]) + p[5])
                y = Tensor.normalizeRows(Tensor.dropout(Tensor.leakyRelu(z, slope: 0.2), rate: 0.25, rng: &dropoutRNG))
            }
            Tensor.sum(y * weights).backward()
            return (y.value, p.map { $0.grad! })
        }
        let (chainValue, chainGrads) = run(fused: false)
        for chunked in Tensor.chunkedLayers ? [false, true] : [false] {
            let (fusedValue, fusedGrads) = run(fused: true, chunked: chunked)
            #expect(maxDifference(fusedValue, chainValue) < 1e-5, "chunked: \(chunked)")
            for k in 0..<6 {
                // Weight and bias gradients sum over every row: compare relative to their size.
                let scale = max(1, chainGrads[k].storage.map(abs).max() ?? 0)
                #expect(maxDifference(fusedGrads[k], chainGrads[k]) < 1e-4 * scale, "chunked: \(chunked), input \(k)")
            }
            #expect(fusedValue.storage.contains(0), "dropout zeroed some entries")
        }
    }

    /// The tiled InfoNCE (several pieces of several tiles) against the loss written out with dense ops.
    @Test func tiledInfoNCEMatchesTheDenseForm() {
        var rng = SeededGenerator(seed: 31)
        func random(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let (n, m, d) = (700, 9000, 5)  // 8 pieces of 87–88 rows, in 50-row tiles
        let a0 = random(n, d), c0 = random(m, d)
        let positives = (0..<n).map { _ in Int32(rng.next() % UInt64(m)) }
        func run(tiled: Bool) -> (Float, Matrix, Matrix) {
            let a = Tensor(parameter: a0), c = Tensor(parameter: c0)
            let loss: Tensor
            if tiled {
                loss = Loss.infoNCE(anchors: a, candidates: c, positives: positives, temperature: 0.3, maxTileFloats: 50 * m)
            } else {
                let logits = Tensor.scale(Tensor.matmul(a, c, transposeB: true), 1 / 0.3)
                let picked = Matrix(rows: n, cols: m, values: (0..<(n * m)).map { positives[$0 / m] == Int32($0 % m) ? 1 : 0 })
                loss = Tensor.scale(Tensor.sum(Tensor.logSoftmaxRows(logits) * Tensor(picked)), -1 / Float(n))
            }
            loss.backward()
            return (loss.value.storage[0], a.grad!, c.grad!)
        }
        let tiled = run(tiled: true), dense = run(tiled: false)
        #expect(abs(tiled.0 - dense.0) < 1e-4 * abs(dense.0))
        #expect(maxDifference(tiled.1, dense.1) < 1e-6)
        #expect(maxDifference(tiled.2, dense.2) < 1e-6)
    }

    @Test func weightedInfoNCEEqualsListingRowsRepeatedly() {
        // A batch listing rows [2, 0, 2, 1, 2, 0] of a table: once each with weights (3, 2, 1) gives the same loss
        // and the same gradients for the table and the candidates.
        var rng = SeededGenerator(seed: 32)
        func random(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let table0 = random(3, 4), candidates0 = random(40, 4)
        let list: [Int32] = [2, 0, 2, 1, 2, 0], positiveOf: [Int32] = [7, 31, 5]
        func run(_ rows: [Int32], weights: [Float]?) -> (Float, Matrix, Matrix) {
            let table = Tensor(parameter: table0), candidates = Tensor(parameter: candidates0)
            let loss = Loss.infoNCE(anchors: Tensor.gather(table, rows: rows), candidates: candidates,
                                    positives: rows.map { positiveOf[Int($0)] }, weights: weights, temperature: 0.4,
                                    maxTileFloats: 2 * 40)
            loss.backward()
            return (loss.value.storage[0], table.grad!, candidates.grad!)
        }
        let distinct = DistinctRows(list, bound: 3)
        #expect(distinct.rows == [2, 0, 1] && distinct.multiplicities == [3, 2, 1])
        let repeated = run(list, weights: nil), weighted = run(distinct.rows, weights: distinct.multiplicities)
        #expect(abs(repeated.0 - weighted.0) < 1e-5 * abs(repeated.0))
        #expect(maxDifference(repeated.1, weighted.1) < 1e-6)
        #expect(maxDifference(repeated.2, weighted.2) < 1e-6)
    }

    @Test func sharedSubgraphsAccumulate() {
        // y = x ⊙ x + x uses x three times: dy/dx = 2x + 1.
        let x = Tensor(parameter: Matrix(rows: 1, cols: 3, values: [1, -2, 0.5]))
        Tensor.sum(x * x + x).backward()
        #expect(x.grad!.storage == [3, -3, 2])
    }

    @Test func constantsGetNoGradient() {
        let c = Tensor(Matrix(rows: 2, cols: 2, repeating: 1))
        let p = Tensor(parameter: Matrix(rows: 2, cols: 2, repeating: 2))
        Tensor.sum(c * p).backward()
        #expect(c.grad == nil && !c.requiresGrad)
        #expect(p.grad!.storage == [1, 1, 1, 1])
    }
}

import Foundation

func maxDifference(_ a: Matrix, _ b: Matrix) -> Float {
    precondition(a.rows == b.rows && a.cols == b.cols)
    return zip(a.storage, b.storage).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Central differences on Σ out ⊙ R (R fixed random), accumulated in Double, against the tape's gradient:
/// ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) < 1e-2 for every input.
func checkFiniteDifferences(_ name: String, _ spec: GradientCase) {
    var rng = SeededGenerator(seed: 17)
    let values: [Matrix] = spec.shapes.map { r, c in
        Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in spec.fill(2 * rng.nextFloat() - 1) })
    }
    func forward(_ inputs: [Matrix]) -> (Tensor, [Tensor]) {
        let params = inputs.enumerated().map { i, m in Tensor(parameter: m, sparseGradients: i == 0 && spec.sparseFirstInput) }
        return (spec.build(params), params)
    }
    let (probe, _) = forward(values)
    let weights = Matrix(rows: probe.rows, cols: probe.cols, values: (0..<(probe.rows * probe.cols)).map { _ in 2 * rng.nextFloat() - 1 })
    func objective(_ inputs: [Matrix]) -> Double {
        let out = forward(inputs).0.value
        return zip(out.storage, weights.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let (out, params) = forward(values)
    Tensor.sum(out * Tensor(weights)).backward()
    let h: Float = 1e-2
    for (k, p) in params.enumerated() {
        let analytic = p.sparseGradients ? p.sparseGrad!.dense(rows: p.rows) : (p.grad ?? Matrix(rows: p.rows, cols: p.cols))
        var numeric = [Double](repeating: 0, count: values[k].storage.count)
        for e in 0..<numeric.count {
            var plus = values, minus = values
            plus[k].storage[e] += h
            minus[k].storage[e] -= h
            numeric[e] = (objective(plus) - objective(minus)) / Double(2 * h)
        }
        let diff = zip(analytic.storage, numeric).reduce(0.0) { $0 + pow(Double($1.0) - $1.1, 2) }.squareRoot()
        let scale = max(analytic.storage.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(),
                        numeric.reduce(0.0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
        #expect(diff / scale < 1e-2, "\(name): input \(k) relative error \(diff / scale)")
    }
}
