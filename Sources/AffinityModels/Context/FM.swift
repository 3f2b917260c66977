import AffinityCore
import AffinityData

/// Factorization machine (Rendle, "Factorization Machines", ICDM 2010), as RecBole's `FM`: for the field
/// embeddings v_1 … v_F of a row, logit = b + Σ_f w_f + Σ_{i<j} ⟨v_i, v_j⟩ (eq. 1), the pairwise sum in O(F·d)
/// by lemma 3.1 (`Tensor.factorizationMachine`). Trained with binary cross-entropy on the logits.
public final class FM: ContextNetwork {
    public static let name = "fm"
    public static let summary = "Factorization machine: first-order weights plus pairwise ⟨v_i, v_j⟩ of field embeddings (Rendle 2010)"

    public let dimension: Int
    public let trainerSettings: ContextTrainerSettings
    public private(set) var embeddings: FieldEmbeddings?

    public init(_ h: inout Hyperparameters) throws {
        dimension = try h.int("embedding_size", default: 10)
        trainerSettings = try ContextTrainerSettings(&h)
        guard dimension > 0 else { throw HyperparameterError.outOfRange("embedding_size", "must be positive") }
    }

    public func build(schema: FeatureSchema, rng: inout SeededGenerator) {
        embeddings = FieldEmbeddings(schema: schema, dimension: dimension, rng: &rng)
    }

    public var parameters: [Tensor] { embeddings?.parameters ?? [] }

    public func forward(_ bags: EmbeddingBags, rows: Int, dropout: inout SeededGenerator?) -> Tensor {
        let e = embeddings!
        let fields = Tensor.reshaped(e.embed(bags), rows: rows, cols: e.fieldCount * dimension)
        return e.firstOrder(bags, rows: rows) + Tensor.factorizationMachine(fields, fields: e.fieldCount)
    }
}
