// A fixed set of swarm seeds: each draws its own faults (some off, others at extreme rates) and
// workload, runs the real replicas and must keep every invariant.

#include "sim/swarm.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "sim/simulation.h"

namespace tally::sim {
namespace {

// Sized for a couple of minutes on two cores in a RelWithDebInfo build.
constexpr std::uint64_t kFirstSeed = 1000;
constexpr std::uint64_t kSeeds = 400;
constexpr std::uint64_t kOpsPerSeed = 5000;

// TALLY_SWARM_SEEDS=N runs only the first N of those seeds: a sanitizer build runs ~10x slower, and
// the whole 400 would take most of an hour there (scripts/test-asan sets it; docs/ci.md).
std::uint64_t SwarmSeeds() {
  const char* env = std::getenv("TALLY_SWARM_SEEDS");
  if (env == nullptr || *env == '\0') return kSeeds;
  const std::uint64_t n = std::strtoull(env, nullptr, 10);
  return n == 0 ? kSeeds : std::min(n, kSeeds);
}

// A run as `tally-sim run --seed S --regions N --accounts A --ops 10000 --faults swarm
// [--links L] [--durability D]` prints it in its reproduce line.
struct PrintedRun {
  std::uint64_t seed;
  RegionId regions;
  std::uint32_t accounts;
  const char* links;
  const char* durability = "local";
  bool keys_per_account = false;  // --keys-per-account
};

void CheckPrintedRun(const PrintedRun& cmd) {
  SimConfig c;
  c.seed = cmd.seed;
  c.regions = cmd.regions;
  c.accounts = cmd.accounts;
  c.ops = 10000;
  c.profile = "swarm";
  c.links = cmd.links;
  c.durability = cmd.durability;
  c.keys_per_account = cmd.keys_per_account;
  REQUIRE(ApplyProfile(&c).ok());
  Simulation sim(c);
  const RunResult r = sim.Run();
  INFO(r.reproduce << "\n" << r.failure.invariant << ": " << r.failure.message);
  CHECK(r.ok);
}

TEST_CASE("Swarm seeds keep every invariant", "[sim][swarm]") {
  unsigned jobs = std::max(2u, std::thread::hardware_concurrency());
  // With every fault the swarm draws, wiped and restored disks included.
  const std::uint64_t seeds = SwarmSeeds();
  auto results = RunSwarm(kFirstSeed, seeds, kOpsPerSeed, jobs);
  REQUIRE(results.size() == seeds);
  std::uint64_t requests = 0;
  for (const SwarmSeedResult& r : results) {
    INFO("seed " << r.seed << " " << r.invariant << ": " << r.message
                 << "\nreproduce: " << r.reproduce);
    CHECK(r.ok);
    requests += r.requests;
  }
  REQUIRE(requests >= seeds * kOpsPerSeed);
}

TEST_CASE("Seeds the lost-disk swarm once failed keep every invariant", "[sim][swarm][disk]") {
  // `tally-sim swarm --seeds 2000` (10,000 ops a seed, lost disks drawn) failed these before the
  // fixes of issue 9 named in docs/simulation.md ("Limits"): ops of a lost history spliced after
  // a relayed op of the new run (1393, 1848), heartbeat promises of an ended run and a Hello
  // showing a clock below a promise just merged (599), `replicated` answers on relayed or
  // pre-resume claims (131, 220, 1932), two regions each waiting for the other's ops or snapshot
  // (1019), a relay delay stalled by a clock step (633), and oracle errors (768, 1060, 1194, 1516,
  // 1863). Each runs exactly as `tally-sim swarm --first N --seeds 1` does.
  const std::uint64_t seeds[] = {131,  220,  599,  633,  768,  1019, 1060,
                                 1194, 1393, 1516, 1848, 1863, 1932};
  for (std::uint64_t seed : seeds) {
    auto results = RunSwarm(seed, 1, 10000, 1);
    REQUIRE(results.size() == 1);
    const SwarmSeedResult& r = results.front();
    INFO("seed " << r.seed << " " << r.invariant << ": " << r.message
                 << "\nreproduce: " << r.reproduce);
    CHECK(r.ok);
  }
}

TEST_CASE("The four seeds of issue 10's gossip that stopped for good keep every invariant",
          "[sim][swarm][gossip]") {
  // Issue 10, item 6: these commands never converged on main 8c8f067 (a re-send or relay deadline
  // read from a wall clock that had stepped back; tests/sim/gossip_regression_test.cc builds each
  // shape by hand). What the swarm draws for a seed changes with the code, so these runs guard
  // little on their own; they are kept as the issue quoted them, each under a second.
  const PrintedRun runs[] = {{301124, 4, 3, "datagram"},
                             {303616, 3, 251, "stream"},
                             {304912, 2, 14, "datagram"},
                             {309727, 2, 11, "datagram"}};
  for (const PrintedRun& run : runs) CheckPrintedRun(run);
}

TEST_CASE(
    "The fresh swarm seeds of issue 10 that lost money or acknowledged ops keep every invariant",
    "[sim][swarm][disk]") {
  // Fresh seeds from 310000 failed these (docs/simulation.md, "Open findings"):
  // rights from a region's dead run spent before its fence (314095, I2), acknowledgements across
  // the same window (314107, 318475, I4), and the oracle judging a run no region remembered
  // (308228), and the oracle holding a region to a promise whose one holder had crashed before it
  // persisted it (320831), the oracle counting an unsynced op twice (323129), and a rejoining
  // region waiting for its own ops a peer held for its fence (323502). Kept as the swarm printed
  // them; each about a second.
  const PrintedRun runs[] = {
      {314095, 2, 163, "datagram", "local"}, {314107, 2, 40, "datagram", "replicated"},
      {318475, 5, 45, "datagram", "local"},  {308228, 2, 2, "stream", "replicated"},
      {320831, 2, 5, "stream", "local"},     {323129, 7, 3, "datagram", "local"},
      {323502, 3, 2, "datagram", "local"}};
  for (const PrintedRun& run : runs) CheckPrintedRun(run);
}

TEST_CASE("A dot issued again and lost again comes back with its first op from a restored disk",
          "[sim][swarm][disk]") {
  // `tally-sim run --seed 1932 --regions 3 --accounts 6 --ops 10000 --faults swarm --durability
  // replicated --keys-per-account` failed I3 on main 722b8d3: r1's ops 1254-1257 went with its
  // disk, r1 issued those seqs again, lost them again, and a restore brought back a copy holding
  // the first ops. The ledger had kept only the last op forgotten under each dot, so it could not
  // take the first ones back while r1 rightly held them (an oracle error, not a replica's).
  PrintedRun run{1932, 3, 6, "datagram", "replicated"};
  run.keys_per_account = true;
  CheckPrintedRun(run);
}

TEST_CASE("A capture of a hold lost with a disk names the account of the hold its dot names now",
          "[sim][swarm][disk]") {
  // `tally-sim swarm --seeds 2000` on main 58485b4 failed seed 825 (printed below) by I4: r1's
  // hold r1:935 on acct-00001 went with a restored disk, r1 issued seq 935 again for a hold on
  // acct-00003, and a client's capture of "r1:935" captured that one. The checker compared the op
  // with the account the client believed the hold was on: an oracle error, since a dot reused
  // after a disk loss under durability local names whatever op its origin issued again (a hold id
  // is its dot; stale_hold_resolutions counts these).
  PrintedRun run{825, 7, 15, "stream"};
  run.keys_per_account = true;
  CheckPrintedRun(run);
}

TEST_CASE("Accounts opened at two regions at once with different configs keep every invariant",
          "[sim][rival]") {
  // Issue 11, item 9: a quarter of the swarm's seeds open some accounts twice, but the swarm's
  // seeds are drawn anew; these runs always do. Every replica must keep the canonically first
  // open's config (the oracle's check of every view), and no region may spend an overdraft line
  // before it knows which open won (I2 against the winning config's line). Mutants that let the
  // last open win or the line be spent early fail here.
  std::uint64_t rival_accepted = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.rival_opens = true;
    REQUIRE(ApplyProfile(&c).ok());
    Simulation sim(c);
    const RunResult r = sim.Run();
    INFO(r.reproduce << "\n" << r.failure.invariant << ": " << r.failure.message);
    CHECK(r.ok);
    rival_accepted += r.summary.rival_opens_accepted;
  }
  // The shape happened: most rival opens were accepted, so two open ops raced.
  CHECK(rival_accepted >= 40);
}

}  // namespace
}  // namespace tally::sim
