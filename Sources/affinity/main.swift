import AffinityCLI

AffinityCommand.main()
