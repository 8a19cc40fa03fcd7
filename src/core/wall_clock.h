// WallClock: how the replica reads the wall clock, which feeds its hybrid logical clock and
// nothing else.
//
// A replica runs on two clocks. Every deadline, interval and silence it measures (heartbeats,
// re-sends, peer timeouts, rights waits, the rejoin wait) runs on the monotonic milliseconds its
// host passes to each call (`now_ms`): they never step, so a wall clock set back an hour cannot
// keep a dead peer "reachable" or freeze a re-send. The wall clock, which may step or drift, is
// read only for timestamps (HLC: ops, heartbeat promises, epochs), through this interface: tallyd
// reads the system clock, the simulator a skewed and stepping one, tests a settable one.
//
// Threading: called on the replica's thread only, during a replica call; an implementation must
// not call back into the replica.

#ifndef TALLY_CORE_WALL_CLOCK_H_
#define TALLY_CORE_WALL_CLOCK_H_

#include <cstdint>

namespace tally {

class WallClock {
 public:
  virtual ~WallClock() = default;
  // Milliseconds since the Unix epoch, as the host's wall clock reads now.
  virtual std::uint64_t NowMs() const = 0;
};

// A wall clock that reads a variable its owner advances (benchmarks, tools that drive a replica
// through time by hand): NowMs() is *ms.
class VariableWallClock final : public WallClock {
 public:
  explicit VariableWallClock(const std::uint64_t* ms) : ms_(ms) {}
  std::uint64_t NowMs() const override { return *ms_; }

 private:
  const std::uint64_t* ms_;
};

}  // namespace tally

#endif  // TALLY_CORE_WALL_CLOCK_H_
