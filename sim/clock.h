// SimClock: one region's physical wall clock as a function of virtual time.
//
// The reading is epoch + virtual time + a fixed offset + linear drift (parts per million), plus any
// step jumps applied so far (an operator or NTP setting the clock minutes or hours forward or
// back). The replica only ever sees these readings, so HLC monotonicity and the stable frontier are
// exercised against skew exactly as in production. Not thread-safe.

#ifndef TALLY_SIM_CLOCK_H_
#define TALLY_SIM_CLOCK_H_

#include <algorithm>
#include <cstdint>

namespace tally::sim {

// Virtual time 0 reads as this wall-clock instant (2023-11-14), far from 0 so that any offset or
// step keeps readings positive.
inline constexpr std::uint64_t kEpochMs = 1'700'000'000'000ULL;
// Steps accumulate; past this total the clock is clamped (a day either way is plenty of skew).
inline constexpr std::int64_t kMaxTotalOffsetMs = 24LL * 3600 * 1000;

class SimClock {
 public:
  SimClock(std::int64_t offset_ms = 0, std::int64_t drift_ppm = 0)
      : offset_ms_(offset_ms), drift_ppm_(drift_ppm) {}

  std::uint64_t Read(std::uint64_t virtual_ms) const {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(kEpochMs + virtual_ms) +
                                      OffsetAt(virtual_ms));
  }
  // How far this clock reads ahead of true (virtual) time at `virtual_ms`; negative when behind.
  std::int64_t OffsetAt(std::uint64_t virtual_ms) const {
    return offset_ms_ + static_cast<std::int64_t>(virtual_ms) * drift_ppm_ / 1'000'000;
  }
  void Step(std::int64_t delta_ms) {
    offset_ms_ = std::clamp(offset_ms_ + delta_ms, -kMaxTotalOffsetMs, kMaxTotalOffsetMs);
  }
  std::int64_t drift_ppm() const { return drift_ppm_; }
  std::int64_t base_offset_ms() const { return offset_ms_; }

 private:
  std::int64_t offset_ms_;
  std::int64_t drift_ppm_;  // |drift| < 1e6, so readings never run backwards between steps
};

}  // namespace tally::sim

#endif  // TALLY_SIM_CLOCK_H_
