#include "sim/availability.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "sim/config.h"
#include "sim/random.h"
#include "sim/simulation.h"

namespace tally::sim {
namespace {

constexpr Amount kFunds = 3000;
constexpr Amount kLinePerRegion = 100;
constexpr std::uint64_t kDemandEveryMs = 20;
constexpr Amount kMaxDemandDebit = 20;
// After the cut: past the peer timeout, every rights wait and finality wait, so what each region
// holds is all it will hold until the heal.
constexpr std::uint64_t kSettleAfterCutMs = 3000;

SimConfig TrialConfig(const AvailabilityParams& p, std::uint64_t seed) {
  SimConfig c = ScriptedConfig(p.regions, p.delay_ms, "stream");
  c.seed = seed;
  return c;
}

// Opens `id` at r0 with `line` per region, funds it with kFunds at r0 and runs until every region
// holds both and the open is final (lines usable everywhere).
void OpenFunded(Simulation* sim, const AvailabilityParams& p, const std::string& id, Amount line) {
  AccountConfig cfg;
  cfg.id = id;
  cfg.currency = "EUR";
  cfg.overdraft_limit = line * p.regions;
  sim->Submit(0, OpenAccount{cfg});
  sim->RunUntil(sim->now() + 100);
  sim->Submit(0, Credit{id, kFunds, id + "-funds"});
  sim->RunUntil(sim->now() + 2000 + 10 * std::uint64_t{p.delay_ms});
}

AvailabilityTrial RunTrial(const AvailabilityParams& p, std::uint32_t index) {
  const std::uint64_t seed = DeriveSeed(p.seed, "availability", index);
  Rng rng(seed);
  AvailabilityTrial t;
  t.cut_ms = static_cast<std::uint64_t>(rng.Range(0, static_cast<std::int64_t>(p.max_cut_ms)));
  Simulation sim(TrialConfig(p, seed));
  sim.Start();
  sim.RunUntil(100);
  OpenFunded(&sim, p, "acct", kLinePerRegion);

  // Demand away from r0, round robin over the other regions, until the cut.
  const std::uint64_t start = sim.now();
  for (std::uint64_t k = 0; start + k * kDemandEveryMs < start + t.cut_ms; ++k) {
    sim.RunUntil(start + k * kDemandEveryMs);
    const RegionId at = static_cast<RegionId>(1 + k % (p.regions - 1));
    sim.Submit(at, Debit{"acct", rng.Range(1, kMaxDemandDebit), "d" + std::to_string(k)});
  }
  sim.RunUntil(start + t.cut_ms);
  const Partition apart = EveryLinkCut(p.regions);
  sim.Cut(apart);
  sim.RunUntil(sim.now() + kSettleAfterCutMs);

  for (RegionId r = 0; r < p.regions; ++r) {
    AccountView v;
    if (!sim.replica(r) || !sim.replica(r)->GetAccount("acct", &v).ok()) continue;
    const RegionView& mine = v.regions[r];
    t.spendable += std::max<Amount>(0, mine.rights - mine.tentative_credit + mine.overdraft_line);
  }

  sim.Uncut(apart);
  RunResult res = sim.Finish();
  t.ok = res.ok;
  if (!res.ok) t.failure = res.failure.invariant + ": " + res.failure.message;
  AccountView healed;
  if (sim.replica(0) && sim.replica(0)->GetAccount("acct", &healed).ok())
    t.total = healed.balance + healed.config.overdraft_limit;
  return t;
}

void ProbeFirstDebit(const AvailabilityParams& p, AvailabilityFigures* f) {
  const std::uint64_t seed = DeriveSeed(p.seed, "first-debit");
  Simulation sim(TrialConfig(p, seed));
  sim.Start();
  sim.RunUntil(100);
  OpenFunded(&sim, p, "probe", 0);
  const std::uint64_t asked = sim.now();
  const std::uint64_t h = sim.Submit(1, Debit{"probe", kFunds / 100, "first"});
  while (!sim.Result(h) && sim.now() < asked + 60'000) sim.RunUntil(sim.now() + 1);
  const CommandResult* r = sim.Result(h);
  f->first_debit_ms = sim.now() - asked;
  f->first_debit_ok = r && r->status.ok();
  f->first_debit_status = r ? r->status.ToString() : "no answer";
}

}  // namespace

AvailabilityFigures MeasureAvailability(const AvailabilityParams& params) {
  AvailabilityFigures f;
  f.params = params;
  double sum = 0;
  f.min_share = 1;
  for (std::uint32_t i = 0; i < params.trials; ++i) {
    AvailabilityTrial t = RunTrial(params, i);
    const double share =
        t.total > 0 ? static_cast<double>(t.spendable) / static_cast<double>(t.total) : 0;
    f.min_share = std::min(f.min_share, share);
    sum += share;
    f.ok = f.ok && t.ok;
    f.trials.push_back(std::move(t));
  }
  f.mean_share = params.trials > 0 ? sum / params.trials : 0;
  ProbeFirstDebit(params, &f);
  return f;
}

std::string FormatAvailability(const AvailabilityFigures& f) {
  char line[512];
  std::snprintf(line, sizeof line,
                "availability: %u regions, %u ms one-way, %u cut moments in [0, %" PRIu64
                "] ms: spendable share min %.3f mean %.3f%s\n"
                "first debit at a region without rights: %s after %" PRIu64 " ms%s%s\n",
                static_cast<unsigned>(f.params.regions), f.params.delay_ms, f.params.trials,
                f.params.max_cut_ms, f.min_share, f.mean_share, f.ok ? "" : " (A CHECKER FAILED)",
                f.first_debit_ok ? "accepted" : "refused", f.first_debit_ms,
                f.first_debit_ok ? "" : ": ", f.first_debit_ok ? "" : f.first_debit_status.c_str());
  std::string out = line;
  for (const AvailabilityTrial& t : f.trials) {
    if (t.ok) continue;
    out += "  cut at " + std::to_string(t.cut_ms) + " ms: " + t.failure + "\n";
  }
  return out;
}

}  // namespace tally::sim
