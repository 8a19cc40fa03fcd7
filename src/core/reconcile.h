// Deterministic reconciliation of forks: a pure function of an account's set of ops.
//
// Replay the ops in canonical order (hlc, origin, seq). The balance replayed is the effective one:
// credits − debits − fees + voids. A debit that takes it from >= 0 to < 0 opens an overdraft
// episode and is charged the policy's fee (flat + ceil(bps × overdrawn / 10 000), overdrawn
// measured right after that debit); the episode closes when the balance is >= 0 again. Every op
// that carries an idempotency key already carried by a canonically earlier op of the account is
// voided: it has no effect on the replayed balance, and the void is booked as a derived refund (a
// voided debit) or clawback (a voided credit). Fees and voids are booked to the region that
// originated the op they concern (for the capture of a hold, the hold's region), so Σ effective
// rights = effective balance. Resolutions of a hold share a key: the canonically first wins.
//
// No region originates a derived entry, so every replica that holds the same ops derives the same
// fees and voids, whatever order the ops arrived in.

#ifndef TALLY_CORE_RECONCILE_H_
#define TALLY_CORE_RECONCILE_H_

#include <cstdint>
#include <vector>

#include "core/types.h"

namespace tally {

// Replay state after a prefix of the canonical order. Small and cheap to copy: the replica keeps
// one at the stable frontier (the checkpoint) and one at the end of what it holds.
struct ReplayState {
  Amount balance = 0;        // effective balance replayed so far
  bool in_episode = false;   // inside an overdraft episode
  std::vector<Amount> fees;  // per region: fees booked to that region
  std::vector<Amount>
      voids;           // per region, signed: + refund of a voided debit, − clawback of a credit
  Amount refunds = 0;  // Σ refunds of voided debits (the floor I2 counts them as reversed)
  std::uint64_t episodes = 0;  // overdraft episodes opened
  std::uint64_t ops = 0;       // ops replayed

  explicit ReplayState(RegionId regions = 0) : fees(regions, 0), voids(regions, 0) {}
  Amount total_fees() const;
  Amount total_voids() const;  // signed
  bool operator==(const ReplayState&) const = default;
};

// What replay needs of one op. A capture of a hold replays as a debit booked to the hold's region
// (its money was reserved there); holds and releases move no money.
struct ReplayEntry {
  CanonicalKey key;
  OpKind kind = OpKind::kCredit;
  Amount amount = 0;
  bool voided = false;  // a canonically earlier op of the account carries the same key
  // The region its money, fees and voids are booked to: the origin, unless set (a capture: the
  // hold's region).
  static constexpr RegionId kOrigin = ~RegionId{0};
  RegionId booked = kOrigin;
  RegionId region() const { return booked == kOrigin ? key.origin : booked; }
};

enum class DerivedKind : std::uint8_t { kOverdraftFee = 1, kVoid = 2 };

// One derived entry, with the numbers that explain it.
struct DerivedEvent {
  DerivedKind kind = DerivedKind::kOverdraftFee;
  CanonicalKey op;  // the crossing debit, or the voided op
  OpKind op_kind = OpKind::kDebit;
  Amount op_amount = 0;
  Amount amount = 0;     // the fee (0 under a fee-free policy: the crossing is still an event),
                         // or the void (signed as booked)
  Amount overdrawn = 0;  // kOverdraftFee: how far below zero the crossing debit took the balance
  Amount balance_after = 0;
  bool operator==(const DerivedEvent&) const = default;
};

// Applies one op, next in canonical order, to `s`; appends what it derived to `events` if given.
// Fees saturate instead of overflowing (the counter caps make that unreachable in practice).
void ReplayStep(const FeePolicy& policy, const ReplayEntry& e, ReplayState* s,
                std::vector<DerivedEvent>* events);

struct Reconciliation {
  ReplayState state;
  std::vector<DerivedEvent> events;  // in canonical order
};

// Reconciles an account's ops given in any order (duplicates by dot are ignored). The reference
// implementation: the replica computes the same result incrementally.
Reconciliation Reconcile(const FeePolicy& policy, RegionId regions, std::vector<Op> ops);

}  // namespace tally

#endif  // TALLY_CORE_RECONCILE_H_
