#include "core/replica_state.h"

#include <algorithm>
#include <limits>

namespace tally {

namespace {
constexpr Seq kAnySeq = std::numeric_limits<Seq>::max();  // no cap
}  // namespace

ReplicaState::ReplicaState(ReplicaOptions o, const WallClock* w)
    : opt(std::move(o)),
      wall(w),
      n(static_cast<RegionId>(opt.regions.size())),
      clock(opt.max_clock_offset_ms),
      log(n),
      book(opt),
      peers(opt),
      finality(n, opt.self),
      rejoin(n, opt.self),
      inc(n, opt.self),
      lost_from(n, 0),
      broker(opt, *wall, clock, log, book, peers, stats),
      desk(opt, *wall, clock, log, book, peers, finality, stats, broker) {}

// What the desk and the rights broker read of our state.
ReplicaPhase ReplicaState::Phase() const {
  return ReplicaPhase{inc.epoch(), rejoining, rejoining ? RejoinReason() : std::string(), frontier};
}

// Why we refuse writes while rejoining. What the answers name must be held (OpLog::Held), not
// applied: an op of a peer's earlier run waits for that peer's fence, which comes only once the
// peer has rejoined — two regions rejoining at once would otherwise each wait for the other's
// old ops for ever.
std::string ReplicaState::RejoinReason() const {
  return rejoin.Reason(log.applied(), log.Held(), needs_snapshot);
}

// What we tell peers we hold of `applied`: not the ops of a lost history we could not remove
// yet. A rejoining peer would wait for them from us for ever, and we for its snapshot.
VersionVector ReplicaState::Claims(VersionVector applied) const {
  for (RegionId o = 0; o < n; ++o)
    if (lost_from[o] != 0 && applied.get(o) >= lost_from[o]) applied.set(o, lost_from[o] - 1);
  return applied;
}

Hello ReplicaState::HelloFor(RegionId to, const VersionVector& applied) const {
  // The clock shown is never above the persisted high-water mark, so no restart can issue a
  // timestamp below it (a host may send this Hello without an Effects, before any lease).
  return Hello{opt.cluster_id,
               kProtocolVersion,
               opt.self,
               Claims(applied),
               inc.epoch(),
               to < n ? inc.peer_epoch(to) : 0,
               rejoining,
               std::min(clock.last(), persisted_hw).value,
               inc.fences().All(),
               needs_snapshot,
               opt.idempotency_retention_ms};
}

// Our Ack to `to`, claiming `applied`. Its fence_epoch is the newest epoch of `to` whose fence
// `to` itself told us, not the newest our book knows: that may be the fence an op of `to`
// implied (its epoch, a resume point at or above the real one), and the ops of `to` we hold
// below that op may be of its lost history — `to` would count them as its new ones (seed
// 300887). Once we have its real fence we have removed those ops (or claim below them).
Ack ReplicaState::AckFor(RegionId to, const VersionVector& applied) const {
  return Ack{applied, inc.own_fence_epoch(to)};
}

// What a peer says it holds (Hello, Ack, heartbeat): PeerTable::Acked. Its claim about our own
// ops above where this incarnation resumed counts only if it knew our fence when it wrote it:
// before, it may hold ops of our lost history under those seqs, and believing it would release
// a "replicated" answer (or prune an op) that no peer holds.
void ReplicaState::Acked(RegionId from, const VersionVector& said, std::uint64_t now, bool prunable,
                         bool knows_our_fence) {
  const Seq own_cap = !rejoining && !knows_our_fence ? inc.resumed_from() : kAnySeq;
  peers.Acked(from, said, log.applied(), own_cap, inc.peer_epoch(from), now, prunable);
}

// Leases the clock ahead of `h` so a restart never issues a timestamp (or an epoch) below one
// we advertised: the high-water mark is persisted before anything showing `h` is sent.
void ReplicaState::LeaseClock(Hlc h, Effects* out) {
  if (h < persisted_hw) return;
  persisted_hw = Hlc::Make(h.wall_ms() + opt.hlc_lease_ms, 0);
  out->high_water = persisted_hw;
}

void ReplicaState::SendHello(RegionId to, Effects* out) {
  // Leased past our clock, not only our epoch: the Hello shows our clock to a rejoining peer,
  // which must resume above every timestamp of its we merged (a heartbeat from its earlier run
  // may have pushed our clock past the lease).
  LeaseClock(std::max(Hlc{inc.epoch()}, clock.last()), out);
  out->send.push_back(Outbound{to, HelloFor(to, log.applied())});
}

void ReplicaState::TryConfirm(RegionId o) {
  finality.Confirm(o, log.applied().get(o), inc.NewestEpochOf(o));
}

// Applies the next op of its origin (core/origination.h, ApplyOp). Our own ops' key records
// are written by the desk once the answer is known — or by the book, when a peer gives back ops
// a lost store had.
Status ReplicaState::ApplyOp(const Op& op, Effects* out) {
  return tally::ApplyOp(op, /*write_keys=*/op.dot.origin != opt.self || rejoining, &book, &log,
                        out);
}

}  // namespace tally
