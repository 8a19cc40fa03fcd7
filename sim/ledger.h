// Ledger: the simulator's own record of every op an origin made durable, and the oracle that judges
// the replicas against it.
//
// "The union of all originated ops" of the invariants is, concretely, every op some region synced
// as its own: once an origin's store holds an op, that op exists, whatever happens to the region
// afterwards — unless a disk fault takes it: when every durable copy of an op was on disks that
// were wiped or rolled back before any other region kept it, the op is gone, and its origin may
// issue its seq again. The host then truncates the ledger to what some region still holds
// (Truncate). A transfer between accounts is one op with two sides: the ledger books it in the
// payer's account as a debit of its origin and in the payee's as a credit of its origin (each side
// naming the other), under the payer's key alone: when that key voids it, both sides are voided —
// the payer refunded, the payee clawed back, each booked to the op's origin. The ledger receives
// ops as their origins sync them and keeps, per account:
//   - per-origin prefix sums of credits, debits and rights handed out (a transfer's sides among
//     the debits of its payer and the credits of its payee), so the raw counters a replica must
//     hold for any version vector can be recomputed independently (I3);
//   - every use of each idempotency key in canonical order (a transfer's use counts on its payer
//     only), so the ops voided as duplicates —
//     a use with a canonically earlier use of its key less than the retention before it (wall
//     time of the HLCs), every use counting, voided or not — and so the refunds owed for voided
//     debits and the clawbacks of voided credits are known at every instant (I2, I6);
//   - the ops themselves, so the oracle can replay them in canonical order at the end and derive
//     fees and voids on its own (I7);
//   - per budget debit (kBudgetDebit: a debit of the account named, paid through its budgets), a
//     debit side in each payer's account, all of its origin, and, when the account named is not
//     among the payers (a fallback an ancestor paid), a marker in that account that moves no
//     money. The account named holds the key; its void refunds every payer;
//   - per hold (an op of kind kHold, named by its dot), the hold op and every resolution of it
//     (kCapture, kRelease). A hold moves no money; a capture of y is a debit of y booked to the
//     HOLD's region, whichever region originated it; a release moves nothing. Resolutions carry
//     the key HoldKey(hold), so the windowed key rule voids every resolution but the canonically
//     first; a hold voided as a duplicate of its client key voids every resolution of it too (a
//     voided capture is refunded to the hold's region). The ledger checks, as ops come in, that
//     no capture takes more than its hold, that client resolutions are stamped before the hold's
//     expiry, that a release at expiry comes from the hold's region after it and never loses to
//     another resolution (its region freed the funds: no resolution may still arrive), and that a
//     resolution names its hold's account.
// Nothing here calls the core's reconciliation code: the oracle is a second, independent reading
// of the rules in core/reconcile.h. Not thread-safe.

#ifndef TALLY_SIM_LEDGER_H_
#define TALLY_SIM_LEDGER_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/reconcile.h"
#include "core/types.h"

namespace tally::sim {

inline constexpr std::uint32_t kNoOtherSide = UINT32_MAX;

struct LedgerOp {
  CanonicalKey canonical;
  OpKind kind = OpKind::kCredit;
  RegionId to = 0;
  Amount amount = 0;
  std::string key;               // a transfer's sides both carry it; it is the payer's
  std::uint64_t durable_ms = 0;  // virtual time its origin synced it
  std::uint64_t epoch = 0;       // the incarnation of its origin that issued it
  // kTransfer: the side in the payee's account (`incoming`) or in the payer's, and the other side:
  // its account (Ledger::AccountId) and its index in that account's ops.
  // kBudgetDebit: `incoming` marks a payer's side in another account than the one named (which
  // holds the key; other_account/other_op name its side); `pays` is false on the named account's
  // marker only; `group` indexes Ledger::budget_groups_ (every side of the op).
  // (One per durable op side, a million and more in a long run: the flags sit together, the
  // hold's `expired` among them, rather than each padded to eight bytes.)
  std::uint32_t other_account = kNoOtherSide;
  std::uint32_t other_op = kNoOtherSide;
  std::uint32_t group = kNoOtherSide;
  bool incoming = false;
  bool pays = false;
  // Holds. kHold: the wall time from which it can no longer be resolved. kCapture, kRelease: the
  // hold they resolve, its amount as the op carries it, and (kRelease) whether the hold's region
  // released it at expiry.
  bool expired = false;
  std::uint64_t expires_ms = 0;
  Dot hold;
  Amount held = 0;
  // The region its money is booked to: the hold's region for a capture, else its origin.
  RegionId booked() const { return kind == OpKind::kCapture ? hold.origin : canonical.origin; }
};

// Holds over every account, from the ops and the void rule as the ledger applies it (the run
// summary).
struct HoldTotals {
  std::uint64_t holds = 0, holds_voided = 0;  // durable hold ops; voided as duplicates of a key
  std::uint64_t captured = 0, released = 0, expired = 0;  // holds so resolved (surviving winner)
  std::uint64_t open = 0;                                 // neither voided nor resolved
  std::uint64_t resolutions = 0;  // durable captures and releases (expiry releases included)
  // Resolutions of holds that are not voided, voided because another resolution of the same hold
  // came first: two regions resolved one hold at once (a fork).
  std::uint64_t conflicts = 0;
  Amount amount_captured = 0;
};

// A hold's fate by the oracle's replay (HoldView::State).
struct OracleHold {
  std::uint64_t expires_ms = 0;
  Amount amount = 0;
  bool placed = false;  // the hold op is among the durable ops
  bool voided = false;
  Dot winner;  // the winning resolution (seq 0: none)
  OpKind resolution = OpKind::kRelease;
  Amount captured = 0;
  bool expired = false;
  std::uint64_t surviving = 0;    // resolutions not voided (must be <= 1)
  Amount surviving_captured = 0;  // Σ of surviving captures (must be <= amount)
};

// What a replica holding exactly the ops of some version vector shows of an account's holds
// (Ledger::HoldFigures): the open holds (AccountView::held) and, per region, bounds on what its
// holds still reserve (RegionView::reserved) at a stable frontier.
struct HoldFigures {
  Amount held = 0;
  std::vector<Amount> reserved_min;  // a hold whose winning resolution may still change reserves
  std::vector<Amount> reserved_max;  // at most: every hold not voided, less what its winner took
  std::uint64_t holds = 0;           // holds placed among those ops
};

// Money over every account, from the ops and the void rule as the ledger applies it when ops
// become durable (not from the oracle's replays, which FinalChecks compares with it).
struct MoneyTotals {
  Amount credits = 0, debits = 0;  // surviving (unvoided) credits and debits: money in and out
  Amount transferred = 0;          // surviving transfers between accounts: moved, not made
  std::uint64_t transfers = 0, transfers_voided = 0;
  // Budget debits: durable ones, voided ones, those an ancestor paid (a fallback), those that
  // debited more than one account (a cap); the debits of each payer are among `debits`.
  std::uint64_t budget_debits = 0, budget_voided = 0, budget_fallbacks = 0, budget_caps = 0;
};

// Raw counters of one account as a replica holding ops up to some version vector must see them.
struct RawView {
  Amount balance = 0;          // ΣP − ΣN
  std::vector<Amount> rights;  // raw rights per region
  bool opened = false;         // the open op is covered
};

// What the oracle derives for one account from every durable op.
struct OracleAccount;
// The effective balance over the ops of `o` below frontier `f`: what a region whose frontier is f
// must show as final (AccountView::final_balance).
Amount FinalBalance(const OracleAccount& o, Hlc f);

struct OracleAccount {
  AccountConfig config;
  Amount raw_balance = 0;
  Amount balance = 0;  // effective: raw − fees + voids
  Amount fees = 0;
  Amount voids = 0;  // signed: + refunds, − clawbacks
  std::uint64_t episodes = 0;
  std::vector<Amount> region_fees, region_voids, region_rights;  // rights effective
  std::vector<DerivedEvent> events;                              // canonical order
  std::uint64_t ops = 0;
  // Per op in canonical order: its timestamp and the effective balance before it. The final
  // balance below a frontier F is the balance before the first op at or above F (FinalBalance).
  std::vector<std::pair<Hlc, Amount>> balance_before;
  // I6: the most surviving debits of one key less than the retention apart; must be <= 1.
  std::uint64_t surviving_debits_max_per_key = 0;
  // Every hold of the account (by the hold op's dot) and what the replay decides of it.
  std::map<Dot, OracleHold> holds;
};

class Ledger {
 public:
  // `retention_ms`: the idempotency retention window every region runs with (default: keys bind
  // forever, as before retention existed).
  explicit Ledger(RegionId regions, std::uint64_t retention_ms = UINT64_MAX);

  // An op its origin has just made durable. Returns "" or a description of the violation found:
  // a seq reused for a different op or skipped (I4), the effective floor crossed (I2), a key
  // originated twice by one region less than the retention apart (I6).
  std::string AddDurable(const Op& op, std::uint64_t now_ms);

  // I2, the effective floor, over every durable op with voided ops removed (fees aside: they are
  // debt on top), for every account in id order: per region r
  //   raw rights(r) + refunds of r's voided debits − clawbacks of r's voided credits ≥ −O[r],
  // and per account Σ surviving credits − Σ surviving debits ≥ −ΣO. "" or the first violation.
  // AddDurable checks this as it goes; this is the same check over everything, for the end.
  std::string CheckFloors() const;

  // Forgets every op of origin o above held[o]: no region holds them any more (their only durable
  // copies went with a disk). Returns the dots forgotten, in (origin, seq) order. The rest is
  // rebuilt in the order it became durable, so it reads as if the forgotten ops never existed;
  // run CheckFloors afterwards.
  std::vector<Dot> Truncate(const VersionVector& held);
  // The last op forgotten under `dot` (nullptr if none): kept in case a copy comes back — a
  // message sent before the disk went, a snapshot with it in a checkpoint — and with it the op.
  // Only meaningful while the dot is not durable (another op may be durable under it now).
  const Op* Forgotten(Dot dot) const;
  // Every op forgotten under `dot`, oldest first: a seq issued again and forgotten again leaves
  // two, and a restored disk may bring back either (swarm seed 1932 with --keys-per-account).
  const std::vector<Op>* ForgottenAll(Dot dot) const;

  // The op durably originated with `dot`, or nullptr (a transfer: its payer's side; a budget
  // debit: the side of the account named).
  const LedgerOp* Find(Dot dot, std::string* account = nullptr) const;
  // The id of the account with ledger index `index` (LedgerOp::other_account).
  const std::string& AccountId(std::uint32_t index) const { return accounts_[index].config.id; }
  // Totals over every account: conservation across accounts (FinalChecks): the sum of the
  // oracle's balances must be credits − debits − fees, transfers cancelling.
  MoneyTotals Totals() const;
  HoldTotals HoldCounts() const;
  // What a replica holding exactly the ops of `vv` (durable ones; the caller leaves out its own
  // unsynced holds and resolutions) with stable frontier `frontier` must show of the holds of
  // `account`: the open holds' total, and per region the least and the most its holds reserve.
  bool HoldFiguresAt(const std::string& account, const VersionVector& vv, Hlc frontier,
                     HoldFigures* out) const;
  // The retention window (ms) the void rule uses.
  std::uint64_t retention_ms() const { return retention_ms_; }
  // Highest seq each origin made durable.
  const VersionVector& durable() const { return durable_; }
  std::uint64_t op_count() const { return op_count_; }
  // The newest timestamp of any durable op.
  Hlc newest() const { return newest_; }

  // Raw counters of `account` over the ops of each origin o with seq <= vv[o] (only durable ops are
  // known here; the caller adds what its region holds unsynced).
  bool Raw(const std::string& account, const VersionVector& vv, RawView* out) const;
  // The overdraft line of `region` for `account` (0 when unknown).
  Amount Line(const std::string& account, RegionId region) const;

  // Accounts in id order; the oracle's verdict on one.
  std::vector<std::string> Accounts() const;
  bool Oracle(const std::string& account, OracleAccount* out) const;

  // Every durable op of `account` in the order its origins synced them (nullptr if none); a
  // transfer is in both its accounts' lists, one side each, a budget debit in each payer's and
  // the named account's.
  const std::vector<LedgerOp>* Ops(const std::string& account) const;

  // The accounts a budget debit debited, in its order (its side `op` in any of them).
  std::vector<std::string> PayersOf(const LedgerOp& op) const;

  // Refunds of voided debits booked to `region` on `account`, as of now.
  Amount Refunds(const std::string& account, RegionId region) const;
  // Clawbacks of voided credits booked to `region` on `account`, as of now.
  Amount Clawbacks(const std::string& account, RegionId region) const;

 private:
  struct Prefix {
    Seq seq;
    Amount total;
  };
  struct KeyUses {
    std::map<CanonicalKey, std::uint32_t> uses;  // canonical order -> index into ops
    std::map<RegionId, Hlc> newest_own;          // per origin, its newest use of the key
  };
  // A hold and its resolutions, by op index; the hold op may come after a resolution of it (ops
  // reach the ledger as their origins sync them, and a revived hold comes back late).
  struct HoldBook {
    std::uint32_t op = kNoOtherSide;         // the hold op
    std::vector<std::uint32_t> resolutions;  // in the order they became durable
  };
  struct Account {
    AccountConfig config;
    CanonicalKey opened;
    bool has_config = false;
    std::vector<Amount> lines;
    std::vector<LedgerOp> ops;
    std::vector<std::vector<Prefix>> credits, debits;  // per origin
    std::vector<std::vector<Prefix>> transfers;        // per origin × n + to
    std::vector<std::vector<Prefix>> captures;  // per origin × n + the hold's region (booked to)
    std::map<Dot, HoldBook> holds;              // by the hold's dot
    std::vector<Amount> rights;                 // raw rights per region over every durable op
    std::vector<Amount> refunds;                // voided debits, per region
    std::vector<Amount> clawbacks;              // voided credits, per region
    Amount surviving_credits = 0, surviving_debits = 0;  // Σ over unvoided ops
    std::unordered_map<std::string, KeyUses> keys;       // looked up only, never iterated
    std::vector<bool> voided;                            // by op index
    std::vector<std::pair<std::uint32_t, AccountConfig>> open_configs;  // op index, config
  };

  std::uint32_t IndexFor(const std::string& id);  // creates the account if new
  const Account* FindAccount(const std::string& id) const;
  static Amount UpTo(const std::vector<Prefix>& v, Seq seq);
  Op OpAt(Dot d) const;  // the durable op under `d`, rebuilt
  // Books the void of op `index` of account `ai`: a refund of a debit or a clawback of a credit;
  // of a transfer both, the refund to its payer and the clawback from its payee. Returns the
  // account a clawback lowered the floor of (the one kind of void that does), else kNoOtherSide.
  std::uint32_t Void(std::uint32_t ai, std::uint32_t index);
  // Marks op `index` of account `ai` voided and books it (Void); a hold takes every resolution of
  // it with it. Returns what Void returns for the op itself. Sets *problem if an expiry release
  // is voided (its region freed the funds while a resolution could still win).
  std::uint32_t VoidOp(std::uint32_t ai, std::uint32_t index, std::string* problem);
  // "" or what is wrong with resolution `res` of hold `hold` (both ops of account `a`).
  std::string CheckResolution(const Account& a, const LedgerOp& hold, const LedgerOp& res) const;
  // Whether the key voids the op whose side `in` is in another account than the key's (a
  // transfer's payee side, a budget debit's ancestor side): the windowed rule, read again from
  // the uses of the key in the account that holds it (other_account; the oracle's replay).
  bool KeyOwnerVoids(const LedgerOp& in) const;
  // Adds to account `into` the side of op `index` of account `owner` (which holds its key): a copy
  // marked `incoming` that names the owner's side. Returns its index in `into`'s ops.
  std::uint32_t AddSide(std::uint32_t into, std::uint32_t owner, std::uint32_t index);

  // "" or "I2 floor: <the numbers>" for region r's effective floor, and for the account's.
  std::string CheckFloor(const Account& a, RegionId r) const;
  std::string CheckAccountFloor(const Account& a) const;

  // True when a use at `later` is within the window of one at `earlier`.
  bool Within(Hlc earlier, Hlc later) const {
    return later.wall_ms() - earlier.wall_ms() < retention_ms_;
  }

  RegionId n_;
  std::uint64_t retention_ms_;
  std::unordered_map<std::string, std::uint32_t> account_index_;  // lookups only; Accounts() sorts
  std::vector<Account> accounts_;
  // Per origin, by seq - 1: (account index, op index) of each durable op.
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> by_dot_;
  std::vector<Dot> order_;  // every durable op, in the order it became durable (for Truncate)
  std::vector<std::map<Seq, std::vector<Op>>>
      forgotten_;                              // per origin: ops Truncate dropped, by seq
  std::map<Dot, std::uint32_t> hold_account_;  // every hold seen (op or resolution): its account
  // Per budget debit: its payers' sides (account index, op index), in payer order.
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> budget_groups_;
  VersionVector durable_;
  std::uint64_t op_count_ = 0;
  Hlc newest_;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_LEDGER_H_
