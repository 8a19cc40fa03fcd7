#include "core/state_transfer.h"

#include <algorithm>
#include <cassert>

#include "core/origination.h"
#include "core/validate.h"

namespace tally {

// The ops of a lost history our own store holds, by the fences it holds too: a copy restored
// from before a fence, with that fence learned and synced since, then a crash (seed 300977).
// Learning a fence removes such ops (RemoveLostHistory); one read back from the store must be
// handled here. From the first dead op of an origin on (a splice after it too) the ops go, as
// that would remove them; if one of them is folded into our checkpoints already, only a
// peer's state can replace ours: we keep them, claim none of them, and ask for a snapshot.
void StateTransfer::DropLostHistory(RecoveredState* st) {
  std::vector<Seq> first(s_.n, 0);
  for (const Op& op : st->ops) {
    const RegionId o = op.dot.origin;
    if (o < s_.n && s_.inc.fences().IsDead(op) && (first[o] == 0 || op.dot.seq < first[o]))
      first[o] = op.dot.seq;
  }
  for (RegionId o = 0; o < s_.n; ++o) {
    if (first[o] == 0) continue;
    auto lost = [&](const Op& op) { return op.dot.origin == o && op.dot.seq >= first[o]; };
    const bool folded = std::any_of(st->ops.begin(), st->ops.end(), [&](const Op& op) {
      return lost(op) && op.hlc < st->frontier;
    });
    if (folded) {
      s_.needs_snapshot = true;
      s_.lost_from[o] = first[o];
      continue;
    }
    const auto removed = std::erase_if(st->ops, lost);
    std::erase_if(st->keys,
                  [&](const KeyRecord& k) { return k.dot.origin == o && k.dot.seq >= first[o]; });
    s_.stats.lost_history_ops += removed;
  }
}

// Ops are applied as by a replica that is not rejoining: the key records of our own ops are
// among st.keys (the desk wrote them when it answered), a peer's are written as its op applies.
Status StateTransfer::LoadInto(const ReplicaOptions& opt, RecoveredState st, OpLog* log,
                               AccountBook* book, Hlc* held_max) {
  const RegionId n = static_cast<RegionId>(opt.regions.size());
  log->Reset(st.log_floor);
  for (const AccountCheckpoint& c : st.checkpoints) {
    Status s = book->LoadCheckpoint(c);
    if (!s.ok()) return Status::Corruption("checkpoint of " + c.config.id + ": " + s.message());
  }
  for (const KeyRecord& k : st.keys) {
    Status s = book->LoadKey(k);
    if (!s.ok()) return Status::Corruption("key record of " + k.account + ": " + s.message());
  }
  std::sort(st.ops.begin(), st.ops.end(), [](const Op& a, const Op& b) { return a.dot < b.dot; });
  for (Op& op : st.ops) {
    Status s = ValidateOpFor(op, n);
    if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
    const RegionId o = op.dot.origin;
    if (op.dot.seq != log->applied().get(o) + 1)
      return Status::Corruption("op log of region " + std::to_string(o) + " has a gap before seq " +
                                std::to_string(op.dot.seq));
    *held_max = std::max(*held_max, op.hlc);
    if (op.hlc < st.frontier) {
      // Already folded into the checkpoint; kept only so lagging peers can still be served.
      log->Append(op);
      continue;
    }
    s = ApplyOp(op, /*write_keys=*/op.dot.origin != opt.self, book, log, nullptr);
    if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
  }
  return Status::OK();
}

// At most one snapshot per peer per max(resend_after_ms, peer_timeout_ms): it is large, and the
// peer answers one it installed with an Ack that ends the need.
void StateTransfer::SendSnapshot(RegionId to, std::uint64_t now, Effects* out) {
  Peer& p = s_.peers.at(to);
  const std::uint64_t every = std::max(s_.opt.resend_after_ms, s_.opt.peer_timeout_ms);
  if (p.snapshot_ms != 0 && now < p.snapshot_ms + every) return;
  p.snapshot_ms = std::max<std::uint64_t>(now, 1);
  Snapshot snap;
  snap.frontier = s_.frontier;
  snap.applied = s_.log.applied();
  snap.log_floor = s_.log.floor();
  snap.accounts = s_.book.FinalCheckpoints(s_.frontier);
  snap.ops = s_.log.AllRetained();
  snap.keys = s_.book.KeyRecords(/*with_displaced=*/false);
  snap.fences = s_.inc.fences().All();
  ++s_.stats.snapshots_sent;
  ++s_.stats.messages_sent;
  out->notices.push_back(Notice{
      Notice::Kind::kSnapshotSent, to, static_cast<std::int64_t>(snap.ops.size()),
      "sent a snapshot to region " + s_.opt.regions[to] + " (" +
          std::to_string(snap.accounts.size()) + " accounts, " + std::to_string(snap.ops.size()) +
          " ops): it restarted " + "lacking ops no region retains any more"});
  out->send.push_back(Outbound{to, std::move(snap)});
}

// A peer's snapshot. Installed only while we rejoin, only if we lack ops it no longer retains,
// and only if it covers every op we folded away ourselves. Our own ops beyond it are replayed
// on top; the whole result is checked on a scratch replica first, so a malformed snapshot
// changes nothing. Then the host replaces its store with the new state.
bool StateTransfer::Install(RegionId from, const Snapshot& snap, std::uint64_t now, Effects* out) {
  assert(s_.rejoining && "only a rejoining region replaces its state with a peer's");
  bool lacking = s_.needs_snapshot;
  for (RegionId o = 0; o < s_.n; ++o) {
    if (s_.log.applied().get(o) < snap.log_floor.get(o)) lacking = true;
    if (!s_.needs_snapshot && snap.applied.get(o) < s_.log.floor().get(o))
      return false;  // it lacks ops only we still have
  }
  if (!lacking) return false;
  RecoveredState st;
  st.frontier = snap.frontier;
  st.log_floor = snap.log_floor;
  st.checkpoints = snap.accounts;
  st.ops = snap.ops;
  st.keys = snap.keys;
  Status s;
  for (const Op& op : st.ops) {
    if (s_.inc.fences().IsDead(op))
      s = Status::InvalidArgument("it holds op " + op.dot.ToString() + " of a lost history");
  }
  for (RegionId o = 0; o < s_.n && s.ok(); ++o) {
    for (Seq q = std::max(snap.applied.get(o), s_.log.floor().get(o)) + 1;
         q <= s_.log.applied().get(o); ++q) {
      const Op& op = s_.log.At(o, q);
      if (s_.inc.fences().IsDead(op)) break;  // ours of a lost history (a restored store): they go
      // Every op below its frontier was in the sender's hands when it folded (heartbeat
      // promises): one of ours that is not would vanish into a checkpoint that lacks it.
      st.ops.push_back(op);
    }
  }
  for (const KeyRecord& k : s_.book.KeyRecords(/*with_displaced=*/true)) {
    if (k.displaced) st.keys.push_back(k);
  }
  LoadedState fresh(s_.opt);
  if (s.ok()) s = fresh.Load(std::move(st));
  if (s.ok() && !fresh.log.applied().Dominates(snap.applied))
    s = Status::InvalidArgument("its ops stop short of its applied vector");
  if (!s.ok()) {
    out->notices.push_back(
        Notice{Notice::Kind::kPeerRefused, from, 0,
               "refused the snapshot of region " + s_.opt.regions[from] + ": " + s.message()});
    return false;
  }
  Adopt(fresh, now, out);
  s_.needs_snapshot = false;
  const Seq own = s_.log.applied().get(s_.opt.self);
  out->notices.push_back(Notice{
      Notice::Kind::kSnapshotInstalled, from, static_cast<std::int64_t>(own),
      "installed the snapshot of region " + s_.opt.regions[from] + " (" +
          std::to_string(out->fold->checkpoints.size()) + " accounts, " +
          std::to_string(out->ops.size()) + " ops); own ops up to seq " + std::to_string(own)});
  out->send.push_back(Outbound{from, s_.AckFor(from, s_.log.applied())});
  return true;
}

// Replaces our state with `fresh` (loaded from a snapshot, or from our own state less the ops of
// a lost history) and has the host replace its store with it. Debits waiting for rights keep
// waiting on the same account; one whose account is gone (its open was of a lost history) is
// refused.
void StateTransfer::Adopt(LoadedState& fresh, std::uint64_t now, Effects* out) {
  for (CommandResult& r : s_.desk.CarryWaitingTo(fresh.book))
    out->completions.push_back(std::move(r));
  s_.frontier = fresh.frontier;
  s_.saved_frontier = fresh.frontier;
  s_.log.AdoptLog(std::move(fresh.log));
  // Answers held until a peer holds their op: an op the new state lacks is gone (of a lost
  // history), and a later op may take its seq; its answer must not be released for that one.
  for (const CommandResult& lost : s_.replication.TakeBeyond(s_.log.applied())) {
    CommandResult r =
        Rejected(lost.id, Status::Unavailable("its op " + lost.op.ToString() +
                                              " was of a history its region lost; retry with the "
                                              "same Idempotency-Key"));
    r.op = lost.op;
    out->completions.push_back(std::move(r));
  }
  std::fill(s_.lost_from.begin(), s_.lost_from.end(), 0);
  s_.book.Adopt(std::move(fresh.book));
  s_.clock.Update(std::max(fresh.held_max, s_.frontier), s_.Wall());

  out->replaces_store = true;
  out->ops = s_.log.AllRetained();
  out->keys = s_.book.KeyRecords(/*with_displaced=*/true);
  out->fold = Fold{s_.frontier, s_.log.floor(), s_.book.FinalCheckpoints(s_.frontier)};
}

// A serving region that must replace its state answers what still waits — debits waiting for
// rights or for credit to turn final, answers waiting for a peer to hold their op — with
// `unavailable` now: its state may change under them, and it decides nothing while rejoining.
// (An op already taken stays taken: a retry with its key replays it.)
void StateTransfer::RefuseWaiting(Effects* out) {
  const Status why = Status::Unavailable(
      "this region holds ops of another region's lost history in its checkpoints and is "
      "replacing its state with a peer's; retry with the same Idempotency-Key");
  for (CommandResult& r : s_.desk.RefuseWaiting(why)) out->completions.push_back(std::move(r));
  for (const CommandResult& waiting : s_.replication.TakeAll()) {
    CommandResult r = Rejected(waiting.id, why);
    r.op = waiting.op;
    out->completions.push_back(std::move(r));
  }
}

// Removes the ops of origin o from its first one of a lost history on (the dead ones, and any
// applied after them: a splice of two histories), rebuilding our state without them. Only ops
// above the frontier can be taken out; one already folded into a checkpoint needs a snapshot.
void StateTransfer::RemoveLostHistory(RegionId o, std::uint64_t now, Effects* out) {
  Seq first = 0;
  for (const Op& op : s_.log.Retained(o)) {
    if (s_.inc.fences().IsDead(op)) {
      first = op.dot.seq;
      break;
    }
  }
  if (first == 0) return;
  const Seq removed = s_.log.applied().get(o) - first + 1;
  const std::string what = std::to_string(removed) + " ops of region " + s_.opt.regions[o] +
                           " from seq " + std::to_string(first) + " on, of a history it lost (" +
                           (o == s_.opt.self ? "our store was restored from an older copy"
                                             : "it restarted without them") +
                           ")";
  Status s;
  for (Seq q = first; q <= s_.log.applied().get(o) && s.ok(); ++q) {
    if (s_.log.At(o, q).hlc < s_.frontier)
      s = Status::FailedPrecondition("op " + Dot{o, q}.ToString() +
                                     " is folded into our checkpoints already");
  }
  RecoveredState st;
  st.frontier = s_.frontier;
  st.log_floor = s_.log.floor();
  st.checkpoints = s_.book.FinalCheckpoints(s_.frontier);
  for (Op& op : s_.log.AllRetained()) {
    if (op.dot.origin != o || op.dot.seq < first) st.ops.push_back(std::move(op));
  }
  for (KeyRecord& k : s_.book.KeyRecords(/*with_displaced=*/true)) {
    if (k.dot.origin != o || k.dot.seq < first) st.keys.push_back(std::move(k));
  }
  LoadedState fresh(s_.opt);
  if (s.ok()) s = fresh.Load(std::move(st));
  if (!s.ok()) {
    // Our checkpoints count ops no region keeps: only a peer's state can replace them. Until one
    // arrives we serve no writes (the answers' wait is over: we need nothing else).
    s_.needs_snapshot = true;
    s_.lost_from[o] = s_.lost_from[o] == 0 ? first : std::min(s_.lost_from[o], first);
    if (!s_.rejoining) {
      s_.rejoining = true;
      s_.rejoin.WaitForSnapshotOnly();
      RefuseWaiting(out);
    }
    out->notices.push_back(
        Notice{Notice::Kind::kLostHistory, o, static_cast<std::int64_t>(removed),
               "we hold " + what + " and cannot remove them: " + s.message() +
                   "; refusing writes until a peer's snapshot replaces our state"});
  } else {
    Adopt(fresh, now, out);
    s_.stats.lost_history_ops += removed;
    out->notices.push_back(Notice{Notice::Kind::kLostHistory, o, static_cast<std::int64_t>(removed),
                                  "removed " + what});
  }
  // Tell every peer what we hold now (so it sends the ops that replace them), or that we need a
  // snapshot.
  for (RegionId p = 0; p < s_.n; ++p) {
    if (p != s_.opt.self) s_.SendHello(p, out);
  }
}

}  // namespace tally
