public import NIOCore
public import WalleEnvironment

/// Where to look for a cluster first, as people write it: `1=127.0.0.1:7001,2=db2:7002`. The
/// topology's server table then says where each server is (`[MEM-1]`).
public enum ServerList {
    public static func parse(_ text: String) throws(WalleError) -> [NodeID: ServerAddress] {
        var servers: [NodeID: ServerAddress] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = UInt64(parts[0]), id != 0 else {
                throw WalleError(.invalidArgument, "server \"\(item)\" is not ID=HOST:PORT with a non-zero numeric id")
            }
            guard servers[NodeID(id)] == nil else {
                throw WalleError(.invalidArgument, "server id \(id) is listed twice")
            }
            servers[NodeID(id)] = try ServerAddress(parsing: String(parts[1]))
        }
        guard !servers.isEmpty else { throw WalleError(.invalidArgument, "no servers given") }
        return servers
    }

    /// `HOST:PORT` with a numeric IPv4 or IPv6 host (`[::1]:7001`): an address to bind.
    public static func parseAddress(_ text: String) throws(WalleError) -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw WalleError(.invalidArgument, "address \"\(text)\" is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw WalleError(.invalidArgument, "address \"\(text)\": \"\(host)\" is not a numeric IP address")
        }
    }
}
