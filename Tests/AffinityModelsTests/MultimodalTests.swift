import Testing
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels

/// A small world where content predicts taste: 4 clusters of 15 items; each user likes one cluster
/// (plus a little noise); two modalities carry the cluster (a noisy one-hot and a noisy random projection).
enum ClusteredWorld {
    static let users = 120, items = 60, clusters = 4

    static func dataset(seed: UInt64 = 5) -> Dataset {
        var rng = SeededGenerator(seed: seed)
        var inter = Interactions()
        for u in 0..<users {
            let c = u % clusters
            var chosen = Set<Int>()
            while chosen.count < 9 { chosen.insert(c * 15 + Int(rng.nextFloat() * 15) % 15) }
            chosen.insert(Int(rng.nextFloat() * Float(items)) % items)
            for i in chosen.sorted() { inter.users.append(Int32(u)); inter.items.append(Int32(i)) }
        }
        return Dataset(name: "clusters", users: IDMap(rawIDs: (0..<users).map(String.init)),
                       items: IDMap(rawIDs: (0..<items).map(String.init)), interactions: inter)
    }

    static func modalities(seed: UInt64 = 6) -> [Modality] {
        var rng = SeededGenerator(seed: seed)
        var oneHot = Matrix(rows: items, cols: clusters)
        let centroids = (0..<(clusters * 6)).map { _ in rng.nextGaussian() }
        var projected = Matrix(rows: items, cols: 6)
        for i in 0..<items {
            let c = i / 15
            for k in 0..<clusters { oneHot[i, k] = (k == c ? 1 : 0) + 0.1 * rng.nextGaussian() }
            for k in 0..<6 { projected[i, k] = centroids[c * 6 + k] + 0.3 * rng.nextGaussian() }
        }
        return [Modality(name: "image", features: oneHot, source: "test"), Modality(name: "text", features: projected, source: "test")]
    }

    static let settings: [String: [String: String]] = [
        "vbpr": ["embedding_size": "16", "learning_rate": "0.01"],
        "freedom": ["embedding_size": "16", "learning_rate": "0.01", "dropout": "0.3"],
        "lattice": ["embedding_size": "16", "learning_rate": "0.01", "knn_k": "5"],
        "bm3": ["embedding_size": "16", "learning_rate": "0.01"],
        "sige": ["embedding_size": "16", "learning_rate": "0.01", "knn_k": "5"],
    ]

    /// `epochs` nil: a model without training settings (baselines).
    static func fit(_ name: String, _ split: DataSplit, epochs: Int?) throws -> any Recommender {
        let training = epochs.map { ["epochs": String($0), "train_batch_size": "256"] } ?? [:]
        var h = Hyperparameters((settings[name] ?? [:]).merging(training) { a, _ in a })
        let model = try ModelRegistry.make(name, hyperparameters: &h)
        try model.fit(TrainingData(split: split, modalities: modalities()), context: TrainingContext(seed: 1))
        return model
    }
}

@Suite struct MultimodalTests {
    func ndcg(_ model: any Scorer, _ split: DataSplit) -> Double {
        RankingEvaluator(cutoffs: [10], metrics: [.ndcg])
            .evaluate(model, target: split.testMatrix, exclude: [split.trainMatrix, split.validMatrix]).metrics["ndcg@10"]!
    }

    @Test(arguments: ["vbpr", "freedom", "lattice", "bm3", "sige"])
    func learnsAndBeatsMostPop(_ name: String) throws {
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        let model = try ClusteredWorld.fit(name, split, epochs: 40)
        let pop = try ClusteredWorld.fit("mostpop", split, epochs: nil)
        #expect(ndcg(model, split) > ndcg(pop, split) * 1.3, "\(name) \(ndcg(model, split)) vs mostpop \(ndcg(pop, split))")
    }

    /// LATTICE's sparse learned graph is the dense reference's function: same embeddings, loss and gradient.
    @Test func latticeSparseGraphEqualsTheDenseOne() throws {
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
        func make(_ dense: Bool) throws -> LATTICE {
            var h = Hyperparameters(["epochs": "0", "embedding_size": "8", "knn_k": "5", "dense_graph": String(dense)])
            let model = try LATTICE(&h)
            try model.fit(TrainingData(split: split, modalities: ClusteredWorld.modalities()), context: TrainingContext(seed: 4))
            return model
        }
        let sparse = try make(false), dense = try make(true)
        for (a, b) in zip(sparse.itemEmbeddings.storage, dense.itemEmbeddings.storage) { #expect(abs(a - b) < 1e-4) }
        let users: [Int32] = [0, 5, 9], pos: [Int32] = [1, 20, 40], neg: [Int32] = [50, 2, 3]
        let ls = sparse.batchLoss(users: users, positives: pos, negatives: neg, epoch: 0)
        let ld = dense.batchLoss(users: users, positives: pos, negatives: neg, epoch: 0)
        #expect(abs(ls.scalar - ld.scalar) < 1e-5)
        ls.backward(); ld.backward()
        for (p, q) in zip(sparse.parameters, dense.parameters) {
            let gp = p.grad?.storage ?? [], gq = q.grad?.storage ?? []
            #expect(gp.count == gq.count)
            let diff = zip(gp, gq).map { abs($0 - $1) }.max() ?? 0, scale = gq.map(abs).max() ?? 0
            #expect(diff <= 1e-3 * max(scale, 1e-3), "gradient differs by \(diff) (scale \(scale))")
        }
    }

    @Test func needsModalities() throws {
        var h = Hyperparameters()
        let model = try ModelRegistry.make("freedom", hyperparameters: &h)
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .userRandomRatio([0.8, 0.1, 0.1]), seed: 1)
        #expect(throws: ModelError.self) { try model.fit(TrainingData(split: split), context: TrainingContext()) }
    }

    /// Cold-start items: held-out items have no training interactions; ranking only them, the feature-aware
    /// models beat MostPop and Random.
    @Test(arguments: ["vbpr", "freedom", "lattice", "sige"])
    func coldItemsAreRankedFromFeatures(_ name: String) throws {
        let split = try DataSplit.make(ClusteredWorld.dataset(), strategy: .coldItems([0.7, 0.1, 0.2]), seed: 2020)
        let testItems = Set(split.test.items)
        #expect(!testItems.isEmpty && split.train.items.allSatisfy { !testItems.contains($0) })
        var candidates = [Bool](repeating: false, count: ClusteredWorld.items)
        for i in testItems { candidates[Int(i)] = true }
        func recall(_ m: any Scorer) -> Double {
            RankingEvaluator(cutoffs: [5], metrics: [.recall])
                .evaluate(CandidateScorer(m, candidates: candidates), target: split.testMatrix, exclude: [split.trainMatrix]).metrics["recall@5"]!
        }
        let model = try ClusteredWorld.fit(name, split, epochs: 40)
        let pop = try ClusteredWorld.fit("mostpop", split, epochs: nil), random = try ClusteredWorld.fit("random", split, epochs: nil)
        #expect(model is any ColdStartCapable)
        #expect(recall(model) > recall(pop) * 1.3 && recall(model) > recall(random) * 1.3,
                "\(name) \(recall(model)) vs mostpop \(recall(pop)), random \(recall(random))")
    }
}

@Suite struct DegreeSensitivePruningTests {
    /// A star-heavy graph: user 0 and item 0 have high degree, the rest are sparse.
    static func graph() -> SparseMatrix {
        var rows: [Int32] = [], cols: [Int32] = []
        for i in 0..<40 { rows.append(0); cols.append(Int32(i)) }                 // user 0: every item
        for u in 1..<40 { rows.append(Int32(u)); cols.append(0) }                 // item 0: every user
        for u in 1..<40 { rows.append(Int32(u)); cols.append(Int32(1 + (u * 7) % 39)) }
        return SparseMatrix(rows: 40, cols: 40, rowIndices: rows, colIndices: cols)
    }

    @Test(arguments: [0.2, 0.5, 0.9])
    func keepsTheConfiguredFraction(_ keep: Double) {
        let r = Self.graph()
        var rng = SeededGenerator(seed: 3)
        let kept = DegreeSensitivePruning.sample(r, keep: keep, rng: &rng)
        #expect(kept.nonZeros == Int(Double(r.nonZeros) * keep))
        for u in 0..<kept.rows { for i in kept.columns(ofRow: u) { #expect(r.contains(row: u, col: i)) } }
    }

    @Test func prefersLowDegreeEdges() {
        let r = Self.graph()
        // Over many draws, an edge between two degree-1-ish nodes survives far more often than one touching the hubs.
        var hubKept = 0, sparseKept = 0
        for s in 0..<200 {
            var rng = SeededGenerator(seed: UInt64(s))
            let kept = DegreeSensitivePruning.sample(r, keep: 0.5, rng: &rng)
            for u in 1..<40 {
                if kept.contains(row: u, col: 0) { hubKept += 1 }
                if kept.contains(row: u, col: Int32(1 + (u * 7) % 39)) { sparseKept += 1 }
            }
        }
        #expect(Double(sparseKept) > 1.5 * Double(hubKept), "low-degree edges kept \(sparseKept), hub edges \(hubKept)")
    }
}

/// SIGE's open choices (see the model file), each pinned down.
@Suite struct SIGEChoiceTests {
    @Test func perturbationScalesWithEachRowsModulusAndKeepsSigns() {
        var rng = SeededGenerator(seed: 8)
        let h = Tensor(Matrix(rows: 3, cols: 4, values: [1, -2, 0.5, 1, 10, -20, 5, 10, 0.01, 0.02, -0.01, 0.03]))
        let v = SIGE.modulusPerturbation(h, epsilon: 0.2, rng: &rng)
        for r in 0..<3 {
            var shift: Float = 0, norm: Float = 0
            for c in 0..<4 {
                let delta = v.value[r, c] - h.value[r, c]
                #expect(delta * h.value[r, c] >= 0, "the noise follows sign(h)")
                shift += delta * delta; norm += h.value[r, c] * h.value[r, c]
            }
            #expect(abs(shift.squareRoot() - 0.2 * norm.squareRoot()) < 1e-4 * max(norm.squareRoot(), 1), "row \(r): ‖v − h‖ = ε‖h‖")
        }
    }

    @Test func enhancedGraphMixesSemanticAndCollaborativeEdges() {
        let semantic = ItemGraphs.symmetricNormalized(SparseMatrix(rows: 3, cols: 3, rowIndices: [0, 0, 1, 1, 2, 2], colIndices: [0, 1, 1, 0, 2, 1]))
        let collaborative = ItemGraphs.symmetricNormalized(SparseMatrix(rows: 3, cols: 3, rowIndices: [0, 2], colIndices: [2, 0]))
        // β = 0 leaves the semantic graph unchanged; β in (0, 1) keeps the union of both edge sets.
        let none = SIGE.enhancedGraph(semantic: semantic, collaborative: collaborative, beta: 0)
        #expect(zip(denseRows(none), denseRows(semantic)).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) < 1e-6 } })
        let half = denseRows(SIGE.enhancedGraph(semantic: semantic, collaborative: collaborative, beta: 0.5))
        #expect(half[0][2] > 0 && half[2][0] > 0 && half[0][1] > 0 && half[1][1] > 0)
    }
}

/// A sparse matrix as dense rows.
func denseRows(_ m: SparseMatrix) -> [[Float]] {
    var out = [[Float]](repeating: [Float](repeating: 0, count: m.cols), count: m.rows)
    for r in 0..<m.rows { for p in m.rowStart[r]..<m.rowStart[r + 1] { out[r][Int(m.colIndex[p])] = m.values[p] } }
    return out
}
