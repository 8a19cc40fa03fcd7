// CommitGate: the durability contract of Effects, written once for every host.
//
// A replica's Effects says what to persist and what may only happen once that is durable:
// messages to peers (an Ack or heartbeat claims what we hold) and answers to clients (an answer
// promises the op survives a crash). The gate joins the persistable part of every Effects into
// the open batch and holds each Effects' sends and completions until every batch holding anything
// persisted before them is synced. With nothing unsynced they leave at once.
//
// Every host drives this one gate — tallyd (src/node/node.cc), the simulator (sim/simulation.cc)
// and the core tests' cluster — so the simulator checks tallyd's rule, not a copy of it. A host's
// loop:
//
//   Absorb(&effects, &now)         after every replica call; send and complete what `now` holds
//   if (has_open_batch() && nothing being written) write StartWrite()   (group commit)
//   when that write is synced:     Synced(&out); send and complete what `out` holds
//
// Several batches may be in flight (tallyd hands the next one to its storage thread while one
// syncs); they are synced, and retired, oldest first. Batches are numbered 1, 2, … in the order
// they are opened; Barrier() names the one that host-side work queued now must wait for.
//
// PlantedBugs::ack_before_sync lives here: the gate then lets completions out at once.
//
// Not thread-safe: one host thread owns it. A batch returned by StartWrite() stays valid and
// unchanged until Synced() retires it, so a storage thread may read it meanwhile.

#ifndef TALLY_CORE_COMMIT_GATE_H_
#define TALLY_CORE_COMMIT_GATE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "core/persist_batch.h"
#include "core/replica.h"

namespace tally {

class CommitGate {
 public:
  // What may leave now: messages to peers and answers to clients, in the order the replica made
  // them. A host clears it after acting on it (the gate only appends).
  struct Release {
    std::vector<Outbound> send;
    std::vector<CommandResult> completions;
    bool empty() const { return send.empty() && completions.empty(); }
    void Clear() {
      send.clear();
      completions.clear();
    }
  };

  explicit CommitGate(bool ack_before_sync = false);
  CommitGate(const CommitGate&) = delete;
  CommitGate& operator=(const CommitGate&) = delete;

  // Takes *e's persistable part into the open batch, and its sends and completions: appended to
  // *now when nothing is unsynced, held for the newest batch otherwise. Leaves those fields of *e
  // empty; the rest (notices) is the host's.
  void Absorb(Effects* e, Release* now);

  // Whether the open batch holds anything to write.
  bool has_open_batch() const { return !open_->persist.empty(); }
  // Puts the open batch in flight and returns it for the host to write and sync. Requires
  // has_open_batch().
  const PersistBatch& StartWrite();

  std::size_t in_flight() const { return in_flight_.size(); }
  // The oldest batch in flight: the next one Synced() retires. Requires in_flight() > 0.
  const PersistBatch& oldest_in_flight() const { return in_flight_.front()->persist; }
  // The oldest batch in flight is durable: appends what waited for it to *out and retires it.
  void Synced(Release* out);

  // The host crashed: every batch not synced, and everything held, is gone.
  void Crash();

  // The number of the batch whose sync what is queued now must wait for; 0 when nothing is
  // unsynced. Batches up to synced_through() are durable.
  std::uint64_t Barrier() const;
  std::uint64_t synced_through() const { return synced_; }

  // Every batch not yet durable, oldest first (those in flight, then the open one): what a crash
  // now would lose. For checkers.
  template <typename F>
  void ForEachUnsynced(F&& f) const {
    for (const auto& b : in_flight_) f(b->persist);
    if (has_open_batch()) f(open_->persist);
  }

 private:
  struct Slot {
    PersistBatch persist;
    Release held;  // leaves once `persist` and every batch before it is synced
    void Clear() {
      persist.Clear();
      held.Clear();
    }
  };
  // The batch that what is absorbed now must wait for, or nullptr when nothing is unsynced.
  Slot* Newest();

  const bool ack_before_sync_;
  std::unique_ptr<Slot> open_;
  std::deque<std::unique_ptr<Slot>> in_flight_;
  std::vector<std::unique_ptr<Slot>> spares_;  // retired slots, reused with their capacity
  std::uint64_t synced_ = 0;
};

}  // namespace tally

#endif  // TALLY_CORE_COMMIT_GATE_H_
