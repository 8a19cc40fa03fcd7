// Account: one wallet as a replica holds it — its config, the CRDT counters of every op held, the
// final prefix folded below the stable frontier (counters, replay state, fork reports) and the
// journal of the ops above it in canonical order. Plain data, owned and kept consistent by
// AccountBook (core/account_book.h); the debits waiting for rights ride along (Replica decides
// them). Not thread-safe.

#ifndef TALLY_CORE_ACCOUNT_H_
#define TALLY_CORE_ACCOUNT_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/counters.h"
#include "core/reconcile.h"
#include "core/replica_types.h"
#include "core/types.h"

namespace tally {

// No counterpart: the entry is not one side of a transfer between accounts.
inline constexpr std::uint32_t kNoCounterpart = ~std::uint32_t{0};

// An op above the stable frontier, as the journal replays it. A transfer between accounts is two
// entries, one per account, with the op's key: a debit in the payer's journal and a credit in the
// payee's, each naming the other account (`counterpart`, a book index), so replay, fees and folding
// treat them as the debit and credit they are, and a void reaches both.
struct JournalEntry {
  CanonicalKey key;
  OpKind kind = OpKind::kCredit;  // kOpen, kCredit, kDebit or kRights; never kTransfer
  bool voided = false;
  bool keyed = false;  // carries an idempotency key: may be voided by a duplicate from elsewhere
  RegionId to = 0;
  std::uint32_t counterpart = kNoCounterpart;
  Amount amount = 0;
  ReplayEntry replay() const { return ReplayEntry{key, kind, amount, voided}; }
};

// A debit parked until rights arrive or credits turn final (Replica::Decide).
struct PendingDebit {
  std::uint64_t command_id = 0;
  Amount amount = 0;
  std::string key;
  std::uint64_t deadline_ms = 0;
  bool asked_rights = false;  // waits for a peer's transfer (else only for credits to turn final)
  std::string payee;          // a transfer between accounts: the account credited
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
};

}  // namespace tally

#endif  // TALLY_CORE_ACCOUNT_H_
