import WalleEnvironment

extension Dictionary where Key == StreamURI, Value == StreamReplica {
    /// A stream the caller has proven is held here: the request passed `checkHeader`, or the
    /// handler looked it up earlier in this event and nothing since could drop it (only a
    /// topology answer drops streams, through `apply(_:)`). Its absence is a bug of ours, so it
    /// traps with the stream's name. Where absence is expected (timers and answers that may
    /// outlive a dropped stream), callers use the optional lookup instead.
    subscript(held uri: StreamURI) -> StreamReplica {
        get {
            guard let replica = self[uri] else { preconditionFailure("stream \(uri) is not held here") }
            return replica
        }
        // In place, as `self[uri]!.x = …` did: a copy out and back would copy the window and
        // the recent-commit ring on every put.
        _modify {
            guard let index = index(forKey: uri) else { preconditionFailure("stream \(uri) is not held here") }
            yield &values[index]
        }
    }
}
