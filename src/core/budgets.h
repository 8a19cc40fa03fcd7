// Budgets in a hierarchy (docs/design.md, "Budgets in a hierarchy"): the rules that read an
// account's ancestors — whether an account about to be opened may name its parent, the accounts a
// debit of a cap account debits, and the ancestors a fallback may take the money from. Pure
// functions over the configs this replica holds; the figures a debit is decided on (rights, credit
// not yet final, line) come from the caller, the command desk (core/command_desk.h). A budget debit
// carries the accounts it debits (Op::payers), so what it did never depends on a hierarchy that a
// concurrent open could still change.
//
// Not thread-safe: they read the account book.

#ifndef TALLY_CORE_BUDGETS_H_
#define TALLY_CORE_BUDGETS_H_

#include <functional>
#include <string>
#include <vector>

#include "core/account_book.h"
#include "core/replica_types.h"
#include "core/rights.h"
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

// Who pays a debit `cmd` of account `a` through its budgets: the first of the candidates — `a`
// and, with a fallback, its ancestors that `cmd.may_pay` allows, nearest first — whose whole cap
// path covers the amount here, each account from its own figures (a fallback's from spendable
// rights alone, so it never overdraws one account while an ancestor has money; a cap's with its
// line); for a cap that asked for a fallback and found none, its own path with the line. OK with
// the path (and whether a line was needed), or why the last candidate fell short.
// `figures(account, line)`: the account's figures for this debit here, its line only with `line`.
struct BudgetChoice {
  Status status;
  std::vector<std::string> path;
  bool overdraft = false;
};
using BudgetFigures = std::function<DebitFigures(Account&, bool line)>;
BudgetChoice ChooseBudgetPath(AccountBook& book, const Account& a, const Debit& cmd,
                              const BudgetFigures& figures, const PlantedBugs& bugs);

}  // namespace tally

#endif  // TALLY_CORE_BUDGETS_H_
