#include "core/finality.h"

#include <algorithm>

namespace tally {

Finality::Finality(RegionId regions, RegionId self) : n_(regions), self_(self), origins_(regions) {}

bool Finality::Promise(const HeartbeatEntry& e) {
  Origin& s = origins_[e.origin];
  if (e.epoch < s.epoch) return false;
  if (e.epoch > s.epoch) {  // a new incarnation: its promises start over (confirmed stays)
    s.epoch = e.epoch;
    s.best_hlc = Hlc{};
    s.best_seq = 0;
    s.pending.clear();
  }
  if (e.hlc <= s.best_hlc) return false;
  s.best_hlc = e.hlc;
  s.best_seq = e.seq;
  if (s.pending.size() == kMaxPendingPromises) s.pending.pop_front();
  s.pending.push_back(e);
  return true;
}

// A promise that waited here for its ops binds nothing once its origin has moved to a later
// incarnation: that one may have lost the ops the promise counts and issued other ops under their
// seqs, and an op of the lost history still in flight would confirm it (seed 302977). Promises of
// the new incarnation come with its fence.
void Finality::Confirm(RegionId origin, Seq applied, std::uint64_t newest_epoch) {
  Origin& s = origins_[origin];
  if (s.epoch < newest_epoch) s.pending.clear();
  while (!s.pending.empty() && s.pending.front().seq <= applied) {
    s.confirmed = std::max(s.confirmed, s.pending.front().hlc);
    s.pending.pop_front();
  }
}

Hlc Finality::StableFrontier(Hlc clock) const {
  Hlc f = clock;  // we never issue a timestamp at or below our clock
  for (RegionId o = 0; o < n_; ++o) {
    if (o != self_) f = std::min(f, origins_[o].confirmed);
  }
  return f;
}

std::vector<RegionId> Finality::RegionsNotPast(Hlc hlc) const {
  std::vector<RegionId> v;
  for (RegionId o = 0; o < n_; ++o)
    if (o != self_ && !(hlc < origins_[o].confirmed)) v.push_back(o);
  return v;
}

void Finality::AppendRelayed(std::vector<HeartbeatEntry>* entries) const {
  for (RegionId o = 0; o < n_; ++o) {
    const Origin& s = origins_[o];
    if (o != self_ && !s.best_hlc.is_zero())
      entries->push_back(HeartbeatEntry{o, s.best_hlc, s.best_seq, s.epoch});
  }
}

}  // namespace tally
