import Foundation
import AffinityCore
import AffinityData
import AffinityModels
import AffinityServing

/// Turns a fitted embedding model into a servable `ModelArtifact`: what `affinity train --save` writes and what
/// a retrain publishes. The provenance (settings, seed, data, feature sources) goes into the header, so that
/// the artifact can be retrained as it was trained.
public struct ArtifactBuilder {
    public var model: String
    /// The settings in effect (a retrain uses them).
    public var settings: [String: String]
    public var seed: UInt64
    public var datasetName: String
    public var dataFingerprint: String
    public var userIDs: [String]
    public var itemIDs: [String]
    public var itemTitles: [String]?
    /// Epochs a retrain runs (the best iteration of the original run, 1-based count); nil: the settings' `epochs`.
    public var retrainEpochs: Int?
    /// Feature modalities by name → source, which a retrain reloads.
    public var modalitySources: [String: String]?
    /// The serving version; nil: a file `affinity train` writes (version 1).
    public var version: Int?

    /// Provenance from `dataset`: its name, fingerprint, ids and titles.
    public init(model: String, settings: [String: String], seed: UInt64, dataset: Dataset) {
        self.model = model
        self.settings = settings
        self.seed = seed
        datasetName = dataset.name
        dataFingerprint = dataset.fingerprint
        userIDs = dataset.users.rawIDs
        itemIDs = dataset.items.rawIDs
        itemTitles = dataset.itemTitles
    }

    /// The artifact of `fitted`, which was trained on `training` (kept in the file for unlearning and retraining).
    public func artifact(of fitted: any EmbeddingModel, training: Interactions) throws -> ModelArtifact {
        var header = ModelArtifact.Header(
            model: model, hyperparameters: settings, retrainEpochs: retrainEpochs, seed: seed, dataset: datasetName,
            dataFingerprint: dataFingerprint, createdAt: ISO8601DateFormatter().string(from: Date()),
            userIDs: userIDs, itemIDs: itemIDs, itemTitles: itemTitles, dimension: fitted.itemEmbeddings.cols,
            interactionCount: training.count, modalities: modalitySources)
        header.modelVersion = version
        return try ModelArtifact(header: header, userEmbeddings: fitted.userEmbeddings, itemEmbeddings: fitted.itemEmbeddings,
                                 training: training)
    }

    /// The artifact of one model of a training run (`affinity train --save`): the epochs its best iteration took,
    /// the run's feature sources, its training part.
    public static func artifact(of outcome: TrainingRun.ModelOutcome, run: TrainingRun.Outcome, seed: UInt64) throws -> ModelArtifact {
        guard let embedding = outcome.model.recommender as? any EmbeddingModel else {
            throw TrainingRunError.notServable(model: outcome.model.name)
        }
        var builder = ArtifactBuilder(model: outcome.model.name, settings: outcome.model.settings, seed: seed, dataset: run.dataset)
        // A retrain runs as many epochs as it took to reach the best one (epochs are counted from 0).
        builder.retrainEpochs = outcome.bestEpoch.map { $0 + 1 }
        builder.modalitySources = run.modalities.isEmpty ? nil : Dictionary(uniqueKeysWithValues: run.modalities.map { ($0.name, $0.source) })
        return try builder.artifact(of: embedding, training: run.split.train)
    }

    /// The file of a sequential model of a training run (`affinity train --save` for sasrec, tisasrec, bert4rec,
    /// gru4rec): its settings and parameters, which `GET /v1/users/{id}/next` serves.
    public static func sequentialArtifact(of outcome: TrainingRun.ModelOutcome, run: TrainingRun.Outcome, seed: UInt64) throws -> SequentialArtifact {
        guard let sequential = outcome.model.recommender as? any SequenceNetwork else {
            throw TrainingRunError.notServable(model: outcome.model.name)
        }
        return try SequentialArtifact(model: sequential, name: outcome.model.name, settings: outcome.model.settings, seed: seed, dataset: run.dataset)
    }
}
