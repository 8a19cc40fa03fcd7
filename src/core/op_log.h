// OpLog: the ops a replica holds, per origin — the contiguous log it applied (seqs above the log
// floor up to `applied`), the ops that arrived beyond a gap, and the ops of an origin's earlier
// run held back until that origin's newer run's fence decides them (Replica::Receive). It knows
// seqs and bounds, not money: what an op does to an account is AccountBook's business.
//
// Seams asserted (always on): an op is appended only as the next seq of its origin, and every
// lookup by seq stays inside the retained log.
//
// Not thread-safe.

#ifndef TALLY_CORE_OP_LOG_H_
#define TALLY_CORE_OP_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "core/types.h"

namespace tally {

class OpLog {
 public:
  // Bound on what a peer can make us hold beyond a gap or for a fence, per origin.
  static constexpr std::size_t kMaxHeldPerOrigin = 65536;

  explicit OpLog(RegionId regions);

  // Per origin, the highest seq applied (the log is contiguous up to it).
  const VersionVector& applied() const { return applied_; }
  // Per origin, the ops at or below it are pruned (only in the checkpoints).
  const VersionVector& floor() const { return floor_; }

  // Starts from a store's or snapshot's log floor: nothing retained above it yet.
  void Reset(const VersionVector& floor);
  // Appends the next op of its origin (seq == applied + 1).
  void Append(const Op& op);
  // The retained op of `origin` with seq `seq` (floor < seq <= applied).
  const Op& At(RegionId origin, Seq seq) const;
  // The retained op with canonical key `k`, or nullptr when pruned or not held.
  const Op* Lookup(const CanonicalKey& k) const;
  // The retained ops of `origin`, in seq order.
  const std::deque<Op>& Retained(RegionId origin) const { return log_[origin]; }
  // Every retained op, origin by origin in seq order.
  std::vector<Op> AllRetained() const;
  // Drops, per origin, retained ops at or below upto[o] whose timestamps are below `frontier`.
  void Prune(const VersionVector& upto, Hlc frontier);
  // Replaces the applied log with `other`'s (a snapshot or a rebuilt state), keeping the ops held
  // beyond a gap or for a fence: they are decided as they would have been.
  void AdoptLog(OpLog&& other);

  // Ops beyond a gap: held until the gap fills (bounded; beyond it they are dropped and re-sent).
  void Buffer(const Op& op);
  void ClearBuffered(RegionId origin) { buffered_[origin].clear(); }
  // Takes the first buffered op of `origin` if its seq is at most applied + 1 (false otherwise).
  bool TakeReady(RegionId origin, Op* op);
  // The ops of `origin` held beyond a gap, by seq (received, not applied).
  const std::map<Seq, Op>& Buffered(RegionId origin) const { return buffered_[origin]; }
  // Ops held now, beyond a gap or for a fence (the buffered_ops gauge).
  std::size_t buffered() const;

  // Ops of an origin's earlier run held until its newer run's fence is known. True when `op` was
  // newly held (not known already, and within the bound).
  bool HoldForFence(const Op& op);
  bool HoldsForFence(RegionId origin) const { return !awaiting_fence_[origin].empty(); }
  std::map<Seq, Op> TakeHeldForFence(RegionId origin);
  const std::map<Seq, Op>& HeldForFence(RegionId origin) const { return awaiting_fence_[origin]; }

  // What we hold without a gap, per origin: applied, then ops held for a fence that follow it.
  VersionVector Held() const;

 private:
  RegionId n_;
  VersionVector applied_;
  VersionVector floor_;
  std::vector<std::deque<Op>> log_;                // per origin: seqs floor+1 .. applied
  std::vector<std::map<Seq, Op>> buffered_;        // per origin: ops beyond a gap
  std::vector<std::map<Seq, Op>> awaiting_fence_;  // per origin: ops of a run it has left
};

}  // namespace tally

#endif  // TALLY_CORE_OP_LOG_H_
