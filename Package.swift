// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bfq",
    products: [
        .executable(name: "bfq", targets: ["bfq"]),
        .library(name: "BFQCore", targets: ["BFQCore"]),
        .library(name: "BFQFuzzing", targets: ["BFQFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3" ..< "4.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CJSONC",
            pkgConfig: "json-c",
            providers: [.apt(["libjson-c-dev"])]
        ),
        .target(
            name: "CBFQShims",
            cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])],
            // OpenBLAS is loaded at run time (BLASLibrary.c), after its kernels are chosen from the CPU's features.
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "BFQCore",
            dependencies: ["CJSONC", "CZstd", "CBFQShims", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .executableTarget(
            name: "bfq",
            dependencies: [
                "BFQCore",
                "CBFQShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "bfq-bench-dequant", dependencies: ["BFQCore"]),
        .executableTarget(name: "bfq-bench-quantize", dependencies: ["BFQCore"]),
        .executableTarget(name: "bfq-peak-memory"),
        .target(
            name: "BFQTestSupport",
            path: "Tests/BFQTestSupport"
        ),
        .target(
            name: "BFQFuzzing",
            dependencies: ["BFQCore"],
            path: "Tests/BFQFuzzing"
        ),
        .executableTarget(
            name: "bfq-testdata",
            dependencies: ["BFQCore"]
        ),
        .testTarget(
            name: "BFQCoreTests",
            dependencies: ["BFQCore", "BFQTestSupport", "BFQFuzzing", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "BFQEndToEndTests",
            dependencies: ["BFQCore", "BFQTestSupport", "bfq", "bfq-peak-memory"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
