// Account: one wallet as a replica holds it — its config, the CRDT counters of every op held, the
// final prefix folded below the stable frontier (counters, replay state, fork reports) and the
// journal of the ops above it in canonical order. Plain data, owned and kept consistent by
// AccountBook (core/account_book.h); the debits waiting for rights ride along (Replica decides
// them). Not thread-safe.

#ifndef TALLY_CORE_ACCOUNT_H_
#define TALLY_CORE_ACCOUNT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/counters.h"
#include "core/reconcile.h"
#include "core/replica_types.h"
#include "core/types.h"

namespace tally {

// No counterpart: the entry is the only one of its op.
inline constexpr std::uint32_t kNoCounterpart = ~std::uint32_t{0};

// An op above the stable frontier, as the journal replays it. A transfer between accounts is two
// entries, one per account, with the op's key: a debit in the payer's journal and a credit in the
// payee's, each naming the other account (`counterpart`, a book index), so replay, fees and folding
// treat them as the debit and credit they are, and a void reaches both. A budget debit is a debit
// entry per payer and, if the account named did not pay (a fallback), a kBudgetDebit marker that
// moves no money in that account's journal; its entries name each other in a ring.
// A hold and its resolutions are entries of their own kinds; `to` is then the hold's region.
struct JournalEntry {
  CanonicalKey key;
  OpKind kind = OpKind::kCredit;  // any kind but kTransfer (kBudgetDebit: the marker only)
  bool voided = false;
  bool keyed = false;  // carries an idempotency key: may be voided by a duplicate from elsewhere
  RegionId to = 0;     // kRights: the region given rights; holds: the hold's region
  std::uint32_t counterpart = kNoCounterpart;
  Amount amount = 0;
  Seq hold_seq = 0;  // holds and resolutions: the hold is Dot{to, hold_seq}
  ReplayEntry replay() const {
    return ReplayEntry{key, kind, amount, voided,
                       kind == OpKind::kCapture ? to : ReplayEntry::kOrigin};
  }
};

// What a replica knows of a hold while its fate may still change or matter (AccountBook keeps it
// from its first op, the hold or a resolution, until the hold has expired below the stable
// frontier and its resolution is final). Its resolutions share a key (HoldKey), so the canonically
// first one wins by the key rule: `winner` is the winning one among those held.
struct HoldState {
  bool placed = false;  // the hold op is held (a resolution may arrive before it)
  bool placed_final = false;
  CanonicalKey at;  // the hold op
  Amount amount = 0;
  std::uint64_t expires_ms = 0;
  bool voided = false;  // a duplicate of another hold's key: it reserves and resolves nothing
  CanonicalKey winner;  // the winning resolution (seq 0: none yet)
  OpKind resolution = OpKind::kRelease;
  Amount captured = 0;   // of the winning resolution (0 for a release)
  bool expired = false;  // the winner is its region's release at expiry
  bool winner_final = false;
  std::vector<CanonicalKey> resolutions;  // above the frontier, to void with a voided hold
  bool resolved() const { return winner.seq != 0; }
  bool open() const { return placed && !voided && !resolved(); }
  // What it may still take from its region's rights beyond what the tip books: the whole amount
  // until it is resolved for good (an earlier capture may still win over a release seen first).
  Amount reserve() const {
    if (!placed || voided || winner_final) return 0;
    return amount - (resolved() ? captured : 0);
  }
};

// A debit parked until rights arrive or credits turn final (Replica::Decide).
struct PendingDebit {
  std::uint64_t command_id = 0;
  Amount amount = 0;
  std::string key;
  std::uint64_t deadline_ms = 0;
  bool asked_rights = false;  // waits for a peer's transfer (else only for credits to turn final)
  std::string payee;          // a transfer between accounts: the account credited
  std::uint64_t hold_ms = 0;  // a hold: how long it lasts (it reserves instead of debiting)
  std::string memo;           // the command's note, for the op it originates
  Metadata metadata;
};

struct Account {
  AccountConfig config;
  CanonicalKey opened;
  bool open = false;
  Counters counters;                  // every op held
  Counters final_counters;            // ops folded into the checkpoint
  ReplayState checkpoint;             // replay state at the stable frontier
  std::vector<JournalEntry> journal;  // ops above the frontier, canonical order
  std::vector<Amount> tentative;      // per origin: its keyed, unvoided credits in the journal
  ReplayState tip;                    // checkpoint + journal[0, tip_pos)
  std::size_t tip_pos = 0;
  std::deque<ForkReport> final_forks;
  std::vector<Amount> demand_mark;  // N[r] at the last rebalance
  std::deque<PendingDebit> pending;
  std::map<Dot, HoldState> holds;  // by the hold op's dot
  // Kept by AccountBook as holds change, so reading them costs nothing however many holds are
  // kept: per region, Σ reserve() of its holds; Σ amounts of open holds.
  std::vector<Amount> reserved;
  Amount held = 0;
};

}  // namespace tally

#endif  // TALLY_CORE_ACCOUNT_H_
