#include "core/rejoiner.h"

#include <algorithm>
#include <cassert>

namespace tally {

// A peer's Hello while we rejoin. Only a Hello that echoes our epoch answers this incarnation;
// one that knows a later epoch of ours means our store is older than a previous start of ours.
void Rejoiner::NoteRejoinAnswer(RegionId from, const Hello& h, std::uint64_t now, Effects* out) {
  if (h.peer_epoch > s_.inc.epoch()) {
    RejoinPastLaterStart(h.peer_epoch, from, "region " + s_.opt.regions[from] + " knows", out);
    return;
  }
  if (h.peer_epoch != s_.inc.epoch()) return;  // an answer to an earlier incarnation, or none yet
  if (!h.rejoining) s_.rejoin.NoteLiveAnswer(now);
  CountAnswer(from, h.clock, h.applied, now, out);
}

// Wiped, or restored from a copy older than a later start of ours that region `from` knows of
// (`seen`): move past that epoch and ask every peer again (earlier answers were about an epoch
// that is not the newest).
void Rejoiner::RejoinPastLaterStart(std::uint64_t seen, RegionId from, const std::string& who,
                                    Effects* out) {
  MoveEpochPast(seen);
  out->notices.push_back(Notice{Notice::Kind::kRejoin, from, 0,
                                who +
                                    " a later start of ours: our store is older than our last run; "
                                    "rejoining under a new epoch"});
  AskEveryPeerAgain(out);
}

// Region q's answer to this epoch of ours, directly or relayed: it held `applied` (of every
// origin, ours included) and its clock was `clock`. Every timestamp our earlier runs showed it
// (a heartbeat promise above all our ops, say) was merged into that clock: past it, what we
// originate cannot break a promise we made.
void Rejoiner::CountAnswer(RegionId q, std::uint64_t clock, const VersionVector& applied,
                           std::uint64_t now, Effects* out) {
  s_.clock.Update(Hlc{clock}, s_.Wall());
  const Seq own = s_.log.applied().get(s_.opt.self);
  if (applied.get(s_.opt.self) > own) {
    out->notices.push_back(
        Notice{Notice::Kind::kRejoin, q, static_cast<std::int64_t>(applied.get(s_.opt.self)),
               "region " + s_.opt.regions[q] + " holds our ops up to seq " +
                   std::to_string(applied.get(s_.opt.self)) + ", our store only up to " +
                   std::to_string(own) + ": recovering them before serving writes"});
  }
  s_.rejoin.Count(q, applied);
  MaybeFinishRejoin(now, out);
}

// Done once some peer answered this epoch, we hold every op any answer said it held — our own
// and everyone else's: a store that lost ops must not serve (or reopen an account it lost)
// before it has them back — and every other peer answered too or had peer_timeout_ms to do so.
// Ops a peer has pruned cannot come back without snapshot transfer: then we keep refusing.
void Rejoiner::MaybeFinishRejoin(std::uint64_t now, Effects* out) {
  if (!s_.rejoining ||
      !s_.rejoin.Ready(s_.log.Held(), now, s_.opt.rejoin_wait_ms, HearsAnAnsweredPeer(now)))
    return;
  if (s_.needs_snapshot) return;
  s_.rejoining = false;
  // Where this incarnation resumes: any op of an earlier one above this seq is of a lost history.
  Resume();
  const Seq own = s_.log.applied().get(s_.opt.self);
  out->notices.push_back(Notice{
      Notice::Kind::kRejoin, s_.opt.self, static_cast<std::int64_t>(own),
      "rejoined: " + std::to_string(s_.rejoin.AnsweredPeers()) + " of " + std::to_string(s_.n - 1) +
          " peers confirmed our own ops up to seq " + std::to_string(own) + "; serving writes"});
}

// Drops the answers gathered so far — they describe an older epoch of ours, or may count ops of
// a lost history — and asks every peer again, now.
void Rejoiner::AskEveryPeerAgain(Effects* out) {
  s_.rejoin.Reset();
  AskUnanswered(out);
}

// Sends our Hello (asking for an answer) to every peer that has not answered this epoch — and,
// while only rejoining peers have answered, to those too: one of them may have finished its own
// rejoin since, and its answer now would count (MaybeFinishRejoin).
void Rejoiner::AskUnanswered(Effects* out) {
  for (RegionId p = 0; p < s_.n; ++p) {
    if (p != s_.opt.self && s_.rejoin.ShouldAsk(p)) s_.SendHello(p, out);
  }
}

// While we rejoin, some region holds our own ops up to `seq` (a peer's heartbeat says so, for
// itself or relayed for another): those seqs exist, and we must not issue them again. We wait
// for them as for the answers' (MaybeFinishRejoin), instead of resuming once the others
// answered and rejoin_wait_ms passed.
void Rejoiner::OwnOpsExistUpTo(Seq seq) {
  if (s_.rejoining) s_.rejoin.OwnOpsExistUpTo(seq);
}

// Whether a peer that answered this rejoin is still heard from. Without one, a region that
// stops waiting for the silent peers would resume on answers that may have gone stale: a peer
// may have taken our newest ops since (from a region we cannot hear), and tells us in its
// heartbeats only while we hear it.
bool Rejoiner::HearsAnAnsweredPeer(std::uint64_t now) const {
  for (RegionId p = 0; p < s_.n; ++p) {
    if (p != s_.opt.self && s_.rejoin.answered(p) && s_.peers.Reachable(p, now)) return true;
  }
  return false;
}

// Moves our epoch past `seen`, an epoch of an earlier start of ours, and our clock with it: a
// region's epochs only grow, or its new ops would look older than that start's fence.
void Rejoiner::MoveEpochPast(std::uint64_t seen) {
  s_.clock.Update(Hlc{seen}, s_.Wall());
  PickEpochAbove(seen);
}

// Our epoch: a timestamp above `floor` and our clock, plus this start's nonce (two starts from
// one copy, or two that learned the same later start of ours, would otherwise pick the same
// one); our clock moves to it, so what we issue from here is above it.
void Rejoiner::PickEpochAbove(std::uint64_t floor) {
  const std::uint64_t epoch = std::max(s_.clock.Now(s_.Wall()).value, floor + 1) +
                              s_.opt.epoch_nonce % ReplicaOptions::kEpochNonceLimit;
  s_.inc.BeginEpoch(epoch);
  s_.clock.Update(Hlc{epoch}, s_.Wall());
}

// Where this incarnation resumes issuing its own ops (its fence), once it does.
void Rejoiner::Resume() {
  assert(!s_.rejoining && "a run resumes issuing its ops only once its rejoin is over");
  s_.inc.Resume(s_.log.applied().get(s_.opt.self));
  // What peers told us they hold of our ops while we rejoined may count ops of a lost history
  // above where we resume; none of them holds an op we issue from here yet.
  s_.peers.CapOwnClaims(s_.inc.resumed_from());
}

}  // namespace tally
