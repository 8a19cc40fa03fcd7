// node::ParseTransferBody: the body of POST /v1/transfers (money between accounts).
#include <nlohmann/json.hpp>

#include "core/ids.h"
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
  // What it accepted, written back, parses to the same transfer.
  Transfer again;
  const nlohmann::json j = {{"from", t.from}, {"to", t.to}, {"amount", t.amount}};
  FUZZ_CHECK(node::ParseTransferBody(j.dump(), &again).ok());
  FUZZ_CHECK(again.from == t.from && again.to == t.to && again.amount == t.amount);
  return 0;
}
