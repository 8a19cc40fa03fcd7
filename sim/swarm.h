// Swarm runs: many seeds, each with fault and workload parameters drawn from the seed itself, run
// on worker threads. Each run is single-threaded and shares nothing with the others, so the result
// of a seed does not depend on how many threads ran or in which order.

#ifndef TALLY_SIM_SWARM_H_
#define TALLY_SIM_SWARM_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/config.h"

namespace tally::sim {

struct SwarmSeedResult {
  std::uint64_t seed = 0;
  bool ok = true;
  std::string invariant;
  std::string message;
  std::string reproduce;
  std::uint64_t trace = 0;
  std::uint64_t requests = 0;
  // Holds (RunSummary): durable ones and what became of them, and resolutions that lost to
  // another resolution of the same hold.
  std::uint64_t holds = 0, holds_voided = 0, holds_captured = 0, holds_released = 0,
                holds_expired = 0, resolution_conflicts = 0;
  // Budget debits (RunSummary): durable, voided, paid by an ancestor, through a cap.
  std::uint64_t budget_debits = 0, budget_voided = 0, budget_fallbacks = 0, budget_caps = 0;
};

// The config a swarm runs for `seed`: shape and faults drawn from the seed, profile "swarm".
SimConfig SwarmConfig(std::uint64_t seed, std::uint64_t ops);

// Runs seeds first .. first+count-1 on `jobs` threads; results in seed order. `on_done` (if set) is
// called under a lock after each seed, in completion order.
// `lost_disks` false: no wipes or restores (SimConfig::lost_disks).
std::vector<SwarmSeedResult> RunSwarm(
    std::uint64_t first, std::uint64_t count, std::uint64_t ops, unsigned jobs,
    const std::function<void(const SwarmSeedResult&)>& on_done = {}, bool lost_disks = true);

}  // namespace tally::sim

#endif  // TALLY_SIM_SWARM_H_
