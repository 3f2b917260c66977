import Testing
import AffinityCore
import AffinityKernels
import Foundation

@Suite struct SparseKernelTests {
    func randomSparse(_ rows: Int, _ cols: Int, density: Float, _ rng: inout SeededGenerator) -> SparseMatrix {
        var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
        for i in 0..<rows { for j in 0..<cols where rng.nextFloat() < density { r.append(Int32(i)); c.append(Int32(j)); v.append(rng.nextFloat() - 0.5) } }
        return SparseMatrix(rows: rows, cols: cols, rowIndices: r, colIndices: c, values: v)
    }

    @Test(arguments: [1, 7, 16, 32, 64, 70, 128])
    func spmmMatchesReference(width: Int) {
        var rng = SeededGenerator(seed: UInt64(width))
        let a = randomSparse(600, 300, density: 0.03, &rng)
        let x = Matrix(rows: 300, cols: width, values: (0..<(300 * width)).map { _ in rng.nextFloat() })
        let fast = a.multiply(x), ref = a.referenceMultiply(x)
        for i in 0..<fast.storage.count { #expect(abs(fast.storage[i] - ref.storage[i]) < 1e-5) }
        // beta accumulation
        var y = fast
        a.multiply(x, into: &y, beta: 1)
        for i in 0..<y.storage.count { #expect(abs(y.storage[i] - 2 * ref.storage[i]) < 1e-5) }
        // the transpose product through the operator equals multiplying by the transposed matrix
        let op = SparseOperator(a)
        let g = Matrix(rows: 600, cols: width, values: (0..<(600 * width)).map { _ in rng.nextFloat() })
        let t1 = op.transpose.multiply(g), t2 = a.transposed().referenceMultiply(g)
        for i in 0..<t1.storage.count { #expect(abs(t1.storage[i] - t2.storage[i]) < 1e-4) }
    }

    @Test func symmetricNormalisedAdjacencyMatchesHandComputation() {
        // 2 users, 3 items: u0 {i0, i1}, u1 {i1, i2}. Degrees: u0 2, u1 2, i0 1, i1 2, i2 1.
        let r = SparseMatrix(rows: 2, cols: 3, rowIndices: [0, 0, 1, 1], colIndices: [0, 1, 1, 2])
        let a = GraphNormalization.symmetricBipartite(r)
        #expect(a.rows == 5 && a.nonZeros == 8)
        func entry(_ i: Int, _ j: Int) -> Float {
            for p in a.rowStart[i]..<a.rowStart[i + 1] where a.colIndex[p] == Int32(j) { return a.values[p] }
            return 0
        }
        let s2: Float = 1 / Float(2).squareRoot()
        #expect(abs(entry(0, 2) - s2) < 1e-6)          // u0–i0: 1/√(2·1)
        #expect(abs(entry(0, 3) - 0.5) < 1e-6)         // u0–i1: 1/√(2·2)
        #expect(abs(entry(3, 1) - 0.5) < 1e-6)         // i1–u1
        #expect(abs(entry(4, 1) - s2) < 1e-6)          // i2–u1
        #expect(entry(0, 1) == 0 && entry(2, 3) == 0)  // no user–user or item–item edges
        // Symmetric: equal to its transpose.
        #expect(a.transposed() == a)
        let rowNorm = GraphNormalization.rowNormalized(GraphNormalization.bipartite(r))
        #expect(abs(rowNorm.values[rowNorm.rowStart[3]] - 0.5) < 1e-6)   // item 1 has two users
    }

    @Test func randomizedSVDRecoversALowRankMatrix() throws {
        // A rank-3 sparse-ish matrix; its top-3 SVD must reconstruct it and match LAPACK's dense SVD.
        var rng = SeededGenerator(seed: 21)
        let m = 60, n = 40
        let left = Matrix(rows: m, cols: 3, values: (0..<(m * 3)).map { _ in rng.nextGaussian() })
        let right = Matrix(rows: 3, cols: n, values: (0..<(3 * n)).map { _ in rng.nextGaussian() })
        let dense = BLAS.matmul(left, right)
        var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
        for i in 0..<m { for j in 0..<n { r.append(Int32(i)); c.append(Int32(j)); v.append(dense[i, j]) } }
        let sparse = SparseMatrix(rows: m, cols: n, rowIndices: r, colIndices: c, values: v)
        let (u, s, vt) = try Decompositions.randomizedSVD(SparseOperator(sparse), rank: 3, seed: 5)
        let exact = try Decompositions.svd(dense)
        for k in 0..<3 { #expect(abs(s[k] - exact.s[k]) / exact.s[k] < 1e-3) }
        #expect(s[0] >= s[1] && s[1] >= s[2])
        var maxError: Float = 0
        for i in 0..<m { for j in 0..<n {
            var x: Float = 0
            for k in 0..<3 { x += u[i, k] * s[k] * vt[j, k] }
            maxError = max(maxError, abs(x - dense[i, j]))
        } }
        #expect(maxError < 1e-3 * exact.s[0])
    }

    @Test func cosineNeighboursMatchBruteForce() {
        var rng = SeededGenerator(seed: 8)
        let n = 300, f = 12, k = 5
        let x = Matrix(rows: n, cols: f, values: (0..<(n * f)).map { _ in rng.nextGaussian() })
        let (idx, sims) = CosineNeighbours.compute(x, k: k, block: 64)
        func cosine(_ a: Int, _ b: Int) -> Float {
            var dot: Float = 0, na: Float = 0, nb: Float = 0
            for c in 0..<f { dot += x[a, c] * x[b, c]; na += x[a, c] * x[a, c]; nb += x[b, c] * x[b, c] }
            return dot / (na.squareRoot() * nb.squareRoot())
        }
        for i in stride(from: 0, to: n, by: 17) {
            let brute = (0..<n).filter { $0 != i }.sorted { cosine(i, $0) > cosine(i, $1) }.prefix(k).map(Int32.init)
            #expect(Array(idx[(i * k)..<((i + 1) * k)]) == brute, "row \(i)")
            #expect(abs(sims[i * k] - cosine(i, Int(brute[0]))) < 1e-5)
        }
    }
}

@Suite struct OptimizerTests {
    @Test func adamFirstStepMovesByLearningRateTimesSign() {
        // Bias-corrected first step: m̂ = g, v̂ = g², so Δ = −lr · g / (|g| + ε).
        let p = Tensor(parameter: Matrix(rows: 1, cols: 3, values: [1, 2, 3]))
        Tensor.sum(p * Tensor(Matrix(rows: 1, cols: 3, values: [0.5, -2, 0]))).backward()
        Adam(learningRate: 0.1).step([p])
        #expect(abs(p.value.storage[0] - 0.9) < 1e-6 && abs(p.value.storage[1] - 2.1) < 1e-6 && p.value.storage[2] == 3)
        #expect(p.grad == nil)
    }

    @Test func sparseRowsEqualDenseUpdateOnTouchedRows() {
        // The same gather loss with dense and sparse gradients gives the same SGD update.
        let initial = Matrix(rows: 4, cols: 2, values: [1, 2, 3, 4, 5, 6, 7, 8])
        let dense = Tensor(parameter: initial), sparse = Tensor(parameter: initial, sparseGradients: true)
        for p in [dense, sparse] {
            Tensor.sum(Tensor.square(Tensor.gather(p, rows: [2, 0, 2]))).backward()
            SGD(learningRate: 0.1, weightDecay: 0.01).step([p])
        }
        for i in [0, 1, 4, 5] { #expect(abs(dense.value.storage[i] - sparse.value.storage[i]) < 1e-6) }
        // Untouched rows: dense decays them by weight decay, sparse leaves them (lazy).
        #expect(sparse.value.storage[2] == 3 && dense.value.storage[2] < 3)
    }

    @Test func sparseSGDWithoutDecayScattersRepeatedRowsLikeDense() {
        // Without weight decay SGD applies the uncoalesced rows directly, threads owning ranges of table rows.
        var rng = SeededGenerator(seed: 12)
        let initial = Matrix(rows: 3000, cols: 8, values: (0..<24000).map { _ in rng.nextGaussian() })
        let rows = (0..<5000).map { _ in Int32(rng.nextInt(below: 3000)) } + [7, 7, 2999]
        let dense = Tensor(parameter: initial), sparse = Tensor(parameter: initial, sparseGradients: true)
        for p in [dense, sparse] {
            Tensor.sum(Tensor.square(Tensor.gather(p, rows: rows))).backward()
            SGD(learningRate: 0.01).step([p])
        }
        let worst = zip(dense.value.storage, sparse.value.storage).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5)
        #expect(sparse.value.storage != initial.storage)
    }

    @Test func adamMinimisesAQuadratic() {
        let p = Tensor(parameter: Matrix(rows: 1, cols: 2, values: [3, -4]))
        let opt = Adam(learningRate: 0.1)
        for _ in 0..<500 {
            Tensor.sum(Tensor.square(p)).backward()
            opt.step([p])
        }
        #expect(abs(p.value.storage[0]) < 1e-2 && abs(p.value.storage[1]) < 1e-2)
    }
}

@Suite struct SoftmaxKernelTests {
    /// The vectorised exp behind InfoNCE matches a double-precision softmax over a wide range of logits.
    @Test func softmaxRowsMatchesDoublePrecision() {
        var rng = SeededGenerator(seed: 9)
        let rows = 5, cols = 37
        let logits = (0..<(rows * cols)).map { _ in (rng.nextFloat() * 2 - 1) * 40 }
        var out = logits
        var loss = [Double](repeating: 0, count: rows)
        let targets: [Int32] = [0, 5, 36, 17, 2]
        out.withUnsafeMutableBufferPointer { o in
            affinity_softmax_rows(o.baseAddress, Int64(rows), Int64(cols), 0.5, targets, &loss)
        }
        for r in 0..<rows {
            let x = (0..<cols).map { Double(logits[r * cols + $0]) * 0.5 }
            let mx = x.max()!
            let s = x.reduce(0) { $0 + Foundation.exp($1 - mx) }
            for c in 0..<cols {
                let reference = Foundation.exp(x[c] - mx) / s
                #expect(abs(Double(out[r * cols + c]) - reference) <= 1e-5 * reference + 1e-30)
            }
            #expect(abs(loss[r] - (mx + Foundation.log(s) - x[Int(targets[r])])) < 1e-4)
        }
    }
}
