#include "core/rejoin_state.h"

#include <algorithm>

namespace tally {

RejoinState::RejoinState(RegionId regions, RegionId self)
    : n_(regions), self_(self), answered_(regions, false) {}

void RejoinState::Reset() {
  answered_.assign(n_, false);
  any_answer_ = false;
  any_live_answer_ = false;
  needed_ = VersionVector{};
}

void RejoinState::WaitForSnapshotOnly() {
  any_answer_ = any_live_answer_ = true;
  first_answer_ms_ = 0;
  needed_ = VersionVector{};
}

void RejoinState::NoteLiveAnswer(std::uint64_t now) {
  if (any_live_answer_) return;
  any_live_answer_ = true;
  first_answer_ms_ = now;
}

void RejoinState::Count(RegionId q, const VersionVector& applied) {
  any_answer_ = true;
  answered_[q] = true;
  needed_.JoinWith(applied);
}

void RejoinState::OwnOpsExistUpTo(Seq seq) {
  if (seq > needed_.get(self_)) needed_.set(self_, seq);
}

std::size_t RejoinState::AnsweredPeers() const {
  return static_cast<std::size_t>(std::count(answered_.begin(), answered_.end(), true));
}

// A peer that is rejoining itself may have lost its store too: two wiped regions would confirm
// each other's empty disks while the one region holding the data is cut off. Its answer counts
// only when every peer has answered (a whole cluster restarted at once); the timeout runs from the
// first answer of a peer that is not rejoining. Without a peer that answered still heard, a region
// that stops waiting for the silent ones would resume on answers that may have gone stale.
bool RejoinState::Ready(const VersionVector& held, std::uint64_t now, std::uint64_t wait_ms,
                        bool hears_answered) const {
  if (!any_answer_ || !held.Dominates(needed_)) return false;
  if (AnsweredPeers() + 1 >= n_) return true;
  return any_live_answer_ && wait_ms != 0 && now >= first_answer_ms_ + wait_ms && hears_answered;
}

std::string RejoinState::Reason(const VersionVector& applied, const VersionVector& held,
                                bool needs_snapshot) const {
  std::string why =
      "this region restarted and is rejoining: it serves writes once a peer has "
      "confirmed which of its own ops exist (" +
      std::to_string(AnsweredPeers()) + " of " + std::to_string(n_ - 1) + " peers answered";
  if (needed_.get(self_) > applied.get(self_))
    why += "; recovering own ops " + std::to_string(applied.get(self_)) + " of " +
           std::to_string(needed_.get(self_));
  std::uint64_t missing = 0;
  for (RegionId o = 0; o < n_; ++o) {
    if (needed_.get(o) > held.get(o)) missing += needed_.get(o) - held.get(o);
  }
  if (missing > 0) why += "; " + std::to_string(missing) + " ops still to receive";
  if (needs_snapshot) why += "; waiting for a peer's snapshot";
  return why + ")";
}

}  // namespace tally
