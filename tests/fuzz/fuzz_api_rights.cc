// node::ParseRightsBody: the body of POST /v1/accounts/{id}/rights, in a region "eu" of a
// cluster eu, us, ap.
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  const std::vector<std::string> regions = {"eu", "us", "ap"};
  RegionId to = 99;
  Amount amount = -1;
  const Status s = node::ParseRightsBody(fuzz::Bytes(data, size), regions, 0, &to, &amount);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument);
    FUZZ_CHECK(to == 99);
    return 0;
  }
  FUZZ_CHECK(to >= 1 && to < regions.size());
  FUZZ_CHECK(amount >= 1 && amount <= kMaxOpAmount);
  RegionId to2 = 99;
  Amount amount2 = -1;
  const nlohmann::json j = {{"to", regions[to]}, {"amount", amount}};
  FUZZ_CHECK(node::ParseRightsBody(j.dump(), regions, 0, &to2, &amount2).ok());
  FUZZ_CHECK(to2 == to && amount2 == amount);
  return 0;
}
