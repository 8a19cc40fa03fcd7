// Validation of names that come from outside: account ids, idempotency keys, region names,
// currencies and amounts. Each returns InvalidArgument naming the problem, so bad input is refused
// at the edge of the core before it can reach state or storage.

#ifndef TALLY_CORE_IDS_H_
#define TALLY_CORE_IDS_H_

#include <string_view>

#include "core/money.h"
#include "core/status.h"

namespace tally {

inline constexpr std::size_t kMaxAccountIdBytes = 64;
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 255;
inline constexpr std::size_t kMaxRegionNameBytes = 32;

// 1..64 bytes of [A-Za-z0-9._:-].
Status ValidateAccountId(std::string_view id);
// 1..255 bytes of printable ASCII without spaces (0x21..0x7e).
Status ValidateIdempotencyKey(std::string_view key);
// 1..32 bytes of [a-z0-9-], starting with a letter.
Status ValidateRegionName(std::string_view name);
// Three upper-case ASCII letters.
Status ValidateCurrency(std::string_view currency);
// 1..kMaxOpAmount; `what` names the field in the message ("amount").
Status ValidateAmount(Amount amount, std::string_view what = "amount");

}  // namespace tally

#endif  // TALLY_CORE_IDS_H_
