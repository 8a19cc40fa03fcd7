#include "core/fence_book.h"

#include <algorithm>

namespace tally {

bool FenceBook::Add(const Fence& f) {
  if (f.origin >= by_region_.size() || f.epoch == 0) return false;
  std::vector<Fence>& v = by_region_[f.origin];
  for (const Fence& g : v) {
    if (g.epoch >= f.epoch && g.resumed_from <= f.resumed_from)
      return false;  // known, or implied by g
  }
  // A fence an op implied (Implied) bounds its incarnation's resume point from above; the real
  // one, lower, replaces it.
  std::erase_if(
      v, [&](const Fence& g) { return g.epoch <= f.epoch && g.resumed_from >= f.resumed_from; });
  auto at = std::upper_bound(v.begin(), v.end(), f,
                             [](const Fence& a, const Fence& b) { return a.epoch < b.epoch; });
  v.insert(at, f);
  if (v.size() > kMaxFencesPerRegion) v.erase(v.begin());
  return true;
}

bool FenceBook::IsDead(const Op& op) const {
  if (op.dot.origin >= by_region_.size()) return false;
  for (const Fence& f : by_region_[op.dot.origin]) {
    if (f.epoch > op.epoch && op.dot.seq > f.resumed_from) return true;
  }
  return false;
}

std::uint64_t FenceBook::NewestEpoch(RegionId origin) const {
  if (origin >= by_region_.size() || by_region_[origin].empty()) return 0;
  return by_region_[origin].back().epoch;
}

std::vector<Fence> FenceBook::All() const {
  std::vector<Fence> out;
  for (const auto& v : by_region_) out.insert(out.end(), v.begin(), v.end());
  return out;
}

}  // namespace tally
