import Testing
import AffinityCore
import AffinityData
import AffinityModels
import AffinityEval
import AffinityTestSupport

/// Every gradient-trained model: the gradient of its batch loss with respect to every parameter matches
/// central finite differences on a tiny graph (dropout off, so the loss is a deterministic function).
@Suite struct ModelGradientTests {
    static let models: [(String, [String: String])] = [
        ("bpr", ["embedding_size": "4", "reg_weight": "0.1"]),
        // T-CE from the first batch (num_gradual 0): one of the four pairs dropped, in the fused and pointwise paths.
        ("bpr", ["embedding_size": "4", "reg_weight": "0.1", "denoise": "tce", "drop_rate": "0.3", "num_gradual": "0"]),
        ("bpr", ["embedding_size": "4", "loss": "bce", "denoise": "tce", "drop_rate": "0.3", "num_gradual": "0"]),
        ("lightgcn", ["embedding_size": "4", "n_layers": "2", "reg_weight": "0.1", "loss": "bce"]),
        // Power 2 makes the rarest item's weight 1/θ = 4, so the weighted terms are checked with weights ≠ 1.
        ("relmf", ["embedding_size": "4", "reg_weight": "0.1", "propensity_power": "2", "propensity_clip": "0.1"]),
        ("relmf", ["embedding_size": "4", "reg_weight": "0.1", "propensity_power": "2", "local_loss": "squared"]),
        ("lightgcn", ["embedding_size": "4", "n_layers": "2", "reg_weight": "0.1"]),
        ("lightgcn", ["embedding_size": "4", "n_layers": "3", "reg_weight": "0.1", "require_pow": "false"]),
        ("ngcf", ["embedding_size": "4", "hidden_size_list": "4,3", "message_dropout": "0", "reg_weight": "0.1"]),
        ("sgl", ["embedding_size": "4", "n_layers": "2", "reg_weight": "0.1", "ssl_weight": "0.5", "drop_ratio": "0.3"]),
        ("simgcl", ["embedding_size": "4", "n_layers": "2", "reg_weight": "0.1", "cl_weight": "0.5", "eps": "0.1"]),
        // temp 0.05 pushes some positive logits past the ±5 clamp, so both branches are checked.
        ("lightgcl", ["embedding_size": "4", "n_layers": "2", "svd_q": "2", "temp": "0.05", "lambda1": "0.5", "lambda2": "0.01"]),
        ("dccf", ["embedding_size": "4", "n_layers": "2", "n_intents": "3", "temp": "0.5", "emb_reg": "0.01", "cen_reg": "0.01", "ssl_reg": "0.5"]),
        // Multimodal models read the two small modalities below.
        ("vbpr", ["embedding_size": "4", "reg_weight": "0.1"]),
        ("freedom", ["embedding_size": "4", "knn_k": "2", "dropout": "0.3", "reg_weight": "0.5"]),
        ("lattice", ["embedding_size": "4", "knn_k": "3", "reg_weight": "0.1", "lambda_coeff": "0.5"]),
        ("lattice", ["embedding_size": "4", "knn_k": "3", "reg_weight": "0.1", "lambda_coeff": "0.5", "dense_graph": "true"]),
        ("bm3", ["embedding_size": "4", "n_layers": "2", "dropout": "0.3", "reg_weight": "0.1"]),
        // Knowledge-graph models read the small graph below; KGAT's collaborative phase with the attention fixed.
        ("cke", ["embedding_size": "4", "kg_embedding_size": "3", "reg_weight": "0.1", "kg_reg_weight": "0.1"]),
        ("kgat", ["embedding_size": "4", "kg_embedding_size": "3", "layers": "4,3", "mess_dropout": "0", "reg_weight": "0.1"]),
        // KGIN without dropout; both independence measures (distance correlation is the default).
        ("kgin", ["embedding_size": "4", "n_factors": "3", "context_hops": "2", "node_dropout_rate": "0", "mess_dropout_rate": "0",
                  "reg_weight": "0.1", "sim_regularity": "0.5"]),
        ("kgin", ["embedding_size": "4", "n_factors": "2", "context_hops": "3", "node_dropout_rate": "0", "mess_dropout_rate": "0",
                  "sim_regularity": "0.5", "ind": "cosine"]),
        // DiffKG after one diffusion phase and rebuild (epochWillStart), both views and the contrastive term; and
        // without the diffusion (the attention over the original facts in the ranking view).
        ("diffkg", ["embedding_size": "4", "dims": "6", "d_emb_size": "4", "mess_dropout_rate": "0", "reg": "0.1", "ssl_reg": "0.5",
                    "temp": "0.5", "rebuild_k": "2", "keepRate": "1"]),
        ("diffkg", ["embedding_size": "4", "dims": "6", "mess_dropout_rate": "0", "reg": "0.1", "diffusion": "false", "res_lambda": "0.3"]),
        ("sige", ["embedding_size": "4", "knn_k": "2", "eps": "0.3", "view_weight": "0.5", "anchor_weight": "0.5", "fuse_weight": "0.5", "reg_weight": "0.1"]),
    ]

    /// Two item modalities of the 5-item graph, with well separated similarities (so LATTICE's top-k sets
    /// do not change under the finite-difference steps).
    static let modalities = [
        Modality(name: "image", features: Matrix(rows: 5, cols: 3, values: [1, 0.1, 0, 0.9, 0.3, 0.1, 0, 1, 0.2, 0.1, 0.8, 0.9, 0.5, 0, 1]), source: "test"),
        Modality(name: "text", features: Matrix(rows: 5, cols: 2, values: [1, 0, 0.7, 0.7, 0, 1, -0.6, 0.8, 0.95, -0.3]), source: "test"),
    ]

    /// Facts about the 5 items: items 0–3 linked, item 4 not; entities 5 and 6 are not items; relations 0, 1 and
    /// their inverses 2, 3.
    static let knowledgeGraph = ItemKnowledgeGraph(
        itemCount: 5, entityCount: 7, relationCount: 4, linkedItems: 4,
        heads: [0, 1, 1, 2, 3, 5, 5, 6, 6, 6], relations: [0, 0, 1, 1, 0, 2, 2, 2, 3, 3], tails: [5, 5, 6, 6, 6, 0, 1, 3, 1, 2])

    @Test(arguments: 0..<models.count)
    func batchLossGradientMatchesFiniteDifferences(_ index: Int) throws {
        let (name, settings) = Self.models[index]
        // 4 users × 5 items.
        var data = TrainingData(userCount: 4, itemCount: 5, interactions: Interactions(
            users: [0, 0, 1, 1, 2, 2, 3, 3, 3], items: [0, 1, 1, 2, 2, 3, 0, 3, 4]), modalities: Self.modalities)
        data.knowledgeGraph = Self.knowledgeGraph
        var h = Hyperparameters(settings.merging(["epochs": "0"]) { a, _ in a })
        let model = try ModelRegistry.make(name, hyperparameters: &h) as! any GradientModel
        try model.fit(data, context: TrainingContext(seed: 3))
        (model as? BM3)?.freezeTargets()  // BM3's stop-gradient targets held fixed
        model.epochWillStart(0)  // models with per-epoch state (SGL's views) draw it here
        let users: [Int32] = [0, 1, 3, 2], pos: [Int32] = [1, 2, 4, 3], neg: [Int32] = [4, 0, 1, 0]
        // Per-epoch state is redrawn before every evaluation (deterministic per epoch), so LATTICE rebuilds its
        // learned graph each time, as on an epoch's first batch.
        func loss() -> Double {
            model.epochWillStart(0)
            return Double(model.batchLoss(users: users, positives: pos, negatives: neg, epoch: 0).scalar)
        }
        let l = model.batchLoss(users: users, positives: pos, negatives: neg, epoch: 0)
        l.backward()
        let analytic = model.parameters.map { p in p.sparseGradients ? p.sparseGrad!.dense(rows: p.rows) : (p.grad ?? Matrix(rows: p.rows, cols: p.cols)) }
        // 3e-3: small enough that a step rarely crosses a LeakyReLU kink (1e-2 does, for NGCF), large enough
        // for Float32 round-off (loss ≈ 0.7 ⇒ ~1e-5 relative noise).
        let h2: Float = 3e-3
        for (k, p) in model.parameters.enumerated() {
            var numeric = [Double](repeating: 0, count: p.value.storage.count)
            let original = p.value
            for e in 0..<numeric.count {
                var plus = original; plus.storage[e] += h2; p.assign(plus)
                let lp = loss()
                var minus = original; minus.storage[e] -= h2; p.assign(minus)
                let lm = loss()
                p.assign(original)
                numeric[e] = (lp - lm) / Double(2 * h2)
            }
            let diff = zip(analytic[k].storage, numeric).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
            let scale = max(numeric.reduce(0.0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
            #expect(diff / scale < 2e-2, "\(name) parameter \(k): relative error \(diff / scale)")
            p.zeroGrad()
        }
    }
}

@Suite struct NGCFTests {
    @Test func learnsAndBeatsMostPop() throws {
        let d = try Preprocessing(userCore: 10, itemCore: 20).apply(to: try Fixtures.movieLensSmall())
        let split = try DataSplit.make(d, strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        var h = Hyperparameters(["epochs": "15", "learning_rate": "0.005", "embedding_size": "16", "hidden_size_list": "16,16"])
        let model = try NGCF(&h)
        try model.fit(TrainingData(split: split), context: TrainingContext(seed: 1))
        var hp = Hyperparameters()
        let pop = try ModelRegistry.make("mostpop", hyperparameters: &hp)
        try pop.fit(TrainingData(split: split), context: TrainingContext())
        let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.ndcg])
        func ndcg(_ m: any Recommender) -> Double {
            evaluator.evaluate(m, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@20"]!
        }
        #expect(ndcg(model) > ndcg(pop) * 1.05, "ngcf \(ndcg(model)) vs mostpop \(ndcg(pop))")
        #expect(model.userEmbeddings.cols == 16 + 16 + 16)
    }
}

