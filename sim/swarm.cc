#include "sim/swarm.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "sim/simulation.h"

namespace tally::sim {

SimConfig SwarmConfig(std::uint64_t seed, std::uint64_t ops) {
  SimConfig c;
  c.seed = seed;
  c.ops = ops;
  c.profile = "swarm";
  c.links = "";       // drawn from the seed
  c.durability = "";  // drawn from the seed
  DrawSwarmShape(seed, &c.regions, &c.accounts, &c.keys_per_account, &c.rival_opens);
  return c;
}

std::vector<SwarmSeedResult> RunSwarm(std::uint64_t first, std::uint64_t count, std::uint64_t ops,
                                      unsigned jobs,
                                      const std::function<void(const SwarmSeedResult&)>& on_done,
                                      bool lost_disks) {
  std::vector<SwarmSeedResult> results(count);
  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  auto worker = [&] {
    for (;;) {
      const std::uint64_t i = next.fetch_add(1);
      if (i >= count) return;
      SimConfig c = SwarmConfig(first + i, ops);
      c.lost_disks = lost_disks;
      SwarmSeedResult& out = results[i];
      out.seed = c.seed;
      Status s = ApplyProfile(&c);
      if (!s.ok()) {
        out.ok = false;
        out.invariant = "config";
        out.message = s.ToString();
      } else {
        Simulation sim(c);
        RunResult r = sim.Run();
        out.ok = r.ok;
        out.invariant = r.failure.invariant;
        out.message = r.failure.message;
        out.reproduce = r.reproduce;
        out.trace = r.trace;
        out.requests = r.summary.requests;
        out.holds = r.summary.durable_holds;
        out.holds_voided = r.summary.holds_voided;
        out.holds_captured = r.summary.holds_captured;
        out.holds_released = r.summary.holds_released;
        out.holds_expired = r.summary.holds_expired;
        out.resolution_conflicts = r.summary.resolution_conflicts;
        out.budget_debits = r.summary.budget_debits;
        out.budget_voided = r.summary.budget_voided;
        out.budget_fallbacks = r.summary.budget_fallbacks;
        out.budget_caps = r.summary.budget_caps;
      }
      if (on_done) {
        std::lock_guard<std::mutex> lock(mu);
        on_done(out);
      }
    }
  };
  jobs = std::max(
      1u, std::min<unsigned>(jobs, static_cast<unsigned>(std::max<std::uint64_t>(count, 1))));
  std::vector<std::thread> threads;
  for (unsigned j = 0; j < jobs; ++j) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace tally::sim
