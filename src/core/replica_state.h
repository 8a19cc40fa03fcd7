// ReplicaState: everything one region's replica holds, in one place, and the few questions about
// it that every part of the replica asks — what we claim to hold, our Hello, our Ack, the leased
// clock, the phase the command desk reads.
//
// The replica (core/replica.cc) owns one and routes each call; the parts it routes to —
// core/answers.h (how an answer leaves), core/rejoiner.h (rejoining after a restart),
// core/heartbeats.h (promises, the frontier, folding), core/state_transfer.h (loading a state,
// snapshots, removing a lost history) — each hold a reference to it and act on it. They depend on
// it and on each other one way only (heartbeats → rejoiner), never on the replica: what the
// replica must do next comes back as a value. The collaborators it holds (the account book, the
// op log, the peer table, finality, the command desk …) know nothing of it.
// docs/design.md, "Inside the core".
//
// Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_REPLICA_STATE_H_
#define TALLY_CORE_REPLICA_STATE_H_

#include <cstdint>
#include <vector>

#include "core/account_book.h"
#include "core/command_desk.h"
#include "core/finality.h"
#include "core/hlc.h"
#include "core/incarnations.h"
#include "core/messages.h"
#include "core/op_log.h"
#include "core/origination.h"
#include "core/peer_table.h"
#include "core/rejoin_state.h"
#include "core/replica_types.h"
#include "core/replication_waits.h"
#include "core/rights_broker.h"
#include "core/wall_clock.h"

namespace tally {

struct ReplicaState {
  // `wall` must outlive the state (the replica's host owns it).
  ReplicaState(ReplicaOptions o, const WallClock* w);
  ReplicaState(const ReplicaState&) = delete;
  ReplicaState& operator=(const ReplicaState&) = delete;

  // ---- questions every part asks ----

  // The wall clock, read for timestamps only (core/wall_clock.h); `now` everywhere is monotonic.
  std::uint64_t Wall() const { return wall->NowMs(); }
  // What the desk and the rights broker read of our state.
  ReplicaPhase Phase() const;
  // Why we refuse writes while rejoining.
  std::string RejoinReason() const;
  // What we tell peers we hold of `applied`.
  VersionVector Claims(VersionVector applied) const;
  Hello HelloFor(RegionId to, const VersionVector& applied) const;
  // Our Ack to `to`, claiming `applied`.
  Ack AckFor(RegionId to, const VersionVector& applied) const;

  // ---- small acts every part does ----

  // Records what peer `from` says it holds (Hello, Ack, heartbeat) in the peer table.
  void Acked(RegionId from, const VersionVector& said, std::uint64_t now, bool prunable,
             bool knows_our_fence);
  // Leases the clock ahead of `h` before anything showing `h` is sent.
  void LeaseClock(Hlc h, Effects* out);
  void SendHello(RegionId to, Effects* out);
  // Tells finality how far origin `o`'s ops are held here, under its newest epoch.
  void TryConfirm(RegionId o);
  // Applies the next op of its origin (core/origination.h, ApplyOp).
  Status ApplyOp(const Op& op, Effects* out);

  // ---- the state ----
  ReplicaOptions opt;
  const WallClock* wall;  // not owned
  RegionId n;             // regions in the cluster
  HybridClock clock;
  Hlc persisted_hw;    // the clock's high-water mark as the host last persisted it
  Hlc frontier;        // the stable frontier: journals below it are folded
  Hlc saved_frontier;  // the frontier of the persisted checkpoints
  OpLog log;
  AccountBook book;
  PeerTable peers;
  Finality finality;
  RejoinState rejoin;
  ReplicationWaits replication;  // answers held for durability "replicated"
  bool rejoining = false;        // restarted; no op originated until our own log is whole
  Incarnations inc;              // our epoch and fence; the others' epochs; every fence
  bool needs_snapshot = false;   // we hold folded ops of a lost history: only a snapshot helps
  // Per origin, the first op of a lost history we hold and cannot remove (0: none); what we claim
  // to hold stops below it (Claims) until a snapshot replaces our state.
  std::vector<Seq> lost_from;
  // The gauges (keys, index bytes, buffered ops) are filled in when read.
  mutable ReplicaStats stats;
  RightsBroker broker;
  CommandDesk desk;  // last: it refers to the members above
};

}  // namespace tally

#endif  // TALLY_CORE_REPLICA_STATE_H_
