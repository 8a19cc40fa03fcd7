#include "core/rights_broker.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <vector>

#include "core/ids.h"
#include "core/index_set.h"
#include "core/money.h"
#include "core/rights.h"

namespace tally {
namespace {

constexpr std::size_t kMaxRebalanceTransfersPerTick = 256;

}  // namespace

RightsBroker::RightsBroker(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock,
                           OpLog& log, AccountBook& book, const PeerTable& peers,
                           ReplicaStats& stats)
    : opt_(opt),
      wall_(wall),
      clock_(clock),
      log_(log),
      book_(book),
      peers_(peers),
      stats_(stats),
      n_(static_cast<RegionId>(opt.regions.size())) {}

// ---- asking and answering -----------------------------------------------------------------------

// A peer that is only "reachable" may be past a cut we have not noticed yet: only live ones are
// asked.
bool RightsBroker::RequestRights(Account& a, Amount shortfall, std::uint64_t now, Effects* out,
                                 std::uint64_t* wait_ms) {
  // The desk asks only for a debit its spendable rights do not cover (DecideDebit's kWait).
  assert(shortfall > 0 && "rights requested for a debit already covered");
  std::vector<std::pair<Amount, RegionId>> holders;
  for (RegionId r = 0; r < n_; ++r) {
    if (r == opt_.self || !peers_.Live(r, now)) continue;
    const Amount rr = book_.FreeRights(a, r);
    if (rr > 0) holders.emplace_back(-rr, r);
  }
  if (holders.empty()) return false;
  std::sort(holders.begin(), holders.end());
  Amount asked = 0;
  for (const auto& [neg, r] : holders) {
    if (asked >= shortfall) break;
    const Amount ask = std::min(shortfall - asked, -neg);
    out->send.push_back(Outbound{r, RightsRequest{a.config.id, ask}});
    ++stats_.rights_requests_sent;
    asked += ask;
    *wait_ms = std::max(*wait_ms, peers_.RightsWaitMs(r));
  }
  return true;
}

bool RightsBroker::OnRightsRequest(RegionId from, const RightsRequest& rq,
                                   const ReplicaPhase& phase, std::uint64_t now, Effects* out) {
  if (phase.rejoining) return false;  // we originate nothing until we know our own log is whole
  if (!ValidateAccountId(rq.account).ok() || !ValidateAmount(rq.amount).ok()) return false;
  Account* a = book_.Find(rq.account);
  if (!a || !a->open) return false;
  // Its request reached us, but rights sent over a link we cannot see working may be stranded.
  if (!peers_.Live(from, now)) return false;
  const Amount mine = book_.SpendableRights(*a);
  if (mine <= 0) return false;
  if (!GiveRights(*a, from, std::min(mine, rq.amount), phase, out)) return false;
  ++stats_.rights_granted;
  return true;
}

// Originates a transfer of `amount` of our rights on `a` to `to` and counts it in flight until
// `to` acknowledges it. False, and nothing changes, when it would break a counter cap.
bool RightsBroker::GiveRights(Account& a, RegionId to, Amount amount, const ReplicaPhase& phase,
                              Effects* out) {
  // The seam's contract: something, to another region of the cluster. The replica drops a
  // message from an unknown region or from us, the request's amount is validated, and a plan gives
  // only positive amounts to other regions.
  assert(to < n_ && to != opt_.self && amount > 0 && "rights given to no other region");
  Op op = NewOwnOp(OpKind::kRights, a.config.id, phase, opt_.self, log_, clock_, wall_);
  op.to = to;
  op.amount = amount;
  const Seq seq = op.dot.seq;
  if (!ApplyOp(op, /*write_keys=*/phase.rejoining, &book_, &log_, out).ok()) return false;
  RightsInFlight& f = rights_in_flight_[{book_.IndexOf(a), to}];
  f.seq = seq;
  if (!CheckedAdd(f.amount, amount, &f.amount)) f.amount = std::numeric_limits<Amount>::max();
  return true;
}

// Rights we gave on `a` that their recipients have not acknowledged yet; forgets the ones they
// have.
Amount RightsBroker::RightsInFlightOn(const Account& a) {
  const std::uint32_t idx = book_.IndexOf(a);
  Amount sum = 0;
  for (auto it = rights_in_flight_.lower_bound({idx, 0});
       it != rights_in_flight_.end() && it->first.first == idx;) {
    if (peers_.at(it->first.second).acked.get(opt_.self) >= it->second.seq) {
      it = rights_in_flight_.erase(it);
      continue;
    }
    if (!CheckedAdd(sum, it->second.amount, &sum)) sum = std::numeric_limits<Amount>::max();
    ++it;
  }
  return sum;
}

// ---- rebalancing --------------------------------------------------------------------------------

// Only ever gives from this region: the donor is the only one that can originate a transfer.
void RightsBroker::Rebalance(const ReplicaPhase& phase, std::uint64_t now, Effects* out) {
  std::size_t made = 0;
  IndexSet visiting;  // giving applies ops: what they touch lands in the emptied touched set
  visiting.swap(book_.touched());
  IndexSet again;  // accounts with a need we could not serve this round
  for (std::uint32_t idx : visiting.sorted()) {
    if (made >= kMaxRebalanceTransfersPerTick) {
      again.insert(idx);
      continue;
    }
    Account& a = book_.at(idx);
    if (!a.open) continue;
    if (!RebalanceAccount(a, phase, now, out, &made)) again.insert(idx);
  }
  book_.touched().swap(again);
}

// One account's round; false when a need is left for the next round. demand_mark[r] is how many
// of r's debits were served: a step of g serves g / kRebalanceDemandRounds of them, so demand a
// step could not cover (budget, peer not live) counts again next round, and served demand never
// moves rights twice.
bool RightsBroker::RebalanceAccount(Account& a, const ReplicaPhase& phase, std::uint64_t now,
                                    Effects* out, std::size_t* made) {
  RebalanceInput in;
  in.self = opt_.self;
  in.demand.resize(n_);
  in.rights.resize(n_);
  in.live.resize(n_);
  for (RegionId r = 0; r < n_; ++r) {
    in.demand[r] = a.counters.debits(r) - a.demand_mark[r];
    in.rights[r] = book_.FreeRights(a, r);
    in.live[r] = r != opt_.self && peers_.Live(r, now);
  }
  in.tentative = book_.TentativeCredit(a);
  in.overdraft_limit = a.config.overdraft_limit;
  in.in_flight = RightsInFlightOn(a);
  RebalancePlan plan = PlanRebalance(in);
  for (const RebalancePlan::Give& g : plan.gives) {
    if (!GiveRights(a, g.to, g.amount, phase, out)) {  // a counter cap: try again next round
      plan.marks[g.to] = RebalancePlan::Mark::kKeep;
      plan.done = false;
      continue;
    }
    ++*made;
    ++stats_.rebalance_transfers;
  }
  for (RegionId r = 0; r < n_; ++r) {
    if (plan.marks[r] == RebalancePlan::Mark::kAll) {
      a.demand_mark[r] = a.counters.debits(r);
    } else if (plan.marks[r] == RebalancePlan::Mark::kServed) {
      a.demand_mark[r] = std::min(a.counters.debits(r), a.demand_mark[r] + plan.served[r]);
    }
  }
  return plan.done;
}

}  // namespace tally
