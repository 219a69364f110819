// swift-tools-version:6.1
import PackageDescription

// Layers, bottom to top (docs/architecture.md):
//   WalleEnvironment  value types and the clock/network/disk interfaces; imports nothing
//   WalleCore         the sans-IO protocol state machines; imports WalleEnvironment only
//   WalleNode         the thin driver that feeds events in and carries effects out
//   WalleStorage      the Disk interface on WiredTiger (production adapter; C shim below it)
//   WalleSimulator    the seeded single-threaded world (Simulations/), beside production adapters
//   walle-sim         the command line on top
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let argumentParser: Target.Dependency = .product(
    name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "walle",
    products: [
        .executable(name: "walle-sim", targets: ["walle-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "WalleEnvironment", swiftSettings: swiftSettings),
        .target(name: "WalleCore", dependencies: ["WalleEnvironment"], swiftSettings: swiftSettings),
        .target(
            name: "WalleNode", dependencies: ["WalleCore", "WalleEnvironment"],
            swiftSettings: swiftSettings),
        .systemLibrary(
            name: "CWiredTiger", pkgConfig: "wiredtiger", providers: [.apt(["libwiredtiger-dev"])]),
        .target(name: "WiredTigerShim", dependencies: ["CWiredTiger"]),
        .target(
            name: "WalleStorage", dependencies: ["WalleEnvironment", "WiredTigerShim"],
            swiftSettings: swiftSettings),
        .target(
            name: "WalleSimulator", dependencies: ["WalleNode", "WalleCore", "WalleEnvironment"],
            path: "Simulations/WalleSimulator", swiftSettings: swiftSettings),
        .executableTarget(
            name: "walle-sim", dependencies: ["WalleSimulator", argumentParser],
            path: "Simulations/walle-sim", swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleCoreTests", dependencies: ["WalleCore", "WalleEnvironment"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleStorageTests", dependencies: ["WalleStorage", "WalleEnvironment"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleSimulatorTests",
            dependencies: ["WalleSimulator", "WalleCore", "WalleEnvironment"],
            resources: [.copy("Seeds")],
            swiftSettings: swiftSettings),
    ]
)
