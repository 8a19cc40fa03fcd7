// node::ParseTransferBody: the body of POST /v1/transfers (money between accounts).
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/validate.h"
#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  Transfer t;
  t.amount = -1;
  const Status s = node::ParseTransferBody(fuzz::Bytes(data, size), &t);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument);
    FUZZ_CHECK(t.amount == -1 && t.from.empty() && t.to.empty());
    return 0;
  }
  FUZZ_CHECK(ValidateAccountId(t.from).ok() && ValidateAccountId(t.to).ok());
  FUZZ_CHECK(t.from != t.to);
  FUZZ_CHECK(t.amount >= 1 && t.amount <= kMaxOpAmount);
  FUZZ_CHECK(ValidateMemo(t.memo).ok() && ValidateMetadata(t.metadata).ok());
  // What it accepted, written back, parses to the same transfer, its note in the same order.
  Transfer again;
  nlohmann::ordered_json j = {{"from", t.from}, {"to", t.to}, {"amount", t.amount}};
  if (!t.memo.empty()) j["memo"] = t.memo;
  for (const auto& [key, value] : t.metadata) j["metadata"][key] = value;
  FUZZ_CHECK(node::ParseTransferBody(j.dump(), &again).ok());
  FUZZ_CHECK(again.from == t.from && again.to == t.to && again.amount == t.amount);
  FUZZ_CHECK(again.memo == t.memo && again.metadata == t.metadata);
  return 0;
}
