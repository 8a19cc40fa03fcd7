// Simulation: many regions of the real replica on a simulated network, with simulated clocks and
// stores, driven by a single-threaded event loop over virtual time.
//
// Each region is a Host: a tally::Replica (the same code tallyd runs), a SimStore, a SimClock. The
// host honours the Effects contract exactly: it writes an Effects' ops, keys, high-water mark and
// fold as one batch, syncs after a simulated fsync delay (every batch written while a sync is in
// flight waits for the next one: group commit), and only then sends the messages and releases the
// completions (immediately, if a planted bug says completions need no sync). A crash drops what was
// not synced; a restart builds a new Replica and recovers it from the store.
//
// Run() is the whole VOPR-style run: clients issue requests while faults fire at random; then the
// liveness phase heals the network (to a complete graph or, in some runs, to a connected but
// incomplete one), restarts every region and waits for convergence; then the final checks. Checkers
// run throughout; the first violation stops the run and is reported with the command that
// reproduces it. The scripted API (Start, Submit, RunUntil, Cut, ...) lets tests write a scenario
// by hand and still get every checker.
//
// A Simulation is single-threaded and self-contained: several may run on different threads at once.

#ifndef TALLY_SIM_SIMULATION_H_
#define TALLY_SIM_SIMULATION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/replica.h"
#include "report/report.h"
#include "sim/config.h"
#include "sim/network.h"

namespace tally::sim {

struct Failure {
  std::string invariant;  // "I1 convergence", "I2 floor", ..., "HLC monotonic", "recovery"
  std::string message;    // with the numbers that explain it
  std::uint64_t time_ms = 0;
};

struct RunSummary {
  // Workload.
  std::uint64_t requests = 0, attempts = 0, retries = 0, retries_elsewhere = 0, probes = 0;
  std::uint64_t transfers = 0;                   // of requests: money between accounts
  std::uint64_t credit_retries_elsewhere = 0;    // of retries_elsewhere
  std::uint64_t transfer_retries_elsewhere = 0;  // of retries_elsewhere
  std::uint64_t keys_reused = 0;                 // requests reusing a key past its retention window
  std::uint64_t retried_credit_spends = 0;       // debits spending a credit retried elsewhere
  std::uint64_t rival_opens = 0;  // second opens of an account with another config (--rival-opens)
  std::uint64_t rival_opens_accepted = 0;  // of rival_opens: accepted as a new op (concurrent)
  // Holds: requests placing one, capturing, releasing; holds resolved at two regions at once;
  // captures sent again at another region after their answer; holds retried at another region
  // after a timeout (of retries_elsewhere).
  std::uint64_t holds = 0, captures = 0, releases = 0, dual_resolutions = 0;
  std::uint64_t capture_retries_elsewhere = 0, hold_retries_elsewhere = 0;
  // Resolutions acknowledged for a dot that names another hold than the one the client was told
  // of: its hold went with a disk (durability local) and its origin issued the seq again.
  std::uint64_t stale_hold_resolutions = 0;
  // Budgets: debits asking for a fallback; among the durable ops, budget debits (a cap's, or a
  // fallback an ancestor paid: `budget_fallbacks`; `budget_caps`: those that debited more than
  // one account), and those voided as duplicates of their key (every payer refunded).
  std::uint64_t fallback_debits = 0;
  std::uint64_t budget_debits = 0, budget_voided = 0, budget_fallbacks = 0, budget_caps = 0;
  std::uint64_t timeouts = 0, gave_up = 0, replies_lost = 0;
  std::uint64_t accepted = 0, rejected = 0, overdraft_debits = 0, replays = 0;
  std::map<std::string, std::uint64_t> rejected_by_code;
  std::uint64_t accounts_opened = 0;
  // Outcome.
  std::uint64_t durable_ops = 0;
  std::uint64_t fee_events = 0, void_events = 0;
  // Transfers between accounts among the durable ops, and those voided as duplicates of their
  // payer's key (each such void is two void events, one per side).
  std::uint64_t durable_transfers = 0, transfers_voided = 0;
  Amount fees = 0, voids = 0;
  // What became of the durable holds (the ledger's void rule): voided as duplicates of their key,
  // captured, released by a client, released at expiry by their region, still open; and the
  // resolutions that lost to another resolution of the same hold (two regions resolved it at
  // once). Expiry releases the replicas originated (ReplicaStats::holds_expired, every run).
  std::uint64_t durable_holds = 0, holds_voided = 0, holds_captured = 0, holds_released = 0,
                holds_expired = 0, holds_open = 0, resolution_conflicts = 0;
  Amount amount_captured = 0;
  std::uint64_t expiry_releases = 0;
  std::uint64_t rights_requests = 0, rights_granted = 0, rebalance_transfers = 0, snapshots = 0;
  std::uint64_t clock_ahead_reports = 0;
  // Faults.
  std::uint64_t partitions = 0, crashes = 0, restarts = 0, clock_steps = 0, amnesias = 0;
  std::uint64_t lying_hellos = 0;
  std::uint64_t wipes = 0, disk_copies = 0, restores = 0;
  std::uint64_t syncs = 0;
  // Disks: durable ops every copy of which went with a wiped or restored disk, the acknowledged
  // ones among them, and seqs issued again for another op once nothing held the first.
  std::uint64_t durable_lost_with_disk = 0, acked_lost_with_disk = 0, seqs_reissued = 0;
  NetworkStats network;
  // Virtual time.
  std::uint64_t workload_end_ms = 0, heal_ms = 0, end_ms = 0;
  std::optional<std::uint64_t> convergence_ms;  // after the heal
  std::optional<std::uint64_t> finality_ms;     // after the heal: every op below every frontier
  std::uint64_t events = 0;
  std::string final_topology;  // "complete" or the links left down
};

struct RunResult {
  bool ok = true;
  Failure failure;
  RunSummary summary;
  std::uint64_t trace = 0;
  std::string reproduce;  // the exact command line
};

class Simulation {
 public:
  // `config` must have been through ApplyProfile (and SetPlantedBug for plant_bug).
  explicit Simulation(SimConfig config);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // The whole run: workload and faults, liveness phase, final checks, report (if asked for).
  RunResult Run();

  // --- Scripted use (tests). Start() creates the regions; nothing random happens unless the
  // workload or the fault schedule is started.
  void Start();
  std::uint64_t now() const;
  void RunUntil(std::uint64_t time_ms);
  // A client request arriving at `region` now (no client delay, no timeout, no retry), asking for
  // the config's durability. Returns a handle for Result().
  std::uint64_t Submit(RegionId region, CommandBody body);
  // The completion for `handle`, once released (nullptr before).
  const CommandResult* Result(std::uint64_t handle) const;
  void Cut(const Partition& p);    // starts a partition now
  void Uncut(const Partition& p);  // ends it
  // Every message on the link from -> to that would arrive before `until_ms` is lost: the weak
  // transport's loss. The link stays up, so nobody reconnects (Uncut makes both ends reconnect,
  // which is itself a reason to send again).
  void Lose(RegionId from, RegionId to, std::uint64_t until_ms);
  void StepClock(RegionId region, std::int64_t delta_ms);
  // Hands `msg` to `to` now as if it came from `from`: a message the weak transport may deliver
  // late or twice (an old Hello, a stale Ack). Its effects follow the usual contract.
  void Deliver(RegionId from, RegionId to, const Message& msg);
  void Crash(RegionId region);
  void Restart(RegionId region);
  // Disks: wipe replaces the region's disk by an empty one, RestoreDisk by the copy CopyDisk took
  // `back` copies ago (0: the newest); both crash the region if it is up (Restart brings it back).
  // At most kMaxDiskCopies copies are kept per region.
  void WipeDisk(RegionId region);
  void CopyDisk(RegionId region);
  void RestoreDisk(RegionId region, std::size_t back = 0);
  // Liveness phase and final checks, as at the end of Run().
  RunResult Finish();
  // The same, with the links of `left_down` left cut for good: a connected but incomplete final
  // topology of the test's choosing (Run() draws one from the seed).
  RunResult Finish(const Partition& left_down);
  Replica* replica(RegionId region);  // nullptr while the region is down
  bool failed() const;

  // Everything the report shows; filled as the run goes (samples only with a report dir).
  const report::RunReport& report_data() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// One line per summary item, deterministic (stdout of `tally-sim run`), ending with "trace=<hex>".
std::string FormatSummary(const SimConfig& config, const RunResult& result);

}  // namespace tally::sim

#endif  // TALLY_SIM_SIMULATION_H_
