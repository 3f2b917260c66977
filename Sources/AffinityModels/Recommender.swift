import AffinityCore
import AffinityData
import AffinityEval

/// What a model trains on.
public struct TrainingData: Sendable {
    public let userCount: Int
    public let itemCount: Int
    /// Binary user × item matrix of the training interactions (CSR, user rows).
    public let userItems: SparseMatrix
    /// The same matrix transposed (item rows).
    public let itemUsers: SparseMatrix
    /// The training interactions themselves (with ratings/timestamps when present).
    public let interactions: Interactions
    /// Item feature matrices (image, text, genres …), rows in item order; empty for models that do not
    /// use content.
    public var modalities: [Modality]
    /// Facts about the items (knowledge-graph models need them), in item order; nil when the data has none.
    public var knowledgeGraph: ItemKnowledgeGraph?

    public init(userCount: Int, itemCount: Int, interactions: Interactions, modalities: [Modality] = []) {
        self.userCount = userCount
        self.itemCount = itemCount
        self.interactions = interactions
        self.modalities = modalities
        userItems = interactions.matrix(users: userCount, items: itemCount)
        itemUsers = userItems.transposed()
    }

    public init(split: DataSplit, modalities: [Modality] = []) {
        self.init(userCount: split.userCount, itemCount: split.itemCount, interactions: split.train, modalities: modalities)
    }

    /// The knowledge graph, or an error naming the model that needs it.
    public func requireKnowledgeGraph(for model: String) throws -> ItemKnowledgeGraph {
        guard let graph = knowledgeGraph else { throw ModelError.missingKnowledgeGraph(model) }
        guard graph.itemCount == itemCount else {
            throw ModelError.tooLarge("the knowledge graph has \(graph.itemCount) items for \(itemCount)")
        }
        return graph
    }

    /// The modalities, or an error naming the model that needs them.
    public func requireModalities(for model: String) throws -> [Modality] {
        guard !modalities.isEmpty else { throw ModelError.missingModalities(model) }
        for m in modalities where m.features.rows != itemCount {
            throw ModelError.tooLarge("modality '\(m.name)' has \(m.features.rows) rows for \(itemCount) items")
        }
        return modalities
    }
}

/// Run-time services a model may use while fitting.
public struct TrainingContext {
    public var seed: UInt64
    public var showProgress: Bool
    public var log: (String) -> Void
    /// Validation metrics of a scorer (the CLI evaluates on the validation split); nil: no early stopping.
    public var validate: ((any Scorer) -> [String: Double])?
    /// Called after every epoch of gradient-trained models (the custom-model hook).
    public var onEpoch: ((EpochReport) -> Void)?
    /// A learning curve: every `monitorStep` epochs the trainer logs these metrics of the current parameters
    /// (the CLI's `--curve` evaluates the test split). Never used to select or stop.
    public var monitor: ((any Scorer) -> [String: Double])?
    public var monitorStep = 0
    /// Gradient-trained models save their state here after every epoch and resume from it when it exists.
    public var checkpoint: CheckpointSettings?
    /// Asked after every epoch of models that train in epochs: true ends the fit with `TrainingError.cancelled`
    /// (a server shutting down does not wait for a whole retrain).
    public var isCancelled: (@Sendable () -> Bool)?

    public init(seed: UInt64 = 2020, showProgress: Bool = false, log: @escaping (String) -> Void = { _ in },
                validate: ((any Scorer) -> [String: Double])? = nil, onEpoch: ((EpochReport) -> Void)? = nil) {
        self.seed = seed
        self.showProgress = showProgress
        self.log = log
        self.validate = validate
        self.onEpoch = onEpoch
    }

    public func progress(_ label: String, total: Int) -> ProgressReporter {
        ProgressReporter(label: label, total: total, enabled: showProgress)
    }
}

/// The one protocol every model conforms to: configured from hyperparameters (each with a documented
/// default), fitted on training data, then able to score all items for a batch of users.
public protocol Recommender: AnyObject, Scorer {
    /// The name used on the command line (`--model NAME`).
    static var name: String { get }
    /// One line for `affinity models`.
    static var summary: String { get }
    /// Reads the model's settings; unknown or invalid values throw.
    init(_ hyperparameters: inout Hyperparameters) throws
    /// Learns from `data`.
    func fit(_ data: TrainingData, context: TrainingContext) throws
}

public enum ModelError: Error, CustomStringConvertible {
    case unknownModel(String)
    case tooLarge(String)
    case notFitted(String)
    case missingModalities(String)
    case missingKnowledgeGraph(String)

    public var description: String {
        switch self {
        case .unknownModel(let name):
            return "unknown model '\(name)' (available: \(ModelRegistry.names.joined(separator: ", ")))"
        case .tooLarge(let why): return why
        case .notFitted(let name): return "model '\(name)' has not been fitted"
        case .missingKnowledgeGraph(let name):
            return "model '\(name)' needs an item knowledge graph: give --knowledge-graph PATH (a RecBole .kg file, with .link beside it, or KGAT's kg_final.txt) or put NAME.kg and NAME.link beside the data"
        case .missingModalities(let name):
            return "model '\(name)' needs item features: give --modality NAME=PATH.npy or NAME=builtin:genres|builtin:text (or put NAME_feat.npy files beside the data)"
        }
    }
}

/// Models that can rank items with no training interactions from their features (evaluated in the
/// cold-start-items mode; other models are reported as unable there). Reference baselines (MostPop,
/// Random) conform too, as the floor the others must beat.
public protocol ColdStartCapable: Recommender {}

/// Adds `row` (length `n`) scaled by `alpha` into `out`. The sparse-times-dense accumulation behind
/// the neighbourhood models' scoring.
@inline(__always)
func addScaledRow(_ out: UnsafeMutablePointer<Float>, _ row: UnsafePointer<Float>, _ n: Int, alpha: Float = 1) {
    for c in 0..<n { out[c] += alpha * row[c] }
}
