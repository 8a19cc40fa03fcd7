// Counters: the per-account join-semilattice of the brief. Every entry is incremented by exactly
// one region (P[r], N[r] and row T[r][*] by r), so entries only grow and join is a pointwise max:
// no clock, no coordination, and joins commute, associate and are idempotent. One exception: the
// capture of a hold adds to N of the hold's region whatever region takes it (the money was
// reserved there). Replicas apply each op once, by its dot, and never join counter states, so
// their counters stay exact sums; Join holds only for states whose entries keep one writer.
//
//   balance   = ΣP − ΣN
//   rights(r) = P[r] + Σ_s T[s][r] − Σ_s T[r][s] − N[r]        (Σ_r rights(r) = balance)
//
// Mutators change this value and return the delta: a Counters holding only the entry they changed,
// so join(state, delta) reproduces the mutation anywhere (delta-state CRDT). Not thread-safe.

#ifndef TALLY_CORE_COUNTERS_H_
#define TALLY_CORE_COUNTERS_H_

#include <vector>

#include "core/money.h"
#include "core/status.h"
#include "core/types.h"

namespace tally {

class Counters {
 public:
  explicit Counters(RegionId regions = 0);

  RegionId regions() const { return n_; }
  Amount credits(RegionId r) const { return p_[r]; }
  Amount debits(RegionId r) const { return d_[r]; }
  Amount transferred(RegionId from, RegionId to) const { return t_[from * n_ + to]; }
  Amount given(RegionId r) const;     // Σ_s T[r][s]
  Amount received(RegionId r) const;  // Σ_s T[s][r]

  Amount balance() const;           // ΣP − ΣN
  Amount rights(RegionId r) const;  // raw rights of r (before derived fees and voids)
  Amount total_credits() const;
  Amount total_debits() const;
  // How much more Credit(r, ·) or Debit(r, ·) may add before the counter cap refuses it: a
  // transfer between accounts checks both of its counters before it changes either.
  Amount credit_room(RegionId r) const { return kMaxCounter - p_[r]; }
  Amount debit_room(RegionId r) const { return kMaxCounter - d_[r]; }

  // Mutators for the owning region `r`. They refuse (ResourceExhausted) an increment that would
  // take the counter past kMaxCounter and leave the state unchanged. The amount must be > 0.
  Status Credit(RegionId r, Amount x, Counters* delta);
  Status Debit(RegionId r, Amount x, Counters* delta);
  Status Transfer(RegionId from, RegionId to, Amount x, Counters* delta);

  // Pointwise max. Both sides must have the same region count (or one of them 0, the bottom).
  void Join(const Counters& other);

  bool operator==(const Counters&) const = default;

 private:
  RegionId n_;
  std::vector<Amount> p_, d_, t_;  // t_ is n_×n_, row-major: t_[from*n_ + to]
};

}  // namespace tally

#endif  // TALLY_CORE_COUNTERS_H_
