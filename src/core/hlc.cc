#include "core/hlc.h"

#include <algorithm>

namespace tally {

std::string Hlc::ToString() const {
  return std::to_string(wall_ms()) + "." + std::to_string(logical());
}

Hlc HybridClock::Now(std::uint64_t physical_ms) {
  physical_ms = std::min(physical_ms, Hlc::kMaxWallMs);
  if (physical_ms > last_.wall_ms()) {
    last_ = Hlc::Make(physical_ms, 0);
  } else if (last_.logical() < Hlc::kLogicalMask) {
    last_ = Hlc{last_.value + 1};
  } else if (last_.wall_ms() < Hlc::kMaxWallMs) {
    // The logical counter is exhausted within one millisecond: borrow the next millisecond rather
    // than wrap, so timestamps stay strictly increasing.
    last_ = Hlc::Make(last_.wall_ms() + 1, 0);
  }
  // else: the very top of the range (year 10889). Saturate rather than wrap to zero.
  return last_;
}

std::int64_t HybridClock::Update(Hlc remote, std::uint64_t physical_ms) {
  physical_ms = std::min(physical_ms, Hlc::kMaxWallMs);
  if (remote > last_) last_ = remote;
  return static_cast<std::int64_t>(remote.wall_ms()) - static_cast<std::int64_t>(physical_ms);
}

}  // namespace tally
