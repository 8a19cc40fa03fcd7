// RightsBroker: the rights traffic between regions on behalf of this one — asking live peers for
// rights a waiting debit lacks, answering a peer's request by giving it some of ours, and
// rebalancing: moving our surplus rights toward regions whose rights are negative and toward
// regions that spend (core/rights.h, PlanRebalance: the broker gathers its figures and carries out
// the plan).
//
// It originates its transfers through the account book and the op log it is given
// (core/origination.h) and knows nothing of the command desk or the replica: the desk asks it for
// rights (RequestRights) and gets back whether to wait and for how long; the replica routes a
// peer's request to it and pushes to the peer when it answers that it gave some, and runs the
// rebalancing round on its timer. What it reads of the replica's own state comes in with each call
// as a ReplicaPhase.
//
// Owns our rights transfers not yet acknowledged by their recipients (in flight, and stranded if
// the link dies), which bound what rebalancing may send. Not thread-safe; the replica's thread
// only.

#ifndef TALLY_CORE_RIGHTS_BROKER_H_
#define TALLY_CORE_RIGHTS_BROKER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

#include "core/account_book.h"
#include "core/hlc.h"
#include "core/messages.h"
#include "core/op_log.h"
#include "core/origination.h"
#include "core/peer_table.h"
#include "core/replica_types.h"
#include "core/wall_clock.h"

namespace tally {

class RightsBroker {
 public:
  // Every reference must outlive the broker; the replica owns them all.
  RightsBroker(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock, OpLog& log,
               AccountBook& book, const PeerTable& peers, ReplicaStats& stats);
  RightsBroker(const RightsBroker&) = delete;
  RightsBroker& operator=(const RightsBroker&) = delete;

  // Asks live peers that hold rights on `a` for `shortfall` (> 0), largest holder first, until what
  // they are known to hold covers it; raises *wait_ms to how long to wait for their transfers.
  // False, and asks nothing, when no live peer holds any.
  bool RequestRights(Account& a, Amount shortfall, std::uint64_t now, Effects* out,
                     std::uint64_t* wait_ms);

  // A peer asks for rights on an account. True when we gave some (the replica pushes to it).
  bool OnRightsRequest(RegionId from, const RightsRequest& rq, const ReplicaPhase& phase,
                       std::uint64_t now, Effects* out);

  // Moves our surplus rights toward regions whose rights are negative and toward regions that
  // spend (core/rights.h, PlanRebalance), on the accounts touched since the last round.
  void Rebalance(const ReplicaPhase& phase, std::uint64_t now, Effects* out);

 private:
  // A rights transfer of ours not yet acknowledged by its recipient: stranded if the link dies.
  struct RightsInFlight {
    Seq seq = 0;        // our newest transfer to that region on that account
    Amount amount = 0;  // everything given it on that account since its last ack covered
  };

  bool GiveRights(Account& a, RegionId to, Amount amount, const ReplicaPhase& phase, Effects* out);
  Amount RightsInFlightOn(const Account& a);
  bool RebalanceAccount(Account& a, const ReplicaPhase& phase, std::uint64_t now, Effects* out,
                        std::size_t* made);

  const ReplicaOptions& opt_;
  const WallClock& wall_;
  HybridClock& clock_;
  OpLog& log_;
  AccountBook& book_;
  const PeerTable& peers_;
  ReplicaStats& stats_;
  const RegionId n_;

  // (account, recipient) -> our rights transfers it has not acknowledged. Ordered: summed per
  // account by range.
  std::map<std::pair<std::uint32_t, RegionId>, RightsInFlight> rights_in_flight_;
};

}  // namespace tally

#endif  // TALLY_CORE_RIGHTS_BROKER_H_
