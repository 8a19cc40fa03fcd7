// SystemWallClock: the system clock, which the replica reads for timestamps only
// (core/wall_clock.h); every timer runs on the monotonic clock instead. Thread-safe.

#ifndef TALLY_NODE_SYSTEM_WALL_CLOCK_H_
#define TALLY_NODE_SYSTEM_WALL_CLOCK_H_

#include <cstdint>

#include "core/wall_clock.h"

namespace tally::node {

class SystemWallClock final : public WallClock {
 public:
  std::uint64_t NowMs() const override;
};

}  // namespace tally::node

#endif  // TALLY_NODE_SYSTEM_WALL_CLOCK_H_
