// Money: amounts are int64 minor units (cents, satoshis), never floating point. Every sum that can
// grow goes through the checked helpers here, which refuse instead of wrapping.
//
// Bounds that make whole-account sums provably safe: a single op moves at most kMaxOpAmount, and a
// region refuses an op that would take any of its own counters (its credits, its debits, the rights
// it handed out) past kMaxCounter. With at most kMaxRegions regions every balance, rights figure
// and fee computed from those counters fits in int64 (16 × 2^58 < 2^63).

#ifndef TALLY_CORE_MONEY_H_
#define TALLY_CORE_MONEY_H_

#include <cstdint>

namespace tally {

using Amount = std::int64_t;

inline constexpr Amount kMaxOpAmount = Amount{1} << 50;  // ~1.1e15 minor units per op
inline constexpr Amount kMaxCounter = Amount{1} << 58;   // per-region counter cap

// Each returns false (and leaves *out unspecified) when the exact result does not fit.
inline bool CheckedAdd(Amount a, Amount b, Amount* out) {
  return !__builtin_add_overflow(a, b, out);
}
inline bool CheckedSub(Amount a, Amount b, Amount* out) {
  return !__builtin_sub_overflow(a, b, out);
}

// ceil(amount * bps / 10000) for amount >= 0, in 128-bit so no intermediate overflows.
inline bool BasisPointsCeil(Amount amount, std::uint32_t bps, Amount* out) {
  if (amount < 0) return false;
  __int128 v = static_cast<__int128>(amount) * bps;
  v = (v + 9999) / 10000;
  if (v > INT64_MAX) return false;
  *out = static_cast<Amount>(v);
  return true;
}

}  // namespace tally

#endif  // TALLY_CORE_MONEY_H_
