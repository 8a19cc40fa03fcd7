// A fixed set of swarm seeds: each draws its own faults (some off, others at extreme rates) and
// workload, runs the real replicas and must keep every invariant.

#include "sim/swarm.h"

#include <catch2/catch.hpp>
#include <thread>

namespace tally::sim {
namespace {

// Sized for a couple of minutes on two cores in a RelWithDebInfo build.
constexpr std::uint64_t kFirstSeed = 1000;
constexpr std::uint64_t kSeeds = 400;
constexpr std::uint64_t kOpsPerSeed = 5000;

TEST_CASE("Swarm seeds keep every invariant", "[sim][swarm]") {
  unsigned jobs = std::max(2u, std::thread::hardware_concurrency());
  // Without wiped or restored disks until the open finding "ops of a lost history arriving after
  // the rejoin" (docs/simulation.md) is fixed: with them, seeds 1019, 1060 and 1367 splice two
  // histories under one dot and 1186 and 1266 answer `replicated` for an op whose other copy went
  // with a disk. tests/sim/disk_test.cc covers the disk faults by hand; `tally-sim swarm` draws them.
  auto results = RunSwarm(kFirstSeed, kSeeds, kOpsPerSeed, jobs, {}, /*lost_disks=*/false);
  REQUIRE(results.size() == kSeeds);
  std::uint64_t requests = 0;
  for (const SwarmSeedResult& r : results) {
    INFO("seed " << r.seed << " " << r.invariant << ": " << r.message
                 << "\nreproduce: " << r.reproduce);
    CHECK(r.ok);
    requests += r.requests;
  }
  REQUIRE(requests >= kSeeds * kOpsPerSeed);
}

}  // namespace
}  // namespace tally::sim
