import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
@testable import AffinityModels
import AffinityTestSupport

@Suite struct GraphModelTests {
    /// RecBole's lr 1e-3 with patience 10 leaves LightGCN, and some seeds of SGL, on an early plateau on ml-100k
    /// (docs/benchmarks.md, "Graph models"): their defaults are lr 1e-2 and patience 30; the rest stay RecBole's.
    @Test func defaultsAvoidTheEarlyStoppingPlateau() throws {
        var h = Hyperparameters()
        let lightGCN = try LightGCN(&h)
        #expect(lightGCN.training.learningRate == 0.01 && lightGCN.training.stoppingStep == 10)
        var g = Hyperparameters()
        let sgl = try SGL(&g)
        #expect(sgl.training.learningRate == 0.001 && sgl.training.stoppingStep == 30)
        var r = Hyperparameters(["learning_rate": "0.001", "stopping_step": "10"])
        let recBoleLike = try LightGCN(&r)
        #expect(recBoleLike.training.learningRate == 0.001 && recBoleLike.training.stoppingStep == 10)
    }

    func smallSplit() throws -> DataSplit {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        return try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
    }

    func testNDCG(_ model: any Recommender, _ split: DataSplit) -> Double {
        RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
            .evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
    }

    /// MostPop's test NDCG@20 on `split`: the floor a learned model must clear.
    func mostPopNDCG(_ split: DataSplit) throws -> Double {
        var h = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &h)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        return testNDCG(pop, split)
    }

    @Test func fusedPropagationEqualsTheChainOfProducts() {
        // Mean of layers by meanPropagation vs spmm and + composed, forward and gradient.
        let r = SparseMatrix(rows: 3, cols: 4, rowIndices: [0, 0, 1, 2, 2], colIndices: [0, 2, 1, 2, 3])
        let a = SparseOperator(GraphNormalization.symmetricBipartite(r), symmetric: true)
        var rng = SeededGenerator(seed: 4)
        let e = Matrix(rows: 7, cols: 5, values: (0..<35).map { _ in rng.nextGaussian() })
        let p1 = Tensor(parameter: e), p2 = Tensor(parameter: e)
        let fused = Tensor.meanPropagation(a, p1, layers: 3)
        var layer = p2, total = p2
        for _ in 0..<3 { layer = Tensor.spmm(a, layer); total = total + layer }
        let chain = Tensor.scale(total, 0.25)
        for i in 0..<35 { #expect(abs(fused.value.storage[i] - chain.value.storage[i]) < 1e-5) }
        Tensor.sumOfSquares(Tensor.gather(fused, rows: [1, 5])).backward()
        Tensor.sumOfSquares(Tensor.gather(chain, rows: [1, 5])).backward()
        for i in 0..<35 { #expect(abs(p1.grad!.storage[i] - p2.grad!.storage[i]) < 1e-5) }
    }

    @Test(arguments: [5, 16, 64]) func propagationAtRowsEqualsGatheringTheFullResult(width: Int) {
        // The batch form computes the last hop for the listed rows only; value and gradient must not change.
        let r = SparseMatrix(rows: 3, cols: 4, rowIndices: [0, 0, 1, 2, 2], colIndices: [0, 2, 1, 2, 3])
        let a = SparseOperator(GraphNormalization.symmetricBipartite(r), symmetric: true)
        var rng = SeededGenerator(seed: 5)
        let e = Matrix(rows: 7, cols: width, values: (0..<(7 * width)).map { _ in rng.nextGaussian() })
        let rows: [Int32] = [1, 5, 1, 6]
        let p1 = Tensor(parameter: e), p2 = Tensor(parameter: e)
        let restricted = Tensor.meanPropagation(a, p1, layers: 3, at: rows)
        let full = Tensor.gather(Tensor.meanPropagation(a, p2, layers: 3), rows: rows)
        for i in 0..<(rows.count * width) { #expect(abs(restricted.value.storage[i] - full.value.storage[i]) < 1e-5) }
        let weights = Matrix(rows: rows.count, cols: width, values: (0..<(rows.count * width)).map { _ in rng.nextGaussian() })
        Tensor.sum(restricted * Tensor(weights)).backward()
        Tensor.sum(full * Tensor(weights)).backward()
        for i in 0..<(7 * width) { #expect(abs(p1.grad!.storage[i] - p2.grad!.storage[i]) < 1e-5) }
        // The same for one product read at rows (NGCF's last layer).
        let q1 = Tensor(parameter: e), q2 = Tensor(parameter: e)
        let rowsOnly = Tensor.spmm(a, q1, at: rows), gathered = Tensor.gather(Tensor.spmm(a, q2), rows: rows)
        for i in 0..<(rows.count * width) { #expect(abs(rowsOnly.value.storage[i] - gathered.value.storage[i]) < 1e-5) }
        Tensor.sum(rowsOnly * Tensor(weights)).backward()
        Tensor.sum(gathered * Tensor(weights)).backward()
        for i in 0..<(7 * width) { #expect(abs(q1.grad!.storage[i] - q2.grad!.storage[i]) < 1e-5) }
    }

    @Test func lightGCNLearnsAndBeatsMostPop() throws {
        let split = try smallSplit()
        var h = Hyperparameters(["epochs": "30", "learning_rate": "0.01", "embedding_size": "32", "n_layers": "2"])
        let model = try LightGCN(&h)
        let validator = RankingEvaluator(cutoffs: [10], metrics: [.mrr])
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1, validate: {
            validator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics
        }))
        let ours = testNDCG(model, split), baseline = try mostPopNDCG(split)
        #expect(ours > baseline * 1.05, "lightgcn \(ours) vs mostpop \(baseline)")
        #expect(model.history.first!.loss > model.history.last!.loss)
        #expect(model.userEmbeddings.rows == split.userCount && model.itemEmbeddings.rows == split.itemCount)
    }

    @Test func simGCLLearnsAndBeatsMostPop() throws {
        let split = try smallSplit()
        var h = Hyperparameters(["epochs": "20", "learning_rate": "0.01", "embedding_size": "32", "cl_tau": "0.5", "cl_weight": "0.01"])
        let model = try SimGCL(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        let ours = testNDCG(model, split), baseline = try mostPopNDCG(split)
        #expect(ours > baseline * 1.05, "simgcl \(ours) vs mostpop \(baseline)")
    }

    /// SimGCL propagates the last layer of its clean encoder and noisy views on the batch rows only, with noise
    /// keyed by node: reading a few rows must equal reading them from the layers computed on every node.
    @Test func simGCLBatchRowViewsEqualTheFullPropagation() throws {
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "1", "embedding_size": "8", "n_layers": "3"])
        let model = try SimGCL(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 3))
        let nodes = split.userCount + split.itemCount
        let rows: [Int32] = [5, 0, Int32(nodes - 1), 5]
        for key in [nil, SeededGenerator(seed: 7)] {
            let atRows = model.layerMean(at: rows, firstHop: nil, key: key).value
            let full = model.layerMean(at: (0..<Int32(nodes)).map { $0 }, firstHop: nil, key: key).value
            for (i, r) in rows.enumerated() {
                for c in 0..<8 { #expect(abs(atRows[i, c] - full[Int(r), c]) < 1e-6) }
            }
        }
        // The views differ from the clean encoder by the (propagated) noise.
        let clean = model.layerMean(at: rows, firstHop: nil, key: nil).value
        let noisy = model.layerMean(at: rows, firstHop: nil, key: SeededGenerator(seed: 7)).value
        let shift = (0..<8).map { c in noisy[0, c] - clean[0, c] }.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(shift > 0.01)
    }

    /// DCCF's per-edge masks are costly in a debug build, so it learns on the small clustered world.
    @Test func dccfLearnsAndBeatsMostPop() throws {
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "30", "learning_rate": "0.01", "embedding_size": "16", "n_intents": "8", "train_batch_size": "256"])
        let model = try DCCF(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        let ours = testNDCG(model, split), baseline = try mostPopNDCG(split)
        #expect(ours > baseline * 1.3, "dccf \(ours) vs mostpop \(baseline)")
        #expect(model.history.first!.loss > model.history.last!.loss)
    }

    /// With the official λ₁ 0.2 and τ 0.2 the contrastive term swamps BPR on dense MovieLens data (as for SimGCL);
    /// λ₁ 0.01 and τ 0.5 learn. Denser cores than the other tests keep the all-node InfoNCE cheap in debug builds.
    @Test func lightGCLLearnsAndBeatsMostPop() throws {
        let d = try Preprocessing(userCore: 20, itemCore: 60).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "8", "learning_rate": "0.01", "embedding_size": "32", "lambda1": "0.01", "temp": "0.5"])
        let model = try LightGCL(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        let ours = testNDCG(model, split), baseline = try mostPopNDCG(split)
        #expect(ours > baseline * 1.05, "lightgcl \(ours) vs mostpop \(baseline)")
        #expect(model.history.first!.loss > model.history.last!.loss)
    }

    /// The global view's batch rows equal the dense reconstruction Û = U S Vᵀ applied to the previous layers.
    @Test func lightGCLNeverNeedsTheDenseReconstruction() throws {
        // A full-rank SVD of a tiny matrix: U S Vᵀ reproduces Â, so G's user rows must equal E⁽⁰⁾ + Â Σ_{l<L} E_i⁽ˡ⁾.
        let data = TrainingData(userCount: 4, itemCount: 5, interactions: Interactions(
            users: [0, 0, 1, 1, 2, 2, 3, 3, 3], items: [0, 1, 1, 2, 2, 3, 0, 3, 4]))
        var h = Hyperparameters(["embedding_size": "3", "n_layers": "2", "svd_q": "4", "epochs": "0", "lambda1": "1", "lambda2": "0"])
        let model = try LightGCL(&h)
        try model.fit(data, context: TrainingContext(seed: 2))
        // With λ₁ = 1, λ₂ = 0 and temperature τ, the contrastive part of the loss is a function of G's batch rows;
        // compare the model's loss with one computed here from the dense Â.
        let users: [Int32] = [0, 2], pos: [Int32] = [1, 3], neg: [Int32] = [4, 0]
        let loss = Double(model.batchLoss(users: users, positives: pos, negatives: neg, epoch: 0).scalar)
        let a = GraphNormalization.symmetricBipartite(data.userItems)
        let e0 = model.nodeTable.value
        func spmm(_ x: Matrix) -> Matrix { a.multiply(x) }
        let e1 = spmm(e0), e2 = spmm(e1)
        var e = e0, previous = e0
        for i in 0..<e.storage.count { e.storage[i] += e1.storage[i] + e2.storage[i]; previous.storage[i] += e1.storage[i] }
        // Dense bipartite Â applied to the previous layers gives both views' propagation at once.
        var g = spmm(previous)
        for i in 0..<g.storage.count { g.storage[i] += e0.storage[i] }
        func dot(_ m: Matrix, _ r: Int, _ n: Matrix, _ c: Int) -> Double { (0..<3).reduce(0.0) { $0 + Double(m[r, $1] * n[c, $1]) } }
        func contrast(_ rows: [Int], candidates: Range<Int>) -> Double {
            var total = 0.0
            for r in rows {
                let x = dot(g, r, e, r) / 0.2
                let lse = log(candidates.reduce(0.0) { $0 + exp(dot(g, r, e, $1) / 0.2) })
                total += -min(max(x, -5), 5) + lse
            }
            return total / Double(rows.count)
        }
        var bpr = 0.0
        for k in 0..<2 {
            let margin = dot(e, Int(users[k]), e, 4 + Int(pos[k])) - dot(e, Int(users[k]), e, 4 + Int(neg[k]))
            bpr += log(1 + exp(-margin)) / 2
        }
        let expected = bpr + contrast(users.map(Int.init), candidates: 0..<4) + contrast((pos + neg).map { 4 + Int($0) }, candidates: 4..<9)
        #expect(abs(loss - expected) < 1e-3 * max(1, abs(expected)), "\(loss) vs \(expected)")
    }

    @Test func lightGCNWithoutLayersIsMatrixFactorisation() throws {
        // K = 0: the final embeddings are the layer-0 table itself.
        let split = try smallSplit()
        var h = Hyperparameters(["epochs": "1", "embedding_size": "8", "n_layers": "0", "eval_step": "0"])
        let model = try LightGCN(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        let table = model.nodeTable.value
        #expect(Array(model.userEmbeddings.storage) == Array(table.storage.prefix(split.userCount * 8)))
    }
}
