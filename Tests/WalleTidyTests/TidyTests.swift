import Testing

/// The tidy rules (Tidy.swift). Each runs on the real tree, where it must find nothing, and on a
/// planted violation, where it must find exactly that one: proof that the rule can fail at all.
@Suite("Tidy: repository-wide rules over the Swift sources")
struct TidyTests {
    static let noFindings: [String] = []

    /// A virtual file: the rules never read the disk, so a fixture needs no checkout.
    static func planted(_ path: String, _ lines: [String]) -> [Tidy.File] {
        [(path: path, text: lines.joined(separator: "\n") + "\n")]
    }

    /// A function of exactly `lines` lines: `func f() {`, filler, `}`.
    static func function(lines: Int) -> [String] {
        ["func f() {"] + Array(repeating: "    _ = 1", count: lines - 2) + ["}"]
    }

    // MARK: The tree

    @Test("The tree is read: a relocated or empty checkout fails instead of passing vacuously")
    func treeIsRead() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(tree.count > 80)
        #expect(tree.contains { $0.path == "Package.swift" })
        #expect(tree.contains { $0.path == "Sources/WalleCore/ServerCore.swift" })
        #expect(tree.contains { $0.path == "Tests/WalleTidyTests/Tidy.swift" })
    }

    // MARK: The masker behind the rules that read code

    @Test("The masker follows every file of the tree: strings, comments and braces all close")
    func lexingTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.Lexing.violations(in: tree) == Self.noFindings)
    }

    @Test("A string that runs off its line is a lexer finding, not a silent misread")
    func lexingPlanted() {
        let file = Self.planted("Sources/WalleCore/Planted.swift", [#"let s = "open"#])
        #expect(Tidy.Lexing.violations(in: file) == [
            "Sources/WalleCore/Planted.swift:1: lexer: a string literal runs past the end of its line",
        ])
        let unclosed = Self.planted("Sources/WalleCore/Planted.swift", ["func f() {"])
        #expect(Tidy.Lexing.violations(in: unclosed) == ["Sources/WalleCore/Planted.swift:2: lexer: 1 { never closed"])
    }

    @Test("Comments, string text, raw and multi-line strings are masked; interpolated code is kept")
    func masking() {
        let source = #"""
            /* import Foundation /* nested */ import Foundation } */
            let a = "import Foundation }" // import Foundation table[k]!
            let b = #"raw \(x) "} table[k]! "#
            let c = "\(x.map { $0 }) ContinuousClock"
            let d = """
                } Date()
                """
            import WalleEnvironment
            """#
        let file: [Tidy.File] = [(path: "Sources/WalleCore/Planted.swift", text: source)]
        #expect(Tidy.Lexing.violations(in: file) == Self.noFindings)
        #expect(Tidy.Determinism.violations(in: file) == Self.noFindings)
        #expect(Tidy.ForceUnwrappedLookup.violations(in: file) == Self.noFindings)
        #expect(Tidy.imports(in: source).map { "\($0.line) \($0.module)" } == ["8 WalleEnvironment"])
        // The interpolation stays code; the string text after it is blanked.
        #expect(Tidy.code(source)[3] == #"let c = "\(x.map { $0 })"# + String(repeating: " ", count: 16) + "\"")
    }

    // MARK: Rule 1, layering

    @Test("Layering: the tree imports only what its directory's table entry allows")
    func layeringTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.Layering.violations(in: tree) == Self.noFindings)
    }

    @Test("Layering: the table keeps the layers (environment imports nothing, core only environment)")
    func layeringTable() {
        let table = Tidy.Layering.allowed
        #expect(table["Sources/WalleEnvironment"] == Set<String>())
        #expect(table["Sources/WalleCore"] == Set(["WalleEnvironment"]))
        for (directory, modules) in table where directory.hasPrefix("Sources/") {
            #expect(modules.isDisjoint(with: ["WalleSimulator", "WalleFuzz"]), "\(directory)")
        }
    }

    @Test("Layering: a core file importing the node layer, or a server file the simulator, is found")
    func layeringPlanted() {
        let core = Self.planted("Sources/WalleCore/Planted.swift", ["import WalleNode"])
        #expect(Tidy.Layering.violations(in: core) == [
            "Sources/WalleCore/Planted.swift:1: layering: Sources/WalleCore may not import WalleNode",
        ])
        let server = Self.planted("Sources/WalleServer/Planted.swift", ["@testable public import WalleSimulator"])
        #expect(Tidy.Layering.violations(in: server) == [
            "Sources/WalleServer/Planted.swift:1: layering: Sources/WalleServer may not import WalleSimulator",
        ])
    }

    @Test("Layering: a directory missing from the table is found, so a new module cannot dodge the rule")
    func layeringUnknownDirectory() {
        let file = Self.planted("Sources/WalleNew/Planted.swift", ["import WalleEnvironment"])
        #expect(Tidy.Layering.violations(in: file) == [
            "Sources/WalleNew/Planted.swift:1: layering: Sources/WalleNew is not in the import table",
        ])
    }

    // MARK: Rule 2, determinism

    @Test("Determinism: no host clock, Foundation or unseeded randomness in the replayed layers")
    func determinismTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.Determinism.violations(in: tree) == Self.noFindings)
    }

    @Test("Determinism: Foundation in the simulator, a clock in the core, an unseeded draw are found")
    func determinismPlanted() {
        let simulator = "Simulations/WalleSimulator/Planted.swift"
        let core = "Sources/WalleCore/Planted.swift"
        #expect(Tidy.Determinism.violations(in: Self.planted(simulator, ["import Foundation"])) == [
            "\(simulator):1: determinism: imports Foundation",
        ])
        #expect(Tidy.Determinism.violations(in: Self.planted(core, ["let t = ContinuousClock.now"])) == [
            "\(core):1: determinism: uses ContinuousClock",
        ])
        #expect(Tidy.Determinism.violations(in: Self.planted(simulator, ["let n = Int.random(in: 0...9)"])) == [
            "\(simulator):1: determinism: calls .random( without using:",
        ])
    }

    @Test("Determinism: seeded draws, SimRandom, feeding a Hasher and the CLI's Foundation are allowed")
    func determinismAllowed() {
        let simulator = Self.planted("Simulations/WalleSimulator/Planted.swift", [
            "let n = Int.random(in: 0...9, using: &generator)",
            "let order = random.shuffled(servers)",
            "func hash(into hasher: inout Hasher) { hasher.combine(id) }",
            "let updated = lastUpdate",
        ])
        #expect(Tidy.Determinism.violations(in: simulator) == Self.noFindings)
        let cli = Self.planted("Simulations/walle-sim/Planted.swift", ["import Foundation", "let d = Date()"])
        #expect(Tidy.Determinism.violations(in: cli) == Self.noFindings)
    }

    // MARK: Rule 3, function length

    @Test("Function length: no function in the tree is over 70 lines")
    func functionLengthTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.FunctionLength.violations(in: tree) == Self.noFindings)
    }

    @Test("Function length: a 71-line function is found, a 70-line one is not")
    func functionLengthPlanted() {
        let path = "Sources/WalleNode/Planted.swift"
        #expect(Tidy.FunctionLength.violations(in: Self.planted(path, Self.function(lines: 71))) == [
            "\(path):1: function-length: 71 lines (limit 70)",
        ])
        #expect(Tidy.FunctionLength.violations(in: Self.planted(path, Self.function(lines: 70))) == Self.noFindings)
    }

    @Test("Function length: a body-less requirement, `.init(` and `self.init(` do not start a function")
    func functionLengthDeclarations() {
        let path = "Sources/WalleNode/Planted.swift"
        let filler = Array(repeating: "    _ = 1", count: 70)
        // The protocol's `}` ends the requirement; were `func f()` still pending, the `do` block
        // would become its body and be reported as a 74-line function on line 2.
        let requirement = ["protocol P {", "    func f()", "}", "do {"] + filler + ["}"]
        #expect(Tidy.FunctionLength.violations(in: Self.planted(path, requirement)) == Self.noFindings)
        let calls = ["let s = S.init {"] + filler + ["}", "let t = self.init {"] + filler + ["}"]
        #expect(Tidy.FunctionLength.violations(in: Self.planted(path, calls)) == Self.noFindings)
    }

    // MARK: Rule 4, line length

    @Test("Line length: no line in the tree is over 120 columns")
    func lineLengthTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.LineLength.violations(in: tree) == Self.noFindings)
    }

    @Test("Line length: a 121-column line is found; 120 columns, or 120 `≥`, are not")
    func lineLengthPlanted() {
        let path = "Sources/WalleWire/Planted.swift"
        #expect(Tidy.LineLength.violations(in: Self.planted(path, [String(repeating: "x", count: 121)])) == [
            "\(path):1: line-length: 121 columns (limit 120)",
        ])
        let fits = [String(repeating: "x", count: 120), String(repeating: "≥", count: 120)]
        #expect(Tidy.LineLength.violations(in: Self.planted(path, fits)) == Self.noFindings)
    }

    // MARK: Rule 5, no force-unwrapped lookups in the core

    @Test("Force unwrap: no `table[key]!` in the core")
    func forceUnwrapTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.ForceUnwrappedLookup.violations(in: tree) == Self.noFindings)
    }

    @Test("Force unwrap: `table[key]!` and `a[b[c]]!` in the core are found")
    func forceUnwrapPlanted() {
        let path = "Sources/WalleCore/Planted.swift"
        let lines = ["let x = table[key]!.value", "streams[ids[0]]!.apply()"]
        #expect(Tidy.ForceUnwrappedLookup.violations(in: Self.planted(path, lines)) == [
            "\(path):1: force-unwrap-lookup: table[key]! traps on a missing key",
            "\(path):2: force-unwrap-lookup: streams[ids[0]]! traps on a missing key",
        ])
    }

    @Test("Force unwrap: comparisons, type sugar and code outside the core are not found")
    func forceUnwrapAllowed() {
        let core = Self.planted("Sources/WalleCore/Planted.swift", [
            "if x[k] != y { return }",
            "var m: [Int: Int]!",
        ])
        #expect(Tidy.ForceUnwrappedLookup.violations(in: core) == Self.noFindings)
        let node = Self.planted("Sources/WalleNode/Planted.swift", ["let x = table[key]!"])
        #expect(Tidy.ForceUnwrappedLookup.violations(in: node) == Self.noFindings)
    }

    // MARK: Rule 6, core files of at most 400 lines

    @Test("Core file length: no file in Sources/WalleCore is over 400 lines")
    func coreFileLengthTree() throws {
        let tree = try Tidy.repositoryFiles()
        #expect(Tidy.CoreFileLength.violations(in: tree) == Self.noFindings)
    }

    @Test("Core file length: a 401-line core file is found; 400 lines, or a long file elsewhere, are not")
    func coreFileLengthPlanted() {
        let long = Array(repeating: "let x = 1", count: 401)
        let path = "Sources/WalleCore/Planted.swift"
        #expect(Tidy.CoreFileLength.violations(in: Self.planted(path, long)) == [
            "\(path):401: core-file-length: 401 lines (limit 400)",
        ])
        #expect(Tidy.CoreFileLength.violations(in: Self.planted(path, Array(long.prefix(400)))) == Self.noFindings)
        let node = Self.planted("Sources/WalleNode/Planted.swift", long)
        #expect(Tidy.CoreFileLength.violations(in: node) == Self.noFindings)
    }
}
