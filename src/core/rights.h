// Rights: the money rules of one region's allowance, as pure functions of figures the replica
// reads — the debit decision of the brief, and the rebalancing plan that moves surplus rights
// toward the regions that need them. No state, no I/O; the replica gathers the figures, asks, and
// carries out the answer. Safe from any thread.

#ifndef TALLY_CORE_RIGHTS_H_
#define TALLY_CORE_RIGHTS_H_

#include <vector>

#include "core/types.h"

namespace tally {

// What a debit is decided on, at the region that takes it.
struct DebitFigures {
  Amount amount = 0;     // the debit
  Amount rights = 0;     // the region's effective rights
  Amount tentative = 0;  // of which credit not yet final (spendable only within the line)
  Amount line = 0;       // the overdraft line usable now (0 until the account's open is final)
  Amount spendable() const { return rights - tentative; }
};

enum class DebitVerdict {
  kAccept,     // rule 1: spendable rights cover it
  kWait,       // rule 2: ask peers for rights or wait for credits to turn final, if that can help
  kOverdraft,  // rule 3: spendable rights plus the line cover it: accepted, flagged
  kReject,     // rule 4: insufficient funds
};

// The debit rules (core/replica.h). With `may_wait` false (the wait is over, or cannot help),
// never kWait. `skip_rights_check` is the planted bug that accepts anything.
DebitVerdict DecideDebit(const DebitFigures& f, bool may_wait, bool skip_rights_check);

// Whether our tentative credit, once final, would let the debit through: a wait for finality
// can help.
bool FinalityCouldCover(const DebitFigures& f);

// One account's rebalancing round at region `self`.
struct RebalanceInput {
  RegionId self = 0;
  std::vector<Amount> demand;  // per region: its debits since its demand mark
  std::vector<Amount> rights;  // per region: effective rights
  std::vector<bool> live;      // per region: rights may move toward it now
  Amount tentative = 0;        // our credit not yet final: never given away
  Amount overdraft_limit = 0;
  Amount in_flight = 0;  // our rights given on this account, not yet acknowledged
};

struct RebalancePlan {
  struct Give {
    RegionId to = 0;
    Amount amount = 0;
  };
  enum class Mark { kKeep, kAll, kServed };  // how a region's demand mark moves
  std::vector<Give> gives;                   // in this order
  std::vector<Mark> marks;                   // per region
  std::vector<Amount> served;                // per region, for kServed: demand the give served
  bool done = true;                          // false: a need is left for the next round
};

// Rights in flight may be stranded by a cut, so they go only to live peers, a step toward a
// spender is at most kRebalanceDemandRounds of its last round's debits, and the account's rights in
// flight stay within 1/kRebalanceInFlightDivisor of balance plus lines.
RebalancePlan PlanRebalance(const RebalanceInput& in);

// Rights the rebalancer may have in flight per account: this share of balance plus lines. A split
// strands rights in flight until the heal, so this bounds what any cut moment can take from what
// the regions can spend alone (issue 10: at least 90 % stays spendable).
inline constexpr Amount kRebalanceInFlightDivisor = 20;  // 5 %
// A step toward a region that spends is at most this many times its debits over the last round:
// enough to keep it answering at its observed rate until the next round.
inline constexpr Amount kRebalanceDemandRounds = 2;

}  // namespace tally

#endif  // TALLY_CORE_RIGHTS_H_
