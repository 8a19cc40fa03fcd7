// Finality: the heartbeat promises of every other region and the stable frontier they allow.
//
// A region's heartbeat promises "every op I issue from now has a timestamp above h, and I had
// issued up to seq s". Once we hold its ops up to s, the promise is confirmed: nothing of that
// region below h can still arrive. The stable frontier is the least confirmed promise over the
// other regions (and our own clock): everything below it is final, the same in every replica, and
// is folded into checkpoints. Promises are per incarnation: one of a run its region has left binds
// nothing (its new run rejoined on a clock that may be behind it).
//
// Pure bookkeeping: the replica feeds it promises and what it has applied, and reads the frontier.
// Not thread-safe.

#ifndef TALLY_CORE_FINALITY_H_
#define TALLY_CORE_FINALITY_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "core/messages.h"
#include "core/types.h"

namespace tally {

class Finality {
 public:
  static constexpr std::size_t kMaxPendingPromises = 16;  // per origin: bounded

  Finality(RegionId regions, RegionId self);

  // A promise of region e.origin (not ours), of an incarnation not known to be left. Returns true
  // when it is newer than any held, and is now pending confirmation.
  bool Promise(const HeartbeatEntry& e);
  // Confirms the pending promises of `origin` whose seq we have applied (`applied`); drops them
  // all if `origin` has moved to a newer incarnation than theirs (`newest_epoch`).
  void Confirm(RegionId origin, Seq applied, std::uint64_t newest_epoch);
  // The least confirmed promise of the other regions, at most `clock`.
  Hlc StableFrontier(Hlc clock) const;
  // The regions whose confirmed promises are not yet past `hlc`: what holds the frontier below it.
  std::vector<RegionId> RegionsNotPast(Hlc hlc) const;
  // The best promise of every other region, relayed in our heartbeats.
  void AppendRelayed(std::vector<HeartbeatEntry>* entries) const;

 private:
  struct Origin {
    std::uint64_t epoch = 0;  // the incarnation whose promises these are
    Hlc best_hlc;
    Seq best_seq = 0;
    Hlc confirmed;  // newest promise whose seq we have applied: the origin's share of the frontier
    std::deque<HeartbeatEntry> pending;
  };
  RegionId n_;
  RegionId self_;
  std::vector<Origin> origins_;
};

}  // namespace tally

#endif  // TALLY_CORE_FINALITY_H_
