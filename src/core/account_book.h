// AccountBook: every account a replica holds, and what applying an op does to one — counters,
// the journal above the stable frontier in canonical order, the uses of idempotency keys (kept by
// its KeyBook, core/key_book.h) and the voids they decide, folding below the frontier into
// checkpoints, and the figures read from all that (tip balance, effective rights, digest, forks).
// It decides nothing about whether to accept a command: Replica asks it (LookupKey,
// SpendableRights) and decides.
//
// It reads the op log (OpLog) only to name the ops behind a fork; it never calls back into the
// replica. Seams asserted (always on): the journal stays in canonical order (outside the planted
// bug that orders it by arrival), tentative credit never goes negative, and an account's
// effective rights always add up to its effective balance (Σ rights = balance).
//
// Not thread-safe.

#ifndef TALLY_CORE_ACCOUNT_BOOK_H_
#define TALLY_CORE_ACCOUNT_BOOK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/account.h"
#include "core/index_set.h"
#include "core/key_book.h"
#include "core/op_log.h"
#include "core/replica_types.h"
#include "core/status.h"

namespace tally {

class AccountBook {
 public:
  explicit AccountBook(const ReplicaOptions& opt);
  AccountBook(AccountBook&&) = default;
  AccountBook& operator=(AccountBook&&) = default;

  // ---- lookup ----
  Account* Find(std::string_view id);
  Account& GetOrCreate(const std::string& id);
  std::uint32_t IndexOf(const Account& a) const;
  Account& at(std::uint32_t index) { return accounts_[index]; }
  std::size_t size() const { return accounts_.size(); }
  bool IsOpen(std::string_view id) const;
  std::vector<std::string> OpenIds() const;  // sorted

  // ---- figures ----
  // The replay state over every op held (checkpoint + journal), brought up to date lazily.
  const ReplayState& Tip(Account& a);
  // Region r's rights: its counters' rights less the fees booked to it plus the voids credited.
  Amount EffectiveRights(Account& a, RegionId r);
  // Our credits that are not yet final: part of our rights, spendable only within the line.
  Amount TentativeCredit(const Account& a) const;
  // What region r's open holds on `a` may still take from its rights beyond what the tip books
  // (HoldState::reserve): not to be spent or given away.
  Amount Reserved(const Account& a, RegionId r) const { return a.reserved[r]; }
  // Effective rights less what holds reserve: what region r may decide on.
  Amount FreeRights(Account& a, RegionId r) { return EffectiveRights(a, r) - Reserved(a, r); }
  // What we may spend or give away without our line: free rights less tentative credit.
  Amount SpendableRights(Account& a) { return FreeRights(a, self_) - TentativeCredit(a); }
  // Σ amounts of the account's holds placed and not resolved (nor voided), as the tip has them.
  Amount Held(const Account& a) const { return a.held; }
  std::uint64_t Digest(Account& a);
  // The account's part of an AccountView: config, balances, per-region figures, digest.
  void FillView(Account& a, AccountView* v);
  // Final forks kept from folding, then the tentative ones above the frontier.
  void Forks(Account& a, const OpLog& log, std::vector<ForkReport>* forks);
  // The account's statement lines held in memory, in canonical order: the final ones folded but
  // not yet taken (TakeUnsavedLines), then the tentative ones above the frontier. Older final
  // lines are the host's (it stored them from earlier Folds).
  void Statement(Account& a, const OpLog& log, std::vector<StatementLine>* lines);

  // ---- applying ----
  // Applies `op` (the next of its origin) to its account, journal and key index; the op log is
  // the caller's. With `write_keys`, the op's key record goes to out->keys (another region's op,
  // or our own given back while we rejoin: our own are written once answered, SetKeyAnswer).
  // Returns an error, and changes nothing, if the op breaks a counter cap. `out` may be null.
  Status Apply(const Op& op, bool write_keys, Effects* out);
  // The answer to our own keyed op just applied: stored with its key and written to out->keys.
  void SetKeyAnswer(Dot op, Amount balance_after, Effects* out);

  // What a command's idempotency key says, inside the window of its last use (retry_at: the
  // earliest timestamp an op originated now could carry).
  using KeyLookup = KeyBook::Lookup;
  KeyLookup LookupKey(Account& a, const std::string& key, OpKind kind, Amount amount, RegionId to,
                      Hlc retry_at) const;

  // ---- holds ----
  // The hold `hold` and its account, if this replica knows it (it may be an orphan: a resolution
  // held before its hold; see HoldState::placed).
  bool FindHold(Dot hold, Account** account, const HoldState** state);
  // Our own holds that are open and expired below `frontier` (no capture can still arrive): ours
  // to release, in expiry order, each returned once.
  std::vector<std::pair<std::string, Dot>> TakeExpiredOwnHolds(Hlc frontier);

  // ---- folding ----
  // Folds every journal below `frontier` into its checkpoint, in memory.
  void FoldBelow(Hlc frontier, const OpLog& log);
  // The checkpoints folded since the last call.
  std::vector<AccountCheckpoint> TakeUnsaved();
  // The statement lines folded since the last call (ReplicaOptions::keep_statements), in fold
  // order: each account's lines in canonical order.
  StatementLines TakeUnsavedLines();
  // The checkpoint of every account whose open is below `frontier`: what a fold would store.
  std::vector<AccountCheckpoint> FinalCheckpoints(Hlc frontier) const;
  // Forgets keys past their window at `frontier`; their deletes and rewrites go to `out`.
  // Returns how many were forgotten.
  std::uint64_t SweepKeys(Hlc frontier, Effects* out);
  std::vector<KeyRecord> KeyRecords(bool with_displaced) const;
  std::size_t key_count() const { return keys_.size(); }
  std::size_t key_memory_bytes() const { return keys_.memory_bytes(); }

  // ---- loading ----
  // A stored or sent checkpoint, and key record. Corruption-worthy errors as InvalidArgument.
  Status LoadCheckpoint(const AccountCheckpoint& c);
  Status LoadKey(const KeyRecord& k);
  // Replaces every account, journal and key with `fresh`'s (a snapshot, or our own state rebuilt);
  // nothing is left to save or to rebalance, no statement line to hand over.
  void Adopt(AccountBook&& fresh);

  // Accounts debited since the last rebalancing round (Replica::Rebalance takes and refills it).
  IndexSet& touched() { return touched_; }

 private:
  struct StringHash {  // searches the index with a string_view without building a std::string
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // ReplayStep (core/reconcile.h), with the planted bugs that misreport or misbook a fee.
  void Step(const Account& a, const JournalEntry& e, ReplayState* s,
            std::vector<DerivedEvent>* events) const;
  void Invalidate(Account& a, std::size_t pos);
  Status ApplyTransfer(const Op& op, bool write_keys, Effects* out);
  Status ApplyBudgetDebit(const Op& op, bool write_keys, Effects* out);
  HoldState& HoldOf(Account& a, Dot hold);
  bool TrackHold(Account& a, const Op& op, const JournalEntry& e);
  void VoidHold(Account& a, Dot hold);
  void CountHold(Account& a, Dot dot, const HoldState& h, int sign);
  template <class Change>
  void ChangeHold(Account& a, Dot dot, Change&& change);  // every change that can move the sums
  void EraseHold(Account& a, Dot dot);
  void FoldHoldEntry(Account& a, const JournalEntry& e);
  void ForgetSettledHolds(Hlc frontier);
  std::size_t JournalPosition(const Account& a, const CanonicalKey& k) const;
  void InsertEntry(Account& a, std::size_t pos, const JournalEntry& e);
  bool UseKey(Account& a, const Op& op, bool write_keys, Effects* out);
  void VoidEntry(Account& a, std::size_t j);
  void MarkVoided(Account& a, std::size_t j);  // entry j alone
  bool IsTentativeCredit(const JournalEntry& e) const;
  void UntrackTentative(Account& a, const JournalEntry& e);
  std::size_t FindEntry(const Account& a, const CanonicalKey& k) const;
  void ReplayRange(Account& a, const OpLog& log, ReplayState* s, std::size_t begin, std::size_t end,
                   bool final, std::vector<ForkReport>* forks,
                   StatementLines* lines = nullptr) const;
  static AccountCheckpoint CheckpointOf(const Account& a);
  void CheckRightsAddUp(Account& a);

  RegionId n_;
  RegionId self_;
  PlantedBugs bugs_;
  std::size_t max_events_per_account_;
  std::uint64_t hold_retention_ms_;  // settled holds are kept this long after their expiry
  std::vector<Account> accounts_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>
      index_;     // lookups only; never iterated for output
  KeyBook keys_;  // idempotency: every account's keys, our displaced ops
  std::map<Dot, std::uint32_t> hold_accounts_;            // every HoldState's account
  std::set<std::pair<std::uint64_t, Dot>> expiries_;      // every placed HoldState, by expiry
  std::set<std::pair<std::uint64_t, Dot>> own_expiries_;  // ours not yet past their expiry
  IndexSet unsaved_;                                      // accounts folded since the last save
  bool keep_statements_;
  StatementLines unsaved_lines_;  // folded since the last save, in fold order
  IndexSet journaled_;            // accounts with ops above the frontier
  IndexSet touched_;              // accounts debited since the last rebalance
};

}  // namespace tally

#endif  // TALLY_CORE_ACCOUNT_BOOK_H_
