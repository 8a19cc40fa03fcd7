#include "core/heartbeats.h"

#include <cstdlib>

namespace tally {

void Heartbeats::Send(std::uint64_t now, Effects* out) {
  const Hlc h = s_.clock.Now(s_.Wall());
  s_.LeaseClock(h, out);
  Heartbeat hb;
  hb.applied = s_.Claims(s_.log.applied());
  hb.fences = s_.inc.fences().All();
  hb.epochs = s_.inc.KnownEpochs();
  hb.clock = h.value;
  // No promise about our own ops while rejoining: seqs we lost may exist with older timestamps.
  if (!s_.rejoining)
    hb.entries.push_back(
        HeartbeatEntry{s_.opt.self, h, s_.log.applied().get(s_.opt.self), s_.inc.epoch()});
  s_.finality.AppendRelayed(&hb.entries);
  hb.holds = s_.peers.Holds();
  hb.wall_ms = s_.Wall();
  hb.mono_ms = now;
  s_.peers.Broadcast(std::move(hb), now, out, &s_.stats);
}

// The peer's physical clock offset (PeerTable::MeasureClock), reported when beyond the bound.
void Heartbeats::MeasureClock(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out) {
  const std::int64_t offset = s_.peers.MeasureClock(from, hb, now, hb.wall_ms == 0 ? 0 : s_.Wall());
  if (hb.wall_ms == 0) return;
  const std::uint64_t off_by = static_cast<std::uint64_t>(std::llabs(offset));
  if (off_by > s_.opt.max_clock_offset_ms) {
    ++s_.stats.clock_ahead_reports;
    out->notices.push_back(Notice{Notice::Kind::kClockAhead, from, offset,
                                  "region " + s_.opt.regions[from] + " wall clock is " +
                                      std::to_string(off_by) + " ms " +
                                      (offset < 0 ? "behind" : "ahead of") + " ours"});
  }
}

void Heartbeats::On(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out) {
  // The replica has learned hb.fences already: a promise must not confirm ops of a lost history
  // we applied unaware.
  s_.inc.NoteOwnFences(from, hb.fences);
  MeasureClock(from, hb, now, out);
  LearnEpochs(from, hb.epochs, out);
  s_.Acked(from, hb.applied, now, /*prunable=*/true, s_.inc.KnowsOurFence(hb.fences));
  s_.peers.at(from).holds_epochs = hb.epochs;
  s_.peers.at(from).holds_clock = hb.clock;
  // A peer that took more of our ops since it answered tells us so here.
  rejoiner_.OwnOpsExistUpTo(hb.applied.get(s_.opt.self));
  for (const HoldsEntry& e : hb.holds) {
    if (e.region < s_.n) s_.peers.RelayedHolds(e, s_.inc.peer_epoch(e.region));
    // A region we cannot hear may hold our newest ops: a peer relays what it holds.
    if (e.region != s_.opt.self) rejoiner_.OwnOpsExistUpTo(e.applied.get(s_.opt.self));
    if (s_.rejoining && e.region < s_.n && e.region != s_.opt.self)
      NoteRelayedAnswer(e.region, e, now, out);
  }
  for (const HeartbeatEntry& e : hb.entries) {
    if (e.origin >= s_.n) continue;
    // A promise of an incarnation the origin has left (in flight, or relayed, from before it
    // restarted) binds nothing: its new run rejoined on our clock as it was and may issue below.
    if (e.origin != s_.opt.self &&
        (e.epoch < s_.inc.peer_epoch(e.origin) || e.epoch < s_.inc.fences().NewestEpoch(e.origin)))
      continue;
    if (e.origin != from) {
      // A relayed promise: merged like any timestamp we receive, so that whoever answers a
      // rejoining region has merged every promise it relays (ours from an earlier run too).
      s_.clock.Update(e.hlc, s_.Wall());
      if (e.origin == s_.opt.self) continue;
    } else {
      s_.peers.at(from).rejoining = false;  // it promises about its own ops only once rejoined
      s_.clock.Update(e.hlc, s_.Wall());
    }
    if (s_.finality.Promise(e)) s_.TryConfirm(e.origin);
  }
}

// Newest epochs a peer knows, relayed. A region that restarted is known by its new epoch also
// where it cannot be heard, and the epochs go out with what each region holds: that answers its
// rejoin through relays (NoteRelayedAnswer). Kept apart from the epochs we heard from the
// regions themselves (Hello, fences), which decide what we believe of their ops. A later start
// of ours than this one means our store is older than our last run, as in a Hello.
void Heartbeats::LearnEpochs(RegionId from, const std::vector<std::uint64_t>& epochs,
                             Effects* out) {
  for (RegionId o = 0; o < s_.n && o < epochs.size(); ++o) {
    if (o != s_.opt.self) {
      s_.inc.NoteRelayedEpoch(o, epochs[o]);
    } else if (s_.rejoining && epochs[o] > s_.inc.epoch()) {
      rejoiner_.RejoinPastLaterStart(epochs[o], from, "region " + s_.opt.regions[from] + " relays",
                                     out);
    }
  }
}

// What region q holds, said (to a peer, relayed to us, or to us in a heartbeat) while it knew our
// current epoch, so after we restarted: every op of ours it held then, it holds in this claim.
// That answers our rejoin as its Hello would, through any number of relays: a restarted region
// need not hear every peer directly (a partial partition), only be known by each. What such a
// peer gets of our earlier run afterwards was in flight when we stopped: fences are for that.
void Heartbeats::NoteRelayedAnswer(RegionId q, const HoldsEntry& e, std::uint64_t now,
                                   Effects* out) {
  if (q >= s_.n || q == s_.opt.self || e.epochs.size() <= s_.opt.self ||
      e.epochs[s_.opt.self] != s_.inc.epoch())
    return;
  if (s_.peers.Reachable(q, now))
    return;  // a peer we hear answers with its Hello, as it knows us best
  rejoiner_.CountAnswer(q, e.clock, e.applied, now, out);
}

// Folds every journal below the stable frontier into its checkpoint, in memory. Cheap, so it
// runs on every heartbeat; persisting is SaveCheckpoints' job. True when the frontier moved.
bool Heartbeats::FoldToFrontier() {
  const Hlc f = s_.finality.StableFrontier(s_.clock.last());
  if (f <= s_.frontier) return false;
  s_.frontier = f;
  s_.book.FoldBelow(f, s_.log);
  return true;
}

// Emits the checkpoints folded since the last save, with the frontier they are valid at, and
// prunes the log below it. Ops are deleted from storage only below a persisted checkpoint, so
// a restart finds every op the checkpoints do not cover. Keys past their window go in the same
// batch (AccountBook::SweepKeys).
void Heartbeats::SaveCheckpoints(Effects* out) {
  Fold fold;
  fold.frontier = s_.frontier;
  fold.checkpoints = s_.book.TakeUnsaved();
  fold.lines = s_.book.TakeUnsavedLines();
  s_.saved_frontier = s_.frontier;
  PruneLogs();
  s_.stats.idempotency_keys_expired += s_.book.SweepKeys(s_.saved_frontier, out);
  fold.log_floor = s_.log.floor();
  out->fold = std::move(fold);
}

// Drops log ops that are final and that every peer has acked. Nothing else may go: a lagging
// peer must still be able to get every op from someone.
void Heartbeats::PruneLogs() {
  VersionVector upto;
  for (RegionId o = 0; o < s_.n; ++o)
    upto.set(o, s_.peers.HeldByEveryPeer(o, s_.log.applied().get(o)));
  s_.log.Prune(upto, s_.saved_frontier);
}

}  // namespace tally
