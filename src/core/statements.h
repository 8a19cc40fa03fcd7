// Statement lines (StatementLine, core/replica_types.h): what one journal entry of an account
// shows on the account's statement, made from the entry, the op it came from and what replaying
// it derived. AccountBook makes them while it replays: final ones as it folds, tentative ones when
// asked for a statement.
//
// Pure functions; thread-safe.

#ifndef TALLY_CORE_STATEMENTS_H_
#define TALLY_CORE_STATEMENTS_H_

#include <span>
#include <string>

#include "core/account.h"
#include "core/reconcile.h"
#include "core/replica_types.h"

namespace tally {

// Whether an entry of this kind is a line: every kind but a rights move (which moves none of the
// account's money, only the right to spend it from one region to another).
bool IsStatementEntry(OpKind entry_kind);

// The line of journal entry `e` of `account`, replayed to `balance_after` with `events` derived
// from it; `op` is the op it came from (null if the log no longer holds it: the line then lacks
// the op's key, counterparty and kind, and says the entry's kind).
StatementLine MakeStatementLine(const std::string& account, const JournalEntry& e, bool final,
                                Amount balance_after, std::span<const DerivedEvent> events,
                                const Op* op);

}  // namespace tally

#endif  // TALLY_CORE_STATEMENTS_H_
