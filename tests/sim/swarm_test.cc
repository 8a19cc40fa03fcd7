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
  auto results = RunSwarm(kFirstSeed, kSeeds, kOpsPerSeed, jobs);
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
