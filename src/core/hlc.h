// Hybrid logical clock (Kulkarni et al.): timestamps that follow physical time when clocks agree
// and stay causal and strictly increasing when they do not. The physical time is passed in by the
// caller (the core reads no clock), so the simulator can skew, drift and step it.
//
// An Hlc packs 48 bits of physical milliseconds and 16 bits of logical counter into one uint64, so
// comparing timestamps is comparing integers. A HybridClock is not thread-safe; each replica owns
// one.

#ifndef TALLY_CORE_HLC_H_
#define TALLY_CORE_HLC_H_

#include <compare>
#include <cstdint>
#include <string>

namespace tally {

struct Hlc {
  std::uint64_t value = 0;

  static constexpr int kLogicalBits = 16;
  static constexpr std::uint64_t kLogicalMask = (std::uint64_t{1} << kLogicalBits) - 1;
  static constexpr std::uint64_t kMaxWallMs = (std::uint64_t{1} << (64 - kLogicalBits)) - 1;

  static Hlc Make(std::uint64_t wall_ms, std::uint64_t logical) {
    return Hlc{(wall_ms << kLogicalBits) | (logical & kLogicalMask)};
  }
  std::uint64_t wall_ms() const { return value >> kLogicalBits; }
  std::uint64_t logical() const { return value & kLogicalMask; }
  bool is_zero() const { return value == 0; }

  auto operator<=>(const Hlc&) const = default;
  std::string ToString() const;  // "1700000000123.4"
};

class HybridClock {
 public:
  // `max_offset_ms`: a peer timestamp further ahead of our physical clock than this is reported
  // (Update returns its offset) but still taken: its ops are never dropped.
  explicit HybridClock(std::uint64_t max_offset_ms = 500) : max_offset_ms_(max_offset_ms) {}

  // After a restart: every later timestamp is strictly greater than `high_water`, whatever the
  // physical clock says.
  void Restore(Hlc high_water) {
    if (high_water > last_) last_ = high_water;
  }

  // A timestamp for a local event (an op, a heartbeat), strictly greater than any before (it
  // saturates at the top of the 48-bit millisecond range instead of wrapping).
  Hlc Now(std::uint64_t physical_ms);

  // Merges a timestamp received from a peer. Returns how far (ms) the peer's wall clock is ahead
  // of our physical clock (negative if behind).
  std::int64_t Update(Hlc remote, std::uint64_t physical_ms);

  // True when `offset_ms` (from Update) is past the configured bound.
  bool FarAhead(std::int64_t offset_ms) const {
    return offset_ms > static_cast<std::int64_t>(max_offset_ms_);
  }

  Hlc last() const { return last_; }
  std::uint64_t max_offset_ms() const { return max_offset_ms_; }

 private:
  std::uint64_t max_offset_ms_;
  Hlc last_;
};

}  // namespace tally

#endif  // TALLY_CORE_HLC_H_
