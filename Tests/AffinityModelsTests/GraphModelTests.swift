import Testing
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

@Suite struct GraphModelTests {
    func smallSplit() throws -> DataSplit {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        return try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
    }

    func testNDCG(_ model: any Recommender, _ split: DataSplit) -> Double {
        RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
            .evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
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

    @Test func lightGCNLearnsAndBeatsMostPop() throws {
        let split = try smallSplit()
        var h = Hyperparameters(["epochs": "30", "learning_rate": "0.01", "embedding_size": "32", "n_layers": "2"])
        let model = try LightGCN(&h)
        let validator = RankingEvaluator(cutoffs: [10], metrics: [.mrr])
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1, validate: {
            validator.evaluate($0, target: split.validMatrix, exclude: [split.trainMatrix]).metrics
        }))
        var hp = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &hp)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        let ours = testNDCG(model, split), baseline = testNDCG(pop, split)
        #expect(ours > baseline * 1.05, "lightgcn \(ours) vs mostpop \(baseline)")
        #expect(model.history.first!.loss > model.history.last!.loss)
        #expect(model.userEmbeddings.rows == split.userCount && model.itemEmbeddings.rows == split.itemCount)
    }

    @Test func simGCLLearnsAndBeatsMostPop() throws {
        let split = try smallSplit()
        var h = Hyperparameters(["epochs": "20", "learning_rate": "0.01", "embedding_size": "32", "cl_tau": "0.5", "cl_weight": "0.01"])
        let model = try SimGCL(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        var hp = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &hp)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        #expect(testNDCG(model, split) > testNDCG(pop, split) * 1.05, "simgcl \(testNDCG(model, split)) vs mostpop \(testNDCG(pop, split))")
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
