import AffinityCLI
import AffinityCore

Memory.configureForTraining()

AffinityCommand.main()
