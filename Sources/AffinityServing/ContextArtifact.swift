import Foundation
import AffinityCore
import AffinityData
import AffinityModels

/// A trained click-through model as a file (`affinity train --task ctr --save`), which `affinity serve
/// --ctr-model` loads to score candidates.
///
/// Layout (little-endian), version 1, framed as `FramedFile`:
///
///     "AFFCTR01"            8 bytes   magic
///     format version        UInt32
///     header length         UInt32    bytes of the JSON header that follows
///     header                JSON      `ContextArtifact.Header`: model, settings, field schema, the side values of
///                                     every user and item, parameter shapes
///     parameters            Float32   each parameter, row-major, in the model's order
///     CRC-32                UInt32    over every byte before it
public struct ContextArtifact: Sendable {
    public static let magic: [UInt8] = Array("AFFCTR01".utf8)
    public static let formatVersion: UInt32 = 1

    public struct Header: Codable, Sendable, Equatable {
        public var model: String
        /// The settings in effect, including what the fit decided (OptInter's architecture).
        public var hyperparameters: [String: String]
        public var seed: UInt64
        public var dataset: String
        public var dataFingerprint: String
        public var createdAt: String
        public var schema: FeatureSchema
        /// Raw user ids and, per user, the raw value of each user field of the schema (in schema order).
        public var userIDs: [String]
        public var userValues: [[String]]
        public var itemIDs: [String]
        public var itemValues: [[String]]
        /// `[rows, cols]` of each parameter.
        public var shapes: [[Int]]
    }

    public var header: Header
    public var parameters: [Matrix]

    public init(header: Header, parameters: [Matrix]) throws {
        guard header.shapes.count == parameters.count,
              zip(header.shapes, parameters).allSatisfy({ $0 == [$1.rows, $1.cols] }),
              header.userValues.count == header.userIDs.count, header.itemValues.count == header.itemIDs.count else {
            throw ArtifactError(path: "", reason: "shapes disagree with the header")
        }
        self.header = header
        self.parameters = parameters
    }

    /// The file of a fitted `model` trained on `dataset` with `schema`.
    public init(model: any ContextModel, name: String, settings: [String: String], seed: UInt64, dataset: Dataset, schema: FeatureSchema) throws {
        func values(_ side: FeatureSchema.Side, _ columns: [FieldColumn], ids: [String]) -> [[String]] {
            let idField = side == .user ? "user_id" : "item_id"
            let fields = schema.fields.filter { $0.side == side }
            let sources = fields.map { f in columns.first { $0.name == f.name } }
            return ids.indices.map { i in zip(fields, sources).map { f, c in f.name == idField ? ids[i] : (c?.values[i] ?? "") } }
        }
        let parameters = model.parameterValues
        let header = Header(model: name, hyperparameters: settings.merging(model.learnedSettings) { $1 }, seed: seed, dataset: dataset.name,
                            dataFingerprint: dataset.fingerprint, createdAt: ISO8601DateFormatter().string(from: Date()), schema: schema,
                            userIDs: dataset.users.rawIDs, userValues: values(.user, dataset.userFields, ids: dataset.users.rawIDs),
                            itemIDs: dataset.items.rawIDs, itemValues: values(.item, dataset.itemFields, ids: dataset.items.rawIDs),
                            shapes: parameters.map { [$0.rows, $0.cols] })
        try self.init(header: header, parameters: parameters)
    }

    static let frame = FramedFile(magic: magic, formatVersion: formatVersion, kind: "click-through model")

    public func write(to path: String) throws {
        try Self.frame.write(to: path, header: header, parameters: parameters)
    }

    public static func read(from path: String) throws -> ContextArtifact {
        try decode(FramedFile.read(path), path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> ContextArtifact {
        let (header, parameters) = try frame.decodeParameters(bytes, path: path, as: Header.self)
        do { return try ContextArtifact(header: header, parameters: parameters) } catch {
            throw ArtifactError(path: path, reason: "shapes disagree with the header")
        }
    }

    /// The model, rebuilt from its settings and parameters.
    public func model() throws -> any ContextModel {
        var h = Hyperparameters(header.hyperparameters)
        let model = try ContextModelRegistry.type(named: header.model).init(&h)
        do { try model.restore(schema: header.schema, parameters: parameters) } catch {
            throw ArtifactError(path: "", reason: "\(error)")
        }
        return model
    }
}

/// Scores (user, candidate items) with a click-through model: what `POST /v1/score` and `?rerank=ctr` use.
/// Known users and items get the field values they were trained with, which the request's `context` (raw values
/// by user field name) overrides; unknown ones only the context's, and a field still missing or a value never seen
/// in training takes the field's out-of-vocabulary row.
public final class ContextScorer: @unchecked Sendable {  // immutable after init; the model only reads its parameters
    public let name: String
    public let schema: FeatureSchema
    let model: any ContextModel
    let userValues: [String: [String: String]]
    let userBags: [String: EmbeddingBags]
    let itemBags: [String: EmbeddingBags]

    public init(_ artifact: ContextArtifact) throws {
        model = try artifact.model()
        name = artifact.header.model
        let schema = artifact.header.schema
        self.schema = schema
        let h = artifact.header
        let userNames = schema.fields.filter { $0.side == .user }.map(\.name), itemNames = schema.fields.filter { $0.side == .item }.map(\.name)
        var values: [String: [String: String]] = [:]
        for (id, row) in zip(h.userIDs, h.userValues) { values[id] = Dictionary(uniqueKeysWithValues: zip(userNames, row)) }
        userValues = values
        userBags = values.mapValues { schema.bags(.user, values: $0) }
        var items: [String: EmbeddingBags] = [:]
        for (id, row) in zip(h.itemIDs, h.itemValues) { items[id] = schema.bags(.item, values: Dictionary(uniqueKeysWithValues: zip(itemNames, row))) }
        itemBags = items
    }

    /// Whether the model was trained with `user`.
    public func knows(user: String) -> Bool { userValues[user] != nil }

    /// Click probabilities of `items` for `user`, in the order given.
    public func score(user: String, items: [String], context: [String: String] = [:]) -> [Float] {
        guard !items.isEmpty else { return [] }
        let user = context.isEmpty ? (userBags[user] ?? schema.bags(.user, values: ["user_id": user]))
            : schema.bags(.user, values: (userValues[user] ?? [:]).merging(context) { $1 }.merging(["user_id": user]) { $1 })
        let fu = schema.userFieldCount, fi = schema.itemFieldCount
        if let candidates = model as? any CandidateScoring {
            var itemRows = EmbeddingBags()
            itemRows.offsets.reserveCapacity(items.count * fi + 1)
            for item in items { itemRows.append(itemBags[item] ?? schema.bags(.item, values: ["item_id": item]), bags: 0..<fi) }
            return candidates.candidateLogits(user: user, items: itemRows, count: items.count).map(stableSigmoid)
        }
        var bags = EmbeddingBags()
        bags.offsets.reserveCapacity(items.count * (fu + fi) + 1)
        for item in items {
            bags.append(user, bags: 0..<fu)
            bags.append(itemBags[item] ?? schema.bags(.item, values: ["item_id": item]), bags: 0..<fi)
        }
        return model.logits(bags, rows: items.count).map(stableSigmoid)
    }
}

extension ContextArtifact.Header: ParameterFileHeader {}
