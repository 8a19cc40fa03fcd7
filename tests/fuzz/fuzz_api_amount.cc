// node::ParseAmountBody: the body of a credit or debit, the API's hottest parser. It has a fast
// path for {"amount":N} that must give the full JSON parser's verdict: a UTF-8 byte order mark in
// front (which the JSON parser skips and the fast path does not) sends the same body down the
// full path, and both answers must agree.
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  const std::string_view body = fuzz::Bytes(data, size);
  Amount amount = -1;
  const Status s = node::ParseAmountBody(body, &amount);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument);
    FUZZ_CHECK(amount == -1);
  } else {
    FUZZ_CHECK(amount >= 1 && amount <= kMaxOpAmount);
    Amount back = -1;
    FUZZ_CHECK(node::ParseAmountBody(nlohmann::json{{"amount", amount}}.dump(), &back).ok());
    FUZZ_CHECK(back == amount);
  }
  if (!body.starts_with("\xEF\xBB\xBF")) {
    Amount full = -1;
    const Status f = node::ParseAmountBody("\xEF\xBB\xBF" + std::string(body), &full);
    FUZZ_CHECK(f.ok() == s.ok());
    FUZZ_CHECK(full == amount);
  }
  return 0;
}
