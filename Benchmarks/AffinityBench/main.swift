import ArgumentParser
import AffinityCore

/// `affinity-bench`: the Swift side of the scripts in Benchmarks/. Each subcommand prints one JSON line per
/// measurement; the scripts time against a peer measured in the same run.
Memory.configureForTraining()
BenchCommand.main()
