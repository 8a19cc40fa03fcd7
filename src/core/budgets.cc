#include "core/budgets.h"

namespace tally {

namespace {
const Account* OpenHere(AccountBook& book, const std::string& id) {
  const Account* a = book.Find(id);
  return a && a->open ? a : nullptr;
}
}  // namespace

Status CheckParent(AccountBook& book, const AccountConfig& c) {
  if (c.parent.empty()) return Status::OK();
  const Account* p = OpenHere(book, c.parent);
  if (!p) return Status::NotFound("parent account '" + c.parent + "' does not exist here");
  if (p->config.currency != c.currency)
    return Status::InvalidArgument("parent account '" + c.parent + "' is in " + p->config.currency +
                                   ", not " + c.currency);
  // Walk up from the parent: the new account sits one level below it.
  std::size_t depth = 2;
  for (const Account* up = p; !up->config.parent.empty(); up = OpenHere(book, up->config.parent)) {
    if (up->config.parent == c.id)
      return Status::InvalidArgument("parent '" + c.parent + "' would make a cycle through '" +
                                     c.id + "'");
    if (++depth > kMaxBudgetDepth) break;
    if (!OpenHere(book, up->config.parent))
      return Status::FailedPrecondition("ancestor '" + up->config.parent + "' of parent '" +
                                        c.parent + "' is not open here");
  }
  if (depth > kMaxBudgetDepth)
    return Status::InvalidArgument("parent '" + c.parent + "' would put '" + c.id +
                                   "' deeper than " + std::to_string(kMaxBudgetDepth) + " levels");
  return Status::OK();
}

namespace {

// Whether a debit of `from` is covered here by every account it debits (CapPath), each on its own
// figures; `overdraft` says whether a line was needed.
BudgetChoice CoveredPath(AccountBook& book, const std::string& from, Amount amount, bool line,
                         const BudgetFigures& figures, const PlantedBugs& bugs) {
  BudgetChoice c;
  c.status = CapPath(book, from, &c.path);
  for (std::size_t i = 0; c.status.ok() && i < c.path.size(); ++i) {
    if (i > 0 && bugs.cap_checks_named_only) break;
    Account& x = *book.Find(c.path[i]);
    const DebitFigures f = figures(x, line);
    const DebitVerdict v = DecideDebit(f, /*may_wait=*/false, bugs.skip_rights_check);
    if (v == DebitVerdict::kReject) {
      c.status = Status::InsufficientFunds(
          "debit of " + std::to_string(amount) + (i == 0 ? " from '" : " through '") + from +
          "': account '" + x.config.id + "' has spendable rights " + std::to_string(f.spendable()) +
          (line ? " plus its line " + std::to_string(f.line) : "") + " here" +
          (i > 0 ? " (a cap path debits every account on it)" : ""));
    }
    c.overdraft = c.overdraft || v == DebitVerdict::kOverdraft;
  }
  return c;
}

}  // namespace

BudgetChoice ChooseBudgetPath(AccountBook& book, const Account& a, const Debit& cmd,
                              const BudgetFigures& figures, const PlantedBugs& bugs) {
  std::vector<std::string> candidates{a.config.id};
  if (cmd.fallback) {
    for (std::string& up : Ancestors(book, a.config.id))
      if (!cmd.may_pay || cmd.may_pay(up)) candidates.push_back(std::move(up));
  }
  BudgetChoice c;
  for (const std::string& from : candidates) {
    c = CoveredPath(book, from, cmd.amount, /*line=*/!cmd.fallback, figures, bugs);
    if (c.status.ok()) return c;
  }
  if (cmd.fallback && a.config.cap)
    c = CoveredPath(book, a.config.id, cmd.amount, /*line=*/true, figures, bugs);
  return c;
}

std::vector<std::string> Ancestors(AccountBook& book, const std::string& id) {
  std::vector<std::string> out;
  const Account* a = OpenHere(book, id);
  while (a && !a->config.parent.empty() && out.size() + 1 < kMaxBudgetDepth) {
    a = OpenHere(book, a->config.parent);
    if (!a) break;
    out.push_back(a->config.id);
  }
  return out;
}

Status CapPath(AccountBook& book, const std::string& id, std::vector<std::string>* path) {
  path->clear();
  const Account* a = OpenHere(book, id);
  if (!a) return Status::NotFound("no account '" + id + "'");
  path->push_back(id);
  while (a->config.cap && path->size() < kMaxBudgetDepth) {
    const std::string& parent = a->config.parent;
    a = OpenHere(book, parent);
    if (!a)
      return Status::FailedPrecondition("cap account '" + path->back() + "' has parent '" + parent +
                                        "', which is not open here");
    for (const std::string& seen : *path)
      if (seen == parent) return Status::FailedPrecondition("caps of '" + id + "' form a cycle");
    path->push_back(parent);
  }
  return Status::OK();
}

}  // namespace tally
