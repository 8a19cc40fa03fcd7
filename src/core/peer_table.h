// PeerTable: what one replica knows of each peer region and the gossip it owes it — whether the
// peer is heard (reachable) and live (link up, its acks flowing), what it said it holds (acked,
// capped at what we hold; holds, as said or relayed), what we sent it, its clock offset and round
// trip — and the push: which ops go to it next, in bounded batches, own ops at once and another
// origin's only once the peer has lagged on them (relay policy).
//
// It reads the op log and never calls back into the replica: the replica passes what it needs to
// know (whether we rejoin, where our run resumed) and acts on what the table answers.
//
// Not thread-safe.

#ifndef TALLY_CORE_PEER_TABLE_H_
#define TALLY_CORE_PEER_TABLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/messages.h"
#include "core/op_log.h"
#include "core/replica_types.h"

namespace tally {

struct Peer {
  bool heard = false;
  std::uint64_t last_heard_ms = 0;
  bool link_up = true;  // the host has not reported our link to it dead (OnDisconnected)
  std::uint64_t acks_heard_ms = 0;  // when its own Ack or heartbeat last reached us (0: never)
  VersionVector acked;  // what it last said it holds (capped at what we hold): what to send
  VersionVector holds;  // what it said it holds in Acks and heartbeats (direct or relayed), not
                        // capped: pruning, ops_behind and replication cap it at what we hold
  std::uint64_t holds_epoch = 0;  // the incarnation of the peer that `holds` describes
  // The newest epochs of every region the peer knew, and its HLC, when it said what it holds (its
  // heartbeats, direct or relayed): whether it is a relayed answer to our rejoin.
  std::vector<std::uint64_t> holds_epochs;
  std::uint64_t holds_clock = 0;
  // Our own ops it holds by its own word (its Acks and heartbeats, never a Hello), checked
  // against our fence: what durability "replicated" counts. A relayed claim cannot say whether
  // the region it describes knew where we resumed.
  Seq holds_ours = 0;
  VersionVector sent;
  // Per origin: when the peer's ack for it last moved (or we began sending it more). Ops of an
  // origin in flight that long without progress are sent again. Per origin, so that progress on
  // one origin (the peer's own ops, say) cannot hold back the re-send of another.
  std::array<std::uint64_t, kMaxRegions> progress_ms{};
  std::int64_t clock_offset_ms = 0;  // its wall clock minus ours (heartbeats, half the round trip)
  std::int64_t rtt_ms = -1;          // the last round trip measured over heartbeats (-1: none)
  std::uint64_t hb_mono_ms = 0;      // its monotonic reading in its last heartbeat (echoed back)
  std::uint64_t hb_heard_ms = 0;     // when we got that heartbeat (our monotonic clock)
  // Per origin: since when the peer's ack for that origin has not moved while we held more (0: it
  // is not lagging), and the ack value seen then.
  std::array<std::uint64_t, kMaxRegions> lag_since_ms{};
  std::array<Seq, kMaxRegions> lag_acked{};
  bool rejoining = false;         // its last Hello said it restarted; cleared by its own promise
  bool needs_snapshot = false;    // its last Hello asked for a snapshot (it holds a lost history)
  std::uint64_t answered_ms = 0;  // when we last answered its Hello (0: never)
  std::uint64_t snapshot_ms = 0;  // when we last sent it a snapshot (0: never)
};

class PeerTable {
 public:
  explicit PeerTable(const ReplicaOptions& opt);

  Peer& at(RegionId r) { return peers_[r]; }
  const Peer& at(RegionId r) const { return peers_[r]; }

  // Heard within peer_timeout_ms.
  bool Reachable(RegionId r, std::uint64_t now) const;
  // Rights may move toward (or be asked of) r: our link to it is up and its own acks or heartbeats
  // came within a window bounded by the measured round trip. Live implies reachable.
  bool Live(RegionId r, std::uint64_t now) const;
  bool AllReachable(std::uint64_t now) const;
  // How long to wait for a rights transfer asked of r: two round trips plus slack, at most
  // rights_wait_ms (all of it while no round trip is measured).
  std::uint64_t RightsWaitMs(RegionId r) const;

  // Anything at all came from r.
  void Heard(RegionId r, std::uint64_t now);
  // A new connection, or a silence: what we sent before may be lost.
  void ResetSent(RegionId r, std::uint64_t now);
  // What r says it holds (Hello: `prunable` false; Ack and heartbeat: true), capped at `applied`.
  // `own_cap`: the highest seq of our own ops the claim may count (where our run resumed, when the
  // peer did not know our fence yet; ~0 otherwise). `epoch`: the peer's newest epoch we know.
  void Acked(RegionId r, const VersionVector& said, const VersionVector& applied, Seq own_cap,
             std::uint64_t epoch, std::uint64_t now, bool prunable);
  // What a third region holds, as a peer relays it (`known_epoch`: that region's newest we know).
  void RelayedHolds(const HoldsEntry& e, std::uint64_t known_epoch);
  // Our run resumed at `seq`: no peer holds an own op of ours above it yet.
  void CapOwnClaims(Seq seq);

  // From a heartbeat: round trip, and the peer's wall clock offset (returned) — NTP-style, our
  // monotonic reading echoed back less the time the peer held it.
  std::int64_t MeasureClock(RegionId r, const Heartbeat& hb, std::uint64_t now,
                            std::uint64_t wall_ms);
  // Sends `hb` to every peer, each with its own echo of its last heartbeat.
  void Broadcast(Heartbeat hb, std::uint64_t now, Effects* out, ReplicaStats* stats) const;
  // What every peer holds, as heartbeats relay it.
  std::vector<HoldsEntry> Holds() const;

  // A rejoining peer that lacks ops we no longer retain (or asked for one) gets a snapshot.
  bool NeedsSnapshot(RegionId r, const VersionVector& floor) const;
  // Sends r the ops it lacks (reachable peers only; not one that needs a snapshot).
  void Push(RegionId r, const OpLog& log, std::uint64_t now, Effects* out, ReplicaStats* stats);
  // Sends r `ops` in batches of max_batch_ops.
  void SendOps(RegionId r, const std::vector<Op>& ops, Effects* out) const;

  // The highest seq of `origin` some peer holds by its own word or a relay (ours: holds_ours).
  Seq HeldByAnyPeer(RegionId origin) const;
  // The highest seq of `origin` every peer but the origin holds (what may be pruned).
  Seq HeldByEveryPeer(RegionId origin, Seq applied) const;
  // "eu (not heard for 12 s), ap": names, with how long each has been silent when it has been.
  std::string Describe(const std::vector<RegionId>& regions, std::uint64_t now) const;
  std::vector<PeerView> Views(const VersionVector& applied, std::uint64_t now) const;

 private:
  std::uint64_t LiveWindowMs(const Peer& p) const;

  RegionId n_;
  RegionId self_;
  std::vector<std::string> names_;
  std::uint64_t peer_timeout_ms_;
  std::uint64_t heartbeat_interval_ms_;
  std::uint64_t resend_after_ms_;
  std::uint64_t relay_delay_ms_;
  std::uint64_t rights_wait_ms_;
  std::size_t max_batch_ops_;
  std::size_t max_inflight_ops_;
  bool drop_relayed_ops_;  // planted bug
  std::vector<Peer> peers_;
};

}  // namespace tally

#endif  // TALLY_CORE_PEER_TABLE_H_
