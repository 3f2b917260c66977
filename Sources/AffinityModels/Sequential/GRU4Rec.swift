import AffinityCore
import AffinityData

/// GRU4Rec: a recurrent network over the item sequence (Hidasi et al., ICLR 2016), in RecBole 1.2.1's form (Tan et al.
/// 2016's improved training with cross-entropy): item embeddings (dropout `dropout_prob`), one GRU layer of `hidden_size`
/// units (`Tensor.gruCell` unrolled over the positions), a linear map back to `embedding_size`, and the softmax
/// cross-entropy of the next item over the whole catalogue with the input item table as the output layer. Every
/// position of a training window predicts its next item (`SequenceTrainer`); the hidden state stays zero through the
/// left padding. Initialisation as RecBole: Xavier-normal item table, Xavier-uniform GRU weights.
public final class GRU4Rec: SequenceNetwork {
    public static let name = "gru4rec"
    public static let summary = "recurrent next-item model with cross-entropy (Hidasi et al. 2016)"

    public let embedding: Int
    public let hidden: Int
    public let dropout: Float
    public let sequence: SequenceSettings
    public var maxLength: Int { sequence.maxLength }
    public let training: TrainerSettings

    public var histories = UserSequences(items: [])
    public private(set) var history: [EpochReport] = []
    public private(set) var itemCount = 0

    public private(set) var itemTable = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var inputWeights = Tensor(parameter: Matrix(rows: 0, cols: 0)), hiddenWeights = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var inputBias = Tensor(parameter: Matrix(rows: 0, cols: 0)), hiddenBias = Tensor(parameter: Matrix(rows: 0, cols: 0))
    private var projection = Tensor(parameter: Matrix(rows: 0, cols: 0)), projectionBias = Tensor(parameter: Matrix(rows: 0, cols: 0))

    public var parameters: [Tensor] { [itemTable, inputWeights, hiddenWeights, inputBias, hiddenBias, projection, projectionBias] }
    public var needsNegatives: Bool { false }

    public init(_ h: inout Hyperparameters) throws {
        embedding = try h.int("embedding_size", default: 64)
        hidden = try h.int("hidden_size", default: 128)
        dropout = Float(try h.float("dropout_prob", default: 0.3))
        sequence = try SequenceSettings(&h)
        training = try TrainerSettings(&h, batchSize: 128)
        guard embedding > 0, hidden > 0 else { throw HyperparameterError.outOfRange("embedding_size/hidden_size", "must be positive") }
        guard (0..<1).contains(dropout) else { throw HyperparameterError.outOfRange("dropout_prob", "must be in [0, 1)") }
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
        itemTable = Tensor(parameter: xavierNormal(rows: itemCount, cols: embedding, rng: &rng))
        inputWeights = Tensor(parameter: xavierUniform(rows: embedding, cols: 3 * hidden, rng: &rng))
        hiddenWeights = Tensor(parameter: xavierUniform(rows: hidden, cols: 3 * hidden, rng: &rng))
        // PyTorch's GRU biases: U(−1/√hidden, 1/√hidden).
        let bound = 1 / Float(hidden).squareRoot()
        func uniformBias() -> Matrix { Matrix(rows: 1, cols: 3 * hidden, values: (0..<(3 * hidden)).map { _ in (2 * rng.nextFloat() - 1) * bound }) }
        inputBias = Tensor(parameter: uniformBias())
        hiddenBias = Tensor(parameter: uniformBias())
        projection = Tensor(parameter: xavierUniform(rows: hidden, cols: embedding, rng: &rng))
        projectionBias = Tensor(parameter: Matrix(rows: 1, cols: embedding))
    }

    /// The projected outputs `[length · sequences, embedding]`, time-major (step t of sequence s in row t · sequences + s),
    /// from the first step any sequence has an item; dropout only when `seed` is given. Returns the first step too.
    func encode(_ inputs: [Int32], sequences: Int, length: Int, seed: UInt64?) -> (outputs: Tensor, firstStep: Int) {
        var rng = seed.map { SeededGenerator(seed: $0) }
        let firstStep = (0..<length).first { t in (0..<sequences).contains { inputs[$0 * length + t] >= 0 } } ?? length - 1
        var state = Tensor(Matrix(rows: sequences, cols: hidden))
        var steps: [Tensor] = []
        for t in firstStep..<length {
            let ids = (0..<sequences).map { inputs[$0 * length + t] }
            var x = Tensor.embeddingLookup(itemTable, ids: ids)
            if rng != nil && dropout > 0 { x = Tensor.dropout(x, rate: dropout, rng: &rng!) }
            state = Tensor.gruCell(input: x, hidden: state, inputWeights: inputWeights, hiddenWeights: hiddenWeights,
                                   inputBias: inputBias, hiddenBias: hiddenBias)
            if ids.contains(where: { $0 < 0 }) {
                // Padding keeps the state at zero until the sequence starts.
                var keep = Matrix(rows: sequences, cols: hidden)
                for (s, id) in ids.enumerated() where id >= 0 { for c in 0..<hidden { keep[s, c] = 1 } }
                state = state * Tensor(keep)
            }
            steps.append(state)
        }
        return (Tensor.linear(Tensor.concatRows(steps), weight: projection, bias: projectionBias), firstStep)
    }

    public func batchLoss(_ batch: SequenceBatch, seed: UInt64) -> Tensor {
        let (outputs, firstStep) = encode(batch.inputs, sequences: batch.sequences, length: batch.length, seed: seed)
        // Flat position s · length + t → time-major row (t − firstStep) · sequences + s.
        let rows = batch.targetPositions.map { p -> Int32 in
            let s = Int(p) / batch.length, t = Int(p) % batch.length
            return Int32((t - firstStep) * batch.sequences + s)
        }
        return Loss.softmaxCrossEntropy(hidden: Tensor.gather(outputs, rows: rows), itemTable: itemTable, targets: batch.targetItems)
    }

    public func nextItemScores(_ sequences: [ArraySlice<Int32>], into out: UnsafeMutableBufferPointer<Float>) {
        let length = sequence.maxLength, n = sequences.count
        let inputs = sequences.flatMap { UserSequences.leftPadded($0, maxLength: length) }
        let (outputs, firstStep) = encode(inputs, sequences: n, length: length, seed: nil)
        let lastRows = Array(((length - 1 - firstStep) * n)..<((length - firstStep) * n))
        let last = Matrix(rows: n, cols: embedding, values: lastRows.flatMap { Array(outputs.value.row($0)) })
        scoreItems(hidden: last, itemTable: itemTable.value, into: out)
    }
}
