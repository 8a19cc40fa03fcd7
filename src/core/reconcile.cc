#include "core/reconcile.h"

#include <algorithm>
#include <set>
#include <string>

namespace tally {
namespace {

Amount SaturatingAdd(Amount a, Amount b) {
  Amount r;
  if (CheckedAdd(a, b, &r)) return r;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

}  // namespace

Amount ReplayState::total_fees() const {
  Amount s = 0;
  for (Amount f : fees) s = SaturatingAdd(s, f);
  return s;
}

Amount ReplayState::total_voids() const {
  Amount s = 0;
  for (Amount v : voids) s = SaturatingAdd(s, v);
  return s;
}

void ReplayStep(const FeePolicy& policy, const ReplayEntry& e, ReplayState* s,
                std::vector<DerivedEvent>* events) {
  ++s->ops;
  const RegionId origin = e.region();
  const bool debit = e.kind == OpKind::kDebit || e.kind == OpKind::kCapture;
  const bool no_money = e.kind == OpKind::kHold || e.kind == OpKind::kRelease ||
                        e.kind == OpKind::kBudgetDebit;  // a fallback's marker
  if (e.kind != OpKind::kCredit && !debit && !(no_money && e.voided)) return;

  if (e.voided) {
    // The op and its void cancel out in the effective balance; the void is booked to its origin.
    // A voided hold or release moves nothing back, but is a fork all the same.
    const Amount v = debit ? e.amount : no_money ? 0 : -e.amount;
    s->voids[origin] = SaturatingAdd(s->voids[origin], v);
    if (v > 0) s->refunds = SaturatingAdd(s->refunds, v);
    if (events) {
      events->push_back(
          DerivedEvent{DerivedKind::kVoid, e.key, e.kind, e.amount, v, 0, s->balance});
    }
    return;
  }

  if (e.kind == OpKind::kCredit) {
    s->balance = SaturatingAdd(s->balance, e.amount);
    if (s->in_episode && s->balance >= 0) s->in_episode = false;
    return;
  }

  const Amount before = s->balance;
  s->balance = SaturatingAdd(s->balance, -e.amount);
  if (before >= 0 && s->balance < 0) {
    const Amount overdrawn = -s->balance;
    Amount variable = 0;
    if (!BasisPointsCeil(overdrawn, policy.bps, &variable)) variable = INT64_MAX;
    const Amount fee = SaturatingAdd(policy.flat, variable);
    s->fees[origin] = SaturatingAdd(s->fees[origin], fee);
    s->balance = SaturatingAdd(s->balance, -fee);
    s->in_episode = true;
    ++s->episodes;
    if (events) {
      events->push_back(DerivedEvent{DerivedKind::kOverdraftFee, e.key, e.kind, e.amount, fee,
                                     overdrawn, s->balance});
    }
  } else if (s->balance < 0) {
    s->in_episode = true;
  }
}

Reconciliation Reconcile(const FeePolicy& policy, RegionId regions, std::vector<Op> ops) {
  std::sort(ops.begin(), ops.end(),
            [](const Op& a, const Op& b) { return a.canonical() < b.canonical(); });
  ops.erase(
      std::unique(ops.begin(), ops.end(), [](const Op& a, const Op& b) { return a.dot == b.dot; }),
      ops.end());
  Reconciliation r;
  r.state = ReplayState(regions);
  std::set<std::string> keys_seen;
  std::set<Dot> voided_holds;
  for (const Op& op : ops) {
    const bool resolution = IsHoldResolution(op.kind);
    ReplayEntry e{op.canonical(), op.kind, op.amount, false,
                  op.kind == OpKind::kCapture ? op.hold.origin : op.dot.origin};
    if (!op.key.empty()) e.voided = !keys_seen.insert(op.key).second;
    if (op.kind == OpKind::kHold && e.voided) voided_holds.insert(op.dot);
    if (resolution && voided_holds.count(op.hold)) e.voided = true;  // of a duplicate hold
    ReplayStep(policy, e, &r.state, &r.events);
  }
  return r;
}

}  // namespace tally
