// swift-tools-version: 6.1
import PackageDescription

// Layering (docs/architecture.md): kernels → core → data → eval/models → CLI.
// No unsafe compiler flags: SIMD-sensitive loops live in the C target `AffinityKernels`, which
// uses function multi-versioning (target_clones) so one binary runs well on any x86-64 CPU and
// the package stays usable as a dependency.
let package = Package(
    name: "Affinity",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "Affinity", targets: ["AffinityCore", "AffinityData", "AffinityEval", "AffinityModels"]),
        .executable(name: "affinity", targets: ["affinity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
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
        .target(name: "AffinityModels", dependencies: ["AffinityCore", "AffinityData", "AffinityEval"]),
        .target(name: "AffinityCLI", dependencies: [
            "AffinityCore", "AffinityData", "AffinityEval", "AffinityModels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(name: "affinity", dependencies: ["AffinityCLI", "AffinityCore"]),
        // Fixtures and helpers shared by the test targets (not part of the library products).
        .target(name: "AffinityTestSupport", dependencies: ["AffinityData"], path: "Tests/AffinityTestSupport"),
        .testTarget(name: "AffinityCoreTests", dependencies: ["AffinityCore", "AffinityTestSupport"]),
        .testTarget(name: "AffinityDataTests", dependencies: ["AffinityData", "AffinityTestSupport"]),
        .testTarget(name: "AffinityEvalTests", dependencies: ["AffinityEval", "AffinityTestSupport"]),
        .testTarget(name: "AffinityModelsTests", dependencies: ["AffinityModels", "AffinityTestSupport"]),
        .testTarget(name: "AffinityCLITests", dependencies: ["AffinityCLI", "AffinityTestSupport"]),
    ]
)
