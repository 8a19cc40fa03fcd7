// The values a Replica (core/replica.h) takes and gives: its options and planted bugs, client
// commands and their results, the Effects of a call, what a store gives back on recovery, and the
// views and statistics read from it. Plain data, shared by the replica's collaborators
// (AccountBook, PeerTable, …) without their depending on the Replica class. Copyable; no
// synchronization of its own.

#ifndef TALLY_CORE_REPLICA_TYPES_H_
#define TALLY_CORE_REPLICA_TYPES_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/messages.h"
#include "core/status.h"
#include "core/types.h"

namespace tally {

// Deliberate defects the simulator switches on to prove it catches them (`tally-sim bugs`).
// All off in production; nothing but tally-sim and its tests sets them.
struct PlantedBugs {
  bool skip_rights_check = false;       // accept any debit, whatever the rights and line
  bool order_forks_by_arrival = false;  // reconcile in arrival order instead of canonical order
  bool forget_hlc_high_water = false;   // on recovery, restart the clock from the wall clock only
  bool drop_relayed_ops = false;        // gossip only our own ops, never relay other origins'
  bool ack_before_sync = false;  // let completions out before their ops are synced (CommitGate)
  bool spend_tentative_credit = false;  // count credits that are not yet final as spendable rights
  bool skip_rejoin = false;             // serve writes at once after a restart, whatever was lost
  bool expiry_decides_voids =
      false;  // a use of a key still in the index is voided, whatever its age
  bool wall_clock_deadlines = false;  // a waiting debit's deadline on the wall clock (issue 10)
  bool misreport_overdrawn = false;   // a fee event says the balance went 1 further below zero
  bool book_fee_elsewhere = false;    // an overdraft fee is booked to the next region, not its own
  bool spend_buffered_transfer =
      false;  // count rights handed to us but held beyond a gap (unapplied)
  bool void_transfer_payer_only =
      false;  // a void of a transfer between accounts reaches its payer only: money created
  bool release_reserve_early =
      false;  // a hold's reserve ends with a resolution seen, final or not: a release seen
              // before an earlier capture lets its region spend what the capture then takes
  bool cap_checks_named_only =
      false;  // a cap's debit checks the account named only, not the parents it debits too
  bool statement_without_fee =
      false;  // a statement line's balance after leaves out the overdraft fee it charged
};

struct ReplicaOptions {
  std::string cluster_id;
  std::vector<std::string> regions;  // names; the index is the RegionId
  RegionId self = 0;

  std::uint64_t max_clock_offset_ms = 500;
  std::uint64_t heartbeat_interval_ms = 100;
  std::uint64_t peer_timeout_ms = 1000;  // silent this long: unreachable
  // Upper bound of the wait for an on-demand rights transfer; the wait itself is two measured
  // round trips to the peers asked plus a little (all of this while none is measured yet).
  std::uint64_t rights_wait_ms = 500;
  std::uint64_t finality_wait_ms = 1000;    // bounded wait for this region's credits to turn final
  std::uint64_t replicated_wait_ms = 5000;  // Command::replicated: wait this long for a peer's ack
  // After Recover, originate nothing until a peer confirms which of our own ops exist. Off only
  // when an operator knows the store is whole and no peer can answer (a region running alone).
  bool rejoin_on_start = true;
  // How long a rejoining region waits for peers that have not answered, from the first answer of
  // a peer that is not rejoining itself; 0 (the default): for every peer, however long. A region
  // that resumes without a silent peer's answer fences off the own ops that only that peer holds
  // and no relay told of. That is not only a lost op: if one was a rights transfer to that peer
  // and the peer spent the rights, the peer is below its line once the fence reaches it (I2), and
  // the resumed region holds those rights again (swarm seed 303985). Nonzero trades that for
  // writes at a restarted region while some peer stays unreachable.
  std::uint64_t rejoin_wait_ms = 0;
  // Drawn by the host at every start (at random in tallyd, from the seed in tally-sim), below
  // kEpochNonceLimit: added to the epoch Recover picks, so that two starts from one restored copy
  // with the wall clock behind the copy's high-water mark do not pick the same epoch (then a
  // Hello of the earlier run would pass for an answer to the later one: swarm seed 305184).
  std::uint64_t epoch_nonce = 0;
  static constexpr std::uint64_t kEpochNonceLimit = std::uint64_t{1} << 20;
  std::uint64_t resend_after_ms = 500;  // re-send ops a peer has not acked after this
  std::uint64_t relay_delay_ms = 200;   // relay an origin's ops once a peer lags this long
  std::uint64_t rebalance_interval_ms = 1000;
  std::uint64_t hlc_lease_ms = 1000;            // persist the HLC high-water mark this far ahead
  std::uint64_t checkpoint_interval_ms = 1000;  // persist folded checkpoints (and prune) this often
  std::size_t max_batch_ops = 256;              // ops per OpBatch
  std::size_t max_inflight_ops = 8192;          // unacked ops per peer
  std::size_t max_pending_debits = 10000;       // debits waiting for rights
  std::size_t max_events_per_account = 256;     // derived events kept for reports, per account
  bool keep_statements = true;  // every Fold carries the statement lines it folded (Fold::lines)
  // Idempotency key retention: a use of a key voids only when a canonically earlier use of the key
  // lies less than this before it (wall time of the HLCs); a key unused for longer is forgotten
  // once the stable frontier is past its last use + retention. Every region of a cluster must use
  // the same value (it decides voids), and Hello carries it. docs/design.md, "Idempotency".
  std::uint64_t idempotency_retention_ms = 24 * 3600 * 1000;
  PlantedBugs bugs;

  // Checks names, counts and bounds; InvalidArgument naming the field otherwise.
  Status Validate() const;
};

struct OpenAccount {
  AccountConfig config;  // config.lines may be empty: the limit is split evenly across regions
};
// Credits, debits, transfers and holds may carry a client's note (core/types.h, Metadata): the
// op they originate carries it as given (checked by ValidateMemo and ValidateMetadata). A retry
// of one of them is answered with its original op whatever note the retry carries.
struct Credit {
  std::string account;
  Amount amount = 0;
  std::string key;  // idempotency key (required by the API; optional here)
  std::string memo;
  Metadata metadata;
};
struct Debit {
  std::string account;
  Amount amount = 0;
  std::string key;
  // Budgets (core/budgets.h): take the money from the first of the account and its ancestors
  // whose spendable rights here cover it, among those `may_pay` allows (the caller's RBAC; null:
  // any). If none does, it is a plain debit of `account`.
  bool fallback = false;
  std::function<bool(const std::string&)> may_pay;
  std::string memo;
  Metadata metadata;
};
struct TransferRights {
  std::string account;
  RegionId to = 0;
  Amount amount = 0;
  std::string key;  // idempotency key (optional): the same key and request move the rights once
};
// Money from one account to another: decided as a debit of `from` at this region (its rights, then
// its line; it may wait for rights like a debit), carried by one op that also credits `to`. Both
// accounts must be open and of one currency. The key is `from`'s.
struct Transfer {
  std::string from;
  std::string to;
  Amount amount = 0;
  std::string key;
  std::string memo;
  Metadata metadata;
};
// Two-phase holds (docs/design.md, "Two-phase holds"). A hold reserves `amount` of this region's
// rights on `account` for `expires_in_ms` (1..the idempotency retention): decided like a debit (its
// rights, then its line; it may wait for rights), it moves no money but leaves the available
// balance at once. A capture takes `amount` (<= the hold's; the rest is released) and a release
// gives it all back; either is taken at any region that holds the hold, at once, until it expires.
// Concurrent resolutions of one hold: the canonically first wins, the other is voided (a fork).
struct PlaceHold {
  std::string account;
  Amount amount = 0;
  std::string key;  // required
  std::uint64_t expires_in_ms = 0;
  std::string memo;
  Metadata metadata;
};
struct CaptureHold {
  Dot hold;
  Amount amount = 0;
};
struct ReleaseHold {
  Dot hold;
};
using CommandBody = std::variant<OpenAccount, Credit, Debit, TransferRights, Transfer, PlaceHold,
                                 CaptureHold, ReleaseHold>;

struct Command {
  std::uint64_t id = 0;  // the caller's handle; echoed in the CommandResult
  CommandBody body;
  // Durability "replicated": complete only once another region holds the op durably (its ack or
  // heartbeat, sent after its sync, says so), so losing this region's disk loses no op it
  // acknowledged. After replicated_wait_ms without that, completes with Unavailable although the
  // op stays (a retry with the same key answers it). Needs at least two regions.
  bool replicated = false;
};

struct CommandResult {
  std::uint64_t id = 0;
  Status status;
  Dot op;  // the op that carried it (for a replay, the original op)
  Hlc hlc;
  Amount balance = 0;        // effective (tentative) balance right after, as seen here
  Amount payee_balance = 0;  // a transfer: the payee's balance right after (0 on a replay)
  // A budget debit: the accounts debited, the one that paid first (empty: the account named
  // alone). On a replay, while the op is still held here.
  std::vector<std::string> payers;
  // Holds: the hold placed or resolved, its amount and expiry, and what a capture took.
  Dot hold;
  Amount held = 0;
  std::uint64_t expires_ms = 0;
  Amount captured = 0;
  // The op's note: as the command gave it, or on a replay the original op's, while it is still
  // held here (empty once it is folded away; the key record keeps no note).
  std::string memo;
  Metadata metadata;
  bool overdraft = false;  // accepted on the overdraft line
  bool replayed = false;   // the key was seen before: this is the stored result
  bool voided = false;     // a replay of an op of ours voided as a duplicate of `voided_by`
  Dot voided_by;           // the canonically earlier op (another region's) that kept the key
  // Set on insufficient_funds (and on accepted debits): the numbers behind the decision.
  Amount rights = 0;
  Amount overdraft_line = 0;
  Amount requested = 0;
  Amount tentative_credit = 0;  // part of `rights` that is credit not yet final (not spendable)
  // The account's line here while its open is not final (overdraft_line is then 0), and the
  // regions whose confirmation the open still waits for.
  Amount line_not_yet_usable = 0;
  std::vector<RegionId> line_waits_for;
  bool replicated = false;  // another region is known to hold `op` durably (or `op` is its own)
};

// Things an operator should hear about; never a reason to drop anything.
struct Notice {
  enum class Kind : std::uint8_t {
    kClockAhead,  // a peer's wall clock is off ours by more than max_clock_offset_ms, either way
    kPeerRefused,
    kSnapshotSent,
    kSnapshotInstalled,
    kRejoin,       // progress of a restarted region's rejoin (value: a seq of its own ops)
    kLostHistory,  // ops of a region's lost history refused or removed (value: how many)
  };
  Kind kind = Kind::kClockAhead;
  RegionId region = 0;
  std::int64_t value = 0;  // kClockAhead: its wall clock minus ours, in ms
  std::string text;
};

struct Outbound {
  RegionId to = 0;
  Message msg;
};

// One line of an account's statement (docs/design.md, "Statements"): an op as it touched the
// account, in canonical order, with what replay derived from it and the effective balance after
// it. A transfer is a line in each of its accounts; a budget debit a line in each payer's and, for
// a fallback, one that moves no money in the account named. Rights moves between regions are not
// lines: they move none of the account's money. Final lines are the same on every replica.
struct StatementLine {
  std::string account;
  CanonicalKey key;
  OpKind kind = OpKind::kCredit;  // the op's kind (kTransfer on both sides)
  // What the op did to this account's balance before fees and voids: − money out, + money in, 0
  // for an open, a hold, a release or a budget debit's marker. `amount` is the op's own.
  Amount change = 0;
  Amount amount = 0;
  bool voided = false;    // a duplicate of an earlier use of its key: undone by `void_amount`
  bool final = false;     // below the stable frontier: will never change
  bool crossing = false;  // took the balance below zero: an overdraft episode began, `fee` charged
  Amount fee = 0;
  Amount void_amount = 0;  // signed as booked: + refund of a voided debit, − clawback of a credit
  Amount balance_after = 0;     // effective: after the op, its fee and its void
  std::string idempotency_key;  // the client's (empty for a hold's resolution, whose key is made)
  std::string counterparty;     // a transfer's other account; a budget debit's account named, or
                                // for its marker the account that paid
  Dot hold;                     // a hold's own dot; a capture's or release's hold
  std::string memo;             // the op's note (Op::memo, Op::metadata)
  Metadata metadata;
  bool operator==(const StatementLine&) const = default;
};
// A run of lines that grows at the back: a deque, so a fold of many ops never moves the lines
// already made (each is ~250 bytes with strings).
using StatementLines = std::deque<StatementLine>;

// Checkpoints of the accounts folded since the last Fold, valid at `frontier`: persist them, the
// frontier and the log floor atomically (one batch); ops at or below log_floor may then be deleted
// from storage. Emitted every checkpoint_interval_ms while the frontier moves.
struct Fold {
  Hlc frontier;
  VersionVector log_floor;
  std::vector<AccountCheckpoint> checkpoints;  // only the accounts that changed
  // The statement lines folded since the last Fold (ReplicaOptions::keep_statements), in fold
  // order: each account's lines in canonical order, accounts interleaved. History the host may
  // keep. Part of the same atomic batch, so a line is stored exactly when its op's fold is.
  StatementLines lines;
};

// Names one stored idempotency record (the store's key for it).
struct KeyRecordId {
  std::string account;
  KeyHash key;
  bool displaced = false;
  auto operator<=>(const KeyRecordId&) const = default;
};

struct Effects {
  std::vector<Op> ops;  // newly applied ops, local and remote, in apply order
  // Idempotency records to delete: keys past their retention window (the stable frontier is past
  // their last use + retention, so no use that could be compared with them can still arrive).
  // Emitted with the Fold whose frontier decided it. Delete these BEFORE writing `keys`: a key
  // forgotten and used again in one group commit must end up stored. Never names a record that
  // `keys` of the same Effects writes.
  std::vector<KeyRecordId> forget_keys;
  std::vector<KeyRecord> keys;  // idempotency records (new, or changed by a use)
  Hlc high_water;               // zero: unchanged
  // Every fence the replica knows (core/fence_book.h), when that changed: persist it in place of
  // the list stored before (empty: unchanged). A restarted replica then still knows where its
  // peers' incarnations resumed, and answers a rejoining region with them.
  std::vector<Fence> fences;
  std::optional<Fold> fold;
  std::vector<Outbound> send;
  std::vector<CommandResult> completions;
  std::vector<Notice> notices;
  // Set when a peer's snapshot replaced our state (we restarted behind what every peer still
  // retains). The host must replace everything it stores — ops, idempotency records, checkpoints,
  // frontier and log floor; not the high-water mark — with what this Effects carries, in the same
  // batch: `ops` is then the whole retained log, `keys` every record, `fold` every checkpoint
  // with the frontier and log floor they are valid at.
  bool replaces_store = false;

  bool needs_persist() const {
    return !ops.empty() || !keys.empty() || !forget_keys.empty() || !high_water.is_zero() ||
           !fences.empty() || fold || replaces_store;
  }
  void Clear();
};

// What a restarting replica read back from its store.
struct RecoveredState {
  Hlc high_water;
  std::vector<Fence> fences;
  Hlc frontier;
  VersionVector log_floor;
  std::vector<AccountCheckpoint> checkpoints;
  std::vector<Op> ops;  // the retained log, any order
  std::vector<KeyRecord> keys;
};

struct RegionView {
  Amount rights = 0;            // effective rights (fees and voids booked)
  Amount tentative_credit = 0;  // keyed credits of this region not yet final (part of rights)
  Amount overdraft_line = 0;
  Amount fees = 0;
  Amount voids = 0;
  Amount reserved = 0;  // what its open holds may still take (part of rights, not spendable)
};

struct AccountView {
  AccountConfig config;
  Amount balance = 0;        // effective, over every op held (tentative above the frontier)
  Amount final_balance = 0;  // effective, over the final prefix only
  Amount raw_balance = 0;    // ΣP − ΣN over every op held
  Amount held = 0;           // Σ open holds (placed, not resolved) over every op held
  Amount available = 0;      // balance − held
  bool tentative = false;    // ops above the frontier exist
  std::vector<RegionView> regions;
  Amount fees = 0;
  Amount voids = 0;
  std::uint64_t episodes = 0;
  Hlc frontier;
  // Overdraft lines count only once the account's open is final (docs/design.md, "Overdraft lines
  // of a new account"); until then, the regions whose confirmation it waits for.
  bool lines_usable = false;
  std::vector<RegionId> lines_wait_for;
  bool stale = false;        // this region is rejoining after a restart and may lack ops
  std::uint64_t digest = 0;  // equal on every replica holding the same ops
};

// One hold as this replica knows it (Replica::GetHold).
struct HoldView {
  enum class State : std::uint8_t { kOpen, kCaptured, kReleased, kExpired, kVoided };
  std::string account;
  Dot hold;
  Hlc hlc;  // when it was placed
  Amount amount = 0;
  std::uint64_t expires_ms = 0;
  State state = State::kOpen;
  Amount captured = 0;
  Dot resolved_by;     // the winning resolution, if any
  bool final = false;  // its state can no longer change
};
std::string_view HoldStateName(HoldView::State s);

struct PeerView {
  RegionId region = 0;
  bool reachable = false;
  std::uint64_t last_heard_ms = 0;
  VersionVector acked;
  std::int64_t clock_offset_ms = 0;  // peer wall clock minus ours, at its last heartbeat (its wall
                                     // time plus half the round trip; not an HLC difference)
  std::int64_t rtt_ms = -1;          // the last round trip measured over heartbeats (-1: none)
  std::uint64_t ops_behind = 0;      // ops we hold that it holds by no route we know of (its acks,
                                     // or what other peers relay that it holds)
};

struct ReplicaStats {
  std::uint64_t commands = 0;
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t overdraft_debits = 0;
  std::uint64_t holds_expired = 0;  // our holds released at expiry
  std::uint64_t replays = 0;
  std::uint64_t rights_requests_sent = 0;
  std::uint64_t rights_granted = 0;
  std::uint64_t rebalance_transfers = 0;
  std::uint64_t remote_ops_applied = 0;
  std::uint64_t duplicate_ops = 0;
  std::uint64_t buffered_ops = 0;  // held back now: beyond a gap, or for a fence (gauge)
  std::uint64_t ops_sent = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t snapshots_sent = 0;
  std::uint64_t clock_ahead_reports = 0;
  std::uint64_t lost_history_ops = 0;  // ops of a lost history refused, or removed once applied
  std::uint64_t idempotency_keys = 0;  // keys in the index now
  std::uint64_t idempotency_index_bytes = 0;   // memory the index holds for them now
  std::uint64_t idempotency_keys_expired = 0;  // keys forgotten past their retention window
};

// A fork, explained: a derived event with the ops that led to it.
struct ForkReport {
  DerivedEvent event;
  bool final = false;   // below the stable frontier: will never change
  std::vector<Op> ops;  // kOverdraftFee: the episode's debits so far; kVoid: both ops
};

}  // namespace tally

#endif  // TALLY_CORE_REPLICA_TYPES_H_
