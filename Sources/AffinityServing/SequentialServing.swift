import Foundation
import AffinityCore
import AffinityData
import AffinityModels

/// A trained sequential model (`sasrec`, `tisasrec`, `bert4rec`, `gru4rec`) as a file: what `affinity train --save`
/// writes for them and `affinity serve --sequential-model` loads to answer `GET /v1/users/{id}/next`.
///
/// Layout (little-endian), version 1, framed as `FramedFile`:
///
///     "AFFSEQ01"            8 bytes   magic
///     format version        UInt32
///     header length         UInt32    bytes of the JSON header that follows
///     header                JSON      `SequentialArtifact.Header`: model, settings (with max_seq_length), item ids,
///                                     parameter shapes
///     parameters            Float32   each parameter, row-major, in the model's order
///     CRC-32                UInt32    over every byte before it
///
/// No user state is stored: the server reads each user's sequence from its event store at request time.
public struct SequentialArtifact: Sendable {
    public static let magic: [UInt8] = Array("AFFSEQ01".utf8)
    public static let formatVersion: UInt32 = 1

    public struct Header: Codable, Sendable, Equatable {
        public var model: String
        public var hyperparameters: [String: String]
        public var seed: UInt64
        public var dataset: String
        public var dataFingerprint: String
        public var createdAt: String
        /// Positions the model reads: the newest `maxLength` events of a user.
        public var maxLength: Int
        /// Raw item ids, in the model's item order.
        public var itemIDs: [String]
        /// `[rows, cols]` of each parameter.
        public var shapes: [[Int]]
    }

    public var header: Header
    public var parameters: [Matrix]

    public init(header: Header, parameters: [Matrix]) throws {
        guard header.shapes.count == parameters.count, zip(header.shapes, parameters).allSatisfy({ $0 == [$1.rows, $1.cols] }) else {
            throw ArtifactError(path: "", reason: "shapes disagree with the header")
        }
        self.header = header
        self.parameters = parameters
    }

    /// The file of a fitted sequential `model` trained on `dataset`.
    public init(model: any SequenceNetwork, name: String, settings: [String: String], seed: UInt64, dataset: Dataset) throws {
        let parameters = model.parameterValues
        let header = Header(model: name, hyperparameters: settings, seed: seed, dataset: dataset.name, dataFingerprint: dataset.fingerprint,
                            createdAt: ISO8601DateFormatter().string(from: Date()), maxLength: model.maxLength,
                            itemIDs: dataset.items.rawIDs, shapes: parameters.map { [$0.rows, $0.cols] })
        try self.init(header: header, parameters: parameters)
    }

    static let frame = FramedFile(magic: magic, formatVersion: formatVersion, kind: "sequential model")

    public func write(to path: String) throws {
        try Self.frame.write(to: path, header: header, parameters: parameters)
    }

    public static func read(from path: String) throws -> SequentialArtifact {
        try decode(FramedFile.read(path), path: path)
    }

    /// Whether `bytes` start like a sequential model file.
    public static func hasMagic(_ bytes: [UInt8]) -> Bool { bytes.count >= magic.count && Array(bytes[0..<magic.count]) == magic }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> SequentialArtifact {
        let (header, parameters) = try frame.decodeParameters(bytes, path: path, as: Header.self)
        do { return try SequentialArtifact(header: header, parameters: parameters) } catch {
            throw ArtifactError(path: path, reason: "shapes disagree with the header")
        }
    }

    /// The model, rebuilt from its settings and parameters, with no histories.
    public func model() throws -> any SequenceNetwork {
        var h = Hyperparameters(header.hyperparameters)
        guard let model = try ModelRegistry.make(header.model, hyperparameters: &h) as? any SequenceNetwork else {
            throw ArtifactError(path: "", reason: "'\(header.model)' is not a sequential model")
        }
        do { try model.restore(itemCount: header.itemIDs.count, parameters: parameters) } catch {
            throw ArtifactError(path: "", reason: "\(error)")
        }
        return model
    }
}

/// Ranks a user's next item from their event sequence with a sequential model: what `GET /v1/users/{id}/next` uses.
/// The sequence is read at request time, so an event stored a moment ago changes the answer without retraining.
public final class NextItemRanker: @unchecked Sendable {  // immutable after init; scoring only reads the parameters
    public let name: String
    public let maxLength: Int
    let model: any SequenceNetwork
    let itemIDs: [String]
    let itemIndex: [String: Int32]

    public init(_ artifact: SequentialArtifact) throws {
        model = try artifact.model()
        name = artifact.header.model
        maxLength = artifact.header.maxLength
        itemIDs = artifact.header.itemIDs
        itemIndex = Dictionary(artifact.header.itemIDs.enumerated().map { ($1, Int32($0)) }) { first, _ in first }
    }

    /// The `k` best next items after `events` (raw item id and timestamp, oldest first), best first, with their
    /// scores. Items the model was not trained on are skipped; an event without a timestamp takes its
    /// predecessor's (a zero interval for TiSASRec). The history's items are not excluded (RecBole's sequential
    /// protocol: users come back to items) unless `excludeSeen`.
    public func next(after events: [(item: String, time: Double?)], k: Int, excludeSeen: Bool = false) -> [(item: String, score: Float)] {
        var items: [Int32] = [], times: [Double] = []
        var previous = 0.0
        for event in events {
            guard let index = itemIndex[event.item] else { continue }
            previous = event.time ?? previous
            items.append(index)
            times.append(previous)
        }
        let kept = items.count - min(items.count, maxLength)
        var scores = [Float](repeating: 0, count: itemIDs.count)
        scores.withUnsafeMutableBufferPointer { out in
            model.nextItemScores([items[kept...]], times: [times[kept...]], into: out)
        }
        if excludeSeen { for i in items { scores[Int(i)] = -.infinity } }
        // A partial selection (ties to the lower index), not a sort of the whole catalogue: the sort was a third
        // of a request's time on ml-latest-small's 9,700 items.
        let best = TopK.select(scores, k: max(0, min(k, scores.count)))
        return zip(best.indices, best.scores).map { (itemIDs[Int($0)], $1) }
    }
}

extension SequentialArtifact.Header: ParameterFileHeader {}
