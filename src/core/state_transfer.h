// StateTransfer: every time a replica's state is replaced wholesale — loaded at start from what
// the store recovered, installed from a peer's snapshot, or rebuilt without the ops of a history
// their origin lost — and the snapshots sent to a peer that restarted lacking ops no region
// retains any more (docs/design.md, "Lost histories" and "Snapshots").
//
// A new state is always loaded into a scratch LoadedState first and checked, so a malformed one
// changes nothing; Adopt then moves it in and has the host replace its store. Acts on the
// replica's state (core/replica_state.h); calls nothing else: what the replica must do after an
// install (drain buffered ops, end the rejoin) it does itself. Not thread-safe; the replica's
// thread only.

#ifndef TALLY_CORE_STATE_TRANSFER_H_
#define TALLY_CORE_STATE_TRANSFER_H_

#include <cstdint>

#include "core/replica_state.h"

namespace tally {

class StateTransfer {
 public:
  explicit StateTransfer(ReplicaState& s) : s_(s) {}
  StateTransfer(const StateTransfer&) = delete;
  StateTransfer& operator=(const StateTransfer&) = delete;

  // Loads checkpoints, key records and the retained log into `log` and `book`, fresh ones: the
  // replica's own at Recover, a scratch pair otherwise. Corruption when they contradict each
  // other. *held_max: the newest timestamp among the ops.
  static Status LoadInto(const ReplicaOptions& opt, RecoveredState st, OpLog* log,
                         AccountBook* book, Hlc* held_max);

  // At Recover: drops the ops of a lost history the store holds, by the fences it holds too.
  void DropLostHistory(RecoveredState* st);
  // Sends peer `to` our whole state, at most once per max(resend_after_ms, peer_timeout_ms).
  void SendSnapshot(RegionId to, std::uint64_t now, Effects* out);
  // A peer's snapshot while we rejoin (the replica has learned its fences): installs it if we
  // need it and it is whole. True when installed.
  bool Install(RegionId from, const Snapshot& snap, std::uint64_t now, Effects* out);
  // Removes the ops of origin `o` of a history it lost (by the fences known), or, when some are
  // folded already, stops serving writes until a snapshot replaces our state.
  void RemoveLostHistory(RegionId o, std::uint64_t now, Effects* out);

 private:
  // A state loaded beside ours, to be checked and adopted.
  struct LoadedState {
    explicit LoadedState(const ReplicaOptions& o)
        : opt(o), log(static_cast<RegionId>(o.regions.size())), book(o) {}
    Status Load(RecoveredState st) {
      frontier = st.frontier;
      return LoadInto(opt, std::move(st), &log, &book, &held_max);
    }
    const ReplicaOptions& opt;
    OpLog log;
    AccountBook book;
    Hlc frontier;
    Hlc held_max;  // the newest timestamp among its ops
  };

  void Adopt(LoadedState& fresh, std::uint64_t now, Effects* out);
  void RefuseWaiting(Effects* out);

  ReplicaState& s_;
};

}  // namespace tally

#endif  // TALLY_CORE_STATE_TRANSFER_H_
