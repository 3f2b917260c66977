import AffinityCLI
import AffinityCore

Memory.configureForTraining()

await AffinityCommand.main()
