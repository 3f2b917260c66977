import ArgumentParser
import AffinityCore
import AffinityData
import AffinityEval
import Foundation

/// `affinity bench …`: the Swift side of the scripts in Benchmarks/. Prints one JSON line per measurement.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Micro-benchmarks used by the scripts in Benchmarks/ (JSON output).",
        shouldDisplay: false,
        subcommands: [EvaluateBench.self, LoadBench.self])
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
