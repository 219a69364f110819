// swift-tools-version:6.1
import PackageDescription

// Layers, bottom to top (docs/architecture.md):
//   WalleEnvironment  value types and the clock/network/disk interfaces; imports nothing
//   WalleCore         the sans-IO protocol state machines; imports WalleEnvironment only
//   WalleNode         the thin driver that feeds events in and carries effects out
//   WalleWire         the documented binary wire format (docs/wire-format.md); pure Swift
//   WalleStorage      the Disk interface on WiredTiger (production adapter; C shim below it)
//   WalleTransport    the Network and Clock interfaces on SwiftNIO (production adapter)
//   WalleServer       a production node: core + WiredTiger + transport + metrics
//   WalleClient       the async client library over the same writer state machine
//   WalleSimulator    the seeded single-threaded world (Simulations/), beside production adapters
//   WalleFuzz         hostile messages for one core in process and for real nodes over TCP
//   walle-sim, walle-fuzz, walle-node, walle   the command lines on top
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let argumentParser: Target.Dependency = .product(
    name: "ArgumentParser", package: "swift-argument-parser")

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
]
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")

let package = Package(
    name: "walle",
    products: [
        .executable(name: "walle-sim", targets: ["walle-sim"]),
        .executable(name: "walle-node", targets: ["walle-node"]),
        .executable(name: "walle", targets: ["walle"]),
        .executable(name: "walle-fuzz", targets: ["walle-fuzz"]),
        .library(name: "WalleClient", targets: ["WalleClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
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
            name: "WalleStorage", dependencies: ["WalleEnvironment", "WiredTigerShim", metrics],
            swiftSettings: swiftSettings),
        .target(name: "WalleWire", dependencies: ["WalleEnvironment"], swiftSettings: swiftSettings),
        .target(
            name: "WalleTransport", dependencies: ["WalleWire", "WalleEnvironment", logging, metrics] + nio,
            swiftSettings: swiftSettings),
        .target(
            name: "WalleServer",
            dependencies: [
                "WalleNode", "WalleCore", "WalleStorage", "WalleTransport", "WalleEnvironment", logging, metrics,
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ] + nio,
            swiftSettings: swiftSettings),
        .target(
            name: "WalleClient",
            dependencies: ["WalleNode", "WalleCore", "WalleTransport", "WalleEnvironment", logging] + nio,
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "walle-node",
            dependencies: [
                "WalleServer", "WalleTransport", "WalleEnvironment", argumentParser, logging,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "walle",
            dependencies: [
                "WalleClient", "WalleCore", "WalleEnvironment", argumentParser, logging,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "WalleSimulator", dependencies: ["WalleNode", "WalleCore", "WalleEnvironment"],
            path: "Simulations/WalleSimulator", swiftSettings: swiftSettings),
        .executableTarget(
            name: "walle-sim", dependencies: ["WalleSimulator", argumentParser],
            path: "Simulations/walle-sim", swiftSettings: swiftSettings),
        // Hostile input: the in-process core fuzzer and the TCP cluster fuzzer (docs/simulation.md).
        .target(
            name: "WalleFuzz", dependencies: ["WalleSimulator", "WalleCore", "WalleWire", "WalleEnvironment"],
            path: "Simulations/WalleFuzz", swiftSettings: swiftSettings),
        .executableTarget(
            name: "walle-fuzz", dependencies: ["WalleFuzz", "WalleTransport", "WalleEnvironment", argumentParser],
            path: "Simulations/walle-fuzz", swiftSettings: swiftSettings),
        // The disk contract both the simulated disk and WiredTiger are tested against.
        .target(
            name: "WalleContracts", dependencies: ["WalleEnvironment"], path: "Tests/WalleContracts",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleCoreTests", dependencies: ["WalleCore", "WalleEnvironment", "WalleWire"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleStorageTests", dependencies: ["WalleStorage", "WalleEnvironment", "WalleContracts"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleTransportTests",
            dependencies: ["WalleTransport", "WalleWire", "WalleEnvironment"] + nio,
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleLoopbackTests",
            dependencies: ["WalleClient", "WalleCore", "WalleWire", "WalleEnvironment", "WalleFuzz", "WalleContracts"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleFuzzTests",
            dependencies: ["WalleFuzz", "WalleCore", "WalleEnvironment", "WalleWire", "WalleContracts"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WalleSimulatorTests",
            dependencies: ["WalleSimulator", "WalleCore", "WalleEnvironment", "WalleContracts"],
            resources: [.copy("Seeds")],
            swiftSettings: swiftSettings),
        // Repository rules over the sources (layering, determinism, function and line length):
        // no dependencies, so a module that fails to build cannot hide them. Reads the tree
        // from the checkout via #filePath; its import table mirrors the dependencies above.
        .testTarget(name: "WalleTidyTests", swiftSettings: swiftSettings),
    ]
)
