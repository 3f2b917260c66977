import ArgumentParser
import AffinityCLI
import AffinityCore

/// Parses the command line and runs the command, asynchronously when it is async (`affinity serve`).
/// Inside an async function the async `run()` is the overload chosen; top-level code would pick the
/// synchronous one.
func runAffinity() async {
    do {
        var command = try AffinityCommand.parseAsRoot()
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        AffinityCommand.exit(withError: error)
    }
}

Memory.configureForTraining()
await runAffinity()
