#!/usr/bin/env bash
# Plants each known bug into a scratch copy of the source, sweeps seeds until the first
# failure, and prints a table: bug, caught or not, seeds to the first failure, the oracle.
#
# Usage: scripts/mutation-check.sh [seeds per bug, default 500] [jobs, default 2] [name filter]
# SWEEP_ARGS adds options to every sweep. COMPARE_ARGS runs a second sweep of each mutation with
# these options and adds its figure as a last column, e.g. COMPARE_ARGS=--no-targeted-faults for
# what random faults alone reach.
# Each mutation is a one-line source edit (below), so the table tests the code as shipped,
# not a seam. Needs about 1 minute of build per mutation on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-500}
jobs=${2:-2}
only=${3:-}
scratch=$(mktemp -d /tmp/walle-mutation.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# Each mutation: name @@ file @@ text to find @@ replacement (first occurrence).
mutations=(
  "ack-before-sync@@Sources/WalleCore/ServerCore+Effects.swift@@        whenDurable(.reply(route, answer))@@        reply(route, answer)"
  "no-lease-wait@@Sources/WalleCore/ServerCore+Member.swift@@        var until = streams[held: uri].previousLeaseEnd@@        var until = time.monotonic"
  "margin-for-ratio-bound (0.75)@@Sources/WalleCore/Configuration.swift@@        return .nanoseconds(lease.nanoseconds / denominator * numerator)@@        return .nanoseconds(lease.nanoseconds / 4 * 3)"
  "WS-1 commit marker w/o checksum@@Sources/WalleCore/StreamReplica+Put.swift@@        if local.checksum == marker.checksum || limits.commitWithoutChecksum {@@        if true {"
  "WS-11 commit <= C w/o checksum@@Sources/WalleCore/StreamReplica+Put.swift@@            if let known = knownCommittedChecksum(marker.id), known != marker.checksum {@@            if let known = knownCommittedChecksum(marker.id), known != marker.checksum, false {"
  "WS-2 accept versions v-1 and v+1@@Sources/WalleCore/ServerCore+Member.swift@@        guard header.streamVersion == local || header.streamVersion == local + 1 else {@@        guard header.streamVersion == local || header.streamVersion == local + 1 || (header.streamVersion + 1 == local && replica.metadata.topology.contains(source)) else {"
  "WS-3 remove without backfill wait@@Sources/WalleCore/TopologyManager+Status.swift@@        guard case .remove(_, let leaving) = change else { return (true, removalTarget) }@@        guard case .remove(_, let leaving) = change, false else { return (true, removalTarget) }"
  "manager skips a stream version@@Sources/WalleCore/TopologyManager+Status.swift@@            next.streams[uri] = StreamTopology(version: stream.version + 1, members: stream.members + [node])@@            next.streams[uri] = StreamTopology(version: stream.version + 2, members: stream.members + [node])"
  "manager adds two members in one step@@Sources/WalleCore/TopologyManager+Status.swift@@members: stream.members + [node])@@members: stream.members + [node] + topology.streams.values.flatMap(\\.members).filter { !stream.members.contains(\$0) && \$0 != node }.sorted().prefix(1))"
  "gap commit deletes its suffix (1738)@@Sources/WalleCore/StreamReplica+Put.swift@@        let keptEnd = min(tailID, entry.id - 1)@@        let keptEnd = committedID"
  "queued puts outlive a version (168)@@Sources/WalleCore/ServerCore+Topology.swift@@                refuseQueuedPuts(uri, version: stream.version)@@                _ = stream"
  "re-stamp one entry per call (176)@@Sources/WalleCore/ClaimProcess.swift@@            if !suffix.isEmpty { sends.append((member, suffix)) }@@            for entry in suffix { sends.append((member, [entry])) }"
  "forged marker acknowledged@@Sources/WalleCore/StreamReplica+Put.swift@@        guard local.writerID < writer else {@@        guard local.writerID < writer || true else {"
  "marker alone drops entries (hostile 2)@@Sources/WalleCore/StreamReplica+Put.swift@@        if limits.acceptForgedMarker {@@        if true {"
  "client may send NewWriter@@Sources/WalleCore/Boundary.swift@@        if message.isInternalRequest && !source.isServer {@@        if false {"
  "abandoned claim leaves a lease (44)@@Sources/WalleCore/StreamReplica.swift@@        renewedAt = .distantPast@@        renewedAt = previousEnd"
  "member serves entry below first entry@@Sources/WalleCore/ServerCore+Reads.swift@@        guard start < first else { return nil }@@        guard start < first, false else { return nil }"
  "trim deletes the first entry too@@Sources/WalleCore/StreamReplica+Trim.swift@@    var trimTarget: EntryID { min(metadata.firstEntryID, committedID) }@@    var trimTarget: EntryID { min(metadata.firstEntryID + 1, committedID) }"
  "clients stop following the topology@@Sources/WalleCore/TopologyFollower.swift@@                pollAt = now@@                pollAt = nil"
  "heartbeat OK before the install syncs@@Sources/WalleCore/ServerCore+Member.swift@@            if groupCommit.everythingSynced {@@            if true {"
  "WriterInfo before it is durable@@Sources/WalleCore/ServerCore+Member.swift@@            whenDurable(.reply(route, .writerInfo(writerInfo(uri))))@@            reply(route, .writerInfo(writerInfo(uri)))"
  "NewWriter OK before the install syncs@@Sources/WalleCore/ServerCore+Member.swift@@        whenDurable(.newWriterAnswer(waitID))@@        run(.newWriterAnswer(waitID))"
  "re-stamp OK before it syncs@@Sources/WalleCore/ServerCore+Member.swift@@        streams[uri] = replica@@        streams[uri] = replica; reply(route, .ok); pendingWrites.append(contentsOf: writes); afterWindowChange(uri); return"
  "manager trims past the committed id@@Sources/WalleCore/TopologyManager+Status.swift@@        guard first > committed else { return nil }@@        guard first > committed, false else { return nil }"
)

# Seeds to the first failure of one sweep with extra options ($1), or >seeds.
first_failure() {
  local out first oracle
  # shellcheck disable=SC2086 # the options are a list
  out=$("$scratch/src/.build/release/walle-sim" sweep --seeds "$seeds" --jobs "$jobs" --fail-fast $1 \
    2>/dev/null || true)
  first=$(printf '%s\n' "$out" | sed -n 's/^first failing seed: \([0-9]*\).*/\1/p')
  oracle=$(printf '%s\n' "$out" | sed -n 's/^first failing seed: [0-9]* (\(.*\))$/\1/p')
  if [ -n "$first" ]; then echo "$first $oracle"; else echo ">$seeds -"; fi
}

printf '%-36s %-7s %-17s %s\n' "bug" "caught" "seeds to failure" "oracle${COMPARE_ARGS:+ | with $COMPARE_ARGS}"
for mutation in "${mutations[@]}"; do
  name=${mutation%%@@*}
  if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then continue; fi
  # Everything but the build directory goes: the next build recompiles only what changed.
  mkdir -p "$scratch/src"
  find "$scratch/src" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +
  # The committed code (HEAD), whatever the work tree holds.
  git archive HEAD | tar -x -C "$scratch/src"
  if ! python3 - "$scratch/src" "$mutation" <<'PY'
import sys
root, mutation = sys.argv[1:]
name, path, find, replace = mutation.split("@@")
text = open(f"{root}/{path}").read()
if find not in text:
    sys.exit(f"{name}: text not found in {path}: {find!r}")
open(f"{root}/{path}", "w").write(text.replace(find, replace, 1))
PY
  then
    printf '%-36s %s\n' "$name" "MUTATION TEXT NOT FOUND"
    continue
  fi
  if ! (cd "$scratch/src" && swift build -c release --product walle-sim >/dev/null 2>&1); then
    printf '%-36s %s\n' "$name" "BUILD FAILED"
    continue
  fi
  read -r first oracle <<<"$(first_failure "${SWEEP_ARGS:-}")"
  caught=yes
  if [[ "$first" == ">"* ]]; then caught=NO; fi
  compare=""
  if [ -n "${COMPARE_ARGS:-}" ]; then
    read -r compare_first _ <<<"$(first_failure "${SWEEP_ARGS:-} $COMPARE_ARGS")"
    compare=" | $compare_first"
  fi
  printf '%-36s %-7s %-17s %s\n' "$name" "$caught" "$first" "$oracle$compare"
done
