// node::ParseOpenAccountBody: the body of POST /v1/accounts from a client.
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  node::AccountDefaults defaults;
  defaults.currency = "USD";
  defaults.overdraft_limit = 300;
  defaults.fee = FeePolicy{5, 20};
  AccountConfig sentinel;
  sentinel.id = "sentinel";
  AccountConfig c = sentinel;
  const Status s = node::ParseOpenAccountBody(fuzz::Bytes(data, size), defaults, &c);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument);
    FUZZ_CHECK(c == sentinel);
    return 0;
  }
  // Every field written out in full parses back to the same account.
  const nlohmann::json j = {{"id", c.id},
                            {"currency", c.currency},
                            {"overdraft_limit", c.overdraft_limit},
                            {"fee", {{"flat", c.fee.flat}, {"bps", c.fee.bps}}}};
  AccountConfig back;
  FUZZ_CHECK(node::ParseOpenAccountBody(j.dump(), node::AccountDefaults{}, &back).ok());
  FUZZ_CHECK(back == c);
  return 0;
}
