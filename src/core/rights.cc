#include "core/rights.h"

#include <algorithm>
#include <cassert>

namespace tally {

DebitVerdict DecideDebit(const DebitFigures& f, bool may_wait, bool skip_rights_check) {
  const Amount spendable = f.spendable();
  if (spendable >= f.amount) return DebitVerdict::kAccept;
  if (skip_rights_check) return DebitVerdict::kOverdraft;
  if (may_wait) return DebitVerdict::kWait;
  if (spendable + f.line >= f.amount) return DebitVerdict::kOverdraft;
  return DebitVerdict::kReject;
}

bool FinalityCouldCover(const DebitFigures& f) {
  return f.spendable() < f.rights && f.rights + f.line >= f.amount;
}

RebalancePlan PlanRebalance(const RebalanceInput& in) {
  const RegionId n = static_cast<RegionId>(in.rights.size());
  assert(in.demand.size() == n && in.live.size() == n && in.self < n);
  RebalancePlan plan;
  plan.marks.assign(n, RebalancePlan::Mark::kKeep);
  plan.served.assign(n, 0);
  Amount total_demand = 0;
  Amount total = 0;
  for (RegionId r = 0; r < n; ++r) {
    total_demand += in.demand[r];
    total += in.rights[r];
  }
  // Target share of each region: three quarters of the balance in proportion to recent demand,
  // one quarter spread evenly, so a region that was quiet for a round keeps some rights to answer
  // its next debit at once.
  auto target = [&](RegionId r) -> Amount {
    const __int128 by_demand = static_cast<__int128>(total) * 3 * in.demand[r] / (4 * total_demand);
    return static_cast<Amount>(by_demand) + total / (4 * static_cast<Amount>(n));
  };
  Amount spare = in.rights[in.self] - in.tentative;  // tentative credit is not given away
  const bool donor = spare > 0;
  if (total_demand > 0 && total > 0) spare -= target(in.self);
  const Amount budget = std::max<Amount>(
      1, (std::max<Amount>(total, 0) + in.overdraft_limit) / kRebalanceInFlightDivisor);
  Amount may_send = budget - in.in_flight;
  // Regions spending on their line first: their floor is at stake, a spender's is not.
  std::vector<RegionId> order;
  for (RegionId r = 0; r < n; ++r)
    if (r != in.self) order.push_back(r);
  std::stable_partition(order.begin(), order.end(), [&](RegionId r) { return in.rights[r] < 0; });
  for (RegionId r : order) {
    Amount want = in.rights[r] < 0 ? -in.rights[r] : 0;
    if (total_demand > 0 && total > 0 && in.demand[r] > 0)
      want =
          std::max(want, std::min(target(r) - in.rights[r], kRebalanceDemandRounds * in.demand[r]));
    // Small moves cost an op each and buy nothing.
    if (want <= 0 || (in.rights[r] >= 0 && want < std::max<Amount>(1, total / 100))) {
      plan.marks[r] = RebalancePlan::Mark::kAll;
      continue;
    }
    if (spare <= 0) {  // not ours to serve (we are no donor), or not now
      if (!donor) plan.marks[r] = RebalancePlan::Mark::kAll;
      continue;
    }
    if (!in.live[r] || may_send <= 0) {
      // Rights sent now could be stranded, or enough are in flight: next round.
      plan.done = false;
      continue;
    }
    const Amount give = std::min({want, spare, may_send});
    plan.gives.push_back({r, give});
    spare -= give;
    may_send -= give;
    plan.marks[r] = RebalancePlan::Mark::kServed;
    plan.served[r] = (give + kRebalanceDemandRounds - 1) / kRebalanceDemandRounds;
    if (give < want) plan.done = false;
  }
  return plan;
}

}  // namespace tally
