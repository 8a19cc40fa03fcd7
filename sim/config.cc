#include "sim/config.h"

#include <algorithm>
#include <cassert>

#include "sim/random.h"

namespace tally::sim {
namespace {

// Partitions, crashes and clock steps come at rates per virtual minute; a default run lasts tens
// of virtual seconds, so these rates give each run several of each.
FaultParams DefaultFaults() {
  FaultParams f;
  f.link = LinkParams{1, 25, 0.01, 400, 0.01, 0.01, 0.05, 4096};
  f.partitions_per_min = 8;
  f.offset_max_ms = 2000;
  f.drift_max_ppm = 200;
  f.steps_per_min = 2;
  f.crashes_per_min = 4;
  f.sync_crashes_per_min = 3;
  f.amnesia_per_min = 0.7;
  f.lying_hellos_per_min = 1;
  f.fsync_min_ms = 1;
  f.fsync_max_ms = 5;
  f.fsync_slow_p = 0.01;
  f.fsync_slow_ms = 120;
  f.reply_loss = 0.02;
  f.cutoff_reply_loss = 0.25;
  f.final_partial_p = 0.35;
  return f;
}

FaultParams Scaled(FaultParams f, double k) {
  f.link.loss = std::min(0.5, f.link.loss * k);
  f.link.duplicate = std::min(0.5, f.link.duplicate * k);
  f.link.reorder = std::min(0.9, f.link.reorder * k);
  f.partitions_per_min *= k;
  f.steps_per_min *= k;
  f.crashes_per_min *= k;
  f.sync_crashes_per_min *= k;
  f.amnesia_per_min *= k;
  f.lying_hellos_per_min *= k;
  f.wipes_per_min *= k;
  f.disk_copies_per_min *= k;
  f.restores_per_min *= k;
  f.reply_loss = std::min(0.5, f.reply_loss * k);
  f.cutoff_reply_loss = std::min(0.5, f.cutoff_reply_loss * k);
  return f;
}

// Swarm testing (Groce et al.): per seed, each fault is on or off and, when on, runs at a rate
// drawn over orders of magnitude, so some runs are dominated by one fault and others by another.
void DrawSwarm(std::uint64_t seed, FaultParams* f, WorkloadParams* w) {
  Rng rng(DeriveSeed(seed, "swarm-params"));
  auto on = [&](double p) { return rng.Chance(p); };
  LinkParams& l = f->link;
  l.delay_min_ms = static_cast<std::uint32_t>(rng.Range(0, 5));
  l.delay_max_ms = l.delay_min_ms + static_cast<std::uint32_t>(rng.LogUniform(1, 300));
  l.tail_p = on(0.5) ? rng.LogUniform(0.001, 0.1) : 0;
  l.tail_ms = static_cast<std::uint32_t>(rng.LogUniform(50, 3000));
  l.loss = on(0.5) ? rng.LogUniform(0.001, 0.3) : 0;
  l.duplicate = on(0.5) ? rng.LogUniform(0.001, 0.2) : 0;
  l.reorder = on(0.5) ? rng.LogUniform(0.01, 0.6) : 0;
  l.capacity = on(0.3) ? static_cast<std::uint32_t>(rng.LogUniform(8, 512)) : 4096;

  f->partitions_per_min = on(0.65) ? rng.LogUniform(0.5, 40) : 0;
  f->partition_min_ms = static_cast<std::uint32_t>(rng.LogUniform(50, 2000));
  f->partition_max_ms =
      f->partition_min_ms + static_cast<std::uint32_t>(rng.LogUniform(100, 20000));
  f->symmetric = on(0.7);
  f->asymmetric = on(0.7);
  f->partial = on(0.7);
  f->isolate = on(0.7);
  f->split = on(0.7);
  if (!(f->symmetric || f->asymmetric || f->partial || f->isolate || f->split)) f->isolate = true;

  f->offset_max_ms = on(0.5) ? static_cast<std::int64_t>(rng.LogUniform(1, 600'000)) : 0;
  f->drift_max_ppm = on(0.5) ? static_cast<std::int64_t>(rng.LogUniform(1, 5000)) : 0;
  f->steps_per_min = on(0.4) ? rng.LogUniform(0.2, 10) : 0;
  f->step_min_ms = static_cast<std::int64_t>(rng.LogUniform(1000, 600'000));
  f->step_max_ms = f->step_min_ms + static_cast<std::int64_t>(rng.LogUniform(1000, 3 * 3'600'000));

  f->crashes_per_min = on(0.6) ? rng.LogUniform(0.2, 20) : 0;
  f->downtime_min_ms = static_cast<std::uint32_t>(rng.LogUniform(5, 1000));
  f->downtime_max_ms = f->downtime_min_ms + static_cast<std::uint32_t>(rng.LogUniform(10, 10000));
  f->sync_crashes_per_min = on(0.5) ? rng.LogUniform(0.2, 20) : 0;
  f->amnesia_per_min = on(0.3) ? rng.LogUniform(0.2, 5) : 0;

  f->fsync_min_ms = static_cast<std::uint32_t>(rng.Range(0, 5));
  f->fsync_max_ms = f->fsync_min_ms + static_cast<std::uint32_t>(rng.LogUniform(1, 50));
  f->fsync_slow_p = on(0.5) ? rng.LogUniform(0.001, 0.1) : 0;
  f->fsync_slow_ms = static_cast<std::uint32_t>(rng.LogUniform(20, 1000));
  f->reply_loss = on(0.5) ? rng.LogUniform(0.001, 0.2) : 0;
  f->final_partial_p = 0.35;

  w->clients_per_region = static_cast<std::uint32_t>(rng.Range(1, 8));
  w->think_min_ms = static_cast<std::uint32_t>(rng.Range(0, 20));
  w->think_max_ms = w->think_min_ms + static_cast<std::uint32_t>(rng.LogUniform(5, 500));
  w->timeout_ms = static_cast<std::uint32_t>(rng.LogUniform(200, 3000));
  w->retry_elsewhere_p = rng.Unit();
  w->replay_probe_p = on(0.7) ? rng.LogUniform(0.001, 0.1) : 0;
  w->credit_weight = rng.LogUniform(0.1, 1);
  w->debit_weight = rng.LogUniform(0.1, 1.5);
  w->rights_weight = on(0.6) ? rng.LogUniform(0.01, 0.3) : 0;
  w->hot_p = rng.Unit() * 0.95;
  w->hot_fraction = rng.LogUniform(0.01, 0.5);
  w->credit_max = static_cast<Amount>(rng.LogUniform(10, 100000));
  w->debit_max = static_cast<Amount>(rng.LogUniform(10, 100000));
  w->rights_max = static_cast<Amount>(rng.LogUniform(10, 10000));
  w->overdraft_p = rng.Unit();
  w->overdraft_max = static_cast<Amount>(rng.LogUniform(10, 200000));
  // Drawn last, so that every parameter above keeps the value it had for each seed before these.
  f->cutoff_reply_loss = on(0.6) ? rng.LogUniform(0.01, 0.5) : 0;
  w->spend_retried_credit_p = on(0.7) ? rng.LogUniform(0.05, 1) : 0;
  f->lying_hellos_per_min = on(0.4) ? rng.LogUniform(0.2, 10) : 0;
  f->wipes_per_min = on(0.25) ? rng.LogUniform(0.1, 5) : 0;
  f->disk_copies_per_min = rng.LogUniform(1, 60);
  f->restores_per_min = on(0.25) ? rng.LogUniform(0.1, 5) : 0;
  // Transfers between accounts, after everything above: off in a fifth of the seeds, else from
  // a trickle to about a third of the requests.
  w->transfer_weight = on(0.8) ? rng.LogUniform(0.02, 0.6) : 0;
  // Holds, after everything above (a seed drawn without them draws the requests it drew before):
  // off in a fifth of the seeds, else from a trickle to a third of the requests, with expiries
  // from a fraction of a second to the retention and a mix of resolutions of their own.
  w->hold_weight = on(0.8) ? rng.LogUniform(0.02, 0.6) : 0;
  w->hold_expiry_min_ms = static_cast<std::uint32_t>(rng.LogUniform(20, 2000));
  w->hold_expiry_max_ms =
      w->hold_expiry_min_ms + static_cast<std::uint32_t>(rng.LogUniform(10, 5000));
  w->hold_capture_p = rng.Unit() * 0.7;
  w->hold_release_p = rng.Unit() * (1 - w->hold_capture_p);
  w->hold_dual_p = on(0.7) ? rng.Unit() * (1 - w->hold_capture_p - w->hold_release_p) : 0;
  w->hold_capture_all_p = rng.Unit();
  w->hold_capture_retry_elsewhere_p = on(0.5) ? rng.LogUniform(0.01, 0.5) : 0;
  // Budgets, after everything above: no hierarchy in a quarter of the seeds, else from a few
  // children to most accounts, caps and fallbacks in any mix.
  w->budget_p = on(0.75) ? rng.Unit() * 0.9 : 0;
  w->cap_p = rng.Unit();
  w->fallback_p = rng.Unit();
}

// The default faults plus lost disks: a default run (2000 requests, about 20 s of virtual time)
// gets a wipe or a restore in most seeds, and several copies to restore from.
FaultParams DiskFaults() {
  FaultParams f = DefaultFaults();
  f.wipes_per_min = 2;
  f.disk_copies_per_min = 20;
  f.restores_per_min = 2;
  return f;
}

}  // namespace

std::vector<std::string> ProfileNames() {
  return {"none", "calm", "default", "heavy", "disks", "swarm"};
}

Status ApplyProfile(SimConfig* c) {
  FaultParams f;
  WorkloadParams w;
  if (c->profile == "none") {
    f.link = LinkParams{1, 20, 0, 0, 0, 0, 0, 4096};
  } else if (c->profile == "calm") {
    f = Scaled(DefaultFaults(), 0.2);
    f.offset_max_ms = 50;
    f.drift_max_ppm = 50;
    f.steps_per_min = 0;
    f.amnesia_per_min = 0;
  } else if (c->profile == "default") {
    f = DefaultFaults();
  } else if (c->profile == "heavy") {
    f = Scaled(DefaultFaults(), 4);
    f.offset_max_ms = 30'000;
    f.drift_max_ppm = 2000;
  } else if (c->profile == "disks") {
    f = DiskFaults();
  } else if (c->profile == "swarm") {
    DrawSwarm(c->seed, &f, &w);
  } else {
    return Status::InvalidArgument("unknown fault profile '" + c->profile +
                                   "' (none, calm, default, heavy, disks, swarm)");
  }
  if (c->regions < 2 || c->regions > kMaxRegions)
    return Status::InvalidArgument("regions must be 2.." + std::to_string(kMaxRegions));
  if (c->accounts < 1 || c->accounts > 1'000'000)
    return Status::InvalidArgument("accounts must be 1..1000000");
  if (c->tick_ms < 1 || c->tick_ms > 1000)
    return Status::InvalidArgument("tick must be 1..1000 ms");
  if (c->clients > 10'000)
    return Status::InvalidArgument("clients must be at most 10000 per region");
  if (c->links.empty()) {
    // Swarm: half the seeds run TCP-like links, half the weak datagram contract.
    Rng rng(DeriveSeed(c->seed, "swarm-links"));
    c->links = rng.Chance(0.5) ? "stream" : "datagram";
  }
  if (c->durability.empty()) {
    // Swarm: some seeds ask every write for durability "replicated".
    Rng rng(DeriveSeed(c->seed, "swarm-durability"));
    c->durability = rng.Chance(0.3) ? "replicated" : "local";
  }
  if (c->durability != "local" && c->durability != "replicated")
    return Status::InvalidArgument("durability must be local or replicated, not '" + c->durability +
                                   "'");
  if (c->links == "stream") {
    f.link.stream = true;
  } else if (c->links != "datagram") {
    return Status::InvalidArgument("links must be datagram or stream, not '" + c->links + "'");
  }
  if (!c->lost_disks) {
    f.wipes_per_min = 0;
    f.restores_per_min = 0;
  }
  c->faults = f;
  c->workload = w;
  if (c->clients > 0) c->workload.clients_per_region = c->clients;
  return Status::OK();
}

const std::vector<BugInfo>& KnownBugs() {
  static const std::vector<BugInfo> bugs = {
      {"skip_rights_check", "accept any debit, whatever the rights and overdraft line",
       "I2 floor / rights check"},
      {"order_forks_by_arrival", "reconcile in arrival order instead of canonical order",
       "I7 agreement / I1 convergence / I2 floor"},
      {"forget_hlc_high_water", "on recovery, restart the HLC from the wall clock only",
       "HLC monotonic"},
      {"drop_relayed_ops", "gossip only our own ops, never relay other origins'",
       "I1 convergence (partial heal)"},
      {"ack_before_sync", "let completions out before their ops are synced", "I4 durability"},
      {"spend_tentative_credit",
       "spend credit not yet final, which a duplicate of its key elsewhere may still void",
       "I2 floor (a clawback takes the region below its line)"},
      {"skip_rejoin", "serve writes at once after a restart, whatever the disk lost",
       "one op per dot (a wiped or restored region numbers its ops again; --faults disks)"},
      {"expiry_decides_voids",
       "void a use of a key while an earlier use is still in the index, whatever its age",
       "I7 agreement / I1 convergence (a key reused after the window)"},
      {"wall_clock_deadlines",
       "time a waiting debit's deadline on the wall clock, not the monotonic",
       "answer bound (a clock stepped back while a debit waits for rights)"},
      {"misreport_overdrawn", "derive fee events that say the balance went 1 further below zero",
       "I7 agreement (the event list against the oracle's)"},
      {"book_fee_elsewhere",
       "book each overdraft fee to the next region instead of the debit's own",
       "I7 agreement (per-region fees against the oracle's)"},
      {"spend_buffered_transfer",
       "spend rights handed to this region that it holds beyond a gap, not yet applied",
       "I2 floor (the answer against the region's rights read before the debit)"},
      {"void_transfer_payer_only",
       "void only the payer's side of a transfer voided as a duplicate of its key (the payee "
       "keeps the money: money created)",
       "I3 conservation (the two sides of a transfer disagree) / I2 floor"},
      {"release_reserve_early",
       "end a hold's reserve with any resolution seen, final or not (a release seen before an "
       "earlier capture lets the hold's region spend what the capture then takes)",
       "I2 floor (the region's reserve below what its holds may still take)"},
      {"cap_checks_named_only",
       "decide a debit of a cap account on that account's rights alone, not on those of the "
       "parents it debits too (a parent's region spends past its floor)",
       "I2 floor (the parent's rights, as the ledger books each payer)"},
      {"statement_without_fee",
       "leave the overdraft fee out of the balance after a statement line that charged one",
       "I3 conservation (a stored line's balance against the line before it plus its change, "
       "less its fee)"},
  };
  return bugs;
}

SimConfig ScriptedConfig(RegionId regions, std::uint32_t delay_ms, const std::string& links) {
  SimConfig c;
  c.regions = regions;
  c.profile = "none";
  c.links = links;
  c.final_topology = FinalTopology::kComplete;
  Status s = ApplyProfile(&c);
  assert(s.ok());
  (void)s;
  c.faults.link.delay_min_ms = c.faults.link.delay_max_ms = delay_ms;
  c.faults.fsync_min_ms = c.faults.fsync_max_ms = 1;
  return c;
}

Status SetPlantedBug(const std::string& name, PlantedBugs* b) {
  if (name.empty()) return Status::OK();
  if (name == "skip_rights_check")
    b->skip_rights_check = true;
  else if (name == "order_forks_by_arrival")
    b->order_forks_by_arrival = true;
  else if (name == "forget_hlc_high_water")
    b->forget_hlc_high_water = true;
  else if (name == "drop_relayed_ops")
    b->drop_relayed_ops = true;
  else if (name == "ack_before_sync")
    b->ack_before_sync = true;
  else if (name == "spend_tentative_credit")
    b->spend_tentative_credit = true;
  else if (name == "skip_rejoin")
    b->skip_rejoin = true;
  else if (name == "expiry_decides_voids")
    b->expiry_decides_voids = true;
  else if (name == "wall_clock_deadlines")
    b->wall_clock_deadlines = true;
  else if (name == "misreport_overdrawn")
    b->misreport_overdrawn = true;
  else if (name == "book_fee_elsewhere")
    b->book_fee_elsewhere = true;
  else if (name == "spend_buffered_transfer")
    b->spend_buffered_transfer = true;
  else if (name == "void_transfer_payer_only")
    b->void_transfer_payer_only = true;
  else if (name == "release_reserve_early")
    b->release_reserve_early = true;
  else if (name == "cap_checks_named_only")
    b->cap_checks_named_only = true;
  else if (name == "statement_without_fee")
    b->statement_without_fee = true;
  else
    return Status::InvalidArgument("unknown planted bug '" + name + "' (see `tally-sim bugs`)");
  return Status::OK();
}

void DrawSwarmShape(std::uint64_t seed, RegionId* regions, std::uint32_t* accounts,
                    bool* keys_per_account, bool* rival_opens) {
  Rng rng(DeriveSeed(seed, "swarm-shape"));
  static const RegionId kRegions[] = {2, 3, 3, 3, 4, 5, 5, 7};
  *regions = kRegions[rng.Below(8)];
  *accounts = static_cast<std::uint32_t>(rng.LogUniform(2, 400));
  // Drawn last, so the draws above (and every seed drawn without it) stay as they were.
  *keys_per_account = rng.Chance(0.25);
  *rival_opens = rng.Chance(0.25);  // after the draws above: they stay as they were
}

std::string FinalTopologyName(FinalTopology t) {
  switch (t) {
    case FinalTopology::kRandom:
      return "random";
    case FinalTopology::kComplete:
      return "complete";
    case FinalTopology::kPartial:
      return "partial";
  }
  return "random";
}

Status ParseFinalTopology(const std::string& s, FinalTopology* out) {
  if (s == "random")
    *out = FinalTopology::kRandom;
  else if (s == "complete")
    *out = FinalTopology::kComplete;
  else if (s == "partial")
    *out = FinalTopology::kPartial;
  else
    return Status::InvalidArgument("final topology must be random, complete or partial");
  return Status::OK();
}

std::string ReproduceCommand(const SimConfig& c) {
  std::string s = "tally-sim run --seed " + std::to_string(c.seed) + " --regions " +
                  std::to_string(c.regions) + " --accounts " + std::to_string(c.accounts) +
                  " --ops " + std::to_string(c.ops) + " --faults " + c.profile;
  if (c.links != "datagram") s += " --links " + c.links;
  if (c.durability != "local") s += " --durability " + c.durability;
  if (!c.lost_disks) s += " --no-lost-disks";
  if (c.keys_per_account) s += " --keys-per-account";
  if (c.rival_opens) s += " --rival-opens";
  if (c.clients > 0) s += " --clients " + std::to_string(c.clients);
  if (c.tick_ms != SimConfig{}.tick_ms) s += " --tick " + std::to_string(c.tick_ms);
  if (c.final_topology != FinalTopology::kRandom)
    s += " --final-topology " + FinalTopologyName(c.final_topology);
  if (!c.plant_bug.empty()) s += " --plant-bug " + c.plant_bug;
  return s;
}

}  // namespace tally::sim
