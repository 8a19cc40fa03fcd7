// SimConfig: everything that defines one simulation run, and the named fault profiles.
//
// A run is a pure function of its SimConfig: the seed makes every random choice and the rest says
// how much of each fault to inject. `--faults swarm` draws the fault and workload parameters from
// the seed itself (swarm testing: in each run some faults are off and others run at wildly
// different rates), so "tally-sim run --seed S --faults swarm" reproduces any swarm seed.
// ReproduceCommand() prints the exact command line that recreates a config.

#ifndef TALLY_SIM_CONFIG_H_
#define TALLY_SIM_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/replica.h"
#include "core/status.h"
#include "sim/network.h"

namespace tally::sim {

struct FaultParams {
  LinkParams link;  // delays, loss, duplication, reordering, capacity

  // Partitions: how many per virtual minute, how long, and which kinds may be drawn.
  double partitions_per_min = 0;
  std::uint32_t partition_min_ms = 500;
  std::uint32_t partition_max_ms = 8000;
  bool symmetric = true, asymmetric = true, partial = true, isolate = true, split = true;

  // Clocks: initial offsets up to ±offset_max_ms, drift up to ±drift_max_ppm, and step jumps of
  // step_min_ms..step_max_ms either way.
  std::int64_t offset_max_ms = 0;
  std::int64_t drift_max_ppm = 0;
  double steps_per_min = 0;
  std::int64_t step_min_ms = 60'000;
  std::int64_t step_max_ms = 3 * 3'600'000;

  // Crashes: how often, how long a region stays down, and how often a crash is aimed at the window
  // between a write and its sync (where acknowledging early would lose data).
  double crashes_per_min = 0;
  std::uint32_t downtime_min_ms = 50;
  std::uint32_t downtime_max_ms = 5000;
  double sync_crashes_per_min = 0;
  // "Amnesia": isolate a region, step its clock back hours, crash and restart it while isolated.
  double amnesia_per_min = 0;
  // A stranger on a peer's link: a Hello in a live peer's name claiming to hold 2^40 ops of every
  // origin (a liar, or a peer's stale claim from before it lost its disk).
  double lying_hellos_per_min = 0;
  // Disks. A wipe crashes a region and restarts it on an empty disk. Copies of a region's durable
  // store are taken now and then (at most kMaxDiskCopies per region are kept, the oldest dropped);
  // a restore crashes a region that has one and restarts it from one of its copies, chosen at
  // random. Downtime as for crashes. Off in the fixed profiles but "disks"; drawn by the swarm.
  double wipes_per_min = 0;
  double disk_copies_per_min = 0;
  double restores_per_min = 0;

  // Storage: fsync latency, with occasional slow syncs.
  std::uint32_t fsync_min_ms = 1;
  std::uint32_t fsync_max_ms = 4;
  double fsync_slow_p = 0;
  std::uint32_t fsync_slow_ms = 100;

  // Client links: replies lost on the way back (the client times out and retries). A region cut
  // off from some peer by a partition loses replies with cutoff_reply_loss instead, when that is
  // higher: the partition reaches some of its clients too, so they retry — sometimes elsewhere —
  // requests the region did apply.
  double reply_loss = 0;
  double cutoff_reply_loss = 0;

  // Liveness: the chance that the final heal leaves a connected but incomplete graph.
  double final_partial_p = 0;
};

struct WorkloadParams {
  std::uint32_t clients_per_region = 4;
  std::uint32_t think_min_ms = 5;
  std::uint32_t think_max_ms = 60;
  std::uint32_t client_delay_max_ms = 3;  // client <-> region, each way
  std::uint32_t timeout_ms = 1000;
  std::uint32_t max_attempts = 6;
  double retry_elsewhere_p = 0.5;  // a timed-out credit/debit/transfer retried at another region
  // After a credit retried at another region is applied there as a new op (that region did not
  // know the key: the first attempt may well have been applied too), the client's next requests
  // spend it: at that region, then at each region tried before, a debit of all that region holds
  // for the account, at least the credited amount. A transfer retried so is spent the same way on
  // its payee (the payee's credit is as tentative as a credit until final).
  double spend_retried_credit_p = 0.5;
  double replay_probe_p = 0.02;  // after an ack, send the same request again to the same region
  // A new credit, debit or transfer reuses the client's key of a request that completed more than
  // the retention window ago (SimConfig::idempotency_retention_ms): a new op, in every region
  // alike.
  double reuse_key_p = 0.03;
  // The mix: credits, debits, transfers between accounts (money from one account to another of
  // the same currency, keyed and retried like debits, amounts like debits: about 15 % of the
  // requests by default) and rights moved to another region (without a key).
  double credit_weight = 0.35, debit_weight = 0.55, rights_weight = 0.05;
  double transfer_weight = 0.17;
  // Two-phase holds (docs/simulation.md, "Holds"): about 10 % of the requests by default place a
  // hold (keyed, retried and probed like a debit, so duplicate holds happen), expiring in
  // hold_expiry_min_ms..hold_expiry_max_ms (at most the retention: the desk refuses longer). The
  // client resolves each hold it was told of later, at its region or another: a capture
  // (hold_capture_p; the whole hold with hold_capture_all_p, else a random part), a release
  // (hold_release_p), both at once in two regions (hold_dual_p: the second by another client,
  // across a partition if one cuts the first region off), or nothing (the hold expires). The
  // resolution is due at a random moment of the hold's life, or up to a fifth of it after its
  // expiry (refused then). An acknowledged capture is sent again at another region with
  // hold_capture_retry_elsewhere_p (the same capture: a replay there, or a fork).
  double hold_weight = 0.125;
  std::uint32_t hold_expiry_min_ms = 200, hold_expiry_max_ms = 5000;
  double hold_capture_p = 0.45, hold_release_p = 0.2, hold_dual_p = 0.15;
  double hold_capture_all_p = 0.4;
  double hold_capture_retry_elsewhere_p = 0.15;
  // Budgets in a hierarchy (docs/simulation.md, "Budgets"): each account after the first opens
  // with a parent among the accounts before it with budget_p (at most 4 levels), as a cap inside
  // it with cap_p (its debits debit the parent too); it is opened once its parent is. A debit of
  // an account with a parent asks for a fallback with fallback_p (an ancestor may pay).
  double budget_p = 0.3, cap_p = 0.5, fallback_p = 0.4;
  // Notes (memo and metadata, issue 14): a credit, debit, transfer or hold whose key's hash says
  // so (about note_p of the keys) carries a note derived from its key (NoteForKey). No draw of
  // any generator: a seed's requests and faults are what they were without notes.
  double note_p = 0.25;
  double hot_p = 0.5;  // chance a request goes to the hot set of accounts
  double hot_fraction = 0.05;
  Amount credit_max = 1000, debit_max = 700, rights_max = 300;
  double overdraft_p = 0.7;  // accounts opened with an overdraft limit
  Amount overdraft_max = 2000;
};

enum class FinalTopology : std::uint8_t { kRandom, kComplete, kPartial };

struct SimConfig {
  std::uint64_t seed = 1;
  RegionId regions = 3;
  std::uint32_t accounts = 20;
  std::uint64_t ops = 2000;   // client requests (retries and probes not counted)
  std::uint32_t clients = 0;  // per region; 0: the profile's choice
  std::string profile = "default";
  std::string plant_bug;  // "" or a PlantedBugs field name
  FinalTopology final_topology = FinalTopology::kRandom;
  // "datagram" (reordered, duplicated: the contract core/messages.h states) or "stream" (TCP-like,
  // as tallyd's connections); "" draws one from the seed (swarm).
  std::string links = "datagram";
  // "local" or "replicated": every client write asks for Command::replicated (answered once
  // another region holds the op durably); "" draws one from the seed (swarm).
  std::string durability = "local";
  // False: no disk is wiped or restored, whatever the profile draws (tally-sim run
  // --no-lost-disks). The CI's fixed swarm seeds run so while the open finding of
  // docs/simulation.md ("ops of a lost history arriving after the rejoin") is not fixed; `tally-sim
  // swarm` draws lost disks.
  bool lost_disks = true;
  // Number each client's keys per account ("k<client>-<n>" counted per account), so one key string
  // is in use on several accounts at once, as when clients number their requests (issue 11, item
  // 9). Off by default, so default runs keep their traces; the swarm draws it for a quarter of
  // its seeds.
  bool keys_per_account = false;
  // Open some accounts twice, at two regions, with different configs (an overdraft line, lines,
  // fees of their own), as when two clients create one account id at once (issue 11, item 9). The
  // canonically first open must win everywhere, and no region may spend a line before it knows
  // which open won.
  bool rival_opens = false;
  std::uint64_t liveness_bound_ms = 60'000;  // convergence must happen within this after the heal
  // Idempotency key retention of every region. Short, so that runs of a few virtual minutes see
  // keys forgotten, retries past the window become new ops, and keys are reused after it.
  std::uint64_t idempotency_retention_ms = 3000;
  std::uint32_t tick_ms = 5;

  FaultParams faults;
  WorkloadParams workload;

  // Observation only; none of these changes what happens in the run.
  std::string report_dir;      // "" = no report
  std::string report_account;  // "" = pick the most eventful sampled account
  std::uint32_t sample_ms = 100;
};

// Copies of a region's disk kept for the restore fault, per region.
inline constexpr std::size_t kMaxDiskCopies = 3;

// Fills config->faults and config->workload from config->profile (and, for "swarm", the seed).
// InvalidArgument for an unknown profile.
Status ApplyProfile(SimConfig* config);
std::vector<std::string> ProfileNames();

// The planted bugs tally-sim knows, with a line each on what they break.
struct BugInfo {
  std::string name;
  std::string effect;
  std::string caught_by;  // the invariant that must catch it
};
const std::vector<BugInfo>& KnownBugs();
// Sets the PlantedBugs field named `name` ("" sets none). InvalidArgument for an unknown name.
Status SetPlantedBug(const std::string& name, PlantedBugs* bugs);

// The config of a scripted run (Simulation's scripted API): no fault drawn at random, every
// message `delay_ms` on its way, every sync 1 ms, the final heal to a complete graph; seed 1.
SimConfig ScriptedConfig(RegionId regions, std::uint32_t delay_ms,
                         const std::string& links = "datagram");

// Draws regions and accounts for a swarm seed (the fault parameters come from ApplyProfile),
// whether its clients number their keys per account (--keys-per-account: one key string on
// several accounts at once), a quarter of the seeds, and whether some accounts are opened twice
// with different configs (--rival-opens), a quarter of the seeds.
void DrawSwarmShape(std::uint64_t seed, RegionId* regions, std::uint32_t* accounts,
                    bool* keys_per_account, bool* rival_opens);

// "tally-sim run --seed 7 --regions 3 ..." recreating `config`.
std::string ReproduceCommand(const SimConfig& config);

std::string FinalTopologyName(FinalTopology t);
Status ParseFinalTopology(const std::string& s, FinalTopology* out);

}  // namespace tally::sim

#endif  // TALLY_SIM_CONFIG_H_
