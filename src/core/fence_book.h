// FenceBook: the resume points (fences) of every region's incarnations, as one replica knows them,
// and the rule that tells an op of a lost history from a live one.
//
// A region that restarts on a store that lost ops (wiped, restored from an older copy) rejoins on
// what its peers give back, then issues its own ops again from the seq after the last one it got
// back. An op of its lost history above that seq may still surface later: in flight from before
// the loss, relayed by a region that did not answer the rejoin, or read back from an even older
// copy of its disk. Every op carries the incarnation (epoch) that issued it, so the conflict is
// decidable everywhere alike: op (origin o, seq s, epoch e) is dead iff o has a fence
// (epoch f, resumed_from r) with f > e and s > r. Dead ops are refused, and a replica that applied
// one before it heard of the fence removes it (docs/design.md, "Fences").
//
// Fences only accumulate (gossiped in every Hello and Heartbeat, implied by every op) and the rule
// is monotone: a fence learned later can only kill more ops, never revive one. Per region the book
// keeps only fences no newer one implies (a fence with a higher epoch and a resume point at or
// below kills all the older one kills), so epochs and resume points both ascend; at most
// kMaxFencesPerRegion, dropping the oldest (whose ops every replica has long held or refused).
// Not thread-safe.

#ifndef TALLY_CORE_FENCE_BOOK_H_
#define TALLY_CORE_FENCE_BOOK_H_

#include <vector>

#include "core/messages.h"
#include "core/types.h"

namespace tally {

class FenceBook {
 public:
  explicit FenceBook(RegionId regions) : by_region_(regions) {}

  // Learns `f`. Returns true when it kills ops no fence known before killed (the caller then
  // looks for such ops among those it holds). Fences of unknown regions or epoch 0 are ignored.
  bool Add(const Fence& f);

  // Whether `op` belongs to a history its origin lost (see above).
  bool IsDead(const Op& op) const;

  // The fence `op` implies: its incarnation resumed below its seq. An op can arrive (relayed)
  // before any Hello or heartbeat carrying its origin's fence, and an op of a lost history after
  // it; the implied fence refuses that one (an upper bound of the resume point kills no live op).
  // Of two fences of one epoch the book keeps the lower resume point.
  static Fence Implied(const Op& op) { return Fence{op.dot.origin, op.epoch, op.dot.seq - 1}; }

  // The newest epoch of `origin` with a known fence (0: none).
  std::uint64_t NewestEpoch(RegionId origin) const;

  // Every fence known, region by region, in ascending epoch: what a Hello or Heartbeat carries.
  std::vector<Fence> All() const;

 private:
  std::vector<std::vector<Fence>> by_region_;
};

}  // namespace tally

#endif  // TALLY_CORE_FENCE_BOOK_H_
