// swift-tools-version: 6.1
import PackageDescription

// Layering (docs/architecture.md): kernels → core → data → eval/models → serving → application → CLI/server.
// No unsafe compiler flags: SIMD-sensitive loops live in the C target `AffinityKernels`, which
// uses function multi-versioning (target_clones) so one binary runs well on any x86-64 CPU and
// the package stays usable as a dependency.
let package = Package(
    name: "Affinity",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "Affinity", targets: ["AffinityCore", "AffinityData", "AffinityEval", "AffinityModels", "AffinityServing", "AffinityApplication"]),
        .library(name: "AffinityServer", targets: ["AffinityServer"]),
        .library(name: "AffinityPostgres", targets: ["AffinityPostgres"]),
        .executable(name: "affinity", targets: ["affinity"]),
        .executable(name: "affinity-bench", targets: ["affinity-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already Hummingbird's: runs the server beside its background services and stops them all on SIGTERM.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // `swift package generate-documentation` (scripts/docs.sh); a plugin, nothing is linked.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "AffinityKernels"),
        .target(name: "AffinityCore", dependencies: [
            "AffinityKernels",
            .target(name: "CBLAS", condition: .when(platforms: [.linux])),
        ]),
        .target(name: "AffinityData", dependencies: ["AffinityCore"]),
        .target(name: "AffinityEval", dependencies: ["AffinityCore", "AffinityData"]),
        .target(name: "AffinityModels", dependencies: ["AffinityKernels", "AffinityCore", "AffinityData", "AffinityEval"]),
        // Trained-model artifacts, fold-in, unlearning: no server dependencies, usable on a device.
        .target(name: "AffinityServing", dependencies: ["AffinityCore", "AffinityData", "AffinityModels"]),
        // What the commands, the server and a worker share: a training run (load, split, fit, evaluate, run record)
        // and the artifact of a fitted model.
        .target(name: "AffinityApplication", dependencies: ["AffinityCore", "AffinityData", "AffinityEval", "AffinityModels", "AffinityServing"]),
        // The HTTP service and its durable event store.
        .target(name: "AffinityServer", dependencies: [
            "AffinityServing", "AffinityApplication",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The PostgreSQL store (`serve --store postgres://…`): its own target, so that the library products that
        // run on a device never link postgres-nio.
        .target(name: "AffinityPostgres", dependencies: [
            "AffinityServer",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "AffinityCLI", dependencies: [
            "AffinityCore", "AffinityData", "AffinityEval", "AffinityModels", "AffinityServing", "AffinityApplication", "AffinityServer", "AffinityPostgres",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "affinity", dependencies: [
            "AffinityCLI", "AffinityCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Micro-benchmarks behind the scripts in Benchmarks/ (JSON lines); not part of the user-facing CLI.
        .executableTarget(name: "affinity-bench", dependencies: [
            "AffinityCLI", "AffinityCore", "AffinityData", "AffinityEval", "AffinityModels", "AffinityServing", "AffinityApplication", "AffinityServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/AffinityBench"),
        // Fixtures and helpers shared by the test targets (not part of the library products).
        .target(name: "AffinityTestSupport", dependencies: ["AffinityData"], path: "Tests/AffinityTestSupport"),
        .testTarget(name: "AffinityCoreTests", dependencies: ["AffinityCore", "AffinityTestSupport"]),
        .testTarget(name: "AffinityDataTests", dependencies: ["AffinityData", "AffinityTestSupport"]),
        .testTarget(name: "AffinityEvalTests", dependencies: ["AffinityEval", "AffinityTestSupport"]),
        .testTarget(name: "AffinityModelsTests", dependencies: ["AffinityModels", "AffinityTestSupport"]),
        .testTarget(name: "AffinityCLITests", dependencies: ["AffinityCLI", "AffinityApplication", "AffinityTestSupport"]),
        .testTarget(name: "AffinityServingTests", dependencies: ["AffinityServing", "AffinityTestSupport"]),
        .testTarget(name: "AffinityServerTests", dependencies: [
            "AffinityServer", "AffinityTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Store conformance against SQLite and a throwaway PostgreSQL server; replicas on one PostgreSQL.
        .testTarget(name: "AffinityStoreTests", dependencies: [
            "AffinityCore", "AffinityData", "AffinityServing", "AffinityServer", "AffinityPostgres", "AffinityTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
