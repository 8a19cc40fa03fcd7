// Invariant checkers: continuous ones (one op per dot, HLC, what a rejoining region may do, I2 at
// every answer, I3 on samples, I4 at every crash) and the final ones after convergence (I1, I2,
// I3, I4, I6, I7 against the ledger's oracle).

#include <algorithm>
#include <set>
#include <utility>

#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

std::string R(RegionId r) { return "r" + std::to_string(r); }

std::string Describe(const Op& op) {
  std::string s = std::string(OpKindName(op.kind)) + " " + op.account;
  if (op.kind != OpKind::kOpen) s += " " + std::to_string(op.amount);
  if (op.kind == OpKind::kRights) s += " to " + R(op.to);
  if (op.kind == OpKind::kTransfer) s += " to " + op.to_account;
  if (!op.key.empty()) s += " key '" + op.key + "'";
  return s + " @" + op.hlc.ToString();
}

std::string EventText(const DerivedEvent& e) {
  std::string s = e.kind == DerivedKind::kOverdraftFee ? "fee " : "void ";
  s += std::to_string(e.amount) + " on r" + std::to_string(e.op.origin) + ":" +
       std::to_string(e.op.seq) + "@" + e.op.hlc.ToString() + " (" +
       std::string(OpKindName(e.op_kind)) + " " + std::to_string(e.op_amount);
  if (e.kind == DerivedKind::kOverdraftFee) s += ", overdrawn " + std::to_string(e.overdrawn);
  return s + ", balance after " + std::to_string(e.balance_after) + ")";
}

std::string EventsText(const std::vector<DerivedEvent>& v, std::size_t max = 4) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size() && i < max; ++i) s += (i ? "; " : "") + EventText(v[i]);
  if (v.size() > max) s += "; … " + std::to_string(v.size() - max) + " more";
  return s + "]";
}

OpKind KindOf(Request::Kind k) {
  switch (k) {
    case Request::Kind::kOpen:
      return OpKind::kOpen;
    case Request::Kind::kCredit:
      return OpKind::kCredit;
    case Request::Kind::kDebit:
      return OpKind::kDebit;
    case Request::Kind::kRights:
      return OpKind::kRights;
    case Request::Kind::kTransfer:
      return OpKind::kTransfer;
    case Request::Kind::kHold:
      return OpKind::kHold;
    case Request::Kind::kCapture:
      return OpKind::kCapture;
    case Request::Kind::kRelease:
      return OpKind::kRelease;
  }
  return OpKind::kCredit;
}

HoldView::State FateOf(const OracleHold& h) {
  if (h.voided) return HoldView::State::kVoided;
  if (h.winner.seq == 0) return HoldView::State::kOpen;
  if (h.resolution == OpKind::kCapture) return HoldView::State::kCaptured;
  return h.expired ? HoldView::State::kExpired : HoldView::State::kReleased;
}

std::string FateText(HoldView::State state, Amount captured, Dot by) {
  std::string s(HoldStateName(state));
  if (state == HoldView::State::kCaptured) s += " " + std::to_string(captured);
  if (by.seq != 0) s += " by " + by.ToString();
  return s;
}

}  // namespace

// One op per dot: every op a region applies is bound to its dot (DotBook). A dot that carries
// another op of which some region still holds a copy is a fork: replicas that hold one of the two
// drop the other as a duplicate, for good. The own ops a region applies that were never seen
// before are the ones it originated just now.
void Simulation::Impl::SeeApplied(RegionId r, const Effects& e,
                                  std::vector<std::size_t>* originated) {
  originated->clear();
  for (std::size_t i = 0; i < e.ops.size(); ++i) {
    const Op& op = e.ops[i];
    if (HoldsLostHistory(r, op)) continue;
    switch (dots.See(op)) {
      case DotBook::Seen::kFenced:  // its origin fenced off the op it carried (NoteResumed)
      case DotBook::Seen::kNew:
      case DotBook::Seen::kReissued:
        if (op.dot.origin == r) originated->push_back(i);
        break;
      case DotBook::Seen::kKnown:
        // Its copies may all have gone with a disk and come back first where a copy does not
        // count as held — relayed from a peer that held it beyond a gap, or back in flight —
        // which made its dot live again without reviving it (swarm seed 1060 once transfers
        // joined the workload: r1 lost its disk 6 ms after syncing r1:1073, r0 relayed the copy
        // it buffered, r2 applied it). Applied here, it is held: the ledger takes it back.
        if (op.dot.seq > ledger.durable().get(op.dot.origin)) Revive(op);
        break;
      case DotBook::Seen::kStale:
        hosts[r].holds_lost |= 1u << op.dot.origin;
        break;
      case DotBook::Seen::kRevived:
        if (Spliced(op.dot)) {
          FailSpliced(r, op, "applied");
          return;
        }
        Revive(op);
        break;
      case DotBook::Seen::kConflict:
        FailTwoOps(r, op, "applied");
        return;
    }
  }
}

void Simulation::Impl::SeeOps(RegionId r, const std::vector<Op>& ops, const char* how) {
  for (const Op& op : ops) {
    if (HoldsLostHistory(r, op)) continue;
    const DotBook::Seen seen = dots.See(op);
    if (seen == DotBook::Seen::kRevived && Spliced(op.dot)) {
      FailSpliced(r, op, how);
      return;
    }
    if (seen == DotBook::Seen::kRevived) Revive(op);
    // Read back from a store (or sent on) while its dot is live again from an earlier copy that
    // did not count as held: see SeeApplied.
    if (seen == DotBook::Seen::kKnown && op.dot.seq > ledger.durable().get(op.dot.origin))
      Revive(op);
    // A dot issued again and forgotten again may come back carrying its first op (a disk restored
    // from a copy older than the second): that op was durable, and exists again.
    if (seen == DotBook::Seen::kReissued && ForgottenMatching(op.dot)) {
      if (Spliced(op.dot)) {
        FailSpliced(r, op, how);
        return;
      }
      ReviveHeld();
    }
    if (seen == DotBook::Seen::kStale) hosts[r].holds_lost |= 1u << op.dot.origin;
    if (seen == DotBook::Seen::kConflict) {
      FailTwoOps(r, op, how);
      return;
    }
  }
}

// Region r began issuing its own ops in a new incarnation, after seq s (it finished rejoining,
// or started without a rejoin): its ops of earlier incarnations above s are of a lost history
// from now on — every replica must refuse them, and remove any it applied. The ledger forgets
// them as it does ops whose disk went. A rejoin waits for every peer's answer, each given after
// the restart, so none of those ops may be one another region held durably when r restarted (and
// still holds): that would be an acknowledged op lost (the planted bug skip_rejoin). Ops in flight
// then, that peers received after they answered, are the ones fences are for.
void Simulation::Impl::NoteResumed(RegionId r) {
  Host& h = hosts[r];
  if (!h.up || !h.replica || h.replica->rejoining() || h.replica->epoch() == 0 ||
      h.resumed_epoch == h.replica->epoch())
    return;
  h.resumed_epoch = h.replica->epoch();
  const Seq s = h.replica->applied().get(r);
  resumes[r].emplace_back(h.resumed_epoch, s);
  std::uint32_t holders = 0;
  const Dot held =
      h.durable_elsewhere_at_start > s ? dots.DurableElsewhereAbove(r, s, &holders) : Dot{};
  if (held.seq != 0 && held.seq <= h.durable_elsewhere_at_start) {
    // The rejoin waits for every peer's answer (rejoin_wait_ms 0, the default): each names the
    // own ops it holds, so none of them may be fenced off. With a silent holder's rights transfer
    // among them that would be money lost, not only an op (design.md, "Left out").
    std::string names;
    for (RegionId q = 0; q < config.regions; ++q) {
      if ((holders & (1u << q)) != 0) names += (names.empty() ? "" : ", ") + R(q);
    }
    Fail("one op per dot", R(r) + " resumed issuing its own ops after seq " + std::to_string(s) +
                               ", fencing off " + held.ToString() + ", which " + names +
                               " held durably when it restarted" + DiskContext(r));
    return;
  }
  VersionVector keep = ledger.durable();
  if (keep.get(r) > s) {
    keep.set(r, s);
    ledger.Truncate(keep);
  }
  // Whatever copy of those ops is left — in a message, a peer's buffer, handed back and held for
  // the fence — is dead from here on: their dots are free, as after a lost disk. (Sending one had
  // marked it live again; an acknowledged op among them then passed for still held, not lost
  // with its disk: swarm seed 1202, r2 wiped 14 ms after acknowledging r2:1773.)
  VersionVector alive;
  for (RegionId o = 0; o < config.regions; ++o) alive.set(o, o == r ? s : ~Seq{0} - 1);
  dots.Release(alive);
  h.acked_own_max = std::min(h.acked_own_max, s);
  if (h.lost_store) {
    // While it rejoined, it may have made durable own ops of its lost history (handed back by a
    // peer, then fenced off here): bound to nothing, their timestamps constrain nothing. What it
    // keeps does (its own ops up to s, those folded lie below the frontier).
    const SimStore::Durable& d = h.store.durable();
    Hlc visible = d.frontier;
    for (const Op& op : d.Ops(r))
      if (op.dot.seq <= s) visible = std::max(visible, op.hlc);
    h.hlc_visible = visible;
  }
  for (Host& q : hosts) {
    if (q.id != r && q.up && q.replica && q.replica->applied().get(r) > s) q.holds_lost |= 1u << r;
  }
}

// An op of a lost history that r applied (before the fence reached it) or read back: it is bound
// to no dot, and r must remove it (Host::holds_lost).
bool Simulation::Impl::HoldsLostHistory(RegionId r, const Op& op) {
  // An op of a forgotten run is back (a message still in flight): a replica remembers the run
  // again, and so does the oracle.
  auto& forgotten = forgotten_runs[op.dot.origin];
  for (auto it = forgotten.begin(); it != forgotten.end(); ++it) {
    if (it->first == op.epoch) {
      resumes[op.dot.origin].push_back(*it);
      forgotten.erase(it);
      break;
    }
  }
  if (!FencedOff(op)) return false;
  hosts[r].holds_lost |= 1u << op.dot.origin;
  return true;
}

bool Simulation::Impl::FencedOff(const Op& op) const {
  for (const auto& [epoch, resumed_from] : resumes[op.dot.origin]) {
    if (epoch > op.epoch && op.dot.seq > resumed_from) return true;
  }
  return false;
}

// An op that had lost its last copy is back — a message sent before its disk went, delivered
// late; a restored disk that holds it; a snapshot delivered late, with ops in its checkpoints. If
// it had been durable, it exists again for the oracle, and so does every op the ledger forgot that
// some region holds again (ReviveHeld).
void Simulation::Impl::Revive(const Op& op) {
  if (dots.Durable(op.dot)) ReviveHeld();
}

// The op the ledger forgot under `dot` that the dot carries now, if any.
const Op* Simulation::Impl::ForgottenMatching(Dot dot) const {
  const std::vector<Op>* all = ledger.ForgottenAll(dot);
  if (!all) return nullptr;
  const std::uint64_t bound = dots.Bound(dot);
  for (const Op& op : *all)
    if (DotBook::Fingerprint(op) == bound) return &op;
  return nullptr;
}

// An op of a lost history that comes back right above a seq its origin has issued again for
// another op was made on top of a different op than the one now below it: the replica that took it
// spliced two histories (each dot, alone, still carries one op — until the origin reaches that seq
// too). True when the op forgotten under the seq below is not what that dot carries now.
bool Simulation::Impl::Spliced(Dot dot) const {
  if (dot.seq < 2) return false;
  const Dot below{dot.origin, dot.seq - 1};
  if (ledger.durable().get(dot.origin) >= below.seq) return false;  // durable again, as some op
  const Op* forgotten = ledger.Forgotten(below);
  return forgotten && dots.Bound(below) != DotBook::Fingerprint(*forgotten);
}

void Simulation::Impl::FailSpliced(RegionId r, const Op& op, const std::string& how) {
  Fail("one op per dot", R(r) + " " + how + " " + op.dot.ToString() + " " + Describe(op) +
                             ", an op of " + R(op.dot.origin) + "'s lost history, on top of " +
                             Dot{op.dot.origin, op.dot.seq - 1}.ToString() +
                             ", which now carries another op: two histories spliced" +
                             DiskContext(op.dot.origin));
}

// The ledger takes back, per origin and in seq order, the ops it forgot that some region holds
// again — as long as each dot still carries the op the ledger forgot (its origin may hold a new op
// under it, not yet synced; the ledger gets that one from the sync). A region may hold forgotten
// ops only in a checkpoint (a snapshot's), where one op per dot cannot look; their dots come back
// to life here. What AddDurable says on the way is no verdict (the ops were checked as they first
// came in, and origins come back one after another); the floors are checked over the result.
void Simulation::Impl::ReviveHeld() {
  const VersionVector held = Held();
  bool revived = false;
  for (RegionId o = 0; o < config.regions; ++o) {
    for (Seq s = ledger.durable().get(o) + 1; s <= held.get(o); ++s) {
      const Op* forgotten = ForgottenMatching(Dot{o, s});
      if (!forgotten) break;
      const Op op = *forgotten;
      // Of a lost history: a region may hold it (its restored store, not yet replaced by a
      // snapshot) but it is bound to nothing; neither is anything above it.
      if (FencedOff(op)) break;
      if (Spliced(op.dot)) {
        RegionId holder = o;
        for (const Host& h : hosts)
          if (h.store.Extent(o) >= s || (h.up && h.replica->applied().get(o) >= s)) holder = h.id;
        FailSpliced(holder, op, "holds again (in a checkpoint)");
        return;
      }
      dots.See(op);  // the same op: known, or revived
      ledger.AddDurable(op, now);
      revived = true;
    }
  }
  if (!revived) return;
  if (std::string v = ledger.CheckFloors(); !v.empty()) {
    const std::string tail = " at the end of the run";
    if (v.size() > tail.size() && v.compare(v.size() - tail.size(), tail.size(), tail) == 0)
      v.resize(v.size() - tail.size());
    Fail("I2 floor", v.substr(v.find(": ") + 2) + ", once ops lost with a disk came back");
  }
}

void Simulation::Impl::FailTwoOps(RegionId r, const Op& op, const std::string& how) {
  std::string first = "another op";
  std::string account;
  if (const LedgerOp* known = ledger.Find(op.dot, &account)) {
    first = std::string(OpKindName(known->kind)) + " " + account;
    if (known->kind != OpKind::kOpen) first += " " + std::to_string(known->amount);
    if (!known->key.empty()) first += " key '" + known->key + "'";
    first += " @" + known->canonical.hlc.ToString();
  }
  std::string holders;
  for (const Host& h : hosts) {
    if (h.id == r) continue;  // it holds the op it just took
    const bool memory = h.up && h.replica && h.replica->applied().get(op.dot.origin) >= op.dot.seq;
    const bool disk = h.store.Extent(op.dot.origin) >= op.dot.seq;
    if (!memory && !disk) continue;
    holders += (holders.empty() ? "" : ", ") + R(h.id) +
               (memory && disk ? ""
                : memory       ? " (in memory)"
                               : " (on its disk)");
  }
  const std::string context = DiskContext(op.dot.origin);
  Fail("one op per dot", op.dot.ToString() + " carries two different ops: " + R(r) + " " + how +
                             " " + Describe(op) + " while " + first +
                             " under the same dot is held by " +
                             (holders.empty() ? "nobody else" : holders) + context);
}

// For a region that started on a replaced disk: that, and how it rejoined (the peers it trusted).
std::string Simulation::Impl::DiskContext(RegionId r) const {
  const Host& h = hosts[r];
  std::string context;
  if (h.lost_store) context += "; " + R(r) + " started on a wiped or restored disk";
  if (h.lost_store && !h.rejoined.empty()) context += "; " + R(r) + " " + h.rejoined;
  return context;
}

// HLC monotonic: a region must never issue a timestamp that breaks what it showed before. Its
// heartbeat promise "none of my ops after seq s is below h" lets its peers fold everything below
// h, and an epoch names one run of it in the rejoin handshake (docs/design.md, "Rejoining after a
// restart").
//
// On a whole store, per region over its whole life: every op it originates and every heartbeat
// promise about its own ops is stamped above every timestamp it generated since its last restart
// and every one that ever left it (a durable op, a sent heartbeat); every epoch it announces is
// above those, as of its start, and above every epoch an earlier run on the same disk sent (the
// replica leases its clock past each before it leaves). One Effects may carry the same heartbeat to
// every peer, so timestamps are compared with those of earlier Effects. Timestamps generated but
// lost in a crash before anyone saw them do not count.
//
// On a disk that was wiped or restored from an older copy (lost_store: every run on it until one
// has finished rejoining, i.e. merged its peers' clocks) the region cannot remember what it let
// out, and the rule is relaxed exactly as far as it must be:
//   - a timestamp that left it but reached no one (an op lost with the disk before any peer had
//     it, a heartbeat lost on the way), or whose every holder lost its disk since, no longer
//     counts. Every timestamp of its own that another region still knows (Shown: reached it
//     directly or relayed, before the restart or delivered late after it) still does: peers fold
//     on those promises, and the rejoin hands their clocks back.
//   - its first epoch may be below the epochs of its earlier runs (its clock starts from an empty
//     or older high-water mark) and it learns a later one from its peers. It may even take again
//     the epoch of an earlier run (a disk restored twice from one copy while the wall clock is
//     behind the copy's high-water mark). What must not happen is what epochs are for: an answer
//     a peer sent before this run started, echoing that epoch, taken as an answer to this run
//     (CheckRejoinAnswer).
//   - it originates nothing and answers no write while it rejoins (CheckRejoining), so nothing it
//     stamps precedes the answers whose clocks it merges.
void Simulation::Impl::CheckHlc(RegionId r, const Effects& e,
                                const std::vector<std::size_t>& originated) {
  Host& h = hosts[r];
  const Hlc prior = std::max({h.hlc_visible, h.hlc_generated, Shown(r)});
  Hlc last = prior;
  for (std::size_t i : originated) {
    const Op& op = e.ops[i];
    if (op.hlc <= h.hlc_received) {
      // Causality, the H in HLC: what a region originates after it received an op is stamped
      // above that op, so canonical order never puts an op before one its origin had seen.
      Fail("HLC causality", R(r) + " stamped op " + op.dot.ToString() + " with " +
                                op.hlc.ToString() + ", not above " + h.hlc_received.ToString() +
                                ", an op it had received since it started");
      return;
    }
    if (op.hlc <= last) {
      Fail("HLC monotonic", R(r) + " stamped op " + op.dot.ToString() + " with " +
                                op.hlc.ToString() + ", not above " + last.ToString() +
                                " (visible before: " + h.hlc_visible.ToString() +
                                ", shown: " + Shown(r).ToString() + ", physical clock " +
                                std::to_string(Physical(r)) + ")" + DiskContext(r));
      return;
    }
    last = op.hlc;
  }
  Hlc generated = originated.empty() ? Hlc{} : last;  // what it stamped, not what it had to pass
  for (const Outbound& o : e.send) {
    if (const auto* hello = std::get_if<Hello>(&o.msg);
        hello && hello->epoch != 0 && hello->epoch != h.epoch_announced) {
      if (!h.lost_store && Hlc{hello->epoch} <= h.hlc_visible_at_start) {
        // A new epoch is a timestamp taken at start: above anything an earlier run let out.
        Fail("HLC monotonic", R(r) + " announced epoch " + Hlc{hello->epoch}.ToString() +
                                  ", not above " + h.hlc_visible_at_start.ToString() +
                                  ", a timestamp or epoch an earlier run of it had let out");
        return;
      }
      h.epoch_announced = hello->epoch;
    }
    const auto* hb = std::get_if<Heartbeat>(&o.msg);
    if (!hb) continue;
    for (const HeartbeatEntry& en : hb->entries) {
      if (en.origin != r) continue;
      if (en.hlc <= prior) {
        Fail("HLC monotonic", R(r) + " sent a heartbeat stamped " + en.hlc.ToString() +
                                  ", not above " + prior.ToString() +
                                  ", a timestamp it had already issued or shown (physical clock " +
                                  std::to_string(Physical(r)) + ")" + DiskContext(r));
        return;
      }
      generated = std::max(generated, en.hlc);
    }
  }
  h.hlc_generated = std::max(h.hlc_generated, generated);
}

// What a region learns of the others' clocks from a message delivered to it: the timestamps the
// message carries (ops and heartbeat entries, the sender's own or relayed) and whatever its
// sender knew (its heartbeat is stamped above it; an op it relays was stamped above what its
// origin knew). The sender's row as of delivery stands in for its row as of sending, unless the
// sender lost its disk in between: that knowledge went with the disk.
void Simulation::Impl::NoteShown(const InFlight& f, const Message& msg) {
  std::vector<Hlc>& row = knows[f.to];
  auto learn = [&](RegionId origin, Hlc hlc) {
    if (origin < row.size() && hlc > row[origin]) row[origin] = hlc;
  };
  // An op or a promise of a run of its origin that has ended, delivered once the next run
  // started, binds nothing: that run rejoined on its peers' clocks as they were, and fences its
  // lost ops off; replicas ignore such promises (docs/design.md).
  auto learn_of_run = [&](RegionId origin, std::uint64_t epoch, Hlc hlc) {
    if (origin >= hosts.size()) return;
    const Host& o = hosts[origin];
    if (!o.replica || epoch >= o.replica->epoch()) learn(origin, hlc);
  };
  if (hosts[f.from].disk_replaced_ms <= f.sent_ms)
    for (RegionId o = 0; o < config.regions; ++o) learn(o, knows[f.from][o]);
  if (const auto* b = std::get_if<OpBatch>(&msg)) {
    for (const Op& o : b->ops) learn_of_run(o.dot.origin, o.epoch, o.hlc);
  } else if (const auto* snap = std::get_if<Snapshot>(&msg)) {
    for (const Op& o : snap->ops) learn_of_run(o.dot.origin, o.epoch, o.hlc);
  } else if (const auto* hb = std::get_if<Heartbeat>(&msg)) {
    for (const HeartbeatEntry& en : hb->entries) learn_of_run(en.origin, en.epoch, en.hlc);
  }
}

// A restarted replica's clock starts from its store: the high-water mark and the ops it holds
// (Replica::Recover), checkpoints at the frontier. A timestamp of another region it had merged
// only in memory — a heartbeat promise heard just before the crash — it no longer knows, and a
// rejoin cannot get it back from it: r1 heard r0's promise and crashed 6 ms later, then r0's disk
// was restored and r0 rightly resumed below that promise, which no one held any more.
void Simulation::Impl::ForgetUnsyncedKnowledge(RegionId r) {
  const SimStore::Durable& d = hosts[r].store.durable();
  Hlc restored = std::max(d.high_water, d.frontier);
  for (RegionId o = 0; o < config.regions; ++o)
    for (const Op& op : d.Ops(o)) restored = std::max(restored, op.hlc);
  for (Hlc& k : knows[r]) k = std::min(k, restored);
}

// The largest timestamp of region r's that another region still knows.
Hlc Simulation::Impl::Shown(RegionId r) const {
  Hlc shown;
  for (RegionId y = 0; y < config.regions; ++y)
    if (y != r) shown = std::max(shown, knows[y][r]);
  return shown;
}

// A rejoining region counts a peer's Hello as an answer when it echoes its epoch. An answer sent
// before this run started describes the peer before the restart; counted, it could let the region
// resume short of ops the peer took since. Epochs exist to prevent exactly that; on a whole store
// they only grow, on a replaced disk they may repeat (see CheckHlc).
// An op region r persisted carries the note of its key when its kind takes one (AttachNote gave
// it to the command), and none otherwise: the note went through gossip, snapshots and stores
// unchanged, to every region.
void Simulation::Impl::CheckNote(RegionId r, const Op& op) {
  std::string memo;
  Metadata metadata;
  if (MayCarryNote(op.kind) && !op.key.empty())
    NoteForKey(op.key, config.workload.note_p, &memo, &metadata);
  if (op.memo == memo && op.metadata == metadata) return;
  Fail("notes", R(r) + " persisted op " + op.dot.ToString() + " (" + Describe(op) +
                    ") with memo '" + op.memo + "' and " + std::to_string(op.metadata.size()) +
                    " metadata pairs; its key gives memo '" + memo + "' and " +
                    std::to_string(metadata.size()) + " pairs");
}

void Simulation::Impl::CheckRejoinAnswer(const InFlight& f, const Message& msg) {
  const RegionId to = f.to;
  const Host& h = hosts[to];
  const auto* hello = std::get_if<Hello>(&msg);
  if (!hello || !h.replica || !h.replica->rejoining() || f.sent_ms >= h.started_ms) return;
  if (hello->peer_epoch == 0 || hello->peer_epoch != h.replica->epoch()) return;
  Fail("rejoin", R(to) + " is rejoining under epoch " + Hlc{hello->peer_epoch}.ToString() +
                     " and hears a Hello from " + R(f.from) + " echoing it, sent at " +
                     std::to_string(f.sent_ms) + " ms, before this run started at " +
                     std::to_string(h.started_ms) + " ms: an earlier run had the same epoch");
}

// A region rejoining after a restart (Replica::rejoining) originates nothing and answers no write
// from what it holds: it refuses with `unavailable`, except replays of keys it holds (and refusals
// those records decide). Answering not_found or insufficient_funds would be a verdict on state it
// may have lost. Whether it stops rejoining too early is for one op per dot to see: a seq its
// peers still hold, issued again.
void Simulation::Impl::CheckRejoining(RegionId r, const Effects& e,
                                      const std::vector<std::size_t>& originated) {
  const Host& h = hosts[r];
  if (!h.up || !h.replica || !h.replica->rejoining()) return;
  if (!originated.empty()) {
    const Op& op = e.ops[originated.front()];
    Fail("rejoin", R(r) + " originated " + op.dot.ToString() + " " + Describe(op) +
                       " while rejoining after a restart");
    return;
  }
  for (const CommandResult& c : e.completions) {
    const Code code = c.status.code();
    const bool verdict =
        c.status.ok() ? !c.replayed : code == Code::kNotFound || code == Code::kInsufficientFunds;
    if (!verdict) continue;
    Fail("rejoin", R(r) + " answered command " + std::to_string(c.id) + " with " +
                       (c.status.ok() ? "op " + c.op.ToString() : c.status.ToString()) +
                       " while rejoining after a restart (it may lack ops; only unavailable or a "
                       "replay may be answered)");
    return;
  }
}

// What some region still holds of each origin's ops, in memory (a live replica's held vector:
// applied, checkpoints included, and the ops it holds back for their origin's fence — a copy it
// hands back to the origin while that rejoins) or on its disk (ops and log floor).
//
// A disk holds a dot only with the op the dot carries: a store restored from an older copy may
// hold, under the same seqs, ops of a history its region has since lost and issued again (their
// dots carry the new ops). Its extent stops below the first such op. (Ops folded into checkpoints,
// and a live replica's applied vector, cannot be told apart so; they count.)
VersionVector Simulation::Impl::Held() const {
  VersionVector held;
  for (const Host& h : hosts) {
    const SimStore::Durable& d = h.store.durable();
    for (RegionId o = 0; o < config.regions; ++o) {
      Seq s = d.log_floor.get(o);
      for (const Op& op : d.Ops(o)) {
        const std::uint64_t bound = dots.Bound(op.dot);
        if (bound != 0 && bound != DotBook::Fingerprint(op)) break;
        s = std::max(s, op.dot.seq);
      }
      if (h.up && h.replica) s = std::max(s, h.replica->held().get(o));
      if (s > held.get(o)) held.set(o, s);
    }
  }
  return held;
}

// After a crash or a lost disk: ops no region holds any more free their dots, and the durable ones
// among them leave the ledger — every durable copy went with a disk wiped or rolled back before
// another region kept the op, so for the oracle they never were. (A crash alone loses only what
// was not synced: a durable op is always on its origin's disk or covered by a checkpoint.)
std::vector<std::uint64_t> Simulation::Impl::RememberedEpochs() const {
  std::vector<std::uint64_t> newest(config.regions, 0);
  auto note_fences = [&](const std::vector<Fence>& fences) {
    for (const Fence& f : fences)
      if (f.origin < config.regions) newest[f.origin] = std::max(newest[f.origin], f.epoch);
  };
  auto note_disk = [&](const SimStore::Durable& d) {
    note_fences(d.Fences());
    for (RegionId o = 0; o < config.regions; ++o)
      for (const Op& op : d.Ops(o)) newest[o] = std::max(newest[o], op.epoch);
  };
  for (const Host& h : hosts) {
    if (h.up && h.replica) note_fences(h.replica->fences());  // ops it holds imply fences there
    note_disk(h.store.durable());
    for (const Host::DiskCopy& c : h.disk_copies) note_disk(c.state);
  }
  return newest;
}

// A run whose every trace went — the origin's disk with it, and the one peer that heard of it
// crashed before it persisted it — is forgotten (seed 308228: r0's disk was wiped, r1 crashed
// holding r0's ops of that run in memory only; r0, its clock behind, then resumed under a lower
// epoch at the same seq and issued those seqs again, which the oracle took for a lost history).
void Simulation::Impl::ForgetUnrememberedRuns() {
  const std::vector<std::uint64_t> newest = RememberedEpochs();
  for (RegionId o = 0; o < config.regions; ++o) {
    auto& runs = resumes[o];
    for (auto it = runs.begin(); it != runs.end();) {
      if (it->first <= newest[o]) {
        ++it;
      } else {
        forgotten_runs[o].push_back(*it);
        it = runs.erase(it);
      }
    }
  }
}

void Simulation::Impl::ReleaseLostCopies() {
  ForgetUnrememberedRuns();
  const VersionVector held = Held();
  dots.Release(held);
  bool durable_lost = false;
  for (RegionId o = 0; o < config.regions; ++o)
    durable_lost = durable_lost || ledger.durable().get(o) > held.get(o);
  if (!durable_lost) return;
  ledger.Truncate(held);
  // Seqs above what is held may be issued again; what a region acknowledged up to is capped so.
  for (Host& h : hosts) h.acked_own_max = std::min(h.acked_own_max, held.get(h.id));
  if (std::string v = ledger.CheckFloors(); !v.empty()) {
    const std::string tail = " at the end of the run";
    if (v.size() > tail.size() && v.compare(v.size() - tail.size(), tail.size(), tail) == 0)
      v.resize(v.size() - tail.size());
    Fail("I2 floor", v.substr(v.find(": ") + 2) + ", over what is left once ops went with a disk");
  }
}

// Bookkeeping and checks at the instant a region answers a client.
void Simulation::Impl::NoteRelease(RegionId r, const CommandResult& res) {
  const Attempt& a = attempts[res.id - 1];
  if (res.status.ok()) {
    ++summary.accepted;
    if (res.replayed) ++summary.replays;
    if (res.overdraft && !res.replayed) ++summary.overdraft_debits;
  } else {
    ++summary.rejected;
    ++summary.rejected_by_code[std::string(res.status.code_name())];
  }
  if (!res.status.ok() || res.op.seq == 0) return;
  acks.push_back(AckRecord{res.op, res.id, now, r, dots.Bound(res.op),
                           ledger.durable().get(res.op.origin) >= res.op.seq});
  // Durability "replicated": a write is answered only once another region holds its op durably,
  // so losing the answering region's disk cannot lose it. Checked against the stores themselves.
  const bool elsewhere =
      res.replayed ? dots.WasDurableElsewhere(res.op, r) : dots.DurableElsewhere(res.op, r);
  if (a.replicated && !(res.replicated && elsewhere)) {
    Fail("I4 durability",
         R(r) + " acknowledged " + res.op.ToString() + " under durability replicated, but " +
             (res.replicated ? std::string("no region other than ") + R(r) + " had made it durable"
                             : std::string("the answer says it is not replicated")));
  }
  if (res.op.origin == r) hosts[r].acked_own_max = std::max(hosts[r].acked_own_max, res.op.seq);
  if (a.req.kind == Request::Kind::kHold && res.hold.seq != 0)
    hold_accounts.emplace(res.hold, a.req.account);
  // A hold's answer names the hold it placed (or replays), its amount and its expiry: the
  // wall time of its timestamp plus the life asked for.
  if (a.req.kind == Request::Kind::kHold &&
      (res.hold != res.op || (res.held != a.req.amount && !(res.replayed && res.held == 0)) ||
       (!res.replayed && res.expires_ms != res.hlc.wall_ms() + a.req.expires_in_ms))) {
    Fail("holds", R(r) + " answered a hold of " + std::to_string(a.req.amount) + " for " +
                      std::to_string(a.req.expires_in_ms) + " ms on " + accounts[a.req.account].id +
                      " with op " + res.op.ToString() + " naming hold " + res.hold.ToString() +
                      " of " + std::to_string(res.held) + " expiring at " +
                      std::to_string(res.expires_ms) + " (stamped " + res.hlc.ToString() + ")");
    return;
  }
  // A resolution naming a hold the client was told of, whose dot names another hold now: the
  // first went with a disk before any other region kept it and its origin issued the seq again
  // (acknowledged ops lost with a disk, which durability `local` accepts). Counted.
  if ((a.req.kind == Request::Kind::kCapture || a.req.kind == Request::Kind::kRelease) &&
      a.req.hold_hlc.value != 0) {
    const LedgerOp* hold = ledger.Find(a.req.hold);
    if (hold && hold->canonical.hlc != a.req.hold_hlc) ++summary.stale_hold_resolutions;
  }
  // A capture takes at most what its hold holds.
  if (a.req.kind == Request::Kind::kCapture &&
      (res.hold != a.req.hold || res.captured != a.req.amount || res.captured > res.held)) {
    Fail("holds", R(r) + " answered a capture of " + std::to_string(a.req.amount) + " of hold " +
                      a.req.hold.ToString() + " with op " + res.op.ToString() + ": hold " +
                      res.hold.ToString() + ", captured " + std::to_string(res.captured) + " of " +
                      std::to_string(res.held) + " held");
    return;
  }
  // No region spends past its spendable rights plus its overdraft line: its rights less the credit
  // in them that is not yet final (a duplicate of its key elsewhere may still void it), as the
  // answer reports them. A replica that counts rights it has not applied reports them in its
  // answer too, so a debit decided at once is also checked against the rights and line the
  // region's view showed just before it (the view I3 checks against the ops it holds). Credit not
  // yet final is left to the answer's figures and to the effective floor, which catches it
  // spent (spend_tentative_credit), so each check keeps a planted bug of its own. A transfer
  // between accounts is decided as a debit of its payer, on the payer's figures.
  // A hold is decided as a debit (it reserves what a debit would spend), and none of the three
  // may use what the region's holds already reserve: its view's rights less its reserve.
  // A debit through budgets is checked on the payers' path (CheckPayers) and, when the account
  // named paid first (a cap), against its view before it; the answer carries no figures for it.
  if (!res.payers.empty() && !res.replayed && !CheckPayers(r, a, res)) return;
  const bool budget = !res.payers.empty();
  const bool spends = (a.req.kind == Request::Kind::kDebit &&
                       (!budget || res.payers.front() == accounts[a.req.account].id)) ||
                      a.req.kind == Request::Kind::kTransfer || a.req.kind == Request::Kind::kHold;
  const std::string what = a.req.kind == Request::Kind::kTransfer
                               ? "a transfer to " + accounts[a.req.payee].id + " of "
                           : a.req.kind == Request::Kind::kHold ? std::string("a hold of ")
                                                                : std::string("a debit of ");
  if (spends && !res.replayed && a.decided_at_submit && a.before &&
      a.req.amount > a.before->rights + a.before->line) {
    Fail("I2 floor", R(r) + " accepted " + what + std::to_string(a.req.amount) + " on " +
                         accounts[a.req.account].id + " past the rights its view showed " +
                         std::to_string(a.before->rights + a.before->reserved) +
                         " less what its holds reserve " + std::to_string(a.before->reserved) +
                         " plus its overdraft line " + std::to_string(a.before->line) +
                         " just before it (op " + res.op.ToString() +
                         "; the answer reports rights " + std::to_string(res.rights) + ")");
  } else if (spends && !res.replayed && !budget &&
             a.req.amount > res.rights - res.tentative_credit + res.overdraft_line) {
    Fail("I2 floor", R(r) + " accepted " + what + std::to_string(a.req.amount) + " on " +
                         accounts[a.req.account].id + " past its rights " +
                         std::to_string(res.rights) + " less credit not yet final " +
                         std::to_string(res.tentative_credit) + " plus its overdraft line " +
                         std::to_string(res.overdraft_line) + " (op " + res.op.ToString() + ")");
  }
}

// The accounts a budget debit took the money from, against the tree the workload opened (not the
// core's reading of it): the first is the account named or, with a fallback only, one of its
// ancestors; each next one is the parent of the one before, which is a cap; the last is no cap
// (or has no parent, or sits at the depth limit). A debit of a cap is always one.
bool Simulation::Impl::CheckPayers(RegionId r, const Attempt& a, const CommandResult& res) {
  const std::uint32_t named = a.req.account;
  auto fail = [&](const std::string& why) {
    std::string list;
    for (const std::string& p : res.payers) list += (list.empty() ? "" : ", ") + p;
    Fail("budgets", R(r) + " answered a " + (a.req.fallback ? "fallback " : "") + "debit of " +
                        std::to_string(a.req.amount) + " on " + accounts[named].id + " (op " +
                        res.op.ToString() + ") as paid by [" + list + "]: " + why);
    return false;
  };
  if (a.req.kind != Request::Kind::kDebit) return fail("only a debit is paid through budgets");
  std::uint32_t at = named;
  while (at != UINT32_MAX && accounts[at].id != res.payers.front()) at = accounts[at].parent;
  if (at == UINT32_MAX) return fail("the first payer is neither the account nor an ancestor");
  if (at != named && !a.req.fallback) return fail("an ancestor paid a debit with no fallback");
  for (std::size_t i = 0; i < res.payers.size(); ++i) {
    if (i > 0) {
      at = accounts[at].parent;
      if (at == UINT32_MAX || accounts[at].id != res.payers[i])
        return fail("'" + res.payers[i] + "' is not the parent of '" + res.payers[i - 1] + "'");
    }
    const bool last = i + 1 == res.payers.size();
    const bool cap = accounts[at].config.cap;
    if (!last && !cap) return fail("'" + res.payers[i] + "' is no cap, yet its parent paid too");
    if (last && cap && res.payers.size() < kMaxBudgetDepth)
      return fail("'" + res.payers[i] + "' is a cap, yet its parent did not pay");
  }
  return true;
}

// I3 on one replica's view of one account: the effective balance is credits − debits − fees +
// voids, rights add up to it, fees and voids add up per region, and the raw counters equal what the
// ops the replica claims to hold (its applied vector) add up to, recomputed from the ledger.
void Simulation::Impl::CheckAccount(RegionId r, const std::string& id) {
  Host& h = hosts[r];
  if (!h.up) return;
  if (h.holds_lost != 0) return;  // ops of a lost history it has yet to remove
  AccountView v;
  if (!h.replica->GetAccount(id, &v).ok()) return;  // not known here yet
  const std::string where = id + " at " + R(r) + ": ";
  const RegionId n = config.regions;
  if (v.regions.size() != n) {
    Fail("I3 conservation", where + "view has " + std::to_string(v.regions.size()) + " regions");
    return;
  }
  if (v.balance != v.raw_balance - v.fees + v.voids) {
    Fail("I3 conservation", where + "balance " + std::to_string(v.balance) + " != raw " +
                                std::to_string(v.raw_balance) + " - fees " +
                                std::to_string(v.fees) + " + voids " + std::to_string(v.voids));
    return;
  }
  Amount rights = 0, fees = 0, voids = 0;
  for (const RegionView& rv : v.regions) {
    rights += rv.rights;
    fees += rv.fees;
    voids += rv.voids;
  }
  if (rights != v.balance || fees != v.fees || voids != v.voids) {
    Fail("I3 conservation", where + "regions sum to rights " + std::to_string(rights) + ", fees " +
                                std::to_string(fees) + ", voids " + std::to_string(voids) +
                                "; the account says balance " + std::to_string(v.balance) +
                                ", fees " + std::to_string(v.fees) + ", voids " +
                                std::to_string(v.voids));
    return;
  }
  // Recompute the raw counters from the ops this replica holds: durable ones from the ledger, its
  // own not-yet-synced ones from its store's pending batches.
  VersionVector vv = h.replica->applied();
  const Seq own_durable = std::min(vv.get(r), ledger.durable().get(r));
  for (RegionId o = 0; o < n; ++o) {
    if (vv.get(o) > ledger.durable().get(o) && o != r) {
      Fail("I3 conservation", where + "replica claims ops of " + R(o) + " up to " +
                                  std::to_string(vv.get(o)) + " but " + R(o) + " made only " +
                                  std::to_string(ledger.durable().get(o)) + " durable");
      return;
    }
  }
  vv.set(r, own_durable);
  RawView raw;
  if (!ledger.Raw(id, vv, &raw)) raw.rights.assign(n, 0);
  // Its own ops not yet synced, once each: a batch that replaces the store (its state rebuilt
  // without a lost history, or a snapshot installed) restates every op it keeps, so it replaces
  // what the batches before it wrote (swarm seed 323129 counted a transfer twice).
  std::map<Seq, const Op*> unsynced;
  h.gate->ForEachUnsynced([&](const PersistBatch& b) {
    if (b.replaces_store) unsynced.clear();
    for (const Op& op : b.ops)
      if (op.dot.origin == r &&
          (op.account == id || op.to_account == id ||
           std::find(op.payers.begin(), op.payers.end(), id) != op.payers.end()) &&
          op.dot.seq > own_durable)
        unsynced[op.dot.seq] = &op;
  });
  for (const auto& [seq, op_ptr] : unsynced) {
    switch (op_ptr->kind) {
      case OpKind::kTransfer: {
        const Amount signed_amount = op_ptr->account == id ? -op_ptr->amount : op_ptr->amount;
        raw.balance += signed_amount;
        raw.rights[r] += signed_amount;
        break;
      }
      case OpKind::kCredit:
        raw.balance += op_ptr->amount;
        raw.rights[r] += op_ptr->amount;
        break;
      case OpKind::kDebit:
        raw.balance -= op_ptr->amount;
        raw.rights[r] -= op_ptr->amount;
        break;
      case OpKind::kRights:
        raw.rights[r] -= op_ptr->amount;
        raw.rights[op_ptr->to] += op_ptr->amount;
        break;
      case OpKind::kCapture:  // a debit of the hold's region
        raw.balance -= op_ptr->amount;
        if (op_ptr->hold.origin < n) raw.rights[op_ptr->hold.origin] -= op_ptr->amount;
        break;
      case OpKind::kBudgetDebit:  // a debit of each payer; nothing for a marker
        if (std::find(op_ptr->payers.begin(), op_ptr->payers.end(), id) != op_ptr->payers.end()) {
          raw.balance -= op_ptr->amount;
          raw.rights[r] -= op_ptr->amount;
        }
        break;
      case OpKind::kOpen:
      case OpKind::kHold:
      case OpKind::kRelease:
        break;
    }
  }
  if (v.raw_balance != raw.balance) {
    Fail("I3 conservation", where + "raw balance " + std::to_string(v.raw_balance) +
                                " but the ops it holds (" + h.replica->applied().ToString(n) +
                                ") add up to " + std::to_string(raw.balance));
    return;
  }
  for (RegionId q = 0; q < n; ++q) {
    const RegionView& rv = v.regions[q];
    if (rv.rights + rv.fees - rv.voids != raw.rights[q]) {
      Fail("I3 conservation", where + "raw rights of " + R(q) + " are " +
                                  std::to_string(rv.rights + rv.fees - rv.voids) + " (effective " +
                                  std::to_string(rv.rights) + " + fees " + std::to_string(rv.fees) +
                                  " - voids " + std::to_string(rv.voids) +
                                  ") but its ops add up to " + std::to_string(raw.rights[q]));
      return;
    }
    if (q < v.config.lines.size() && rv.overdraft_line != v.config.lines[q]) {
      Fail("I3 conservation", where + "overdraft line of " + R(q) + " is " +
                                  std::to_string(rv.overdraft_line) + " but the config says " +
                                  std::to_string(v.config.lines[q]));
      return;
    }
  }
  // Holds: what it shows held and reserved, against the ops it holds. Its own holds and
  // resolutions not yet synced are not in the ledger: then the figures cannot be recomputed.
  for (const auto& [seq, op_ptr] : unsynced)
    if (op_ptr->kind == OpKind::kHold || IsHoldResolution(op_ptr->kind)) return;
  CheckHoldFigures(r, id, v, vv);
}

// What a region's view shows of an account's holds, recomputed from the ops it holds (vv, every
// one durable): Σ open holds is AccountView::held and available = balance − held; per region, what
// its holds reserve lies between what a hold whose winning resolution may still change must keep
// (the whole hold less what the winner takes, until the winner is below the stable frontier) and
// what every hold not voided could. Below the least, a region could spend funds a capture may
// still take (I2); above the most, or a wrong total, the view misstates the account (I3).
void Simulation::Impl::CheckHoldFigures(RegionId r, const std::string& id, const AccountView& v,
                                        const VersionVector& vv) {
  HoldFigures f;
  if (!ledger.HoldFiguresAt(id, vv, v.frontier, &f)) return;
  const std::string where = id + " at " + R(r) + ": ";
  if (v.held != f.held || v.available != v.balance - v.held) {
    Fail("I3 conservation",
         where + "held " + std::to_string(v.held) + ", available " + std::to_string(v.available) +
             " of balance " + std::to_string(v.balance) + ", but the open holds among the ops it " +
             "holds (" + vv.ToString(config.regions) + ", " + std::to_string(f.holds) +
             " holds) add up to " + std::to_string(f.held));
    return;
  }
  for (RegionId q = 0; q < config.regions; ++q) {
    const Amount reserved = v.regions[q].reserved;
    if (reserved < f.reserved_min[q]) {
      Fail("I2 floor", where + R(q) + "'s holds reserve " + std::to_string(reserved) +
                           " but holds whose resolution may still change keep " +
                           std::to_string(f.reserved_min[q]) + " reserved (stable frontier " +
                           v.frontier.ToString() + "): " + R(q) +
                           " could spend funds a capture may still take");
      return;
    }
    if (reserved > f.reserved_max[q]) {
      Fail("I3 conservation", where + R(q) + "'s holds reserve " + std::to_string(reserved) +
                                  " but its holds not voided leave at most " +
                                  std::to_string(f.reserved_max[q]));
      return;
    }
  }
}

bool Simulation::Impl::LostWithDisk(const AckRecord& ack) const {
  return ack.durable_when_acked && !dots.Holds(ack.dot, ack.fingerprint);
}

std::uint64_t Simulation::Impl::AckedLostWithDisk() const {
  std::set<std::pair<Dot, std::uint64_t>> ops;
  for (const AckRecord& ack : acks)
    if (LostWithDisk(ack)) ops.emplace(ack.dot, ack.fingerprint);
  return ops.size();
}

bool Simulation::Impl::AckMatches(const AckRecord& ack, std::string* why) const {
  const Attempt& a = attempts[ack.attempt - 1];
  std::string account;
  const LedgerOp* op = ledger.Find(ack.dot, &account);
  std::string want_account = accounts[a.req.account].id;
  // A resolution of a hold the client was told of that went with a disk: its dot names the hold
  // its origin issued again since (stale_hold_resolutions), on whatever account that one is.
  const bool resolution =
      a.req.kind == Request::Kind::kCapture || a.req.kind == Request::Kind::kRelease;
  if (resolution && a.req.hold_hlc.value != 0) {
    std::string hold_account;
    const LedgerOp* hold = ledger.Find(a.req.hold, &hold_account);
    if (hold && hold->kind == OpKind::kHold && hold->canonical.hlc != a.req.hold_hlc)
      want_account = hold_account;
  }
  const std::string asked =
      std::string(OpKindName(KindOf(a.req.kind))) + " " + want_account +
      (a.req.kind == Request::Kind::kOpen ? "" : " " + std::to_string(a.req.amount)) +
      (a.req.kind == Request::Kind::kTransfer ? " to " + accounts[a.req.payee].id : "") +
      (a.req.key.empty() ? "" : " key '" + a.req.key + "'");
  if (!op) {
    *why = "op " + ack.dot.ToString() + " acknowledged by " + R(ack.region) + " at " +
           std::to_string(ack.time_ms) + " ms (" + asked +
           ") is not in its origin's durable log (durable up to " +
           std::to_string(ledger.durable().get(ack.dot.origin)) + ")";
    return false;
  }
  // A debit through budgets is a budget debit op (a cap's, or a fallback's).
  const bool kind_ok = op->kind == KindOf(a.req.kind) ||
                       (a.req.kind == Request::Kind::kDebit && op->kind == OpKind::kBudgetDebit);
  bool same = account == want_account && kind_ok && op->key == a.req.key;
  // A release carries its hold's amount as the region has it, not the client's (whose hold may
  // have gone with a disk, its dot naming another hold since: stale_hold_resolutions).
  if (a.req.kind != Request::Kind::kOpen && a.req.kind != Request::Kind::kRelease)
    same = same && op->amount == a.req.amount;
  if (a.req.kind == Request::Kind::kRights) same = same && op->to == a.req.to;
  // A transfer (or a replay of one) names its payee: the op must credit that account.
  const std::string payee =
      op->kind == OpKind::kTransfer ? ledger.AccountId(op->other_account) : std::string();
  if (a.req.kind == Request::Kind::kTransfer) same = same && payee == accounts[a.req.payee].id;
  // A capture or release names its hold (its key says so too: HoldKey).
  if (a.req.kind == Request::Kind::kCapture || a.req.kind == Request::Kind::kRelease)
    same = same && op->hold == a.req.hold;
  if (!same) {
    *why = "op " + ack.dot.ToString() + " acknowledged by " + R(ack.region) + " at " +
           std::to_string(ack.time_ms) + " ms as " + asked +
           " is durably a different op: " + std::string(OpKindName(op->kind)) + " " + account +
           " " + std::to_string(op->amount) + (payee.empty() ? "" : " to " + payee) +
           (op->key.empty() ? "" : " key '" + op->key + "'") +
           " (a sequence number lost and reused)";
    return false;
  }
  return true;
}

// Money is neither made nor destroyed by moving it between accounts. Over every account, the
// oracle's balances (each replayed on its own, in canonical order) sum to the credits less the
// debits that survive — by the void rule as the ledger applied it while ops became durable — less
// the fees: transfers, and the voids of transfers, cancel. And on every replica each transfer is
// voided on both sides or on neither: a void refunds the payer exactly what it claws back from the
// payee, both at the op's origin. A replica that voids one side only (void_transfer_payer_only)
// creates money, though each account on its own still adds up (I3 per account) and every replica
// agrees with every other (I1). Checked before the per-account comparisons with the oracle, which
// would see it only as one account's voids that differ.
void Simulation::Impl::CheckMoneyAcrossAccounts(
    const std::map<std::string, OracleAccount>& oracle) {
  const MoneyTotals t = ledger.Totals();
  summary.durable_transfers = t.transfers;
  summary.transfers_voided = t.transfers_voided;
  summary.budget_debits = t.budget_debits;
  summary.budget_voided = t.budget_voided;
  summary.budget_fallbacks = t.budget_fallbacks;
  summary.budget_caps = t.budget_caps;
  Amount balances = 0, fees = 0;
  for (const auto& [id, o] : oracle) {
    balances += o.balance;
    fees += o.fees;
  }
  if (balances != t.credits - t.debits - fees) {
    Fail("I3 conservation",
         "across accounts the oracle's balances sum to " + std::to_string(balances) +
             " but surviving credits " + std::to_string(t.credits) + " - surviving debits " +
             std::to_string(t.debits) + " - fees " + std::to_string(fees) + " = " +
             std::to_string(t.credits - t.debits - fees) + " (" + std::to_string(t.transfers) +
             " transfers, " + std::to_string(t.transfers_voided) + " voided)");
    return;
  }
  if (t.transfers == 0 && t.budget_debits == 0) return;
  // Per account on one replica: the voids it derives, by op, and from which op on its event list
  // is whole (a replica keeps only the newest final events: DerivedEvents).
  struct Voids {
    bool whole = false;
    CanonicalKey from;
    std::map<CanonicalKey, Amount> by_op;
  };
  for (const Host& h : hosts) {
    Replica& rep = *h.replica;
    std::map<std::string, Voids> cache;
    auto voids_of = [&](const std::string& id) -> const Voids* {
      auto [it, inserted] = cache.try_emplace(id);
      if (inserted) {
        std::vector<DerivedEvent> events;
        if (!rep.DerivedEvents(id, &events).ok()) return nullptr;
        it->second.whole = events.size() < rep.options().max_events_per_account;
        if (!events.empty()) it->second.from = events.front().op;
        for (const DerivedEvent& e : events)
          if (e.kind == DerivedKind::kVoid) it->second.by_op[e.op] = e.amount;
      }
      return &it->second;
    };
    auto covers = [](const Voids& v, const CanonicalKey& k) { return v.whole || !(k < v.from); };
    for (const std::string& id : ledger.Accounts()) {
      for (const LedgerOp& op : *ledger.Ops(id)) {
        if (op.kind == OpKind::kBudgetDebit && !op.incoming) {
          // Every payer refunded the whole amount, or none: a void that misses a payer takes
          // money the client was told came back, one that reaches only some makes it.
          std::vector<std::pair<std::string, const Amount*>> refunds;
          bool covered = true;
          for (const std::string& payer : ledger.PayersOf(op)) {
            const Voids* v = voids_of(payer);
            if (!v || !covers(*v, op.canonical)) covered = false;
            if (!covered) break;
            auto it = v->by_op.find(op.canonical);
            refunds.emplace_back(payer, it == v->by_op.end() ? nullptr : &it->second);
          }
          if (!covered) continue;
          const bool voided = refunds.front().second != nullptr;
          std::string unequal;
          for (const auto& [payer, refund] : refunds) {
            if ((refund != nullptr) == voided && (!refund || *refund == op.amount)) continue;
            unequal = payer + (refund ? " gets " + std::to_string(*refund) : " gets nothing");
            break;
          }
          if (unequal.empty()) continue;
          Fail("I3 conservation",
               R(h.id) + " voids budget debit r" + std::to_string(op.canonical.origin) + ":" +
                   std::to_string(op.canonical.seq) + " of " + std::to_string(op.amount) + " on " +
                   id + " (key '" + op.key +
                   "') unequally across its payers: " + refunds.front().first +
                   (voided ? " is refunded " + std::to_string(*refunds.front().second)
                           : std::string(" is not refunded")) +
                   ", but " + unequal);
          return;
        }
        if (op.kind != OpKind::kTransfer || op.incoming) continue;
        const std::string& payee = ledger.AccountId(op.other_account);
        const Voids* vp = voids_of(id);
        const Voids* vq = voids_of(payee);
        if (!vp || !vq || !covers(*vp, op.canonical) || !covers(*vq, op.canonical)) continue;
        auto p = vp->by_op.find(op.canonical);
        auto q = vq->by_op.find(op.canonical);
        const Amount refund = p == vp->by_op.end() ? 0 : p->second;
        const Amount clawback = q == vq->by_op.end() ? 0 : -q->second;
        const bool voided = p != vp->by_op.end(), clawed = q != vq->by_op.end();
        if (voided == clawed && refund == clawback && (!voided || refund == op.amount)) continue;
        const Amount made = refund - clawback;
        Fail("I3 conservation",
             R(h.id) + " voids the two sides of transfer r" + std::to_string(op.canonical.origin) +
                 ":" + std::to_string(op.canonical.seq) + " of " + std::to_string(op.amount) +
                 " from " + id + " to " + payee + " (key '" + op.key + "') unequally: " +
                 (voided ? "refunds " + std::to_string(refund) + " to the payer"
                         : std::string("no refund to the payer")) +
                 ", " +
                 (clawed ? "claws back " + std::to_string(clawback) + " from the payee"
                         : std::string("no clawback from the payee")) +
                 ": money " + (made > 0 ? "created" : "destroyed") + " (" +
                 std::to_string(made > 0 ? made : -made) +
                 "), though each account adds up on its own");
        return;
      }
    }
  }
}

// Holds, after convergence. The oracle's replay: at most one resolution of a hold survives and
// surviving captures never take more than the hold. Every replica: each hold's fate — open,
// captured (how much, by which op), released, released at expiry, voided — is the oracle's, read
// with Replica::GetHold. A replica may have forgotten a hold that is settled (voided or resolved
// for good) once its stable frontier is a retention past the expiry (docs/design.md).
void Simulation::Impl::CheckHolds(const std::map<std::string, OracleAccount>& oracle) {
  for (const auto& [id, o] : oracle) {
    for (const auto& [dot, h] : o.holds) {
      if (h.surviving > 1 || h.surviving_captured > h.amount) {
        Fail("holds", id + ": hold " + dot.ToString() + " of " + std::to_string(h.amount) +
                          " has " + std::to_string(h.surviving) +
                          " resolutions surviving reconciliation, capturing " +
                          std::to_string(h.surviving_captured));
        return;
      }
      if (!h.placed) continue;
      const HoldView::State fate = FateOf(h);
      for (Host& host : hosts) {
        HoldView hv;
        const Status s = host.replica->GetHold(dot, &hv);
        const Hlc frontier = host.replica->frontier();
        if (!s.ok()) {
          const bool forgettable =
              fate != HoldView::State::kOpen &&
              h.expires_ms + config.idempotency_retention_ms < frontier.wall_ms();
          // (NotFound, or Unavailable from a replica still rejoining, which cannot tell.)
          if ((s.code() == Code::kNotFound || s.code() == Code::kUnavailable) && forgettable)
            continue;
          Fail("I7 agreement", id + ": hold " + dot.ToString() + " is " +
                                   FateText(fate, h.captured, h.winner) + " by the oracle, but " +
                                   R(host.id) + " says " + s.ToString() + " (stable frontier " +
                                   frontier.ToString() + ")");
          return;
        }
        if (hv.account != id || hv.amount != h.amount || hv.expires_ms != h.expires_ms ||
            hv.state != fate || (fate == HoldView::State::kCaptured && hv.captured != h.captured) ||
            hv.resolved_by != (fate == HoldView::State::kVoided ? hv.resolved_by : h.winner)) {
          Fail("I7 agreement", id + ": hold " + dot.ToString() + " of " + std::to_string(h.amount) +
                                   " expiring at " + std::to_string(h.expires_ms) + " is " +
                                   FateText(fate, h.captured, h.winner) +
                                   " by the oracle's replay, but " + R(host.id) + " has it " +
                                   FateText(hv.state, hv.captured, hv.resolved_by) + " (account " +
                                   hv.account + ", " + std::to_string(hv.amount) + " expiring at " +
                                   std::to_string(hv.expires_ms) + ")");
          return;
        }
      }
    }
  }
}

void Simulation::Impl::FinalChecks() {
  const RegionId n = config.regions;
  for (const Host& h : hosts)
    if (!h.up) {
      Fail("I1 convergence", R(h.id) + " is down at the end");
      return;
    }
  // I2 over everything that became durable: the ledger checked the effective floor as ops came
  // in; once more over the final union (clawbacks only grow, so this is the lowest it gets).
  if (std::string v = ledger.CheckFloors(); !v.empty()) {
    Fail("I2 floor", v.substr(v.find(": ") + 2));
    return;
  }
  // I4: every acknowledged op is durable at its origin as acknowledged, and applied everywhere —
  // unless no copy of it is left: every durable copy went with a disk wiped or restored from an
  // older copy before any other region kept it. Those are counted, not failed (with `replicated`
  // durability, not built, there must be none). An op acknowledged before it was durable and then
  // lost is not one of them.
  for (const AckRecord& ack : acks) {
    if (LostWithDisk(ack)) continue;
    std::string why;
    if (!AckMatches(ack, &why)) {
      Fail("I4 durability", why);
      return;
    }
    for (const Host& h : hosts) {
      if (h.replica->applied().get(ack.dot.origin) < ack.dot.seq) {
        Fail("I4 durability", R(h.id) + " never applied acknowledged op " + ack.dot.ToString());
        return;
      }
    }
  }
  summary.fee_events = summary.void_events = 0;
  summary.fees = summary.voids = 0;
  std::map<std::string, OracleAccount> oracle;
  for (const std::string& id : ledger.Accounts()) ledger.Oracle(id, &oracle[id]);
  CheckMoneyAcrossAccounts(oracle);
  if (failure) return;
  CheckHolds(oracle);
  if (failure) return;
  for (const std::string& id : ledger.Accounts()) {
    const OracleAccount& o = oracle.at(id);
    if (o.surviving_debits_max_per_key > 1) {
      Fail("I6 idempotency", id + ": " + std::to_string(o.surviving_debits_max_per_key) +
                                 " debits with one key survive reconciliation");
      return;
    }
    for (const DerivedEvent& e : o.events) {
      if (e.kind == DerivedKind::kOverdraftFee)
        ++summary.fee_events;
      else
        ++summary.void_events;
    }
    summary.fees += o.fees;
    summary.voids += o.voids;

    std::vector<DerivedEvent> first_events;
    AccountView first_view;
    for (RegionId r = 0; r < n; ++r) {
      Replica& rep = *hosts[r].replica;
      AccountView v;
      if (!rep.GetAccount(id, &v).ok()) {
        Fail("I1 convergence", id + " is unknown at " + R(r) + " though " + std::to_string(o.ops) +
                                   " of its ops are durable");
        return;
      }
      std::vector<DerivedEvent> events;
      rep.DerivedEvents(id, &events);
      // I7: the same fees and voids everywhere, and the ones the oracle derives on its own. A
      // replica keeps a bounded tail of final events (how many depends on how far it has folded),
      // so its list must be a suffix of the oracle's; lists that are not cut must be equal.
      const bool complete =
          events.size() == o.events.size() && first_events.size() == o.events.size();
      if (r > 0 && complete && events != first_events) {
        Fail("I7 agreement", id + ": r0 derives " + EventsText(first_events) + " but " + R(r) +
                                 " derives " + EventsText(events));
        return;
      }
      const bool suffix = events.size() <= o.events.size() &&
                          std::equal(events.begin(), events.end(),
                                     o.events.end() - static_cast<std::ptrdiff_t>(events.size()));
      const bool truncated_ok =
          events.size() == o.events.size() ||
          events.size() >=
              std::min<std::size_t>(o.events.size(), rep.options().max_events_per_account);
      if (!suffix || !truncated_ok) {
        Fail("I7 agreement", id + ": " + R(r) + " derives " + EventsText(events) +
                                 " but canonical replay of the " + std::to_string(o.ops) +
                                 " durable ops gives " + EventsText(o.events));
        return;
      }
      if (v.fees != o.fees || v.voids != o.voids || v.episodes != o.episodes) {
        Fail("I7 agreement", id + " at " + R(r) + ": fees " + std::to_string(v.fees) + ", voids " +
                                 std::to_string(v.voids) + ", episodes " +
                                 std::to_string(v.episodes) + "; the oracle says fees " +
                                 std::to_string(o.fees) + ", voids " + std::to_string(o.voids) +
                                 ", episodes " + std::to_string(o.episodes));
        return;
      }
      if (v.balance != o.balance || v.raw_balance != o.raw_balance) {
        Fail("I3 conservation", id + " at " + R(r) + ": balance " + std::to_string(v.balance) +
                                    " (raw " + std::to_string(v.raw_balance) +
                                    "); the oracle says " + std::to_string(o.balance) + " (raw " +
                                    std::to_string(o.raw_balance) + ")");
        return;
      }
      if (const Amount final_balance = FinalBalance(o, v.frontier);
          v.final_balance != final_balance) {
        Fail("I3 conservation", id + " at " + R(r) + ": final balance " +
                                    std::to_string(v.final_balance) + " below the frontier " +
                                    v.frontier.ToString() +
                                    "; the oracle's replay of the ops "
                                    "below it says " +
                                    std::to_string(final_balance));
        return;
      }
      for (RegionId q = 0; q < n; ++q) {
        const RegionView& rv = v.regions[q];
        if (rv.fees != o.region_fees[q] || rv.voids != o.region_voids[q] ||
            rv.rights != o.region_rights[q]) {
          Fail("I7 agreement",
               id + " at " + R(r) + ": " + R(q) + " has rights " + std::to_string(rv.rights) +
                   ", fees " + std::to_string(rv.fees) + ", voids " + std::to_string(rv.voids) +
                   "; the oracle says " + std::to_string(o.region_rights[q]) + ", " +
                   std::to_string(o.region_fees[q]) + ", " + std::to_string(o.region_voids[q]));
          return;
        }
      }
      if (r > 0 && v.digest != first_view.digest) {
        Fail("I1 convergence", id + ": digest at " + R(r) + " differs from r0's with the same ops");
        return;
      }
      if (o.config.id == id && v.config != o.config) {
        Fail("I1 convergence",
             id + " at " + R(r) + " has a config other than the canonically first open's");
        return;
      }
      CheckAccount(r, id);
      if (failure) return;
      if (r == 0) {
        first_events = std::move(events);
        first_view = v;
      }
    }
    trace.Add(id);
    trace.Add(first_view.digest);
  }
  for (const Host& h : hosts) trace.Add(h.replica->StateDigest());
}

}  // namespace tally::sim
