// swift-tools-version:6.0
// libFuzzer targets for bfq's readers; kept out of the main package so `swift build`/`swift test` never see them.
// Build (from this folder): see Fuzz/README.md.
import PackageDescription

let entries = ["safetensors", "pytorch", "pickle", "bfq", "plan", "unet-config"]

let package = Package(
    name: "bfq-fuzz",
    dependencies: [.package(name: "bfq", path: "..")],
    targets: [.systemLibrary(name: "CLibFuzzer")] + entries.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["CLibFuzzer", .product(name: "BFQFuzzing", package: "bfq")],
            path: "Sources/fuzz-\(name)"
        )
    },
    swiftLanguageModes: [.v6]
)
