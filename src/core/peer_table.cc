#include "core/peer_table.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace tally {

namespace {
// The rights wait: two round trips to the slowest peer asked, plus this for its sync and ticks.
constexpr std::uint64_t kRightsWaitSlackMs = 50;
}  // namespace

PeerTable::PeerTable(const ReplicaOptions& opt)
    : n_(static_cast<RegionId>(opt.regions.size())),
      self_(opt.self),
      names_(opt.regions),
      peer_timeout_ms_(opt.peer_timeout_ms),
      heartbeat_interval_ms_(opt.heartbeat_interval_ms),
      resend_after_ms_(opt.resend_after_ms),
      relay_delay_ms_(opt.relay_delay_ms),
      rights_wait_ms_(opt.rights_wait_ms),
      max_batch_ops_(opt.max_batch_ops),
      max_inflight_ops_(opt.max_inflight_ops),
      drop_relayed_ops_(opt.bugs.drop_relayed_ops),
      peers_(n_) {}

bool PeerTable::Reachable(RegionId r, std::uint64_t now) const {
  const Peer& p = peers_[r];
  return p.heard && now < p.last_heard_ms + peer_timeout_ms_;
}

// "Reachable" (peer_timeout_ms) is far too loose for moving rights: rights sent into a link that
// died a second ago are stranded until the heal.
bool PeerTable::Live(RegionId r, std::uint64_t now) const {
  const Peer& p = peers_[r];
  return p.link_up && p.acks_heard_ms != 0 && now < p.acks_heard_ms + LiveWindowMs(p);
}

// Heartbeats come every heartbeat_interval_ms; allow one lost or late, plus two round trips of
// jitter. Before a round trip is measured, the peer timeout (so live implies reachable).
std::uint64_t PeerTable::LiveWindowMs(const Peer& p) const {
  if (p.rtt_ms < 0) return peer_timeout_ms_;
  return std::min(peer_timeout_ms_,
                  2 * heartbeat_interval_ms_ + 2 * static_cast<std::uint64_t>(p.rtt_ms));
}

bool PeerTable::AllReachable(std::uint64_t now) const {
  for (RegionId r = 0; r < n_; ++r) {
    if (r != self_ && !Reachable(r, now)) return false;
  }
  return true;
}

// A fixed short wait refuses every first debit across a WAN; a fixed long one makes a debit that
// cannot be helped wait for nothing.
std::uint64_t PeerTable::RightsWaitMs(RegionId r) const {
  const Peer& p = peers_[r];
  if (p.rtt_ms < 0) return rights_wait_ms_;
  return std::min(rights_wait_ms_, 2 * static_cast<std::uint64_t>(p.rtt_ms) + kRightsWaitSlackMs);
}

void PeerTable::Heard(RegionId r, std::uint64_t now) {
  if (!Reachable(r, now)) ResetSent(r, now);  // back after a silence
  peers_[r].heard = true;
  peers_[r].last_heard_ms = now;
}

void PeerTable::ResetSent(RegionId r, std::uint64_t now) {
  peers_[r].sent = peers_[r].acked;
  peers_[r].progress_ms.fill(now);
}

// The newest word replaces the last one instead of joining it, and nothing is believed beyond what
// we hold ourselves: a peer that claims too much (a bug, a liar, a stale claim from before it lost
// its disk) is corrected by its next honest ack, and a stale ack that claims too little only costs
// a re-send.
//
// A Hello's claim steers only what we send, never what we prune: a stranger or a stale Hello
// claiming too much would otherwise make us drop ops the real peer never got (the simulator's
// lying-Hello fault found exactly that). Acks and heartbeats come from the live peer.
void PeerTable::Acked(RegionId r, const VersionVector& said, const VersionVector& applied,
                      Seq own_cap, std::uint64_t epoch, std::uint64_t now, bool prunable) {
  Peer& p = peers_[r];
  VersionVector v = said;
  if (v.get(self_) > own_cap) v.set(self_, own_cap);
  VersionVector claim;
  for (RegionId o = 0; o < n_; ++o) claim.set(o, std::min(v.get(o), applied.get(o)));
  if (prunable) {
    p.acks_heard_ms = now;
    p.holds = v;  // uncapped: relayed as said (a rejoining region learns its seqs exist)
    p.holds_epoch = epoch;
    p.holds_ours = v.get(self_);
  }
  for (RegionId o = 0; o < n_; ++o) {
    if (claim.get(o) > p.acked.get(o)) p.progress_ms[o] = now;
  }
  p.acked = claim;
  p.sent.JoinWith(p.acked);
}

// Within one incarnation of that region what it holds only grows, so claims of its newest known
// epoch are joined; a claim of an older epoch (from before it restarted, perhaps with less)
// counts for nothing. Under a partial partition this keeps us from reporting it ops behind that
// it got through a relay, and from never pruning them.
void PeerTable::RelayedHolds(const HoldsEntry& e, std::uint64_t known_epoch) {
  if (e.region >= n_ || e.region == self_) return;
  Peer& q = peers_[e.region];
  if (e.epoch < q.holds_epoch || e.epoch < known_epoch) return;
  if (e.epoch > q.holds_epoch) {
    q.holds = e.applied;
    q.holds_epoch = e.epoch;
    q.holds_epochs = e.epochs;
    q.holds_clock = e.clock;
  } else {
    q.holds.JoinWith(e.applied);
    if (q.holds_epochs.size() < e.epochs.size()) q.holds_epochs.resize(e.epochs.size(), 0);
    for (std::size_t r = 0; r < e.epochs.size(); ++r)
      q.holds_epochs[r] = std::max(q.holds_epochs[r], e.epochs[r]);
    q.holds_clock = std::max(q.holds_clock, e.clock);
  }
}

void PeerTable::CapOwnClaims(Seq seq) {
  for (Peer& p : peers_) {
    if (p.holds.get(self_) > seq) p.holds.set(self_, seq);
    if (p.acked.get(self_) > seq) p.acked.set(self_, seq);
    p.holds_ours = std::min(p.holds_ours, seq);
  }
}

// Not the HLC difference: an HLC follows the fastest clock it has heard from.
std::int64_t PeerTable::MeasureClock(RegionId r, const Heartbeat& hb, std::uint64_t now,
                                     std::uint64_t wall_ms) {
  Peer& p = peers_[r];
  if (hb.mono_ms != 0) {
    p.hb_mono_ms = hb.mono_ms;
    p.hb_heard_ms = now;
  }
  if (hb.echo_mono_ms != 0 && hb.echo_mono_ms <= now && now - hb.echo_mono_ms >= hb.echo_hold_ms)
    p.rtt_ms = static_cast<std::int64_t>(now - hb.echo_mono_ms - hb.echo_hold_ms);
  if (hb.wall_ms == 0) return p.clock_offset_ms;
  p.clock_offset_ms = static_cast<std::int64_t>(hb.wall_ms) +
                      std::max<std::int64_t>(p.rtt_ms, 0) / 2 - static_cast<std::int64_t>(wall_ms);
  return p.clock_offset_ms;
}

void PeerTable::Broadcast(Heartbeat hb, std::uint64_t now, Effects* out,
                          ReplicaStats* stats) const {
  for (RegionId r = 0; r < n_; ++r) {
    if (r == self_) continue;
    const Peer& p = peers_[r];
    hb.echo_mono_ms = p.hb_mono_ms;
    hb.echo_hold_ms = p.hb_mono_ms != 0 ? now - p.hb_heard_ms : 0;
    out->send.push_back(Outbound{r, hb});
    ++stats->messages_sent;
  }
}

// Also what we only know through relays: a region two hops from a restarted one answers its
// rejoin through us (Replica::NoteRelayedAnswer).
std::vector<HoldsEntry> PeerTable::Holds() const {
  std::vector<HoldsEntry> v;
  for (RegionId r = 0; r < n_; ++r) {
    const Peer& p = peers_[r];
    if (r != self_ && (p.heard || !p.holds_epochs.empty()))
      v.push_back(HoldsEntry{r, p.holds_epoch, p.holds, p.holds_epochs, p.holds_clock});
  }
  return v;
}

// We prune an op once every peer holds it, so only a peer that restarted with less than it had
// (wiped, restored from a copy) can lack ops we no longer retain.
bool PeerTable::NeedsSnapshot(RegionId r, const VersionVector& floor) const {
  const Peer& p = peers_[r];
  if (!p.rejoining) return false;
  if (p.needs_snapshot) return true;
  for (RegionId o = 0; o < n_; ++o) {
    if (p.acked.get(o) < floor.get(o)) return true;
  }
  return false;
}

namespace {
// Collects ops for one peer and sends them in batches of at most `max` ops.
class BatchSender {
 public:
  BatchSender(RegionId to, std::size_t max, Effects* out, ReplicaStats* stats)
      : to_(to), max_(max), out_(out), stats_(stats) {}
  ~BatchSender() { Flush(); }
  void Add(const Op& op) {
    batch_.ops.push_back(op);
    if (batch_.ops.size() == max_) Flush();
  }
  void Flush() {
    if (batch_.ops.empty()) return;
    if (stats_) {
      stats_->ops_sent += batch_.ops.size();
      ++stats_->messages_sent;
    }
    out_->send.push_back(Outbound{to_, std::move(batch_)});
    batch_ = OpBatch{};
  }

 private:
  RegionId to_;
  std::size_t max_;
  Effects* out_;
  ReplicaStats* stats_;  // null: not counted
  OpBatch batch_;
};
}  // namespace

// Our own ops go at once; another origin's ops are relayed only once the peer has lagged on them
// for relay_delay_ms (it probably cannot hear that origin), so a full mesh does not carry every op
// n-1 times.
void PeerTable::Push(RegionId r, const OpLog& log, std::uint64_t now, Effects* out,
                     ReplicaStats* stats) {
  Peer& p = peers_[r];
  const VersionVector& applied = log.applied();
  std::size_t inflight = 0;
  for (RegionId o = 0; o < n_; ++o) {
    if (p.sent.get(o) <= p.acked.get(o)) continue;
    if (now >= p.progress_ms[o] + resend_after_ms_) {
      p.sent.set(o, p.acked.get(o));  // nothing acked for a while: assume it was lost
      p.progress_ms[o] = now;
      continue;
    }
    inflight += p.sent.get(o) - p.acked.get(o);
  }
  BatchSender batch(r, max_batch_ops_, out, stats);
  for (RegionId o = 0; o < n_ && inflight < max_inflight_ops_; ++o) {
    // A peer normally holds all of its own ops; if it says it does not (it lost its store and is
    // rejoining), it gets them back from us like any other.
    if (applied.get(o) <= p.acked.get(o)) {
      p.lag_since_ms[o] = 0;
      continue;
    }
    if (o != self_ && o != r) {
      if (drop_relayed_ops_) continue;
      if (p.lag_since_ms[o] == 0 || p.lag_acked[o] != p.acked.get(o)) {
        // The peer still makes progress on this origin (probably hears it directly): wait.
        p.lag_since_ms[o] = now;
        p.lag_acked[o] = p.acked.get(o);
      }
      if (now < p.lag_since_ms[o] + relay_delay_ms_) continue;
    }
    if (p.sent.get(o) <= p.acked.get(o)) p.progress_ms[o] = now;  // nothing in flight: start
    // Pruned: every peer had acked it (a stale ack says less; a restarted peer gets a snapshot).
    Seq from = std::max({p.sent.get(o), p.acked.get(o), log.floor().get(o)});
    while (from < applied.get(o) && inflight < max_inflight_ops_) {
      batch.Add(log.At(o, from + 1));
      ++from;
      ++inflight;
    }
    p.sent.set(o, from);
  }
}

void PeerTable::SendOps(RegionId r, const std::vector<Op>& ops, Effects* out) const {
  BatchSender batch(r, max_batch_ops_, out, nullptr);
  for (const Op& op : ops) batch.Add(op);
}

Seq PeerTable::HeldByAnyPeer(RegionId origin) const {
  Seq upto = 0;
  for (RegionId p = 0; p < n_; ++p) {
    if (p != self_)
      upto = std::max(upto, origin == self_ ? peers_[p].holds_ours : peers_[p].holds.get(origin));
  }
  return upto;
}

Seq PeerTable::HeldByEveryPeer(RegionId origin, Seq applied) const {
  Seq upto = applied;
  for (RegionId p = 0; p < n_; ++p) {
    if (p != self_ && p != origin) upto = std::min(upto, peers_[p].holds.get(origin));
  }
  return upto;
}

std::string PeerTable::Describe(const std::vector<RegionId>& regions, std::uint64_t now) const {
  std::string s;
  for (RegionId o : regions) {
    if (!s.empty()) s += ", ";
    s += names_[o];
    const Peer& p = peers_[o];
    if (!p.heard) {
      s += " (not heard since this process started)";
    } else if (!Reachable(o, now)) {
      s += " (not heard for " + std::to_string((now - p.last_heard_ms) / 1000) + " s)";
    }
  }
  return s;
}

std::vector<PeerView> PeerTable::Views(const VersionVector& applied, std::uint64_t now) const {
  std::vector<PeerView> v;
  for (RegionId r = 0; r < n_; ++r) {
    if (r == self_) continue;
    const Peer& p = peers_[r];
    PeerView pv;
    pv.region = r;
    pv.reachable = Reachable(r, now);
    pv.last_heard_ms = p.last_heard_ms;
    pv.acked = p.acked;
    pv.clock_offset_ms = p.clock_offset_ms;
    pv.rtt_ms = p.rtt_ms;
    // By any route: what it acked to us, or what a peer relayed it holds.
    for (RegionId o = 0; o < n_; ++o) {
      const Seq has = std::max(p.acked.get(o), p.holds.get(o));
      if (applied.get(o) > has) pv.ops_behind += applied.get(o) - has;
    }
    v.push_back(pv);
  }
  return v;
}

}  // namespace tally
