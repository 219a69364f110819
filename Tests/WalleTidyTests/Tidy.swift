import Foundation

/// Repository-wide rules over the Swift sources (issue 13, plan section 5). A rule kept only by
/// review drifts; these run with the tests. Each rule is a pure function of the files, so a test
/// can run it on the real tree and on a planted fixture alike. A finding reads
/// `path:line: rule: detail`, with the path relative to the repository root.
enum Tidy {
    typealias File = (path: String, text: String)

    /// The checkout this file sits in: `<root>/Tests/WalleTidyTests/Tidy.swift`. The sources are
    /// read from there, so the tests must run from a checkout (SwiftPM's default).
    static func repositoryRoot() -> String {
        let here: String = #filePath
        var parts = here.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// Every Swift file the rules cover, sorted by path. Only Package.swift and these three
    /// directories are listed, so `.build/` (dependency checkouts) is never entered.
    static func repositoryFiles(root: String = repositoryRoot()) throws -> [File] {
        var paths = ["Package.swift"]
        for top in ["Sources", "Simulations", "Tests"] {
            let entries = try FileManager.default.subpathsOfDirectory(atPath: root + "/" + top)
            paths += entries.filter { $0.hasSuffix(".swift") }.map { top + "/" + $0 }
        }
        return try paths.sorted().map { path -> File in
            let text = try String(contentsOfFile: root + "/" + path, encoding: .utf8)
            return (path: path, text: text)
        }
    }

    /// What a rule table is keyed by: `Sources/WalleCore` for `Sources/WalleCore/Quorum.swift`
    /// (one directory is one target in Package.swift), the path itself for a top-level file.
    static func directory(of path: String) -> String {
        let parts = path.split(separator: "/")
        return parts.count >= 3 ? parts.prefix(2).joined(separator: "/") : path
    }

    static func finding(_ path: String, _ line: Int, _ rule: String, _ detail: String) -> String {
        "\(path):\(line): \(rule): \(detail)"
    }

    /// The raw lines of a file, comments and strings included.
    static func lines(_ text: String) -> [String] {
        text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
    }

    /// The lines of a file with comments and string text blanked out (see `Masker`).
    static func code(_ text: String) -> [String] {
        Masker.mask(text).lines
    }

    /// Runs `check` on each masked line of a file and turns its complaints into findings.
    static func perLine(_ file: File, rule: String, _ check: (String) -> [String]) -> [String] {
        var found: [String] = []
        for (offset, line) in code(file.text).enumerated() {
            found += check(line).map { finding(file.path, offset + 1, rule, $0) }
        }
        return found
    }

    /// Identifier-like words of a line, so that a rule can match `Date` but not `Update`.
    static func words(_ line: String) -> [String] {
        line.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init)
    }

    /// The modules a file imports, read from masked code so that an import in a comment or a
    /// string does not count. Imports inside `#if canImport(…)` count in every branch.
    static func imports(in text: String) -> [(line: Int, module: String)] {
        var found: [(line: Int, module: String)] = []
        for (offset, line) in code(text).enumerated() {
            if let module = importedModule(line) { found.append((line: offset + 1, module: module)) }
        }
        return found
    }

    private static let accessLevels: Set<String> = ["open", "public", "package", "internal", "fileprivate", "private"]
    private static let importKinds: Set<String> = [
        "struct", "class", "enum", "protocol", "typealias", "func", "let", "var",
    ]

    /// The module a masked line imports, if it is an import: `@testable public import
    /// struct Foo.Bar` imports `Foo`.
    static func importedModule(_ line: String) -> String? {
        var tokens = line.split(whereSeparator: \.isWhitespace).map(String.init)[...]
        while let first = tokens.first, first.hasPrefix("@") { tokens.removeFirst() }
        if let first = tokens.first, accessLevels.contains(first) { tokens.removeFirst() }
        guard tokens.first == "import" else { return nil }
        tokens.removeFirst()
        if let first = tokens.first, importKinds.contains(first) { tokens.removeFirst() }
        guard let name = tokens.first else { return nil }
        return String(name.prefix(while: { $0 != "." && $0 != ";" }))
    }
}

// MARK: - Rule 1: layering

extension Tidy {
    /// Each directory imports only what its place in the layers allows (Package.swift's header,
    /// docs/architecture.md): the environment nothing, the core the environment only, and no
    /// production module the simulator or the fuzzer.
    enum Layering {
        /// Per directory: its target's dependencies in Package.swift (product names for other
        /// packages; also modules it gets through them, such as WalleCore in walle-sim), plus
        /// the system and Foundation modules it imports today. Keep this in sync with
        /// Package.swift. A directory without an entry is itself a finding, so a new module
        /// cannot dodge the rule, and a new dependency needs an edit here, which gets reviewed.
        static let allowed: [String: Set<String>] = [
            "Package.swift": ["PackageDescription"],
            "Sources/WalleEnvironment": [],
            "Sources/WalleCore": ["WalleEnvironment"],
            "Sources/WalleNode": ["WalleCore", "WalleEnvironment"],
            "Sources/WalleWire": ["WalleEnvironment"],
            "Sources/WalleStorage": ["WalleEnvironment", "WiredTigerShim", "Metrics", "Foundation"],
            "Sources/WalleTransport": [
                "WalleWire", "WalleEnvironment", "Logging", "Metrics", "NIOCore", "NIOPosix", "Glibc", "Darwin",
            ],
            "Sources/WalleServer": [
                "WalleNode", "WalleCore", "WalleStorage", "WalleTransport", "WalleEnvironment", "Logging",
                "Metrics", "Prometheus", "NIOCore", "NIOPosix", "NIOHTTP1", "Foundation",
            ],
            "Sources/WalleClient": [
                "WalleNode", "WalleCore", "WalleTransport", "WalleEnvironment", "Logging", "NIOCore", "NIOPosix",
                "Synchronization",
            ],
            "Sources/walle-node": [
                "WalleServer", "WalleTransport", "WalleEnvironment", "ArgumentParser", "Logging",
                "ServiceLifecycle", "NIOCore", "Foundation",
            ],
            "Sources/walle": [
                "WalleClient", "WalleCore", "WalleEnvironment", "ArgumentParser", "Logging", "NIOCore", "NIOPosix",
                "Histogram", "Foundation", "Synchronization",
            ],
            "Simulations/WalleSimulator": ["WalleNode", "WalleCore", "WalleEnvironment"],
            "Simulations/walle-sim": [
                "WalleSimulator", "WalleCore", "ArgumentParser", "Foundation", "Dispatch", "Glibc",
            ],
            "Simulations/WalleFuzz": ["WalleSimulator", "WalleCore", "WalleWire", "WalleEnvironment", "Glibc"],
            "Simulations/walle-fuzz": [
                "WalleFuzz", "WalleTransport", "WalleEnvironment", "ArgumentParser", "Foundation",
            ],
            "Tests/WalleContracts": ["WalleEnvironment", "Foundation"],
            "Tests/WalleCoreTests": ["WalleCore", "WalleEnvironment", "WalleWire", "Testing"],
            "Tests/WalleStorageTests": [
                "WalleStorage", "WalleEnvironment", "WalleContracts", "Testing", "Foundation",
            ],
            "Tests/WalleTransportTests": [
                "WalleTransport", "WalleWire", "WalleEnvironment", "NIOCore", "NIOPosix", "Logging", "Testing",
                "Foundation",
            ],
            "Tests/WalleLoopbackTests": [
                "WalleClient", "WalleCore", "WalleWire", "WalleEnvironment", "WalleFuzz", "WalleContracts",
                "NIOCore", "Testing", "Foundation", "Glibc",
            ],
            "Tests/WalleFuzzTests": [
                "WalleFuzz", "WalleCore", "WalleEnvironment", "WalleWire", "WalleContracts", "Testing", "Foundation",
            ],
            "Tests/WalleSimulatorTests": [
                "WalleSimulator", "WalleCore", "WalleEnvironment", "WalleContracts", "Testing", "Foundation",
            ],
            "Tests/WalleTidyTests": ["Testing", "Foundation"],
        ]

        static func violations(in files: [Tidy.File]) -> [String] {
            var found: [String] = []
            for file in files {
                let directory = Tidy.directory(of: file.path)
                guard let permitted = allowed[directory] else {
                    found.append(Tidy.finding(file.path, 1, "layering", "\(directory) is not in the import table"))
                    continue
                }
                for use in Tidy.imports(in: file.text) where !permitted.contains(use.module) {
                    let detail = "\(directory) may not import \(use.module)"
                    found.append(Tidy.finding(file.path, use.line, "layering", detail))
                }
            }
            return found
        }
    }
}

// MARK: - Rule 2: determinism

extension Tidy {
    /// The layers a simulation replays bit for bit may not read the host's clock, randomness or
    /// scheduling: time comes from the `Clock` they are handed and randomness from a seeded
    /// generator passed in (`using:`). Checked on masked code, whole words only.
    enum Determinism {
        static let directories: Set<String> = [
            "Sources/WalleEnvironment", "Sources/WalleCore", "Sources/WalleNode", "Simulations/WalleSimulator",
        ]
        static let modules: Set<String> = [
            "Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Darwin", "Musl", "WinSDK", "os",
        ]
        static let names: Set<String> = [
            "Date", "DispatchQueue", "DispatchTime", "DispatchWallTime", "ContinuousClock", "SuspendingClock",
            "ProcessInfo", "Thread", "clock_gettime", "gettimeofday", "mach_absolute_time",
            "SystemRandomNumberGenerator", "arc4random", "arc4random_uniform", "drand48", "UUID",
        ]
        /// Calls that draw from the system generator or the per-process hash seed. The seeded
        /// forms take `using:`; `random.shuffled(xs)` is the simulator's own `SimRandom`, and
        /// `hash(into hasher: inout Hasher)` only feeds a hasher, so neither is listed.
        static let calls = [".randomElement()", ".shuffled()", ".shuffle()", ".hashValue", "Hasher("]

        static func violations(in files: [Tidy.File]) -> [String] {
            files.filter { directories.contains(Tidy.directory(of: $0.path)) }.flatMap { file -> [String] in
                Tidy.perLine(file, rule: "determinism", complaints)
            }
        }

        /// What is wrong with one line of masked code.
        static func complaints(_ line: String) -> [String] {
            var found: [String] = []
            if let module = Tidy.importedModule(line), modules.contains(module) { found.append("imports \(module)") }
            found += Tidy.words(line).filter { names.contains($0) }.map { "uses \($0)" }
            found += calls.filter { line.contains($0) }.map { "calls \($0)" }
            if drawsUnseeded(line) { found.append("calls .random( without using:") }
            return found
        }

        /// Whether a `.random(` call on this line lacks `using:` among its arguments. A call whose
        /// arguments run onto the next line is judged on the part on this line (none exist today).
        static func drawsUnseeded(_ line: String) -> Bool {
            line.components(separatedBy: ".random(").dropFirst().contains { rest in
                !arguments(rest).contains("using:")
            }
        }

        /// A call's argument text, given what follows its `(`: up to the matching `)`.
        static func arguments(_ rest: String) -> String {
            var depth = 1
            for index in rest.indices {
                if rest[index] == "(" { depth += 1 }
                if rest[index] == ")" { depth -= 1 }
                if depth == 0 { return String(rest[..<index]) }
            }
            return rest
        }
    }
}

// MARK: - Rule 3: function length

extension Tidy {
    /// A function body is at most 70 lines, counted from the line of `func` (or `init`, `deinit`,
    /// `subscript`) to the line of its closing brace. Computed properties are not measured, but
    /// functions inside them are. Nested functions count on their own and inside their parent.
    enum FunctionLength {
        static let limit = 70

        static func violations(in files: [Tidy.File]) -> [String] {
            var found: [String] = []
            for file in files {
                var scan = Scan()
                for character in Tidy.code(file.text).joined(separator: "\n") { scan.take(character) }
                for body in scan.bodies where body.lines > limit {
                    found.append(Tidy.finding(
                        file.path, body.line, "function-length", "\(body.lines) lines (limit \(limit))"))
                }
            }
            return found
        }

        /// A character-at-a-time walk over masked code that pairs declarations with their bodies.
        /// A declaration is *pending* until the next `{` at its own paren depth (braces of a
        /// default-argument closure are deeper). A `}`, `;` or another declaration at that depth
        /// first means it had no body: a protocol requirement must not swallow what follows.
        struct Scan {
            static let starters: Set<String> = ["func", "init", "deinit", "subscript"]
            static let enders: Set<String> = [
                "var", "let", "case", "typealias", "associatedtype", "struct", "class", "enum", "protocol",
                "extension", "actor",
            ]

            private(set) var bodies: [(line: Int, lines: Int)] = []
            private var line = 1
            private var depth = 0                          // open ( and [
            private var braces: [Int?] = []                // per open {: a function's first line, or nil
            private var pending: (line: Int, depth: Int)?
            private var word = ""
            private var previous: Character = " "          // the last non-blank character before `word`

            mutating func take(_ character: Character) {
                if character.isLetter || character.isNumber || character == "_" {
                    word.append(character)
                    return
                }
                finishWord()
                switch character {
                case "\n": line += 1
                case "(", "[": depth += 1
                case ")", "]": depth -= 1
                case "{": open()
                case "}": close()
                case ";" where pending?.depth == depth: pending = nil
                default: break
                }
                if !character.isWhitespace { previous = character }
            }

            /// `.init(`, `self.init(` and `Foo.init` are calls, not declarations.
            private mutating func finishWord() {
                guard let last = word.last else { return }
                if Self.starters.contains(word) && previous != "." {
                    pending = (line: line, depth: depth)
                } else if Self.enders.contains(word) && pending?.depth == depth {
                    pending = nil
                }
                previous = last
                word = ""
            }

            private mutating func open() {
                if let declaration = pending, declaration.depth == depth {
                    braces.append(declaration.line)
                    pending = nil
                } else {
                    braces.append(nil)
                }
            }

            private mutating func close() {
                if pending?.depth == depth { pending = nil }
                // An unbalanced `}` is reported by the lexer rule; here it is only skipped.
                guard let frame = braces.popLast() else { return }
                if let start = frame { bodies.append((line: start, lines: line - start + 1)) }
            }
        }
    }
}

// MARK: - Rule 4: line length

extension Tidy {
    /// A line is at most 120 columns, comments and strings included. Columns are `Character`s,
    /// so `≥` or `→` counts as one.
    enum LineLength {
        static let limit = 120

        static func violations(in files: [Tidy.File]) -> [String] {
            var found: [String] = []
            for file in files {
                for (offset, line) in Tidy.lines(file.text).enumerated() where line.count > limit {
                    found.append(Tidy.finding(
                        file.path, offset + 1, "line-length", "\(line.count) columns (limit \(limit))"))
                }
            }
            return found
        }
    }
}

// MARK: - Rule 5: no force-unwrapped lookups in the core

extension Tidy {
    /// In the core, `table[key]!` hides which invariant promised the key; a missing key must trap
    /// through a helper that names it (plan 5.4). Flags any subscript followed by `!` (not
    /// `!=`): stricter than "dictionary", which is fine for the core. A `[` after a space or
    /// `:` is a literal or type sugar (`var m: [K: V]!`), not a subscript.
    enum ForceUnwrappedLookup {
        static let directory = "Sources/WalleCore"

        static func violations(in files: [Tidy.File]) -> [String] {
            files.filter { Tidy.directory(of: $0.path) == directory }.flatMap { file -> [String] in
                Tidy.perLine(file, rule: "force-unwrap-lookup") { line in
                    unwrappedSubscripts(line).map { "\($0) traps on a missing key" }
                }
            }
        }

        /// The `base[key]!` texts on one line of masked code.
        static func unwrappedSubscripts(_ line: String) -> [String] {
            let characters = Array(line)
            var found: [String] = []
            for close in characters.indices where characters[close] == "]" {
                let next = close + 1 < characters.count ? characters[close + 1] : " "
                let after = close + 2 < characters.count ? characters[close + 2] : " "
                guard next == "!", after != "=" else { continue }
                guard let open = matchingOpen(characters, close: close), open > 0 else { continue }
                let before = characters[open - 1]
                guard before.isLetter || before.isNumber || "_)]?!".contains(before) else { continue }
                var start = open
                while start > 0, characters[start - 1].isLetter || characters[start - 1].isNumber
                    || characters[start - 1] == "_"
                {
                    start -= 1
                }
                found.append(String(characters[start...close]) + "!")
            }
            return found
        }

        /// The index of the `[` that the `]` at `close` closes, on the same line.
        static func matchingOpen(_ characters: [Character], close: Int) -> Int? {
            var depth = 0
            for index in stride(from: close, through: 0, by: -1) {
                if characters[index] == "]" { depth += 1 }
                if characters[index] == "[" { depth -= 1 }
                if depth == 0 { return index }
            }
            return nil
        }
    }
}

// MARK: - The lexer behind the masked rules

extension Tidy {
    /// Findings where the masker could not follow a file: then the masked rules cannot be
    /// trusted for it, so this fails loudly instead of letting, say, a long function hide.
    enum Lexing {
        static func violations(in files: [Tidy.File]) -> [String] {
            files.flatMap { file -> [String] in
                Tidy.Masker.mask(file.text).problems.map { Tidy.finding(file.path, $0.line, "lexer", $0.detail) }
            }
        }
    }

    /// Blanks out comments and the text inside string literals, keeping every newline and the
    /// string delimiters, so the rules that read code see neither `import Foundation` in a doc
    /// comment nor a `}` inside a string. Not a parser: it knows just enough of Swift's lexical
    /// grammar (nested block comments, raw and multi-line strings, interpolation, `#/regex/#`)
    /// and reports what it cannot follow instead of guessing. A bare `/regex/` literal is not
    /// understood (the tree has none); if one hides a brace, the brace check reports it.
    struct Masker {
        typealias Problem = (line: Int, detail: String)

        enum Frame: Equatable {
            /// Code: the file itself (nil), or an interpolation `\( … )` with its open parens.
            case code(openParens: Int?)
            case blockComment
            case string(hashes: Int, multiline: Bool)
            case regex(hashes: Int)
        }

        private let scalars: [Unicode.Scalar]
        private var index = 0
        private var line = 1
        private var stack: [Frame] = [.code(openParens: nil)]
        private var output = ""
        private var problems: [Problem] = []

        private init(scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        /// The masked lines of `text` (as many as it has), and what the masker could not follow.
        static func mask(_ text: String) -> (lines: [String], problems: [Problem]) {
            var masker = Masker(scalars: Array(text.unicodeScalars).filter { $0 != "\r" })
            masker.run()
            let lines = masker.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            return (lines: lines, problems: masker.problems + braceProblems(lines))
        }

        private mutating func run() {
            while index < scalars.count {
                switch stack[stack.count - 1] {
                case .code(let openParens): scanCode(openParens)
                case .blockComment: scanBlockComment()
                case .string(let hashes, let multiline): scanString(hashes: hashes, multiline: multiline)
                case .regex(let hashes): scanRegex(hashes: hashes)
                }
            }
            if stack.count > 1 { problems.append((line: line, detail: "the file ends inside \(unclosed())")) }
        }

        private func unclosed() -> String {
            switch stack[stack.count - 1] {
            case .code: return "an interpolation"
            case .blockComment: return "a block comment"
            case .string: return "a string literal"
            case .regex: return "a regex literal"
            }
        }

        private mutating func scanCode(_ openParens: Int?) {
            if looking(at: "//") {
                while index < scalars.count, scalars[index] != "\n" { consume(1, keep: false) }
            } else if looking(at: "/*") {
                stack.append(.blockComment)
                consume(2, keep: false)
            } else if let opening = stringOpening() {
                stack.append(.string(hashes: opening.hashes, multiline: opening.multiline))
                consume(opening.length, keep: true)
            } else if let hashes = regexOpening() {
                stack.append(.regex(hashes: hashes))
                consume(hashes + 1, keep: true)
            } else {
                let scalar = scalars[index]
                consume(1, keep: true)
                guard let open = openParens else { return }
                // Inside an interpolation: the `)` that balances its `\(` returns to the string.
                if scalar == "(" { stack[stack.count - 1] = .code(openParens: open + 1) }
                if scalar == ")" && open == 1 { stack.removeLast() }
                if scalar == ")" && open > 1 { stack[stack.count - 1] = .code(openParens: open - 1) }
            }
        }

        /// Block comments nest in Swift.
        private mutating func scanBlockComment() {
            if looking(at: "/*") {
                stack.append(.blockComment)
                consume(2, keep: false)
            } else if looking(at: "*/") {
                stack.removeLast()
                consume(2, keep: false)
            } else {
                consume(1, keep: false)
            }
        }

        /// The escape is `\` plus the string's `#`s; an escaped character is skipped whole, so
        /// `"\""` and `"\\"` end where they should.
        private mutating func scanString(hashes: Int, multiline: Bool) {
            let escape = "\\" + String(repeating: "#", count: hashes)
            let closing = (multiline ? "\"\"\"" : "\"") + String(repeating: "#", count: hashes)
            if looking(at: escape + "(") {
                consume(hashes + 2, keep: true)
                stack.append(.code(openParens: 1))
            } else if looking(at: escape) {
                consume(hashes + 2, keep: false)
            } else if looking(at: closing) {
                consume(closing.unicodeScalars.count, keep: true)
                stack.removeLast()
            } else if scalars[index] == "\n" && !multiline {
                problems.append((line: line, detail: "a string literal runs past the end of its line"))
                stack.removeLast()
            } else {
                consume(1, keep: false)
            }
        }

        private mutating func scanRegex(hashes: Int) {
            let closing = "/" + String(repeating: "#", count: hashes)
            if scalars[index] == "\\" {
                consume(2, keep: false)
            } else if looking(at: closing) {
                consume(closing.unicodeScalars.count, keep: true)
                stack.removeLast()
            } else {
                consume(1, keep: false)
            }
        }

        /// At `"` or `"""`, either behind `#`s: the string's shape and the delimiter's length.
        private func stringOpening() -> (hashes: Int, multiline: Bool, length: Int)? {
            let hashes = repeated("#")
            guard looking(at: "\"", offset: hashes) else { return nil }
            let multiline = looking(at: "\"\"\"", offset: hashes)
            return (hashes: hashes, multiline: multiline, length: hashes + (multiline ? 3 : 1))
        }

        /// At `#/` (with one or more `#`): the number of `#`s of an extended regex literal.
        private func regexOpening() -> Int? {
            let hashes = repeated("#")
            return hashes > 0 && looking(at: "/", offset: hashes) ? hashes : nil
        }

        private func repeated(_ scalar: Unicode.Scalar) -> Int {
            var count = 0
            while index + count < scalars.count, scalars[index + count] == scalar { count += 1 }
            return count
        }

        private func looking(at text: String, offset: Int = 0) -> Bool {
            var position = index + offset
            for scalar in text.unicodeScalars {
                guard position < scalars.count, scalars[position] == scalar else { return false }
                position += 1
            }
            return true
        }

        /// Moves past `count` scalars, copying them or writing spaces; newlines are always kept,
        /// so masked lines line up with the raw ones.
        private mutating func consume(_ count: Int, keep: Bool) {
            for _ in 0..<count where index < scalars.count {
                let scalar = scalars[index]
                if scalar == "\n" { line += 1 }
                output.unicodeScalars.append((keep || scalar == "\n") ? scalar : " ")
                index += 1
            }
        }

        /// Braces must balance in masked code. If they do not, the masker misread the file (or an
        /// `#if` has unbalanced branches), and the brace-matching rules cannot be trusted.
        private static func braceProblems(_ lines: [String]) -> [Problem] {
            var depth = 0
            for (offset, line) in lines.enumerated() {
                for character in line {
                    if character == "{" { depth += 1 }
                    if character == "}" { depth -= 1 }
                    if depth < 0 { return [(line: offset + 1, detail: "a } closes nothing")] }
                }
            }
            return depth == 0 ? [] : [(line: lines.count, detail: "\(depth) { never closed")]
        }
    }
}

// MARK: - Rule 6: no core file over 400 lines

extension Tidy {
    /// A core file holds one machine or one concern; past 400 lines it is two that grew
    /// together (issue 13 split `ServerCore` from 1,400 lines over seven files).
    enum CoreFileLength {
        static let directory = "Sources/WalleCore"
        static let limit = 400

        static func violations(in files: [Tidy.File]) -> [String] {
            files.filter { Tidy.directory(of: $0.path) == directory }.compactMap { file in
                // As `wc -l` counts: a final newline ends the last line, it does not start one.
                let count = Tidy.lines(file.text).count - (file.text.hasSuffix("\n") ? 1 : 0)
                guard count > limit else { return nil }
                return Tidy.finding(file.path, count, "core-file-length", "\(count) lines (limit \(limit))")
            }
        }
    }
}
