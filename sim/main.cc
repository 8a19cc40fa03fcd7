// tally-sim: the deterministic simulator's command line.
//
//   tally-sim run --seed S [--regions N] [--accounts N] [--ops N] [--faults PROFILE]
//                 [--final-topology random|complete|partial] [--report DIR] [--plant-bug NAME]
//   tally-sim swarm --seeds N [--first S] [--jobs J] [--ops N]
//   tally-sim availability [--seed S] [--regions N] [--trials N] [--delay-ms D,...]
//   tally-sim bugs
//
// stdout is deterministic (the summary, ending with trace=<hex>); wall-clock figures go to stderr.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <thread>
#include <vector>

#include "sim/availability.h"
#include "sim/config.h"
#include "sim/simulation.h"
#include "sim/swarm.h"
#include "version/version.h"

namespace {

using tally::sim::SimConfig;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int RunOne(SimConfig config, const std::string& topology) {
  tally::Status s = tally::sim::ParseFinalTopology(topology, &config.final_topology);
  if (s.ok()) s = tally::sim::ApplyProfile(&config);
  tally::PlantedBugs bugs;
  if (s.ok()) s = tally::sim::SetPlantedBug(config.plant_bug, &bugs);
  if (!s.ok()) {
    std::fprintf(stderr, "tally-sim: %s\n", s.ToString().c_str());
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  // Deliberately never freed: the process ends right after, and tearing down millions of ops
  // would only cost time (the swarm and the tests do free theirs).
  auto* sim = new tally::sim::Simulation(config);
  tally::sim::RunResult r = sim->Run();
  double wall = Seconds(start);
  std::fputs(tally::sim::FormatSummary(config, r).c_str(), stdout);
  std::fflush(stdout);
  std::fprintf(stderr,
               "tally-sim: %.3f s wall, %.1f s virtual (%.0f× real time), %.0f client ops/s, %.0f "
               "events/s%s\n",
               wall, r.summary.end_ms / 1000.0, wall > 0 ? r.summary.end_ms / 1000.0 / wall : 0.0,
               wall > 0 ? r.summary.requests / wall : 0.0, wall > 0 ? r.summary.events / wall : 0.0,
               config.report_dir.empty()
                   ? ""
                   : ("; report in " + config.report_dir + "/report.html").c_str());
  return r.ok ? 0 : 1;
}

int RunSwarmCommand(std::uint64_t seeds, std::uint64_t first, unsigned jobs, std::uint64_t ops,
                    bool lost_disks) {
  if (seeds == 0) {
    std::fprintf(stderr, "tally-sim: --seeds must be at least 1\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  std::uint64_t done = 0, failed = 0;
  auto results = tally::sim::RunSwarm(
      first, seeds, ops, jobs,
      [&](const tally::sim::SwarmSeedResult& r) {
        ++done;
        if (!r.ok) {
          ++failed;
          std::fprintf(stderr, "seed %" PRIu64 " FAILED %s: %s\n  reproduce: %s\n", r.seed,
                       r.invariant.c_str(), r.message.c_str(), r.reproduce.c_str());
        }
        if (done % 50 == 0 || done == seeds)
          std::fprintf(stderr,
                       "tally-sim swarm: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64
                       " failed, %.1f s\n",
                       done, seeds, failed, Seconds(start));
      },
      lost_disks);
  double wall = Seconds(start);
  std::uint64_t bad = 0;
  tally::sim::SwarmSeedResult holds;  // totals over the seeds (holds, budgets)
  std::uint64_t seeds_with_holds = 0, seeds_with_budgets = 0;
  for (const auto& r : results) {
    holds.holds += r.holds;
    holds.holds_voided += r.holds_voided;
    holds.holds_captured += r.holds_captured;
    holds.holds_released += r.holds_released;
    holds.holds_expired += r.holds_expired;
    holds.resolution_conflicts += r.resolution_conflicts;
    if (r.holds > 0) ++seeds_with_holds;
    holds.budget_debits += r.budget_debits;
    holds.budget_voided += r.budget_voided;
    holds.budget_fallbacks += r.budget_fallbacks;
    holds.budget_caps += r.budget_caps;
    if (r.budget_debits > 0) ++seeds_with_budgets;
    if (r.ok) continue;
    ++bad;
    std::printf("seed %" PRIu64 " FAILED %s: %s\n  reproduce: %s\n", r.seed, r.invariant.c_str(),
                r.message.c_str(), r.reproduce.c_str());
  }
  std::printf("swarm: %" PRIu64 " seeds from %" PRIu64 ", %" PRIu64 " ops each: %" PRIu64
              " passed, %" PRIu64 " failed\n",
              seeds, first, ops, seeds - bad, bad);
  std::printf("swarm holds: %" PRIu64 " durable in %" PRIu64 " seeds (voided %" PRIu64
              "): captured %" PRIu64 ", released %" PRIu64 ", expired %" PRIu64
              ", resolution conflicts %" PRIu64 "\n",
              holds.holds, seeds_with_holds, holds.holds_voided, holds.holds_captured,
              holds.holds_released, holds.holds_expired, holds.resolution_conflicts);
  std::printf("swarm budgets: %" PRIu64 " durable budget debits in %" PRIu64
              " seeds (voided %" PRIu64 "): paid by an ancestor %" PRIu64 ", through a cap %" PRIu64
              "\n",
              holds.budget_debits, seeds_with_budgets, holds.budget_voided, holds.budget_fallbacks,
              holds.budget_caps);
  std::fprintf(stderr, "tally-sim swarm: %.1f s wall, %u threads, %.1f seeds/minute\n", wall, jobs,
               wall > 0 ? seeds * 60.0 / wall : 0.0);
  return bad == 0 ? 0 : 1;
}

int RunAvailabilityCommand(tally::sim::AvailabilityParams params,
                           const std::vector<std::uint32_t>& delays) {
  bool ok = true;
  for (std::uint32_t d : delays) {
    params.delay_ms = d;
    const tally::sim::AvailabilityFigures f = tally::sim::MeasureAvailability(params);
    std::fputs(tally::sim::FormatAvailability(f).c_str(), stdout);
    std::fflush(stdout);
    ok = ok && f.ok;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally-sim: deterministic simulation of tally regions under partitions, clock skew and "
      "crashes"};
  app.set_version_flag("--version", tally::VersionLine("tally-sim"));
  app.require_subcommand(1);

  SimConfig config;
  std::string topology = "random";
  CLI::App* run = app.add_subcommand("run", "one simulation run; prints a summary and trace=<hex>");
  run->add_option("--seed", config.seed, "master seed (every random choice derives from it)")
      ->required();
  run->add_option("--regions", config.regions, "regions (2..16)")->check(CLI::Range(2, 16));
  run->add_option("--accounts", config.accounts, "accounts opened by the clients")
      ->check(CLI::Range(1, 1000000));
  run->add_option("--ops", config.ops, "client requests (retries not counted)");
  run->add_option("--clients", config.clients, "clients per region (default: the profile's)");
  run->add_option("--tick", config.tick_ms,
                  "ms between Replica::Tick calls, as tallyd's tick_interval_ms");
  run->add_option("--faults", config.profile,
                  "fault profile: none, calm, default, heavy, disks, swarm");
  run->add_option("--durability", config.durability,
                  "local, or replicated: every client write is answered once another region holds "
                  "it durably");
  run->add_flag(
      "--no-lost-disks", [&](std::int64_t) { config.lost_disks = false; },
      "no disk is wiped or restored, whatever the fault profile draws");
  run->add_flag(
      "--keys-per-account", [&](std::int64_t) { config.keys_per_account = true; },
      "number each client's idempotency keys per account: one key on many accounts");
  run->add_flag(
      "--rival-opens", [&](std::int64_t) { config.rival_opens = true; },
      "open some accounts twice, at two regions, with different configs");
  run->add_option("--links", config.links,
                  "datagram (reordered, duplicated: the core's contract) or stream (TCP-like)");
  run->add_option("--final-topology", topology,
                  "network after the final heal: random, complete, partial");
  run->add_option("--report", config.report_dir,
                  "write report.json and report.html into this directory");
  run->add_option("--report-account", config.report_account, "account to chart in the report");
  run->add_option("--retention-ms", config.idempotency_retention_ms,
                  "idempotency key retention of every region (short, to exercise the window)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{366} * 24 * 3600 * 1000));
  run->add_option("--plant-bug", config.plant_bug,
                  "switch on a deliberate defect (see `tally-sim bugs`)");

  std::uint64_t seeds = 100, first = 1, swarm_ops = 10000;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  CLI::App* swarm = app.add_subcommand("swarm", "many seeds with randomly drawn fault parameters");
  swarm->add_option("--seeds", seeds, "how many seeds");
  swarm->add_option("--first", first, "first seed");
  swarm->add_option("--jobs", jobs, "worker threads (default: all cores)");
  swarm->add_option("--ops", swarm_ops, "client requests per seed");
  bool swarm_lost_disks = true;
  swarm->add_flag(
      "--no-lost-disks", [&](std::int64_t) { swarm_lost_disks = false; },
      "no disk is wiped or restored (as the CI's fixed seeds)");

  tally::sim::AvailabilityParams avail;
  std::vector<std::uint32_t> avail_delays{1, 30, 50, 100, 150};
  CLI::App* availability = app.add_subcommand(
      "availability",
      "spendable share of balance plus lines during a full split, over cut moments");
  availability->add_option("--seed", avail.seed, "master seed");
  availability->add_option("--regions", avail.regions, "regions (2..16)")->check(CLI::Range(2, 16));
  availability->add_option("--trials", avail.trials, "cut moments per delay");
  availability->add_option("--max-cut-ms", avail.max_cut_ms, "latest cut after the demand starts");
  availability->add_option("--delay-ms", avail_delays, "one-way link delays, one run each")
      ->delimiter(',');

  CLI::App* bugs = app.add_subcommand("bugs", "list the planted bugs --plant-bug can switch on");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*run) return RunOne(config, topology);
  if (*swarm) return RunSwarmCommand(seeds, first, jobs, swarm_ops, swarm_lost_disks);
  if (*availability) return RunAvailabilityCommand(avail, avail_delays);
  if (*bugs) {
    for (const auto& b : tally::sim::KnownBugs())
      std::printf("%-24s %s (caught by: %s)\n", b.name.c_str(), b.effect.c_str(),
                  b.caught_by.c_str());
    return 0;
  }
  return 0;
}
