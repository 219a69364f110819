import Testing
import WalleCore
import WalleEnvironment
@testable import WalleSimulator

/// A sweep runs thousands of seeds in one process: each seed's world must be freed when its run
/// ends, or memory grows with the seed count (issue 11). A reference cycle does not show in one
/// run; this test holds weak references to every part of a world and looks after the run.
@Suite("Memory: a seed leaves nothing behind")
struct MemoryTests {
    /// Weak references to a world's parts, taken while it lives.
    final class Watch {
        private var parts: [(String, () -> AnyObject?)] = []

        func add(_ name: String, _ object: AnyObject) {
            weak var weak = object
            parts.append((name, { weak }))
        }

        var alive: [String] { parts.filter { $0.1() != nil }.map(\.0) }
    }

    @Test("Every part of a finished seed's world is freed: servers, clients, hostiles, agenda, network")
    func worldIsFreed() throws {
        var options = RunOptions()
        options.duration = .seconds(3)
        // A seed with readers and hostile clients, so every kind of host is built.
        let seed = try #require((UInt64(1)...200).first {
            let profile = Profile.draw(seed: $0, options: options)
            return profile.hostile.clients > 0 && profile.readerCount > 0
        })
        let watch = Watch()
        do {
            let world = World(seed: seed, options: options)
            world.runEvents()
            for part: AnyObject in [world, world.cluster, world.agenda, world.trace, world.counters, world.network,
                world.oracle, world.workload, world.overheard] {
                watch.add("\(type(of: part))", part)
            }
            for host in world.servers { watch.add("server \(host.id.short)", host) }
            for host in world.writers { watch.add("writer \(host.id.short)", host) }
            for host in world.readers { watch.add("reader \(host.id.short)", host) }
            for host in world.hostiles { watch.add("hostile \(host.id.short)", host) }
            #expect(world.readers.count > 0 && world.hostiles.count > 0)
            #expect(watch.alive.count > 10, "the watch sees the live world")
        }
        #expect(watch.alive.isEmpty, "kept alive after the seed ended: \(watch.alive.joined(separator: ", "))")
    }
}
