// swift-tools-version:6.0
// The libFuzzer driver for bfq's readers, kept out of the main package so `swift build` / `swift test` never compile
// with fuzzer flags. Build and run with tools/fuzz.sh (see Fuzz/README.md).
import PackageDescription

let package = Package(
    name: "bfq-fuzz",
    dependencies: [.package(name: "bfq", path: "..")],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .executableTarget(
            name: "bfq-fuzz",
            dependencies: ["CLibFuzzer", .product(name: "BFQFuzzing", package: "bfq")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
