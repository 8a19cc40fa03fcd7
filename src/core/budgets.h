// Budgets in a hierarchy (docs/design.md, "Budgets in a hierarchy"): the rules that read an
// account's ancestors — whether an account about to be opened may name its parent, the accounts a
// debit of a cap account debits, and the ancestors a fallback may take the money from. Pure
// functions over the configs this replica holds; whether rights cover a debit is the desk's
// (core/command_desk.h). A budget debit carries the accounts it debits (Op::payers), so what it
// did never depends on a hierarchy that a concurrent open could still change.
//
// Not thread-safe: they read the account book.

#ifndef TALLY_CORE_BUDGETS_H_
#define TALLY_CORE_BUDGETS_H_

#include <string>
#include <vector>

#include "core/account_book.h"
#include "core/status.h"

namespace tally {

// Whether `c`, about to be opened, may name its parent: open here, another account, of the same
// currency, the new account no deeper than kMaxBudgetDepth (a root is at depth 1), and no cycle.
Status CheckParent(AccountBook& book, const AccountConfig& c);

// The ancestors of open account `id` as held here, nearest first; at most kMaxBudgetDepth - 1,
// stopping at one that is not open here.
std::vector<std::string> Ancestors(AccountBook& book, const std::string& id);

// The accounts a debit of open account `id` debits: `id`, then its parent while the account is a
// cap (a cap is spent inside its parent's money). An error when one of them is not open here.
Status CapPath(AccountBook& book, const std::string& id, std::vector<std::string>* path);

}  // namespace tally

#endif  // TALLY_CORE_BUDGETS_H_
