// Replica: one region's copy of every wallet, as a pure state machine.
//
// The replica does no I/O. Callers feed it values — a client command, a message from a peer, the
// passage of time — each with the current monotonic time in milliseconds (the wall clock, for
// timestamps only, comes through a WallClock), and it fills an Effects with what must happen next:
//
//   1. write Effects::ops, keys, high_water and fold durably, in one batch, and sync;
//   2. only then send Effects::send and release Effects::completions to clients.
//
// That order is what makes an acknowledged op durable (I4) and keeps a crashed region from reusing
// a seq it had already shown to a peer. tallyd does it with LevelDB and Asio (many calls share one
// synced batch: group commit); tally-sim does it with a simulated store and network. The same
// Replica runs in both.
//
// A debit at region r of amount x is decided locally (brief, "The model"):
//   1. spendable rights(r) >= x: accepted. Spendable = effective rights less r's own keyed credits
//      that are not yet final: such a credit may still be voided as a duplicate of a key used in
//      another region, so until it is final it is spendable only inside the overdraft line
//      (docs/design.md, "The effective floor");
//   2. else, if a live peer (link up, acks flowing) has rights, ask it for rights and wait two
//      round trips to it (at most rights_wait_ms); if r's tentative credits would cover x and every
//      peer is reachable (so the frontier moves), wait for them to turn final, at most
//      finality_wait_ms (the command completes later, from OnMessage or Tick);
//   3. else, if spendable(r) + O[r] >= x: accepted as an overdraft debit (flagged) — O[r] counts
//      only once the account's open is final, so a concurrent open with another config cannot win;
//   4. else rejected: insufficient_funds, with the rights, tentative credit and line that explain
//   it.
//
// Not thread-safe: one thread (or strand) drives a Replica.

#ifndef TALLY_CORE_REPLICA_H_
#define TALLY_CORE_REPLICA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica_types.h"
#include "core/wall_clock.h"

namespace tally {

class Replica {
 public:
  // `options` must be valid (Validate); asserts otherwise. `wall` is read for timestamps only and
  // must outlive the replica. Every `now_ms` below is the host's monotonic clock, in ms: deadlines,
  // intervals and silences run on it, never on the wall clock (core/wall_clock.h).
  Replica(ReplicaOptions options, const WallClock& wall);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Loads what the store held. Only on a fresh replica, before any other call. Corruption when the
  // state read back contradicts itself (then the store must not be served).
  Status Recover(RecoveredState state, std::uint64_t now_ms);

  // A client command. Completes now (a CommandResult in out->completions) or, for a debit that
  // waits for rights, from a later OnMessage or Tick.
  void Submit(const Command& cmd, std::uint64_t now_ms, Effects* out);

  // A message from peer `from`. Malformed content (bad ids, amounts, counter caps) is dropped and
  // reported, never applied.
  void OnMessage(RegionId from, const Message& msg, std::uint64_t now_ms, Effects* out);

  // A transport connected to peer `to`: sends our Hello.
  void OnConnected(RegionId to, std::uint64_t now_ms, Effects* out);

  // The transport's connection to `to` died (a host without connections never calls it): no rights
  // move toward `to` until OnConnected, whatever we last heard from it.
  void OnDisconnected(RegionId to);

  // Checks a peer's Hello before anything else is accepted from it.
  Status CheckHello(const Hello& hello) const;

  // Time passes: heartbeats, gossip pushes and re-sends, rights-wait deadlines, the rebalancer and
  // folding below the stable frontier. Call often (every few ms); cheap when idle.
  void Tick(std::uint64_t now_ms, Effects* out);

  // Reads.
  Status GetAccount(std::string_view id, AccountView* out);
  // One hold; NotFound if this replica does not hold it (not yet, or settled and forgotten).
  Status GetHold(Dot hold, HoldView* out);
  std::vector<std::string> AccountIds() const;  // sorted
  bool HasAccount(std::string_view id) const;
  // Forks of an account: final ones kept from folding plus the tentative ones above the frontier.
  Status Forks(std::string_view id, std::vector<ForkReport>* out);
  // The account's statement lines this replica holds in memory (AccountBook::Statement), appended
  // to *out in canonical order: the final lines not yet handed to the host in a Fold, then the
  // tentative ones. The host keeps older final lines (Fold::lines). NotFound for an unknown
  // account.
  Status Statement(std::string_view id, std::vector<StatementLine>* out);
  // Every derived event in canonical order, final and tentative (for agreement checks). Only the
  // newest max_events_per_account final events are kept, and replicas fold at different moments,
  // so two replicas' lists are comparable as suffixes once an account has had more than that.
  Status DerivedEvents(std::string_view id, std::vector<DerivedEvent>* out);

  RegionId self() const;
  // True from Recover until a peer has confirmed which of our own ops exist (and we hold them
  // all): meanwhile every command is refused with Unavailable and nothing is originated.
  bool rejoining() const;
  // Why we refuse writes while rejoining (what the Unavailable answers say); empty otherwise.
  std::string rejoin_reason() const;
  // Our incarnation, carried in Hello (0 for a replica that never recovered).
  std::uint64_t epoch() const;
  // Our Hello to `to`, claiming `applied` (a host may claim only what it has synced).
  Hello HelloTo(RegionId to, const VersionVector& applied) const;
  const ReplicaOptions& options() const;
  const VersionVector& applied() const;
  // Per origin, what we hold without a gap: applied, then ops of an origin's earlier run held in
  // memory until we know where its newer run resumed (not applied, not persisted; see Receive).
  VersionVector held() const;
  // Every fence we know (core/fence_book.h), region by region, in ascending epoch.
  std::vector<Fence> fences() const;
  // Per origin, the ops at or below it are pruned from our log (only in the checkpoints).
  const VersionVector& log_floor() const;
  Hlc clock() const;
  Hlc frontier() const;
  // The frontier of the last Fold handed to the host (or of the checkpoints recovered): every
  // final statement line below it was in a Fold; those between it and frontier() come in the next.
  Hlc saved_frontier() const;
  std::vector<PeerView> Peers(std::uint64_t now_ms) const;
  const ReplicaStats& stats() const;

  // The whole state, for checkers: hash of every account digest in id order.
  std::uint64_t StateDigest();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally

#endif  // TALLY_CORE_REPLICA_H_
