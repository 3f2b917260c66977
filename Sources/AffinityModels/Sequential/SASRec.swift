import Foundation
import AffinityCore
import AffinityData

/// SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).
///
/// The input at position t is the item's embedding plus a learned position embedding (eq. 2), then LayerNorm and
/// dropout; `n_layers` blocks of causal multi-head self-attention (eq. 3–4: position t attends to positions ≤ t, never to
/// padding) and a two-layer feed-forward network with GELU (eq. 5), each with residual connection, dropout and
/// LayerNorm after it (RecBole's post-norm `TransformerEncoder`); the hidden state at position t scores item i as
/// ⟨h_t, e_i⟩ with the same item table as the input (eq. 6–7, shared embeddings).
///
/// Losses: `loss=ce` (default, as RecBole and the "SASRec+" of Klenitskiy & Vasilev, RecSys 2023) is the softmax
/// cross-entropy over the whole catalogue at every position; `loss=bce` is the paper's binary cross-entropy with one
/// sampled negative per position (eq. 9). Defaults are RecBole 1.2.1's: 2 blocks, 2 heads, hidden 64, inner 256,
/// dropout 0.5 (hidden and attention), weights N(0, 0.02²), 50 positions. Every position of a training window is
/// trained at once (`SequenceTrainer`).
public final class SASRec: SequenceNetwork {
    public static let name = "sasrec"
    public static let summary = "causal self-attention over the item sequence (Kang & McAuley 2018); loss=ce or bce"

    public let hidden: Int
    public let inner: Int
    public let layers: Int
    public let heads: Int
    public let hiddenDropout: Float
    public let attentionDropout: Float
    public let initializerRange: Float
    public let loss: String
    public let sequence: SequenceSettings
    public var maxLength: Int { sequence.maxLength }
    public let training: TrainerSettings

    public var histories = UserSequences(items: [])
    public private(set) var history: [EpochReport] = []
    public private(set) var itemCount = 0

    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var positionTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var inputNorm = LayerNormParameters(width: 0)
    private var blocks: [TransformerBlock] = []

    public var parameters: [Tensor] {
        [itemTable, positionTable] + inputNorm.parameters + blocks.flatMap(\.parameters)
    }
    public var needsNegatives: Bool { loss == "bce" }

    public init(_ h: inout Hyperparameters) throws {
        hidden = try h.int("hidden_size", default: 64)
        inner = try h.int("inner_size", default: 256)
        layers = try h.int("n_layers", default: 2)
        heads = try h.int("n_heads", default: 2)
        hiddenDropout = Float(try h.float("hidden_dropout_prob", default: 0.5))
        attentionDropout = Float(try h.float("attn_dropout_prob", default: 0.5))
        initializerRange = Float(try h.float("initializer_range", default: 0.02))
        loss = try h.string("loss", default: "ce", allowed: ["ce", "bce"])
        sequence = try SequenceSettings(&h)
        training = try TrainerSettings(&h, batchSize: 128)
        guard hidden > 0, inner > 0, layers >= 0, heads > 0, hidden % heads == 0 else {
            throw HyperparameterError.outOfRange("hidden_size/n_heads", "hidden_size must be a positive multiple of n_heads")
        }
        guard (0..<1).contains(hiddenDropout), (0..<1).contains(attentionDropout) else {
            throw HyperparameterError.outOfRange("hidden_dropout_prob/attn_dropout_prob", "must be in [0, 1)")
        }
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
        itemTable = Tensor(parameter: gaussianTable(rows: itemCount, cols: hidden, std: initializerRange, rng: &rng))
        positionTable = Tensor(parameter: gaussianTable(rows: sequence.maxLength, cols: hidden, std: initializerRange, rng: &rng))
        inputNorm = LayerNormParameters(width: hidden)
        blocks = (0..<layers).map { _ in TransformerBlock(width: hidden, inner: inner, std: initializerRange, rng: &rng) }
    }

    /// The hidden states `[sequences · length, hidden]` of left-padded `inputs`; dropout only when `seed` is given.
    /// The first `blockCount` blocks (all of them by default) over every position.
    func encode(_ inputs: [Int32], length: Int, seed: UInt64?, blockCount: Int? = nil) -> Tensor {
        var rng = seed.map { SeededGenerator(seed: $0) }
        func drop(_ x: Tensor, _ rate: Float) -> Tensor {
            guard rate > 0, rng != nil else { return x }
            return Tensor.dropout(x, rate: rate, rng: &rng!)
        }
        var x = Tensor.addPositionEmbeddings(Tensor.embeddingLookup(itemTable, ids: inputs), positions: positionTable, length: length)
        x = drop(inputNorm.apply(x), hiddenDropout)
        let mask = AttentionMask(causal: true, keyPadding: inputs.map { $0 < 0 })
        for block in blocks.prefix(blockCount ?? blocks.count) {
            x = block.apply(x, length: length, heads: heads, mask: mask, attentionDropout: rng == nil ? 0 : attentionDropout,
                            attentionSeed: rng?.next() ?? 0, dropout: drop(_:_:), hiddenDropout: hiddenDropout)
        }
        return x
    }

    public func batchLoss(_ batch: SequenceBatch, seed: UInt64) -> Tensor {
        let states = Tensor.gather(encode(batch.inputs, length: batch.length, seed: seed), rows: batch.targetPositions)
        return loss == "ce"
            ? Loss.softmaxCrossEntropy(hidden: states, itemTable: itemTable, targets: batch.targetItems)
            : Loss.sampledBinaryCrossEntropy(hidden: states, itemTable: itemTable, positives: batch.targetItems,
                                             negatives: batch.negatives)
    }

    public func nextItemScores(_ sequences: [ArraySlice<Int32>], into out: UnsafeMutableBufferPointer<Float>) {
        let length = sequence.maxLength
        let inputs = sequences.flatMap { UserSequences.leftPadded($0, maxLength: length) }
        scoreItems(hidden: encodeNewest(inputs, length: length), itemTable: itemTable.value, into: out)
    }

    /// `encode`'s output at the newest (last) position of each sequence, `[sequences, hidden]`, without dropout. The
    /// earlier positions enter the last block only as keys and values, so that block computes its query, attention,
    /// output projection and feed-forward for the newest position alone: serving's encoder does ~40 % less work.
    func encodeNewest(_ inputs: [Int32], length: Int) -> Matrix {
        let x = encode(inputs, length: length, seed: nil, blockCount: max(0, blocks.count - 1))
        guard let last = blocks.last else { return TransformerBlock.newestRows(x.value, length: length) }
        return last.applyNewest(x, length: length, heads: heads, keyPadding: inputs.map { $0 < 0 })
    }
}

/// LayerNorm's gain (ones) and bias (zeros), `[1, width]` each.
struct LayerNormParameters {
    let gain: Tensor
    let bias: Tensor

    init(width: Int) {
        gain = Tensor(parameter: Matrix(rows: 1, cols: width, repeating: 1))
        bias = Tensor(parameter: Matrix(rows: 1, cols: width))
    }

    var parameters: [Tensor] { [gain, bias] }

    func apply(_ x: Tensor) -> Tensor { Tensor.layerNorm(x, gain: gain, bias: bias) }
}

/// One post-norm transformer encoder block (Vaswani et al. 2017; RecBole's `TransformerLayer`):
/// x ← LN(x + Drop(Attention(x)·W_O)), then x ← LN(x + Drop(GELU(x·W_1 + b_1)·W_2 + b_2)).
struct TransformerBlock {
    let query, key, value, output: (weight: Tensor, bias: Tensor)
    let expand, contract: (weight: Tensor, bias: Tensor)
    let attentionNorm, feedForwardNorm: LayerNormParameters

    init(width: Int, inner: Int, std: Float, rng: inout SeededGenerator) {
        func layer(_ input: Int, _ output: Int) -> (weight: Tensor, bias: Tensor) {
            (Tensor(parameter: gaussianTable(rows: input, cols: output, std: std, rng: &rng)), Tensor(parameter: Matrix(rows: 1, cols: output)))
        }
        query = layer(width, width); key = layer(width, width); value = layer(width, width); output = layer(width, width)
        expand = layer(width, inner); contract = layer(inner, width)
        attentionNorm = LayerNormParameters(width: width)
        feedForwardNorm = LayerNormParameters(width: width)
    }

    var parameters: [Tensor] {
        [query, key, value, output, expand, contract].flatMap { [$0.weight, $0.bias] } + attentionNorm.parameters + feedForwardNorm.parameters
    }

    func apply(_ x: Tensor, length: Int, heads: Int, mask: AttentionMask, attentionDropout: Float, attentionSeed: UInt64,
               dropout: (Tensor, Float) -> Tensor, hiddenDropout: Float) -> Tensor {
        func linear(_ input: Tensor, _ layer: (weight: Tensor, bias: Tensor)) -> Tensor {
            Tensor.linear(input, weight: layer.weight, bias: layer.bias)
        }
        let attended = Tensor.multiHeadAttention(query: linear(x, query), key: linear(x, key), value: linear(x, value),
                                                 length: length, heads: heads, mask: mask, dropout: attentionDropout, seed: attentionSeed)
        let y = attentionNorm.apply(x + dropout(linear(attended, output), hiddenDropout))
        let z = linear(Tensor.gelu(linear(y, expand)), contract)
        return feedForwardNorm.apply(y + dropout(z, hiddenDropout))
    }

    /// `apply` without dropout, for the last position of each sequence only (`[sequences, width]`): the newest
    /// position sees every unpadded key (causal mask), and a sequence with no unpadded key attends to nothing (a zero
    /// row, as `Tensor.multiHeadAttention` gives).
    func applyNewest(_ x: Tensor, length: Int, heads: Int, keyPadding: [Bool]) -> Matrix {
        func linear(_ input: Tensor, _ layer: (weight: Tensor, bias: Tensor)) -> Tensor {
            Tensor.linear(input, weight: layer.weight, bias: layer.bias)
        }
        let width = x.value.cols, sequences = x.value.rows / length, headWidth = width / heads
        let scale = 1 / Float(headWidth).squareRoot()
        let newest = Tensor(Self.newestRows(x.value, length: length))
        let q = linear(newest, query).value, k = linear(x, key).value, v = linear(x, value).value
        var attended = Matrix(rows: sequences, cols: width)
        var weights = [Float](repeating: 0, count: length)
        for s in 0..<sequences {
            for h in 0..<heads {
                let column = h * headWidth
                var maximum = -Float.infinity
                for j in 0..<length where !keyPadding[s * length + j] {
                    var dot: Float = 0
                    for c in column..<(column + headWidth) { dot += q[s, c] * k[s * length + j, c] }
                    weights[j] = dot * scale
                    maximum = max(maximum, weights[j])
                }
                guard maximum > -.infinity else { continue }
                var total: Float = 0
                for j in 0..<length {
                    weights[j] = keyPadding[s * length + j] ? 0 : Foundation.exp(weights[j] - maximum)
                    total += weights[j]
                }
                for j in 0..<length where weights[j] > 0 {
                    let w = weights[j] / total
                    for c in column..<(column + headWidth) { attended[s, c] += w * v[s * length + j, c] }
                }
            }
        }
        let y = attentionNorm.apply(newest + linear(Tensor(attended), output))
        return feedForwardNorm.apply(y + linear(Tensor.gelu(linear(y, expand)), contract)).value
    }

    /// The last row of each `length`-row sequence: the newest position.
    static func newestRows(_ x: Matrix, length: Int) -> Matrix {
        Matrix(rows: x.rows / length, cols: x.cols, values: (0..<(x.rows / length)).flatMap { Array(x.row($0 * length + length - 1)) })
    }
}
