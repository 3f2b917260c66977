import AffinityCore
import AffinityData

/// BERT4Rec: sequential recommendation with a bidirectional transformer trained by Cloze (Sun et al., CIKM 2019).
///
/// The input at position t is the item's embedding (or the learned [mask] embedding) plus a learned position
/// embedding, then LayerNorm and dropout; `n_layers` post-norm transformer blocks (as SASRec's) attend in both
/// directions, never to padding; an output layer GELU(h·W + b) with LayerNorm scores item i as ⟨o_t, e_i⟩ + b_i with
/// the input's item table (eq. 7 of the paper: shared embeddings, per-item output bias).
///
/// Training (Cloze, §3.6): each item of a training sequence is replaced by [mask] with probability `mask_ratio` and
/// the model predicts the masked items, softmax cross-entropy over all items. With probability `ft_ratio` a whole
/// batch instead masks only each sequence's last item, the fine-tuning step that matches prediction (RecBole 1.2.1's
/// `MaskItemSequence`). A sequence where no item was drawn has its last item masked. Prediction appends [mask] after
/// the newest `max_seq_length − 1` items and ranks items at its position. Training sequences are the last
/// `max_seq_length` items of each training window (`SequenceTrainer`). Defaults are RecBole 1.2.1's: 2 blocks,
/// 2 heads, hidden 64, inner 256, dropout 0.2 (hidden and attention), mask ratio 0.2, weights N(0, 0.02²).
public final class BERT4Rec: SequenceNetwork {
    public static let name = "bert4rec"
    public static let summary = "bidirectional transformer trained by masked-item (Cloze) prediction (Sun et al. 2019)"

    public let hidden: Int
    public let inner: Int
    public let layers: Int
    public let heads: Int
    public let hiddenDropout: Float
    public let attentionDropout: Float
    public let initializerRange: Float
    public let maskRatio: Double
    public let fineTuneRatio: Double
    public let sequence: SequenceSettings
    public var maxLength: Int { sequence.maxLength }
    public let training: TrainerSettings

    public var histories = UserSequences(items: [])
    public private(set) var history: [EpochReport] = []
    public private(set) var itemCount = 0

    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var maskEmbedding = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var positionTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var inputNorm = LayerNormParameters(width: 0)
    private var blocks: [TransformerBlock] = []
    private var outputLayer = (weight: Tensor(parameter: Matrix(rows: 0, cols: 0)), bias: Tensor(parameter: Matrix(rows: 0, cols: 0)))
    private var outputNorm = LayerNormParameters(width: 0)
    private var outputBias = Tensor(parameter: Matrix(rows: 0, cols: 0))

    /// The input id of the [mask] token (−1 is padding).
    static let mask: Int32 = -2

    public var parameters: [Tensor] {
        [itemTable, maskEmbedding, positionTable] + inputNorm.parameters + blocks.flatMap(\.parameters)
            + [outputLayer.weight, outputLayer.bias] + outputNorm.parameters + [outputBias]
    }
    public var needsNegatives: Bool { false }

    public init(_ h: inout Hyperparameters) throws {
        hidden = try h.int("hidden_size", default: 64)
        inner = try h.int("inner_size", default: 256)
        layers = try h.int("n_layers", default: 2)
        heads = try h.int("n_heads", default: 2)
        hiddenDropout = Float(try h.float("hidden_dropout_prob", default: 0.2))
        attentionDropout = Float(try h.float("attn_dropout_prob", default: 0.2))
        initializerRange = Float(try h.float("initializer_range", default: 0.02))
        maskRatio = try h.float("mask_ratio", default: 0.2)
        fineTuneRatio = try h.float("ft_ratio", default: 0.5)
        sequence = try SequenceSettings(&h)
        training = try TrainerSettings(&h, batchSize: 128)
        guard hidden > 0, inner > 0, layers >= 0, heads > 0, hidden % heads == 0 else {
            throw HyperparameterError.outOfRange("hidden_size/n_heads", "hidden_size must be a positive multiple of n_heads")
        }
        guard (0..<1).contains(hiddenDropout), (0..<1).contains(attentionDropout) else {
            throw HyperparameterError.outOfRange("hidden_dropout_prob/attn_dropout_prob", "must be in [0, 1)")
        }
        guard maskRatio > 0, maskRatio < 1 else { throw HyperparameterError.outOfRange("mask_ratio", "must be in (0, 1)") }
        guard (0...1).contains(fineTuneRatio) else { throw HyperparameterError.outOfRange("ft_ratio", "must be in [0, 1]") }
        guard sequence.maxLength >= 2 else { throw HyperparameterError.outOfRange("max_seq_length", "must be at least 2 (history and [mask])") }
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
        maskEmbedding = Tensor(parameter: gaussianTable(rows: 1, cols: hidden, std: initializerRange, rng: &rng))
        positionTable = Tensor(parameter: gaussianTable(rows: sequence.maxLength, cols: hidden, std: initializerRange, rng: &rng))
        inputNorm = LayerNormParameters(width: hidden)
        blocks = (0..<layers).map { _ in TransformerBlock(width: hidden, inner: inner, std: initializerRange, rng: &rng) }
        outputLayer = (Tensor(parameter: gaussianTable(rows: hidden, cols: hidden, std: initializerRange, rng: &rng)),
                       Tensor(parameter: Matrix(rows: 1, cols: hidden)))
        outputNorm = LayerNormParameters(width: hidden)
        outputBias = Tensor(parameter: Matrix(rows: itemCount, cols: 1))
    }

    /// The Cloze inputs of left-padded `sequences` (`length` positions each, −1 padding): the masked sequences, and
    /// the flat positions that were masked with the items they hid. `seed` draws the masks.
    func cloze(_ sequences: [Int32], length: Int, seed: UInt64) -> (inputs: [Int32], positions: [Int32], targets: [Int32]) {
        var rng = SeededGenerator(seed: seed)
        let lastOnly = Double(rng.nextFloat()) < fineTuneRatio
        var inputs = sequences, positions: [Int32] = [], targets: [Int32] = []
        for s in 0..<(sequences.count / length) {
            let last = (s + 1) * length - 1
            guard sequences[last] >= 0 else { continue }
            var masked = 0
            if !lastOnly {
                for p in (s * length)..<last where sequences[p] >= 0 && Double(rng.nextFloat()) < maskRatio {
                    inputs[p] = Self.mask; positions.append(Int32(p)); targets.append(sequences[p]); masked += 1
                }
            }
            if lastOnly || masked == 0 || Double(rng.nextFloat()) < maskRatio {
                inputs[last] = Self.mask; positions.append(Int32(last)); targets.append(sequences[last])
            }
        }
        return (inputs, positions, targets)
    }

    /// The output states `[sequences · length, hidden]` of left-padded `inputs` (−1 padding, `mask` for [mask]);
    /// dropout only when `seed` is given.
    func encode(_ inputs: [Int32], length: Int, seed: UInt64?) -> Tensor {
        var rng = seed.map { SeededGenerator(seed: $0) }
        func drop(_ x: Tensor, _ rate: Float) -> Tensor {
            guard rate > 0, rng != nil else { return x }
            return Tensor.dropout(x, rate: rate, rng: &rng!)
        }
        let items = Tensor.embeddingLookup(itemTable, ids: inputs.map { $0 == Self.mask ? -1 : $0 })
        let masks = Tensor.embeddingLookup(maskEmbedding, ids: inputs.map { $0 == Self.mask ? 0 : -1 })
        var x = Tensor.addPositionEmbeddings(items + masks, positions: positionTable, length: length)
        x = drop(inputNorm.apply(x), hiddenDropout)
        let mask = AttentionMask(causal: false, keyPadding: inputs.map { $0 == -1 })
        for block in blocks {
            x = block.apply(x, length: length, heads: heads, mask: mask, attentionDropout: rng == nil ? 0 : attentionDropout,
                            attentionSeed: rng?.next() ?? 0, dropout: drop(_:_:), hiddenDropout: hiddenDropout)
        }
        return outputNorm.apply(Tensor.gelu(Tensor.linear(x, weight: outputLayer.weight, bias: outputLayer.bias)))
    }

    /// ⟨o, e_i⟩ + b_i as one product: the states with a column of ones against the item table with the biases.
    private func withBias(_ states: Tensor) -> (hidden: Tensor, table: Tensor) {
        (Tensor.concatColumns([states, Tensor(Matrix(rows: states.rows, cols: 1, repeating: 1))]),
         Tensor.concatColumns([itemTable, outputBias]))
    }

    public func batchLoss(_ batch: SequenceBatch, seed: UInt64) -> Tensor {
        // The window's last `length` items: each input position's next item, right-aligned like the inputs.
        let (inputs, positions, targets) = cloze(batch.targets, length: batch.length, seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        let states = Tensor.gather(encode(inputs, length: batch.length, seed: seed), rows: positions)
        let scored = withBias(states)
        return Loss.softmaxCrossEntropy(hidden: scored.hidden, itemTable: scored.table, targets: targets)
    }

    public func nextItemScores(_ sequences: [ArraySlice<Int32>], into out: UnsafeMutableBufferPointer<Float>) {
        let length = sequence.maxLength
        let inputs = sequences.flatMap { UserSequences.leftPadded($0, maxLength: length - 1) + [Self.mask] }
        let states = encode(inputs, length: length, seed: nil)
        let last = Tensor.gather(states, rows: (0..<sequences.count).map { Int32($0 * length + length - 1) })
        let scored = withBias(last)
        scoreItems(hidden: scored.hidden.value, itemTable: scored.table.value, into: out)
    }
}
