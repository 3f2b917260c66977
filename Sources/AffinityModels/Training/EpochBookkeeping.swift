import AffinityEval

/// What every training loop does after an epoch, shared by the gradient `Trainer` and models that run their own
/// iterations (iALS): validate every `evalStep` epochs, keep the best snapshot by RecBole's early-stopping rule,
/// record the learning curve, log the epoch and hand its report to `TrainingContext.onEpoch`.
struct EpochBookkeeping<Snapshot> {
    let evalStep: Int
    let stoppingStep: Int
    let validMetric: String
    var best: (score: Double, epoch: Int, snapshot: Snapshot)?
    var sinceBest = 0

    /// RecBole's rule (`early_stopping` in recbole/utils/utils.py): stop after more than `stoppingStep`
    /// validations without improvement. Checked before an epoch, so a run resumed after it stopped stays stopped.
    var shouldStop: Bool { best != nil && sinceBest > stoppingStep }

    /// Validates (when due) and monitors `scorer`, updates the best snapshot, logs `headline` with the
    /// validation and curve figures, and passes the report to `onEpoch`.
    mutating func finish(_ report: inout EpochReport, headline: String, scorer: any Scorer, context: TrainingContext,
                         snapshot: () -> Snapshot) throws {
        let epoch = report.epoch
        if evalStep > 0, (epoch + 1) % evalStep == 0, let validate = context.validate {
            let metrics = validate(scorer)
            report.validation = metrics
            guard let score = metrics[validMetric] else {
                throw TrainingError.unknownMetric(validMetric, Array(metrics.keys).sorted())
            }
            // A tie counts as an improvement (the later epoch is kept), as in RecBole.
            if best == nil || score >= best!.score {
                best = (score, epoch, snapshot())
                sinceBest = 0
            } else {
                sinceBest += 1
            }
        }
        if context.monitorStep > 0, (epoch + 1) % context.monitorStep == 0, let monitor = context.monitor {
            report.monitored = monitor(scorer)
        }
        context.log(headline
                    + (report.validation.map { " valid \(validMetric) \(String(format: "%.4f", $0[validMetric] ?? .nan))" } ?? "")
                    + (report.monitored.map { m in " | curve " + m.keys.sorted().map { "\($0) \(String(format: "%.4f", m[$0]!))" }.joined(separator: ", ") } ?? ""))
        context.onEpoch?(report)
        if context.isCancelled?() == true { throw TrainingError.cancelled }
    }
}
