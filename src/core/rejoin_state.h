// RejoinState: a restarted region's count of the answers to its rejoin. Until a peer confirms
// which of our own ops exist, and we hold every op the answers name, the replica originates
// nothing: a store that lost ops must not issue their seqs again (docs/design.md, "Rejoining").
//
// It counts answers and says when the rejoin may end; the replica sends the Hellos, merges the
// clocks and resumes. Not thread-safe.

#ifndef TALLY_CORE_REJOIN_STATE_H_
#define TALLY_CORE_REJOIN_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"

namespace tally {

class RejoinState {
 public:
  RejoinState(RegionId regions, RegionId self);

  // Forgets the answers so far (they describe an older epoch of ours, or may count ops of a lost
  // history): every peer is asked again.
  void Reset();
  // A rejoin that waits only for a snapshot (we hold folded ops of a lost history): no answer is
  // needed beyond it.
  void WaitForSnapshotOnly();
  // The first answer of a peer that is not rejoining itself starts the rejoin_wait_ms clock.
  void NoteLiveAnswer(std::uint64_t now);
  // Region q's answer: it held `applied`.
  void Count(RegionId q, const VersionVector& applied);
  // Some region holds our own ops up to `seq`: we wait for them too.
  void OwnOpsExistUpTo(Seq seq);

  bool answered(RegionId q) const { return answered_[q]; }
  bool any_answer() const { return any_answer_; }
  bool any_live_answer() const { return any_live_answer_; }
  const VersionVector& needed() const { return needed_; }
  std::size_t AnsweredPeers() const;
  // Whether to (re)send our Hello to `p`: it has not answered, or only rejoining peers have.
  bool ShouldAsk(RegionId p) const { return !answered_[p] || !any_live_answer_; }

  // Whether the rejoin may end: some peer answered, we hold (`held`) every op the answers named,
  // and every other peer answered too or had `wait_ms` (0: for ever) from the first live answer,
  // while we still hear a peer that answered (`hears_answered`).
  bool Ready(const VersionVector& held, std::uint64_t now, std::uint64_t wait_ms,
             bool hears_answered) const;
  // What the Unavailable answers say meanwhile.
  std::string Reason(const VersionVector& applied, const VersionVector& held,
                     bool needs_snapshot) const;

 private:
  RegionId n_;
  RegionId self_;
  std::vector<bool> answered_;  // per region: it answered this epoch of ours
  bool any_answer_ = false;
  bool any_live_answer_ = false;       // an answer from a peer that is not rejoining itself
  std::uint64_t first_answer_ms_ = 0;  // of the first such answer
  VersionVector needed_;               // what the answers to this epoch said they held
};

}  // namespace tally

#endif  // TALLY_CORE_REJOIN_STATE_H_
