import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import AffinityTestSupport

/// ml-latest-small (10-core users, 20-core items) with a small knowledge graph built from movies.csv: each film's
/// genres and decade as facts, written as RecBole `.kg`/`.link` files and read back through the reader.
/// `datasetFilmsOnly` writes the facts of the dataset's films alone (~1,300 films, not ~9,700, as entities).
func movieLensWithFacts(_ strategy: SplitStrategy = .userRandomRatio([0.8, 0.1, 0.1]),
                        datasetFilmsOnly: Bool = false) throws -> (DataSplit, ItemKnowledgeGraph) {
    let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
    let split = try DataSplit.make(d, strategy: strategy, seed: 2020)
    let movies = try String(contentsOfFile: Fixtures.repositoryRoot + "/data/ml-latest-small/movies.csv", encoding: .utf8)
    var kg = "head_id:token\trelation_id:token\ttail_id:token\n", link = "item_id:token\tentity_id:token\n"
    for line in movies.split(separator: "\n").dropFirst() {
        guard let first = line.firstIndex(of: ","), let last = line.lastIndex(of: ",") else { continue }
        let id = line[..<first], title = line[line.index(after: first)..<last]
        if datasetFilmsOnly && d.items.dense(String(id)) == nil { continue }
        link += "\(id)\tm.\(id)\n"
        for genre in line[line.index(after: last)...].split(separator: "|") { kg += "m.\(id)\tgenre\tg.\(genre)\n" }
        if let open = title.lastIndex(of: "("), let year = Int(title[title.index(after: open)...].prefix(4)) {
            kg += "m.\(id)\tdecade\ty.\(year / 10)\n"
        }
    }
    let folder = Fixtures.temporaryFolder("kg")
    let (graph, _) = try KnowledgeGraph.loadAtomic(kg: Fixtures.file("movies.kg", kg, in: folder),
                                                   link: Fixtures.file("movies.link", link, in: folder))
    return (split, graph.aligned(to: d.items))
}

@Suite struct KnowledgeGraphModelTests {
    func testNDCG(_ model: any Recommender, _ split: DataSplit) -> Double {
        RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
            .evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
    }

    func fitted(_ name: String, _ settings: [String: String], _ split: DataSplit, _ graph: ItemKnowledgeGraph) throws -> any Recommender {
        var h = Hyperparameters(settings)
        let model = try ModelRegistry.make(name, hyperparameters: &h)
        var data = TrainingData(split: split)
        data.knowledgeGraph = graph
        try model.fit(data, context: TrainingContext(seed: 1))
        return model
    }

    @Test func transRLossOnAHandBuiltTriple() throws {
        // d = k = 2, one relation with W = [[1, 2], [0, 1]] and e_r = (0.5, −1).
        var rng = SeededGenerator(seed: 1)
        let transR = TransR(relations: 1, dimension: 2, relationDimension: 2, rng: &rng)
        transR.projections[0].assign(Matrix(rows: 2, cols: 2, values: [1, 2, 0, 1]))
        transR.relationTable.assign(Matrix(rows: 1, cols: 2, values: [0.5, -1]))
        // Entities: h = (1, 0), t = (0, 1), t′ = (2, 2).
        let entities = Tensor(parameter: Matrix(rows: 3, cols: 2, values: [1, 0, 0, 1, 2, 2]))
        let batch = TripleBatch(heads: [0], relations: [0], positiveTails: [1], negativeTails: [2])
        // hW = (1, 2), tW = (0, 1), t′W = (2, 6); h W + e_r = (1.5, 1): d = 1.5² + 0² = 2.25, d′ = 0.5² + 5² = 25.25.
        let expected = log(1 + exp(2.25 - 25.25))
        #expect(abs(Double(transR.loss(entities, batch, regularization: 0).scalar) - expected) < 1e-6)
        // EmbLoss: the four rows' norms, divided by the batch size 1.
        let penalty = (5.0).squareRoot() + (1.25).squareRoot() + 1 + (40.0).squareRoot()
        #expect(abs(Double(transR.loss(entities, batch, regularization: 0.1).scalar) - (expected + 0.1 * penalty)) < 1e-5)
    }

    @Test func transRGradientMatchesFiniteDifferences() throws {
        var rng = SeededGenerator(seed: 5)
        let transR = TransR(relations: 3, dimension: 3, relationDimension: 2, rng: &rng)
        let entities = Tensor(parameter: gaussianTable(rows: 6, cols: 3, std: 0.7, rng: &rng), sparseGradients: true)
        // Relations out of order (the batch sorts them), one relation twice.
        let batch = TripleBatch(heads: [0, 3, 2, 5], relations: [2, 0, 2, 1], positiveTails: [1, 4, 0, 2], negativeTails: [5, 1, 3, 0])
        transR.loss(entities, batch, regularization: 0.3).backward()
        for p in [entities] + transR.parameters {
            let analytic = p.sparseGradients ? p.sparseGrad!.dense(rows: p.rows) : (p.grad ?? Matrix(rows: p.rows, cols: p.cols))
            let original = p.value
            var worst = 0.0
            for e in 0..<original.storage.count {
                var plus = original; plus.storage[e] += 1e-2; p.assign(plus)
                let lp = Double(transR.loss(entities, batch, regularization: 0.3).scalar)
                var minus = original; minus.storage[e] -= 1e-2; p.assign(minus)
                let lm = Double(transR.loss(entities, batch, regularization: 0.3).scalar)
                p.assign(original)
                worst = max(worst, abs((lp - lm) / 2e-2 - Double(analytic.storage[e])))
            }
            #expect(worst < 2e-3, "TransR gradient off by \(worst)")
            p.zeroGrad()
        }
    }

    @Test func kgatAttentionIsASoftmaxOverEachHeadsEdges() throws {
        // 3 users × 4 items; items 0–2 linked to facts, item 3 unlinked; entity 4 and 5 are not items.
        let graph = ItemKnowledgeGraph(itemCount: 4, entityCount: 6, relationCount: 2, linkedItems: 3,
                                       heads: [0, 1, 2, 4, 4, 5], relations: [0, 0, 0, 1, 1, 1], tails: [4, 4, 5, 0, 1, 2])
        var data = TrainingData(userCount: 3, itemCount: 4, interactions: Interactions(users: [0, 0, 1, 2, 2], items: [0, 3, 1, 2, 3]))
        data.knowledgeGraph = graph
        var h = Hyperparameters(["embedding_size": "4", "kg_embedding_size": "3", "layers": "4,2", "epochs": "0"])
        let model = try KGAT(&h)
        try model.fit(data, context: TrainingContext(seed: 2))
        model.epochWillStart(0)
        let ckg = try #require(model.collaborativeGraph)
        // Users are nodes 0..<3, entities follow; 6 facts + 5 interactions, each both ways.
        #expect(ckg.entityCount == 9 && ckg.tripleCount == 6 + 10 && ckg.relationCount == 4)
        let a = try #require(model.attention).matrix
        let scores = model.attentionScores()
        for row in 0..<a.rows where a.count(ofRow: row) > 0 {
            let range = a.rowStart[row]..<a.rowStart[row + 1]
            #expect(abs(a.values[range].reduce(0, +) - 1) < 1e-5, "row \(row)")
            // Softmax of the row's scores, computed directly.
            let exps = scores[range].map { exp(Double($0)) }, total = exps.reduce(0, +)
            for (p, e) in zip(range, exps) { #expect(abs(Double(a.values[p]) - e / total) < 1e-5) }
        }
        // A score by eq. 4 from the parameters: user 0 → item 3 (node 6) through relation "interact" (2).
        let edge = try #require((0..<ckg.tripleCount).first { ckg.heads[$0] == 0 && ckg.tails[$0] == 6 })
        let w = model.transR!.projections[2].value, e = model.nodeTable.value, r = model.transR!.relationTable.value
        var expected: Float = 0
        for c in 0..<3 {
            var hw: Float = 0, tw: Float = 0
            for k in 0..<4 { hw += e[0, k] * w[k, c]; tw += e[6, k] * w[k, c] }
            expected += tw * Foundation.tanh(hw + r[2, c])
        }
        #expect(abs(scores[edge] - expected) < 1e-5)
        // Concatenated layers: 4 + 4 + 2.
        #expect(model.userEmbeddings.cols == 10 && model.itemEmbeddings.rows == 4)
    }

    @Test func ckeLearnsAndBeatsMostPop() throws {
        let (split, graph) = try movieLensWithFacts()
        let model = try fitted("cke", ["epochs": "15", "embedding_size": "16", "kg_embedding_size": "16", "learning_rate": "0.01"], split, graph)
        let pop = try fitted("mostpop", [:], split, graph)
        #expect(testNDCG(model, split) > testNDCG(pop, split) * 1.05, "cke \(testNDCG(model, split)) vs mostpop \(testNDCG(pop, split))")
    }

    @Test func kgatLearnsAndBeatsMostPop() throws {
        let (split, graph) = try movieLensWithFacts()
        let model = try fitted("kgat", ["epochs": "3", "embedding_size": "16", "kg_embedding_size": "8", "layers": "16,8",
                                        "learning_rate": "0.01", "kg_batch_size": "8192", "train_batch_size": "4096"], split, graph)
        let pop = try fitted("mostpop", [:], split, graph)
        #expect(testNDCG(model, split) > testNDCG(pop, split) * 1.05, "kgat \(testNDCG(model, split)) vs mostpop \(testNDCG(pop, split))")
    }

    @Test func kginLearnsAndBeatsMostPop() throws {
        let (split, graph) = try movieLensWithFacts()
        let model = try fitted("kgin", ["epochs": "4", "embedding_size": "16", "learning_rate": "0.01", "train_batch_size": "4096"],
                               split, graph)
        let pop = try fitted("mostpop", [:], split, graph)
        #expect(testNDCG(model, split) > testNDCG(pop, split) * 1.05, "kgin \(testNDCG(model, split)) vs mostpop \(testNDCG(pop, split))")
    }

    /// KGIN's node dropout keeps exactly half of the facts, each head averaging over its kept ones, and redraws
    /// them every batch; the scoring embeddings are the sum of the layer-0 table and 3 unit-norm layers.
    @Test func kginNodeDropoutAndLayerSum() throws {
        let (split, graph) = try movieLensWithFacts()
        let model = try fitted("kgin", ["epochs": "0", "embedding_size": "8"], split, graph) as! KGIN
        let edges = try #require(model.edges)
        var rng = SeededGenerator(seed: 4)
        let (weights, interactions) = model.droppedGraph(rng: &rng)
        #expect(weights.filter { $0 > 0 }.count == edges.count / 2)
        for h in 0..<edges.nodeCount {
            let total = weights[edges.headStart[h]..<edges.headStart[h + 1]].reduce(0, +)
            // Float sums over up to hundreds of facts: 1 to rounding.
            #expect(total == 0 || abs(total - 1) < 1e-3, "head \(h): \(total)")
        }
        let kept = Double(interactions.matrix.nonZeros) / Double(split.train.count)
        #expect(kept > 0.45 && kept < 0.55)
        let (again, _) = model.droppedGraph(rng: &rng)
        #expect(again != weights)
        // An item with facts: ‖e_i − e⁰_i‖ ≤ 3 (three unit rows).
        let item = try #require((0..<graph.itemCount).first { graph.headStart[$0 + 1] > graph.headStart[$0] })
        var distance: Float = 0
        for c in 0..<8 { distance += pow(model.itemEmbeddings[item, c] - model.entityTable.value[item, c], 2) }
        #expect(distance.squareRoot() > 0.5 && distance.squareRoot() <= 3 + 1e-4)
    }

    /// Cold-start items: the held-out items have no training interaction, only their facts; ranking only them,
    /// CKE and KGIN beat Random. (KGAT after a few epochs here does not: see docs/notes/knowledge-graph.md, "Cold items".)
    @Test(arguments: [("cke", ["epochs": "10", "kg_embedding_size": "16", "learning_rate": "0.01"]),
                      ("kgin", ["epochs": "3", "learning_rate": "0.01", "train_batch_size": "4096"])])
    func coldItemsAreRankedThroughTheGraph(_ name: String, _ settings: [String: String]) throws {
        let (split, graph) = try movieLensWithFacts(.coldItems([0.8, 0.1, 0.1]))
        let testItems = Set(split.test.items)
        #expect(!testItems.isEmpty && split.train.items.allSatisfy { !testItems.contains($0) })
        var candidates = [Bool](repeating: false, count: split.itemCount)
        for i in testItems { candidates[Int(i)] = true }
        func ndcg(_ m: any Scorer) -> Double {
            RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
                .evaluate(CandidateScorer(m, candidates: candidates), target: split.testMatrix, exclude: [split.trainMatrix]).metrics["ndcg@20"]!
        }
        let model = try fitted(name, settings.merging(["embedding_size": "16"]) { a, _ in a }, split, graph)
        let random = try fitted("random", [:], split, graph)
        #expect(model is any ColdStartCapable)
        #expect(ndcg(model) > ndcg(random) * 1.2, "\(name) \(ndcg(model)) vs random \(ndcg(random))")
    }

    @Test func modelsWithoutAGraphSayWhatIsMissing() throws {
        var h = Hyperparameters(["epochs": "1"])
        let model = try ModelRegistry.make("cke", hyperparameters: &h)
        let data = TrainingData(userCount: 2, itemCount: 2, interactions: Interactions(users: [0, 1], items: [0, 1]))
        #expect(throws: ModelError.self) { try model.fit(data, context: TrainingContext()) }
    }
}
