import ArgumentParser
import AffinityApplication
import AffinityCore

/// `affinity`: train, evaluate and inspect recommenders.
public struct AffinityCommand: AsyncParsableCommand {
    public static let version = AffinityVersion.current

    public static let configuration = CommandConfiguration(
        commandName: "affinity",
        abstract: "Train, evaluate and serve recommendation models on user–item interaction data.",
        version: version,
        subcommands: [TrainCommand.self, DatasetsCommand.self, RecommendCommand.self, ScoreCommand.self, ServeCommand.self, WorkerCommand.self, ModelsCommand.self, ReportCommand.self, CompareCommand.self]
    )

    public init() {}
}

/// Runs `body`; an error becomes one line on standard error and a non-zero exit, never a crash.
public func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch { throw reported(error) }
}

/// Async form of `reportingErrors`.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do { try await body() } catch { throw reported(error) }
}

/// ArgumentParser's own exits pass through; anything else is printed and becomes a failure exit.
private func reported(_ error: Error) -> Error {
    if error is ExitCode || error is CleanExit { return error }
    writeStandardError("error: \(error)\n")
    return ExitCode.failure
}
