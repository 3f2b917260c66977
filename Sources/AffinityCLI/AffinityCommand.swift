import ArgumentParser
import AffinityCore

/// `affinity`: train, evaluate and inspect recommenders.
public struct AffinityCommand: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "affinity",
        abstract: "Train, evaluate and serve recommendation models on user–item interaction data.",
        version: version,
        subcommands: [TrainCommand.self, DatasetsCommand.self, RecommendCommand.self, ServeCommand.self, ModelsCommand.self, BenchCommand.self]
    )

    public init() {}
}

/// Runs `body`; an error becomes one line on standard error and a non-zero exit, never a crash.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        writeStandardError("error: \(error)\n")
        throw ExitCode.failure
    }
}

/// Async form of `reportingErrors`.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        writeStandardError("error: \(error)\n")
        throw ExitCode.failure
    }
}
