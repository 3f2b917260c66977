import Foundation
import AffinityCore
import AffinityData

/// TiSASRec: time-interval-aware self-attention for sequential recommendation (Li, Wang & McAuley, WSDM 2020).
///
/// SASRec's causal self-attention, with what a key and a value carry made relative to the query: for query i and
/// key j, the key is K_j + P^K_j + R^K_ij and the value V_j + P^V_j + R^V_ij (eq. 6–7), where P are learned
/// absolute-position embeddings (one table for keys, one for values, not added to the input) and R embed the
/// personalised time interval r_ij = min(⌊|t_i − t_j| / r_min⌋, k): the gap between the two events in units of the
/// user's smallest non-zero gap r_min (1 when there is none), clipped at `time_span` k (eq. 3–4). Position and
/// interval embeddings are looked up once per batch, with dropout, and shared by every block, as in the authors'
/// code. Each block: Q = LN(x), x = Q + Attention(Q·W_Q, x·W_K + P^K + R^K, x·W_V + P^V + R^V), then
/// x = LN(x), x = x + FFN(x) (ReLU, dropout; eq. 8–9); a last LayerNorm; the input is the item embedding × √d with
/// dropout. Padding keys are masked (the authors' code zeroes padding inputs instead). The hidden state at
/// position t scores item i as ⟨h_t, e_i⟩ with the input's item table; the loss is the paper's binary cross-entropy
/// with one sampled negative per position (eq. 10).
///
/// Defaults are the authors' code's: hidden 50, 2 blocks, 1 head, dropout 0.2, 50 positions, k = 256,
/// Adam at 1e-3, batch 128, Xavier-normal initialisation. The paper's L2 penalty on the item embeddings
/// (`l2_emb` 5e-5) is not applied (`weight_decay` decays every parameter instead).
public final class TiSASRec: SequenceNetwork {
    public static let name = "tisasrec"
    public static let summary = "self-attention with time-interval and position embeddings in keys and values (Li et al. 2020)"

    public let hidden: Int
    public let layers: Int
    public let heads: Int
    public let dropout: Float
    public let timeSpan: Int
    public let sequence: SequenceSettings
    public var maxLength: Int { sequence.maxLength }
    public let training: TrainerSettings

    public var histories = UserSequences(items: [])
    public private(set) var history: [EpochReport] = []
    public private(set) var itemCount = 0

    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var positionKeys = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var positionValues = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var intervalKeys = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var intervalValues = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var blocks: [IntervalAttentionBlock] = []
    private var finalNorm = LayerNormParameters(width: 0)

    public var parameters: [Tensor] {
        [itemTable, positionKeys, positionValues, intervalKeys, intervalValues] + blocks.flatMap(\.parameters) + finalNorm.parameters
    }
    public var needsNegatives: Bool { true }

    public init(_ h: inout Hyperparameters) throws {
        hidden = try h.int("hidden_size", default: 50)
        layers = try h.int("n_layers", default: 2)
        heads = try h.int("n_heads", default: 1)
        dropout = Float(try h.float("dropout_prob", default: 0.2))
        timeSpan = try h.int("time_span", default: 256)
        sequence = try SequenceSettings(&h)
        training = try TrainerSettings(&h, batchSize: 128)
        guard hidden > 0, layers >= 0, heads > 0, hidden % heads == 0 else {
            throw HyperparameterError.outOfRange("hidden_size/n_heads", "hidden_size must be a positive multiple of n_heads")
        }
        guard (0..<1).contains(dropout) else { throw HyperparameterError.outOfRange("dropout_prob", "must be in [0, 1)") }
        guard timeSpan > 0 else { throw HyperparameterError.outOfRange("time_span", "must be positive") }
    }

    public func fit(_ data: TrainingData, context: TrainingContext) throws {
        prepare(itemCount: data.itemCount, seed: context.seed)
        histories = UserSequences(data.interactions, userCount: data.userCount)
        history = try SequenceTrainer(settings: training, maxLength: sequence.maxLength)
            .fit(self, data: data, sequences: histories, context: context)
    }

    public func prepare(itemCount: Int, seed: UInt64) {
        self.itemCount = itemCount
        var rng = SeededGenerator(seed: seed)
        itemTable = Tensor(parameter: xavierNormal(rows: itemCount, cols: hidden, rng: &rng))
        positionKeys = Tensor(parameter: xavierNormal(rows: sequence.maxLength, cols: hidden, rng: &rng))
        positionValues = Tensor(parameter: xavierNormal(rows: sequence.maxLength, cols: hidden, rng: &rng))
        intervalKeys = Tensor(parameter: xavierNormal(rows: timeSpan + 1, cols: hidden, rng: &rng))
        intervalValues = Tensor(parameter: xavierNormal(rows: timeSpan + 1, cols: hidden, rng: &rng))
        blocks = (0..<layers).map { _ in IntervalAttentionBlock(width: hidden, rng: &rng) }
        finalNorm = LayerNormParameters(width: hidden)
    }

    /// The user's time unit r_min: the smallest non-zero gap between consecutive events of `times` (oldest first),
    /// 1 when every event has the same time.
    public static func intervalScale(_ times: ArraySlice<Double>) -> Double {
        var smallest = Double.infinity
        for (a, b) in zip(times, times.dropFirst()) where b != a { smallest = min(smallest, abs(b - a)) }
        return smallest.isFinite ? smallest : 1
    }

    /// The clipped, scaled intervals r_ij = min(⌊|t_i − t_j| / scale⌋, span) of one left-padded sequence
    /// (`times` of `length` positions), row-major `[length, length]`; pairs with a padding position get 0 (masked out).
    public static func intervalMatrix(times: ArraySlice<Double>, padding: ArraySlice<Bool>, scale: Double, span: Int) -> [Int32] {
        let length = times.count
        let t = Array(times), pad = Array(padding)
        var r = [Int32](repeating: 0, count: length * length)
        for i in 0..<length where !pad[i] {
            for j in 0..<length where !pad[j] {
                r[i * length + j] = Int32(min((abs(t[i] - t[j]) / scale).rounded(.down), Double(span)))
            }
        }
        return r
    }

    /// The hidden states `[sequences · length, hidden]` of left-padded `inputs` with their `times` and each sequence's
    /// interval `scales`; dropout only when `seed` is given.
    func encode(_ inputs: [Int32], times: [Double], scales: [Double], length: Int, seed: UInt64?) -> Tensor {
        var rng = seed.map { SeededGenerator(seed: $0) }
        func drop(_ x: Tensor) -> Tensor {
            guard dropout > 0, rng != nil else { return x }
            return Tensor.dropout(x, rate: dropout, rng: &rng!)
        }
        let padding = inputs.map { $0 < 0 }
        var intervals: [Int32] = []
        intervals.reserveCapacity(inputs.count * length)
        for (s, scale) in scales.enumerated() {
            let positions = (s * length)..<((s + 1) * length)
            intervals += Self.intervalMatrix(times: times[positions], padding: padding[positions], scale: scale, span: timeSpan)
        }
        let rows = inputs.count
        let zeros = Tensor(Matrix(rows: rows, cols: hidden))
        let keyPositions = drop(Tensor.addPositionEmbeddings(zeros, positions: positionKeys, length: length))
        let valuePositions = drop(Tensor.addPositionEmbeddings(zeros, positions: positionValues, length: length))
        let keyIntervals = drop(Tensor.embeddingLookup(intervalKeys, ids: intervals))
        let valueIntervals = drop(Tensor.embeddingLookup(intervalValues, ids: intervals))
        var x = drop(Tensor.scale(Tensor.embeddingLookup(itemTable, ids: inputs), Float(hidden).squareRoot()))
        let mask = AttentionMask(causal: true, keyPadding: padding)
        for block in blocks {
            x = block.apply(x, length: length, heads: heads, mask: mask, keyPositions: keyPositions, valuePositions: valuePositions,
                            keyIntervals: keyIntervals, valueIntervals: valueIntervals,
                            attentionDropout: rng == nil ? 0 : dropout, attentionSeed: rng?.next() ?? 0, dropout: drop)
        }
        return finalNorm.apply(x)
    }

    public func batchLoss(_ batch: SequenceBatch, seed: UInt64) -> Tensor {
        let scales = batch.users.map { Self.intervalScale(histories.times[Int($0)][...]) }
        let states = Tensor.gather(encode(batch.inputs, times: batch.times, scales: scales, length: batch.length, seed: seed),
                                   rows: batch.targetPositions)
        return Loss.sampledBinaryCrossEntropy(hidden: states, itemTable: itemTable, positives: batch.targetItems, negatives: batch.negatives)
    }

    public func nextItemScores(_ sequences: [ArraySlice<Int32>], into out: UnsafeMutableBufferPointer<Float>) {
        nextItemScores(sequences, times: sequences.map { [Double](repeating: 0, count: $0.count)[...] }, into: out)
    }

    public func nextItemScores(_ sequences: [ArraySlice<Int32>], times: [ArraySlice<Double>], into out: UnsafeMutableBufferPointer<Float>) {
        precondition(times.count == sequences.count && zip(times, sequences).allSatisfy { $0.count == $1.count },
                     "TiSASRec: one timestamp per item")
        let length = sequence.maxLength
        let inputs = sequences.flatMap { UserSequences.leftPadded($0, maxLength: length) }
        let paddedTimes = times.flatMap { t in [Double](repeating: 0, count: max(0, length - t.count)) + t.suffix(length) }
        let states = encode(inputs, times: paddedTimes, scales: times.map(Self.intervalScale), length: length, seed: nil).value
        // The newest item sits at the last position of every row.
        let last = Matrix(rows: sequences.count, cols: hidden,
                          values: (0..<sequences.count).flatMap { Array(states.row($0 * length + length - 1)) })
        scoreItems(hidden: last, itemTable: itemTable.value, into: out)
    }
}

/// One TiSASRec block (the authors' code): Q = LN(x); x = Q + Attention(Q·W_Q + b_Q, x·W_K + b_K + P^K + R^K,
/// x·W_V + b_V + P^V + R^V); x = LN(x); x = x + Drop(Drop(ReLU(x·W_1 + b_1))·W_2 + b_2).
struct IntervalAttentionBlock {
    let query, key, value, expand, contract: (weight: Tensor, bias: Tensor)
    let attentionNorm, feedForwardNorm: LayerNormParameters

    init(width: Int, rng: inout SeededGenerator) {
        func layer() -> (weight: Tensor, bias: Tensor) {
            (Tensor(parameter: xavierNormal(rows: width, cols: width, rng: &rng)), Tensor(parameter: Matrix(rows: 1, cols: width)))
        }
        query = layer(); key = layer(); value = layer(); expand = layer(); contract = layer()
        attentionNorm = LayerNormParameters(width: width)
        feedForwardNorm = LayerNormParameters(width: width)
    }

    var parameters: [Tensor] {
        [query, key, value, expand, contract].flatMap { [$0.weight, $0.bias] } + attentionNorm.parameters + feedForwardNorm.parameters
    }

    func apply(_ x: Tensor, length: Int, heads: Int, mask: AttentionMask, keyPositions: Tensor, valuePositions: Tensor,
               keyIntervals: Tensor, valueIntervals: Tensor, attentionDropout: Float, attentionSeed: UInt64,
               dropout: (Tensor) -> Tensor) -> Tensor {
        func linear(_ input: Tensor, _ layer: (weight: Tensor, bias: Tensor)) -> Tensor {
            Tensor.linear(input, weight: layer.weight, bias: layer.bias)
        }
        let q = attentionNorm.apply(x)
        let attended = Tensor.multiHeadAttention(query: linear(q, query), key: linear(x, key) + keyPositions,
                                                 value: linear(x, value) + valuePositions, length: length, heads: heads,
                                                 mask: mask, dropout: attentionDropout, seed: attentionSeed,
                                                 relationKeys: keyIntervals, relationValues: valueIntervals)
        let y = feedForwardNorm.apply(q + attended)
        return y + dropout(linear(dropout(Tensor.relu(linear(y, expand))), contract))
    }
}
