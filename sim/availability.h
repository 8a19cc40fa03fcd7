// Availability under a full split: how much of an account's money the regions can still spend,
// each on its own, when every link is cut at once — the figure docs/performance.md reports and
// tests/sim/availability_test.cc bounds (issue 10: at least 90 % whatever the moment of the cut).
//
// A trial runs the real replica in a Simulation with a fixed one-way delay on every link: an
// account opened at r0 with an overdraft limit split evenly across the regions and funded at r0,
// then clients at the other regions spending small amounts (demand away from the rights, so rights
// must move), then every link cut at a drawn moment. Once the split has settled (past the peer
// timeout and every rights wait), each region's own view says what it can spend alone: its rights
// less its credit not yet final, plus its line, never below zero. The share is their sum over the
// balance the regions agree on once healed plus the lines. Rights in flight when the links died
// are what the share loses. Every trial also passes the simulator's checkers.
//
// The first-debit probe: a funded account without a line, all its rights at r0, and one debit of
// a hundredth of the balance at r1 once the account is settled — accepted (rights asked of r0
// and waited for) or refused, and after how many virtual ms.
//
// Deterministic: the same parameters give the same figures. Single-threaded.
#ifndef TALLY_SIM_AVAILABILITY_H_
#define TALLY_SIM_AVAILABILITY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"

namespace tally::sim {

struct AvailabilityParams {
  std::uint64_t seed = 1;
  RegionId regions = 3;
  std::uint32_t trials = 40;
  std::uint32_t delay_ms = 1;       // one way, on every link
  std::uint64_t max_cut_ms = 1200;  // the cut falls in [0, max_cut_ms] after the demand starts
};

struct AvailabilityTrial {
  std::uint64_t cut_ms = 0;  // after the demand started
  Amount spendable = 0;      // summed over the regions, each alone
  Amount total = 0;          // balance once healed, plus the lines
  bool ok = true;            // every checker held
  std::string failure;
};

struct AvailabilityFigures {
  AvailabilityParams params;
  std::vector<AvailabilityTrial> trials;
  double min_share = 0, mean_share = 0;  // spendable / total
  bool first_debit_ok = false;
  std::string first_debit_status;    // the refusal, if refused
  std::uint64_t first_debit_ms = 0;  // from submit to answer (virtual)
  bool ok = true;                    // every trial's checkers held
};

AvailabilityFigures MeasureAvailability(const AvailabilityParams& params);

// A few lines: the parameters, min and mean share, the first debit's outcome.
std::string FormatAvailability(const AvailabilityFigures& figures);

}  // namespace tally::sim

#endif  // TALLY_SIM_AVAILABILITY_H_
