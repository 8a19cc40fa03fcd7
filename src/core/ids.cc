#include "core/ids.h"

#include <string>

namespace tally {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

Status ValidateAccountId(std::string_view id) {
  if (id.empty()) return Status::InvalidArgument("account id is empty");
  if (id.size() > kMaxAccountIdBytes)
    return Status::InvalidArgument("account id is longer than " +
                                   std::to_string(kMaxAccountIdBytes) + " bytes");
  for (char c : id) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
      return Status::InvalidArgument("account id may contain only letters, digits and . _ : -");
  }
  return Status::OK();
}

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("idempotency key is empty");
  if (key.size() > kMaxIdempotencyKeyBytes)
    return Status::InvalidArgument("idempotency key is longer than " +
                                   std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
  for (char c : key) {
    if (c < 0x21 || c > 0x7e)
      return Status::InvalidArgument("idempotency key may contain only printable ASCII, no spaces");
  }
  return Status::OK();
}

Status ValidateRegionName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("region name is empty");
  if (name.size() > kMaxRegionNameBytes)
    return Status::InvalidArgument("region name is longer than " +
                                   std::to_string(kMaxRegionNameBytes) + " bytes");
  if (!(name[0] >= 'a' && name[0] <= 'z'))
    return Status::InvalidArgument("region name must start with a lower-case letter");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return Status::InvalidArgument("region name may contain only a-z, 0-9 and -");
  }
  return Status::OK();
}

Status ValidateCurrency(std::string_view currency) {
  if (currency.size() != 3) return Status::InvalidArgument("currency must be a 3-letter code");
  for (char c : currency) {
    if (c < 'A' || c > 'Z') return Status::InvalidArgument("currency must be 3 upper-case letters");
  }
  return Status::OK();
}

Status ValidateAmount(Amount amount, std::string_view what) {
  if (amount <= 0) return Status::InvalidArgument(std::string(what) + " must be positive");
  if (amount > kMaxOpAmount)
    return Status::InvalidArgument(std::string(what) + " exceeds the maximum of " +
                                   std::to_string(kMaxOpAmount));
  return Status::OK();
}

}  // namespace tally
