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
