import Testing
import Foundation
import AffinityCore
import AffinityData
import AffinityModels
import AffinityTestSupport

@Suite struct CheckpointTests {
    /// 40 users × 50 items, ~8 items each, drawn from a fixed seed.
    static let data: TrainingData = {
        var rng = SeededGenerator(seed: 11)
        var users: [Int32] = [], items: [Int32] = []
        for u in 0..<40 {
            for i in Set((0..<8).map { _ in rng.nextInt(below: 50) }).sorted() { users.append(Int32(u)); items.append(Int32(i)) }
        }
        return TrainingData(userCount: 40, itemCount: 50, interactions: Interactions(users: users, items: items))
    }()

    final class Reports { var entries: [EpochReport] = [] }

    func train(_ name: String, epochs: Int, checkpoint: CheckpointSettings?) throws -> (any GradientModel, [EpochReport]) {
        var h = Hyperparameters(["epochs": "\(epochs)", "embedding_size": "8", "train_batch_size": "64"]
                                .merging(name == "ngcf" ? ["hidden_size_list": "8,8"] : [:]) { $1 })
        let model = try ModelRegistry.make(name, hyperparameters: &h)
        let reports = Reports()
        var context = TrainingContext(seed: 7, onEpoch: { reports.entries.append($0) })
        context.checkpoint = checkpoint
        try model.fit(Self.data, context: context)
        return (model as! any GradientModel, reports.entries)
    }

    /// A run stopped after one epoch and resumed ends with the same parameters, bit for bit, as the run that
    /// was never stopped: NGCF carries a running dropout generator, SGL per-epoch views, all Adam's moments.
    @Test(arguments: ["lightgcn", "ngcf", "sgl"]) func resumingEndsWhereTheUninterruptedRunEnds(name: String) throws {
        let (whole, wholeReports) = try train(name, epochs: 3, checkpoint: nil)
        let settings = CheckpointSettings(path: Fixtures.temporaryFolder("checkpoint") + "/\(name).ckpt", fingerprint: "test \(name)")
        _ = try train(name, epochs: 1, checkpoint: settings)
        let (resumed, resumedReports) = try train(name, epochs: 3, checkpoint: settings)
        #expect(resumedReports.map(\.loss) == wholeReports.map(\.loss))
        #expect(whole.parameters.count == resumed.parameters.count)
        let identical = zip(whole.parameters, resumed.parameters).allSatisfy { $0.value.storage == $1.value.storage }
        #expect(identical)
    }

    @Test func aCheckpointOfAnotherRunOrADamagedFileIsRefused() throws {
        let folder = Fixtures.temporaryFolder("checkpoint")
        let settings = CheckpointSettings(path: folder + "/lightgcn.ckpt", fingerprint: "run A")
        _ = try train("lightgcn", epochs: 1, checkpoint: settings)
        #expect(throws: CheckpointError.self) {
            _ = try train("lightgcn", epochs: 2, checkpoint: CheckpointSettings(path: settings.path, fingerprint: "run B"))
        }
        let bytes = try DurableFile.read(settings.path)
        let truncated = Fixtures.file("truncated.ckpt", bytes: Array(bytes.dropLast(4)), in: folder)
        #expect(throws: CheckpointError.self) { _ = try TrainingCheckpoint.read(from: truncated) }
        let foreign = Fixtures.file("foreign.ckpt", bytes: Array("not a checkpoint at all".utf8), in: folder)
        #expect(throws: CheckpointError.self) { _ = try TrainingCheckpoint.read(from: foreign) }
        let saved = try TrainingCheckpoint.read(from: settings.path)
        #expect(saved.header.epoch == 0 && saved.header.reports.count == 1 && saved.optimizer.steps > 0)
    }
}
