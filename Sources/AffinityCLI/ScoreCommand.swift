import ArgumentParser
import AffinityApplication
import AffinityCore
import AffinityData
import AffinityServing
import Foundation

/// `affinity score`: batch top-K for user ids read on standard input, one JSON line each on standard output.
/// Built to be driven by another program (Spark's `rdd.pipe`, shell pipelines): it streams, so memory does not
/// grow with the input, and a bad line is reported and skipped rather than ending the run.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Top-K for every user id on standard input (one per line), as JSON lines on standard output.",
        discussion: """
        Each output line is {"user": ID, "items": [{"id": ITEM, "score": S}, …], "source": "model" | "popularity"},
        in input order. A user the model was not trained on gets the most popular training items (source
        "popularity", score = training interactions). Lines that are empty, longer than 256 bytes or not UTF-8 are
        reported on standard error with their line number and skipped; the exit status is then 1, after every
        other line has been written. Each block of users is written as soon as it is ranked.
        """)

    @Option(name: .long, help: "Model file written by `affinity train --save`.")
    var model: String

    @Option(name: .shortAndLong, help: "Items per user.")
    var k: Int = 10

    @Flag(name: .long, help: "Leave out the items each user interacted with in the model's training data.")
    var excludeSeen = false

    /// Users read before a block is scored and written: bounds memory and the delay before output appears.
    static let blockSize = 1024
    /// Users ranked together in one pass over the item table (as the server's scoring queue does).
    static let batchSize = 32

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        guard (1...10_000).contains(k) else { throw ValidationError("-k must be between 1 and 10000") }
        let artifact = try ModelArtifact.read(from: model)
        let scorer = BatchScorer(artifact: artifact, k: k, excludeSeen: excludeSeen)
        var block: [String] = []
        block.reserveCapacity(Self.blockSize)
        var lineNumber = 0, badLines = 0
        while let raw = readLine(strippingNewline: true) {
            lineNumber += 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
            if let problem = Self.problem(with: line) {
                writeStandardError("line \(lineNumber): \(problem)\n")
                badLines += 1
                continue
            }
            block.append(line)
            if block.count == Self.blockSize {
                try write(scorer.jsonLines(block))
                block.removeAll(keepingCapacity: true)
            }
        }
        if !block.isEmpty { try write(scorer.jsonLines(block)) }
        if badLines > 0 {
            throw ValidationError("\(badLines) of \(lineNumber) input lines were not user ids (see above); the others were scored")
        }
    }

    /// Why `line` is not a user id, if it is not.
    static func problem(with line: String) -> String? {
        if line.allSatisfy(\.isWhitespace) { return "empty line (expected a user id)" }
        if line.utf8.count > 256 { return "longer than 256 bytes (expected a user id)" }
        if line.unicodeScalars.contains("\u{FFFD}") { return "not valid UTF-8" }
        return nil
    }

    /// Straight to the descriptor, unbuffered: a block's lines are out before the next block is read.
    private func write(_ text: String) throws {
        try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    }
}

/// Ranks blocks of users against one saved model: batches of `ScoreCommand.batchSize` over the cores, results in
/// input order, so the output does not depend on how the users were blocked or on the thread count.
struct BatchScorer {
    let model: ServingModel
    let k: Int
    /// Each user's training items (when they are excluded).
    let seen: SparseMatrix?
    /// The fallback list of users the model does not know.
    let popular: [ScoredItem]

    init(artifact: ModelArtifact, k: Int, excludeSeen: Bool) {
        model = ServingModel(artifact: artifact)
        self.k = min(k, model.itemCount)
        seen = excludeSeen ? artifact.training.matrix(users: model.users.count, items: model.itemCount) : nil
        var counts = [Float](repeating: 0, count: model.itemCount)
        for i in artifact.training.items { counts[Int(i)] += 1 }
        popular = counts.withUnsafeMutableBufferPointer { ServingModel.top($0, k: k) }
    }

    /// One JSON line per user of `users`, in order.
    func jsonLines(_ users: [String]) -> String {
        var lines = [String](repeating: "", count: users.count)
        let batches = (users.count + ScoreCommand.batchSize - 1) / ScoreCommand.batchSize
        lines.withUnsafeMutableBufferPointer { out in
            let target = UnsafeSendable(out)
            Parallel.forEach(0..<batches) { b in
                let range = (b * ScoreCommand.batchSize)..<min(users.count, (b + 1) * ScoreCommand.batchSize)
                let known = range.compactMap { n in model.users.dense(users[n]).map { (n, $0) } }
                let exclude: (Int32) -> [Int32] = { u in seen.map { Array($0.columns(ofRow: Int(u))) } ?? [] }
                let ranked = model.recommend(known.map { (model.userVector($0.1), exclude($0.1), k) })
                var lists = [Int: [ScoredItem]]()
                for (entry, list) in zip(known, ranked) { lists[entry.0] = list }
                for n in range {
                    target.value[n] = jsonLine(user: users[n], lists[n] ?? popular, source: lists[n] == nil ? "popularity" : "model")
                }
            }
        }
        return lines.joined()
    }

    private func jsonLine(user: String, _ items: [ScoredItem], source: String) -> String {
        var out = #"{"user":"#
        appendJSONString(user, to: &out)
        out += #","items":["#
        for (n, entry) in items.enumerated() {
            if n > 0 { out += "," }
            out += #"{"id":"#
            appendJSONString(model.items.raw(entry.item), to: &out)
            out += #","score":"# + (entry.score.isFinite ? String(entry.score) : "null") + "}"
        }
        out += #"],"source":""# + source + "\"}\n"
        return out
    }
}
