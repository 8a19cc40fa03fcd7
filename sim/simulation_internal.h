// Internal to tally-sim: the state of a Simulation, shared by the files that implement it
// (simulation.cc: event loop and hosts; workload.cc: clients; faults.cc: the fault schedule;
// checks.cc: invariant checkers; sim_report.cc: report data). Not a public API.

#ifndef TALLY_SIM_SIMULATION_INTERNAL_H_
#define TALLY_SIM_SIMULATION_INTERNAL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit_gate.h"
#include "core/replica.h"
#include "report/report.h"
#include "sim/clock.h"
#include "sim/config.h"
#include "sim/dots.h"
#include "sim/event_queue.h"
#include "sim/ledger.h"
#include "sim/network.h"
#include "sim/random.h"
#include "sim/simulation.h"
#include "sim/statement_check.h"
#include "sim/store.h"
#include "sim/trace.h"

namespace tally::sim {

inline constexpr std::uint32_t kScriptedClient = 0xffffffffu;

// A region's wall clock as its replica reads it: virtual time through the host's SimClock (skewed,
// drifting, stepping). Timers get the monotonic Impl::Mono() instead.
class HostWallClock final : public WallClock {
 public:
  HostWallClock(const SimClock* clock, const std::uint64_t* now) : clock_(clock), now_(now) {}
  std::uint64_t NowMs() const override { return clock_->Read(*now_); }

 private:
  const SimClock* clock_;
  const std::uint64_t* now_;
};

struct Host {
  RegionId id = 0;
  bool up = true;
  std::uint64_t incarnation = 0;
  std::unique_ptr<Replica> replica;
  // Bit o: the replica holds ops of a lost history of origin o (applied before it heard of the
  // fence, or read back from its store). It must remove them; until it has replaced its state
  // (Effects::replaces_store) or restarted, conservation (I3) is not checked on it.
  std::uint32_t holds_lost = 0;
  std::uint64_t resumed_epoch =
      0;  // the incarnation whose resume point was last noted (NoteResumed)
  Seq durable_elsewhere_at_start = 0;  // its own ops other regions held durably when it restarted
  SimStore store;
  SimClock clock;
  std::unique_ptr<HostWallClock> wall;  // reads `clock`; the replica holds a reference
  Rng rng;                              // fsync latencies

  // Commands this process took and has not answered, by id (ids grow with time): when each came.
  // Every one must be answered within Simulation::Impl::answer_bound_ms while the process lives.
  std::map<std::uint64_t, std::uint64_t> unanswered;

  // tallyd's durability rule, the core's own: persist, sync, then let sends and answers out. One
  // batch is written and synced at a time (the store's sync covers exactly it).
  std::unique_ptr<CommitGate> gate;
  bool sync_in_flight = false;
  std::uint64_t sync_target = 0;

  Hlc hlc_visible;    // largest timestamp that left the region (durable op, sent heartbeat)
  Hlc hlc_generated;  // largest timestamp generated since the last restart
  Hlc hlc_received;   // largest timestamp of an op delivered to it since the last restart
  // On a whole store: every epoch it announces must be above this — hlc_visible and every epoch
  // an earlier run on the same disk sent, as of its last restart.
  Hlc hlc_visible_at_start;
  std::uint64_t epoch_announced = 0;   // the newest epoch it put in a Hello
  std::uint64_t disk_epoch_max = 0;    // largest epoch sent in a Hello since the disk was replaced
  std::uint64_t started_ms = 0;        // when this run started
  std::uint64_t disk_replaced_ms = 0;  // when its disk was last wiped or restored
  Seq acked_own_max = 0;               // highest own seq acknowledged to a client

  // Disks (faults.cc). Copies of the durable store kept for the restore fault, oldest first.
  struct DiskCopy {
    std::uint64_t taken_ms = 0;
    SimStore::Durable state;
    std::vector<Hlc> knows;  // its row of Impl::knows when the copy was taken
  };
  std::deque<DiskCopy> disk_copies;
  // Its disk was wiped or restored and no run on it has finished rejoining since: the disk's
  // high-water mark may be below what the region showed its peers. Cleared once a run rejoined
  // (merged its peers' clocks).
  bool disk_behind = false;
  bool lost_store = false;  // this run started on such a disk
  std::string rejoined;     // when and how this run finished rejoining ("" while it has not)

  std::uint64_t down_since_ms = 0;
  std::size_t timeline_crash = SIZE_MAX;  // open crash span, if down
  std::size_t check_cursor = 0;
  std::vector<std::int64_t> max_ahead, max_behind;  // clock offsets seen per peer
};

struct Request {
  enum class Kind : std::uint8_t {
    kOpen,
    kCredit,
    kDebit,
    kRights,
    kTransfer,
    kHold,     // PlaceHold: `amount` for `expires_in_ms`, with a client key
    kCapture,  // CaptureHold of `hold`: `amount` (<= the hold's)
    kRelease,  // ReleaseHold of `hold`; `amount` is the hold's (a release op carries it)
  };
  Kind kind = Kind::kCredit;
  std::uint32_t account = 0;  // index into Impl::accounts (a transfer's payer, a hold's account)
  Amount amount = 0;
  RegionId to = 0;
  std::string key;                  // a resolution's is HoldKey(hold), as its op carries it
  std::uint32_t payee = 0;          // kTransfer: index into Impl::accounts
  std::uint64_t expires_in_ms = 0;  // kHold
  Dot hold;                         // kCapture, kRelease
  Hlc hold_hlc;  // kCapture, kRelease: the hold's timestamp as the client was told it (0: unknown)
  // A key this client never sent before (not a reuse): its first attempt can be neither a replay
  // nor a reused key.
  bool fresh_key = false;
  // An open with the account's rival config: its answer does not change what the workload
  // believes of the account (the first open's answer does).
  bool rival = false;
  bool fallback = false;  // kDebit: an ancestor budget may pay
};

// A resolution of a hold a client was told of, to be sent once it is due.
struct HoldTicket {
  static constexpr RegionId kAnyRegion = ~RegionId{0};
  Dot hold;
  Hlc hold_hlc;  // as its answer said: tells the hold from another op its dot may name later
  std::uint32_t account = 0;
  Amount held = 0;
  Request::Kind kind = Request::Kind::kCapture;  // kCapture or kRelease
  Amount amount = 0;                             // a capture's
  RegionId at = kAnyRegion;                      // where to send it (kAnyRegion: drawn when due)
  std::uint64_t due_ms = 0;                      // virtual time
  bool dual = false;  // once sent, another client resolves the hold at another region at once
  std::uint32_t client = 0;  // the client that holds the ticket (a dual's second: who made it)
};

struct Client {
  std::uint32_t id = 0;
  RegionId home = 0;
  bool busy = false;
  bool stopped = false;
  Request req;
  std::uint64_t attempt = 0;  // current attempt id
  std::uint32_t tries = 0;
  RegionId at = 0;
  bool probing = false;
  Dot probe_dot;
  Hlc probe_hlc;
  std::uint64_t keys = 0;  // keys drawn so far (a key is "k<client>-<n>")
  // With SimConfig::keys_per_account: the keys drawn per account, and the (account, key) pairs a
  // reuse sent (a later fresh draw of the same pair is not fresh).
  std::map<std::uint32_t, std::uint64_t> keys_by_account;
  std::set<std::pair<std::uint32_t, std::string>> reused_on;
  // The key of the client's last keyed request that completed, and when (virtual ms): reused
  // past the retention window now and then (WorkloadParams::reuse_key_p).
  std::string done_key;
  std::uint64_t done_key_ms = 0;
  bool elsewhere = false;   // the current request was retried at another region
  std::uint32_t tried = 0;  // regions the current request was sent to (bit r)
  // A credit retried elsewhere and applied there as a new op: the regions where the next requests
  // spend it (the one that applied it, then the ones tried before), on which account, how much.
  std::vector<RegionId> spend_at;
  std::uint32_t spend_account = 0;
  Amount spend_amount = 0;
  // The resolutions of holds this client placed (or was asked to send again), each once due.
  std::deque<HoldTicket> tickets;
};

// One per request sent in a run (a million in a long one): the flags sit together, not as padding.
struct Attempt {
  std::uint32_t client = 0;
  RegionId region = 0;
  bool probe = false;
  bool replicated = false;         // asked for durability "replicated" (Command::replicated)
  bool decided_at_submit = false;  // see `before`
  Request req;
  // A debit's figures as the region's view showed them just before it was submitted: its
  // effective rights and its overdraft line (the per-answer I2 check). Set when the view existed;
  // `decided_at_submit` when the replica answered within the Submit call (no wait), so the answer
  // was decided on exactly that state.
  struct Figures {
    Amount rights = 0, line = 0;  // rights: what its holds do not reserve (rights − reserved)
    Amount reserved = 0;          // what the region's holds reserve (RegionView::reserved)
  };
  std::optional<Figures> before;
};

struct AccountInfo {
  enum class State : std::uint8_t { kUnopened, kOpening, kOpen, kAbandoned };
  std::string id;
  State state = State::kUnopened;
  AccountConfig config;
  RegionId open_region = 0;
  // With SimConfig::rival_opens: another config a client of another region opens this account
  // with, once its first open is under way.
  std::optional<AccountConfig> rival;
  std::uint32_t parent = UINT32_MAX;  // index of config.parent (UINT32_MAX: a root)
};

struct AckRecord {
  Dot dot;
  std::uint64_t attempt = 0;
  std::uint64_t time_ms = 0;
  RegionId region = 0;
  std::uint64_t fingerprint = 0;    // of the op the dot carried when it was acknowledged
  bool durable_when_acked = false;  // its origin had made it durable by then
};

// One step of the fault schedule.
struct FaultAction {
  enum class Kind : std::uint8_t {
    kNextPartition,
    kPartitionEnd,
    kNextStep,
    kNextCrash,
    kCrash,
    kRestart,
    kNextAmnesia,
    kAmnesiaCrash,
    kAmnesiaRestart,
    kAmnesiaEnd,
    kNextSyncCrash,
    kNextLyingHello,
    kNextWipe,
    kNextDiskCopy,
    kNextRestore,
  };
  Kind kind = Kind::kNextCrash;
  RegionId region = 0;
  std::size_t partition = 0;    // index into Impl::partitions
  std::size_t span = SIZE_MAX;  // timeline span to close
};

struct ActivePartition {
  Partition p;
  bool active = false;
  std::size_t span = SIZE_MAX;
};

struct SampleSeries {
  std::vector<report::Series> balance;  // per region
  std::vector<report::Series> rights;
};

// The note of a request keyed `key`, a pure function of the key: none for about 1 − `p` of the
// keys; else a memo, metadata (1..16 pairs), or both, with UTF-8 and what JSON and HTML escape.
void NoteForKey(std::string_view key, double p, std::string* memo, Metadata* metadata);

class Simulation::Impl {
 public:
  explicit Impl(SimConfig c);

  // --- simulation.cc: the event loop and the hosts.
  void Start();
  void RunUntil(std::uint64_t time_ms);
  void RunToEnd();
  void Dispatch(const Event& e);
  void OnTick(RegionId r);
  // Commands a live process holds unanswered past answer_bound_ms fail the run ("answer bound").
  void CheckAnswerBound(RegionId r);
  // Whether a budget debit's payers follow the tree the workload opened; Fail()s if not.
  bool CheckPayers(RegionId r, const Attempt& a, const CommandResult& res);
  std::uint64_t AnswerBoundMs() const;  // computed once, at Start
  std::uint64_t answer_bound_ms = 0;
  void OnSyncDone(RegionId r);
  void OnDeliver(std::uint64_t slot);
  void OnReconnect(RegionId r, RegionId peer);
  void OnRequestArrives(std::uint64_t slot);
  void Absorb(RegionId r, Effects* e);
  void StartSync(RegionId r);
  // Lets out what the gate released: messages to peers, then answers to clients.
  void Release(RegionId r, CommitGate::Release* out);
  void ReleaseSends(RegionId r, std::vector<Outbound>* send);
  void ReleaseCompletion(RegionId r, CommandResult result);
  void Crash(RegionId r);
  void Restart(RegionId r);
  // The disk of `r` replaced by `state` (empty: a wipe; a copy: a restore); crashes `r` if up.
  void ReplaceDisk(RegionId r, const Host::DiskCopy* copy);
  bool AnotherDiskBehind(RegionId r) const;
  void CopyDisk(RegionId r);
  // What each origin's ops some region still holds, in memory or on its disk (DotBook::Release).
  VersionVector Held() const;
  // After a crash or a disk replaced: frees the dots of ops no region holds any more, and forgets
  // the durable ones among them (they went with a disk).
  void ReleaseLostCopies();
  // Moves to forgotten_runs the runs of `resumes` no region remembers any more (RememberedEpochs).
  void ForgetUnrememberedRuns();
  // Per origin, the newest epoch some live replica, disk or kept copy of a disk knows of it: a
  // fence at that epoch, or an op issued under it.
  std::vector<std::uint64_t> RememberedEpochs() const;
  void RetireStats(const Replica& replica);
  void Cut(const Partition& p);
  void Uncut(const Partition& p);
  void ScheduleReconnects(const std::vector<std::pair<RegionId, RegionId>>& up);
  std::uint64_t Physical(RegionId r) const { return hosts[r].clock.Read(now); }
  // The monotonic clock every host passes its replica: virtual time, as if each host had been up
  // kMonoStartMs already (the replica takes 0 for "never"). It never steps, whatever the wall
  // clocks do.
  static constexpr std::uint64_t kMonoStartMs = 1'000'000;
  std::uint64_t Mono() const { return kMonoStartMs + now; }
  bool CutOff(RegionId r) const;  // a partition cuts some link from or to r
  ReplicaOptions OptionsFor(RegionId r) const;
  std::uint64_t Submit(RegionId r, CommandBody body);
  std::uint32_t AccountIndex(const std::string& id);
  void Fail(std::string invariant, std::string message);
  RunResult MakeResult();

  // --- workload.cc: clients.
  void StartWorkload();
  // Whether the account the next open would open has its parent open (or none): a child is
  // opened only after its parent.
  bool ParentOpen() const;
  void OnClientWakes(std::uint32_t c);
  // A new key for `cl`'s next request on `account`; *fresh: never sent for it before.
  std::string NewKey(Client& cl, std::uint32_t account, bool* fresh);
  void OnClientTimeout(std::uint32_t c, std::uint64_t attempt);
  void OnReplyArrives(std::uint64_t slot);
  void SendAttempt(std::uint32_t c, RegionId region);
  void ClientDone(std::uint32_t c);
  void ClientStops(std::uint32_t c);
  static CommandBody BodyOf(const Request& req, const std::vector<AccountInfo>& accounts);
  // Holds: what the client plans for a hold it was told of; a resolution's request; where a
  // resolution at `from`'s other side goes (across a partition that cuts `from` off, if any).
  void PlanHold(std::uint32_t c, const CommandResult& res);
  Request ResolutionOf(const HoldTicket& t);
  RegionId OtherRegion(RegionId from);

  // --- faults.cc: the fault schedule and the liveness phase.
  void StartFaults();
  void OnFault(std::uint64_t index);
  std::uint64_t AddFault(FaultAction a);
  void ScheduleNext(FaultAction::Kind kind, double per_min, Rng* rng = nullptr);
  void OnDiskFault(const FaultAction& a);
  Partition DrawPartition();
  void MaybeCrashInSync(RegionId r, std::uint64_t sync_delay_ms);
  // `left_down`: the links the final heal leaves cut (scripted); nullptr: by final_topology.
  void BeginLiveness(const Partition* left_down = nullptr);
  void OnLivenessCheck();

  // --- checks.cc: invariant checkers.
  // One op per dot: binds every op `r` applied; fills `originated` with the indices in e.ops of
  // the ops `r` originated just now (its own, never seen before).
  void SeeApplied(RegionId r, const Effects& e, std::vector<std::size_t>* originated);
  // One op per dot for ops `r` sends or reads back from its store; `how` says which.
  void SeeOps(RegionId r, const std::vector<Op>& ops, const char* how);
  void FailTwoOps(RegionId r, const Op& op, const std::string& how);
  std::string DiskContext(RegionId r) const;
  void Revive(const Op& op);
  void NoteResumed(RegionId r);
  bool FencedOff(const Op& op) const;
  bool HoldsLostHistory(RegionId r, const Op& op);
  void ReviveHeld();
  bool Spliced(Dot dot) const;
  void FailSpliced(RegionId r, const Op& op, const std::string& how);
  void CheckRejoining(RegionId r, const Effects& e, const std::vector<std::size_t>& originated);
  void NoteShown(const InFlight& f, const Message& msg);
  const Op* ForgottenMatching(Dot dot) const;
  // Submits attempt `id` at r, reading a debit's figures before it (Attempt::before), with the
  // note of its key (AttachNote).
  void SubmitAttempt(RegionId r, Command cmd);
  // --- notes (memo and metadata, issue 14): every client command that takes a note carries the
  // one its key derives (NoteForKey), workload and scripted alike, so each copy of its op, on any
  // region and after any trip through gossip, snapshots and stores, can be checked against it.
  void AttachNote(Command* cmd) const;
  void CheckNote(RegionId r, const Op& op);
  // Region r crashed: what it knew of the others' timestamps only in memory is gone. Its row of
  // `knows` is capped at the clock its store restarts it with (seed 320831).
  void ForgetUnsyncedKnowledge(RegionId r);
  Hlc Shown(RegionId r) const;
  void CheckRejoinAnswer(const InFlight& f, const Message& msg);
  void CheckHlc(RegionId r, const Effects& e, const std::vector<std::size_t>& originated);
  void NoteRelease(RegionId r, const CommandResult& result);
  void CheckAccount(RegionId r, const std::string& account);
  void OnSample();
  void FinalChecks();
  // Conservation across accounts: the oracle's balances sum to what came in and went out, and on
  // every replica the two sides of each transfer are voided together or not at all.
  void CheckMoneyAcrossAccounts(const std::map<std::string, OracleAccount>& oracle);
  // Every hold's fate on every replica is the oracle's; no hold has two surviving resolutions or
  // surviving captures beyond its amount.
  void CheckHolds(const std::map<std::string, OracleAccount>& oracle);
  // A region's view of the holds of one account against the ops it holds (CheckAccount).
  void CheckHoldFigures(RegionId r, const std::string& id, const AccountView& v,
                        const VersionVector& vv);
  bool AckMatches(const AckRecord& ack, std::string* why) const;
  // Every durable copy of the acknowledged op went with a wiped or restored disk: no copy is left.
  bool LostWithDisk(const AckRecord& ack) const;
  std::uint64_t AckedLostWithDisk() const;  // distinct ops

  // --- sim_report.cc: report data.
  void SampleForReport();
  void BuildReport();
  report::RunReport report;

  SimConfig config;
  EventQueue queue;
  Network network;
  Ledger ledger;
  DotBook dots;
  StatementCheck statements;  // I7 and I3 on the statement lines each store makes durable
  // knows[y][o]: the largest timestamp of origin o that region y's clock has merged, as far as
  // any decision y took can depend on it: o's ops and heartbeat entries delivered to y, and
  // transitively what the sender of any message y received knew when it sent it. A region whose
  // disk is wiped forgets its row; one restored from a copy gets back the row of the copy. What a
  // region restarted on a lost disk must stay above is what the others still know (Shown).
  std::vector<std::vector<Hlc>> knows;
  std::vector<Host> hosts;
  // Per region: (epoch, resumed_from) of each incarnation that began issuing its own ops, as the
  // simulator saw it happen (NoteResumed). Kept here, apart from the core's FenceBook.
  std::vector<std::vector<std::pair<std::uint64_t, Seq>>> resumes;
  // Per region: the runs taken out of `resumes` because no region remembered them (seed 308228).
  // A run nobody remembers fences nothing: its origin may resume under a lower epoch and issue
  // the same seqs again. An op of such a run that comes back (a message still in flight) puts it
  // back into `resumes` (HoldsLostHistory): some replica remembers it again.
  std::vector<std::vector<std::pair<std::uint64_t, Seq>>> forgotten_runs;
  Rng fault_rng, workload_rng, link_rng;
  Rng disk_rng;    // the disk faults draw here, so the other faults of a seed stay as they were
  Rng budget_rng;  // budgets (parents, caps, fallbacks) draw here, the rest of the workload as
                   // before
  Rng epoch_rng;   // each start's ReplicaOptions::epoch_nonce
  TraceHash trace;

  // Workload.
  std::vector<Client> clients;
  // Attempt id - 1. A deque, not a vector: one entry per request of the run (a million in a
  // long run), so a vector's doubling held the old and the new array at once (half a gigabyte)
  // and its slack up to as much again.
  std::deque<Attempt> attempts;
  std::vector<AccountInfo> accounts;
  std::map<std::string, std::uint32_t> account_index;
  std::vector<std::uint32_t> opened;  // in order of their first acknowledged open
  std::uint32_t next_unopened = 0;
  std::deque<std::uint32_t> reopen;       // opens that timed out, to be asked again
  std::deque<std::uint32_t> rival_opens;  // accounts whose rival open is still to be sent
  // Second resolutions of holds resolved in two regions at once, for the next client (other than
  // the one that sent the first) to wake.
  std::deque<HoldTicket> dual_resolutions;
  std::map<Dot, std::uint32_t> hold_accounts;  // every hold acknowledged: its account
  std::uint64_t requests_issued = 0;
  std::uint32_t clients_stopped = 0;
  bool workload_started = false;

  struct RequestSlot {
    RegionId region = 0;
    Command cmd;
  };
  struct ReplySlot {
    std::uint32_t client = 0;
    CommandResult result;
  };
  std::vector<RequestSlot> request_slots;
  std::vector<std::uint32_t> request_free;
  std::vector<ReplySlot> reply_slots;
  std::vector<std::uint32_t> reply_free;
  std::map<std::uint64_t, CommandResult> scripted_results;

  // Faults.
  bool faults_on = false;
  std::vector<FaultAction> fault_actions;
  std::vector<ActivePartition> partitions;
  std::vector<bool> in_amnesia;
  std::vector<bool> armed_sync_crash;  // the next sync of this region gets a crash inside it

  // Liveness.
  bool liveness = false;
  bool finished = false;
  std::uint64_t heal_ms = 0;
  std::uint64_t last_progress_ms = 0;
  std::uint64_t progress_mark = 0;
  std::uint32_t diverged_checks = 0;
  std::optional<std::uint64_t> converged_ms;
  Hlc finality_target;  // every replica's stable frontier must pass this (the newest op at
                        // convergence)
  std::vector<std::pair<RegionId, RegionId>> final_cut;
  // Scripted loss (Simulation::Lose): per directed link (from * regions + to), messages arriving
  // before this instant are lost.
  std::vector<std::uint64_t> lose_until_ms;

  // Checkers.
  std::deque<AckRecord> acks;  // one per acknowledged op: a deque for the reason of `attempts`
  std::vector<std::size_t> originated_scratch;                       // SeeApplied's output, reused
  std::vector<std::pair<std::size_t, std::string>> encoded_scratch;  // ReleaseSends', reused

  // Report.
  std::vector<report::TimelineSpan> timeline;
  std::vector<report::ClockSample> clocks;
  std::map<std::uint32_t, SampleSeries> samples;  // by account index

  RunSummary summary;
  std::uint64_t now = 0;
  std::optional<Failure> failure;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_SIMULATION_INTERNAL_H_
