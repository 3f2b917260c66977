import ArgumentParser
import AffinityApplication
import AffinityCLI
import AffinityCore
import AffinityData
import AffinityEval
import AffinityModels
import Foundation

/// `affinity-bench …`: the Swift side of the scripts in Benchmarks/. Prints one JSON line per measurement.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "affinity-bench",
        abstract: "Micro-benchmarks used by the scripts in Benchmarks/ (JSON output).",
        subcommands: [EvaluateBench.self, LoadBench.self, SpmmBench.self, GemmBench.self, BPREpochBench.self, ServeLoopBench.self, UnlearnBench.self, ItemGraphBench.self, InfoNCEBench.self, NGCFLayerBench.self, ContextScoreBench.self, RerankBench.self])
}

/// Building a cosine kNN item graph over random feature rows (what a modality costs at load time).
struct ItemGraphBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "item-graph")
    @Option var items = 100_000
    @Option var dimensions = 64
    @Option var k = 10

    func run() throws {
        var rng = SeededGenerator(seed: 1)
        let features = Matrix(rows: items, cols: dimensions, values: (0..<(items * dimensions)).map { _ in rng.nextGaussian() })
        let start = ContinuousClock.now
        let graph = ItemGraphs.cosineKNN(features, k: k)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        print(jsonLine([("bench", "item-graph"), ("items", items), ("dimensions", dimensions), ("k", k),
                        ("seconds", seconds), ("edges", graph.nonZeros), ("threads", Parallel.threads)]))
    }
}

/// `Loss.infoNCE` forward and backward (the SSL models' contrastive term) for SGL's Gowalla shapes by default:
/// a batch of unit-norm anchors against every user.
struct InfoNCEBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infonce")
    @Option var anchors = 2048
    @Option var candidates = 29858
    @Option var dim = 64
    @Option var repeats = 10
    @Option(help: "Logit floats per tile (0: the default).") var tileFloats = 0

    func run() throws {
        var rng = SeededGenerator(seed: 3)
        func unitRows(_ n: Int) -> Matrix {
            Tensor.normalizeRows(Tensor(Matrix(rows: n, cols: dim, values: (0..<(n * dim)).map { _ in rng.nextGaussian() }))).value
        }
        let a = Tensor(parameter: unitRows(anchors)), c = Tensor(parameter: unitRows(candidates))
        let tile = tileFloats > 0 ? tileFloats : Loss.infoNCETileFloats
        let positives = (0..<anchors).map { _ in Int32(rng.next() % UInt64(candidates)) }
        var loss: Float = 0
        func once() {
            a.zeroGrad(); c.zeroGrad()
            let l = Loss.infoNCE(anchors: a, candidates: c, positives: positives, temperature: 0.2, maxTileFloats: tile)
            l.backward()
            loss = l.value.storage[0]
        }
        once()
        var times: [Double] = []
        for _ in 0..<repeats { times.append(timed { once() }.1) }
        let s = median(times)
        print(jsonLine([("bench", "infonce"), ("anchors", anchors), ("candidates", candidates), ("dim", dim),
                        ("tile_floats", tile), ("median_s", s),
                        ("gflops", 6 * Double(anchors) * Double(candidates) * Double(dim) / s / 1e9), ("loss", Double(loss)),
                        ("blas_core", BLAS.coreName), ("threads", Parallel.threads)]))
    }
}

/// One NGCF layer (`Tensor.ngcfLayer`) on a full node table, forward and backward: the chunked kernel
/// (`Tensor.chunkedLayers`) and the table-wide passes with the system BLAS, alternating, against the layer's three
/// products alone (`[n, 2d]·[2d, d']`, its transpose-A weight gradient and `[n, d']·[d', 2d]` through the system
/// BLAS): what each path costs beyond the arithmetic.
struct NGCFLayerBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ngcf-layer")
    @Option var rows = 70839
    @Option var dim = 64
    @Option var repeats = 20

    func run() throws {
        var rng = SeededGenerator(seed: 4)
        func table(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in rng.nextGaussian() * 0.1 }) }
        let x = Tensor(parameter: table(rows, dim)), s = Tensor(parameter: table(rows, dim))
        let w1 = Tensor(parameter: table(dim, dim)), w2 = Tensor(parameter: table(dim, dim))
        let b1 = Tensor(parameter: Matrix(rows: 1, cols: dim)), b2 = Tensor(parameter: Matrix(rows: 1, cols: dim))
        let upstream = Tensor(table(rows, dim))
        var dropoutRNG = SeededGenerator(seed: 5)
        func layer(chunked: Bool) {
            for t in [x, s, w1, w2, b1, b2] { t.zeroGrad() }
            let y = Tensor.ngcfLayer(input: x, side: s, w1: w1, b1: b1, w2: w2, b2: b2, slope: 0.2, dropout: 0.1,
                                     rng: &dropoutRNG, chunked: chunked)
            Tensor.sum(y * upstream).backward()
        }
        let features = table(rows, 2 * dim), weights = table(2 * dim, dim), gz = table(rows, dim)
        func products() {
            _ = BLAS.matmul(features, weights)
            _ = BLAS.matmul(features, gz, transA: true)
            _ = BLAS.matmul(gz, weights, transB: true)
        }
        let chunkedAvailable = Tensor.chunkedLayers
        layer(chunked: false); layer(chunked: chunkedAvailable); products()
        var wide: [Double] = [], chunked: [Double] = [], product: [Double] = []
        for _ in 0..<repeats {
            wide.append(timed { layer(chunked: false) }.1)
            if chunkedAvailable { chunked.append(timed { layer(chunked: true) }.1) }
            product.append(timed { products() }.1)
        }
        let w = median(wide), p = median(product), c = chunkedAvailable ? median(chunked) : .nan
        print(jsonLine([("bench", "ngcf_layer"), ("rows", rows), ("dim", dim), ("table_wide_median_s", w),
                        ("chunked_median_s", c), ("products_median_s", p), ("chunked_over_table_wide", c / w),
                        ("blas_core", BLAS.coreName), ("threads", Parallel.threads)]))
    }
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

func jsonLine(_ fields: [(String, Any)]) -> String {
    "{" + fields.map { k, v in
        let value: String
        switch v {
        case let s as String: value = "\"\(s)\""
        case let d as Double: value = String(d)
        case let a as [Double]: value = "[" + a.map { String($0) }.joined(separator: ",") + "]"
        default: value = "\(v)"
        }
        return "\"\(k)\": \(value)"
    }.joined(separator: ", ") + "}"
}

/// Full-ranking evaluation of every test user given fixed user and item embeddings (random Gaussian,
/// seeded): scoring by BLAS plus masked top-K, as for any embedding model.
struct EvaluateBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evaluate")
    @OptionGroup var data: DataOptions
    @Option var dim = 64
    @Option var repeats = 5
    @Option(help: "Score-buffer size in floats (sets users per batch).") var bufferFloats = 1 << 23

    func run() throws {
        try reportingErrors {
            let dataset = try data.load()
            let split = try DataSplit.make(dataset, strategy: dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
            var rng = SeededGenerator(seed: 1)
            func gaussian(_ n: Int) -> [Float] {
                (0..<n).map { _ in
                    let u1 = max(rng.nextFloat(), 1e-7), u2 = rng.nextFloat()
                    return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2) * 0.1
                }
            }
            let scorer = EmbeddingScorer(userEmbeddings: Matrix(rows: dataset.userCount, cols: dim, values: gaussian(dataset.userCount * dim)),
                                         itemEmbeddings: Matrix(rows: dataset.itemCount, cols: dim, values: gaussian(dataset.itemCount * dim)))
            // The metrics RecBole computes by default, so both sides do the same work.
            let evaluator = RankingEvaluator(cutoffs: [20], metrics: [.recall, .mrr, .ndcg, .hit, .precision], maxBufferFloats: bufferFloats)
            var times: [Double] = []
            var users = 0
            for _ in 0..<repeats {
                let r = evaluator.evaluate(scorer, target: split.testMatrix, exclude: [split.trainMatrix])
                times.append(r.seconds)
                users = r.users.count
            }
            print(jsonLine([("bench", "evaluate"), ("dataset", dataset.name), ("users", users), ("items", dataset.itemCount),
                            ("dim", dim), ("median_s", median(times)), ("runs_s", times), ("blas_core", BLAS.coreName),
                            ("threads", Parallel.threads)]))
        }
    }
}

/// Reading the files and building the CSR structures (the split's user→item matrices and the item→user transpose).
struct LoadBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load")
    @OptionGroup var data: DataOptions
    @Option var repeats = 5

    func run() throws {
        try reportingErrors {
            var times: [Double] = []
            var counts = (0, 0, 0)
            for _ in 0..<repeats {
                let ((), s) = try timed {
                    let dataset = try data.load()
                    let split = try DataSplit.make(dataset, strategy: dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
                    let itemUsers = split.trainMatrix.transposed()
                    counts = (dataset.userCount, dataset.itemCount, split.trainMatrix.nonZeros + split.testMatrix.nonZeros + itemUsers.rows * 0)
                }
                times.append(s)
            }
            print(jsonLine([("bench", "load"), ("users", counts.0), ("items", counts.1), ("interactions", counts.2),
                            ("median_s", median(times)), ("runs_s", times)]))
        }
    }
}

/// Normalised bipartite adjacency (users + items) × a dense `[nodes, dim]` matrix: LightGCN's propagation step.
struct SpmmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spmm")
    @OptionGroup var data: DataOptions
    @Option var dim = 64
    @Option var repeats = 50

    func run() throws {
        try reportingErrors {
            let dataset = try data.load()
            let split = try DataSplit.make(dataset, strategy: dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
            let adjacency = GraphNormalization.symmetricBipartite(split.trainMatrix)
            var rng = SeededGenerator(seed: 1)
            let x = Matrix(rows: adjacency.cols, cols: dim, values: (0..<(adjacency.cols * dim)).map { _ in rng.nextGaussian() })
            var y = Matrix(rows: adjacency.rows, cols: dim)
            adjacency.multiply(x, into: &y)  // warm-up
            var times: [Double] = []
            for _ in 0..<repeats {
                let (_, s) = timed { adjacency.multiply(x, into: &y) }
                times.append(s)
            }
            let m = median(times)
            // Bytes touched once: values + column indices + row starts + the output; X rows are gathered
            // once per nonzero (d floats each).
            let bytes = Double(adjacency.nonZeros) * (4 + 4 + Double(dim) * 4) + Double(adjacency.rows) * (8 + Double(dim) * 4)
            var checksum = 0.0
            for v in y.storage.prefix(1000) { checksum += Double(v) }
            print(jsonLine([("bench", "spmm"), ("nodes", adjacency.rows), ("nnz", adjacency.nonZeros), ("dim", dim),
                            ("median_ms", m * 1000), ("effective_GBps", bytes / m / 1e9), ("threads", Parallel.threads),
                            ("checksum", checksum)]))
        }
    }
}

/// `C = A·B` through Affinity's BLAS wrapper for given shapes. `--compare-direct` alternates the direct kernel and
/// the system BLAS on the same operands, repeat by repeat, and reports both medians and their ratio.
struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm")
    @Option var m = 2048
    @Option var n = 40981
    @Option var k = 64
    @Option var repeats = 20
    @Flag(help: "Time the direct kernel against the system BLAS, alternating (tall products with a small B).")
    var compareDirect = false

    func run() throws {
        var rng = SeededGenerator(seed: 2)
        let a = Matrix(rows: m, cols: k, values: (0..<(m * k)).map { _ in rng.nextFloat() })
        let b = Matrix(rows: k, cols: n, values: (0..<(k * n)).map { _ in rng.nextFloat() })
        var c = Matrix(rows: m, cols: n)
        func once(_ path: BLAS.Path) {
            a.storage.withUnsafeBufferPointer { pa in b.storage.withUnsafeBufferPointer { pb in c.storage.withUnsafeMutableBufferPointer { pc in
                BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k,
                           b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n, path: path)
            } } }
        }
        let flops = 2 * Double(m) * Double(n) * Double(k)
        guard compareDirect else {
            once(.automatic)
            var times: [Double] = []
            for _ in 0..<repeats { times.append(timed { once(.automatic) }.1) }
            let s = median(times)
            print(jsonLine([("bench", "gemm"), ("m", m), ("n", n), ("k", k), ("median_s", s), ("gflops", flops / s / 1e9),
                            ("blas_core", BLAS.coreName), ("blas_threads", BLAS.threads)]))
            return
        }
        guard BLAS.directProducts else { throw ValidationError("this CPU does not run the direct kernel (AVX2 and FMA without AVX-512)") }
        once(.direct); once(.library)
        var direct: [Double] = [], library: [Double] = []
        for _ in 0..<repeats {
            direct.append(timed { once(.direct) }.1)
            library.append(timed { once(.library) }.1)
        }
        let d = median(direct), l = median(library)
        print(jsonLine([("bench", "gemm_direct_vs_blas"), ("m", m), ("n", n), ("k", k), ("direct_median_s", d),
                        ("blas_median_s", l), ("ratio", d / l), ("blas_core", BLAS.coreName), ("threads", Parallel.threads)]))
    }
}

/// Seconds per BPR-MF training epoch (batch 2048, 64 factors) — no validation.
struct BPREpochBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bpr-epoch")
    @OptionGroup var data: DataOptions
    @Option var epochs = 5
    @Option var dim = 64
    @Option var batch = 2048
    @Option(help: "adam (RecBole's setting) or sgd (implicit's algorithm).") var optimizer = "adam"
    @Option var learningRate = 0.001

    func run() throws {
        try reportingErrors {
            let dataset = try data.load()
            let split = try DataSplit.make(dataset, strategy: dataset.predefinedSplit != nil ? .predefined : .userRandomRatio([0.8, 0.1, 0.1]), seed: 2020)
            var h = Hyperparameters(["epochs": String(epochs), "embedding_size": String(dim), "train_batch_size": String(batch),
                                      "optimizer": optimizer, "learning_rate": String(learningRate)])
            let model = try BPRMF(&h)
            try model.fit(TrainingData(split: split), context: TrainingContext(seed: 2020))
            let times = model.history.map(\.seconds)
            print(jsonLine([("bench", "bpr-epoch"), ("optimizer", optimizer), ("dataset", dataset.name), ("interactions", split.train.count), ("dim", dim), ("batch", batch),
                            ("median_epoch_s", median(times)), ("epochs_s", times), ("last_loss", model.history.last!.loss)]))
        }
    }
}
