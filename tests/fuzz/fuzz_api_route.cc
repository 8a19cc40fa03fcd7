// node::MatchRoute and the Idempotency-Key header: a client's request line and header.
//
// Input: one byte for the method, then the target. A matched account route, written out again
// with its account id percent-encoded, matches the same.
#include "core/ids.h"
#include "fuzz.h"
#include "node/api.h"

namespace {

using namespace tally;

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

const char* Suffix(node::Route r) {
  switch (r) {
    case node::Route::kCredit:
      return "/credits";
    case node::Route::kDebit:
      return "/debits";
    case node::Route::kRights:
      return "/transfers";
    case node::Route::kReport:
      return "/report";
    default:
      return "";
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const node::Method method = static_cast<node::Method>(data[0] % 3);
  const std::string_view target = fuzz::Bytes(data + 1, size - 1);
  node::RouteMatch m;
  const Status s = node::MatchRoute(method, target, &m);
  FUZZ_CHECK(s.ok() || s.code() == Code::kNotFound || s.code() == Code::kInvalidArgument ||
             s.code() == Code::kFailedPrecondition);
  (void)node::ValidateIdempotencyKeyHeader(target, true);
  if (!s.ok()) return 0;
  FUZZ_CHECK(m.route != node::Route::kUnknown);
  if (!m.account.empty()) {
    FUZZ_CHECK(ValidateAccountId(m.account).ok());
    std::string again = "/v1/accounts/" + PercentEncode(m.account) + Suffix(m.route);
    if (m.html) again += "?format=html";
    node::RouteMatch back;
    FUZZ_CHECK(node::MatchRoute(method, again, &back).ok());
    FUZZ_CHECK(back.route == m.route && back.account == m.account && back.html == m.html);
  }
  if (m.route == node::Route::kStream) {
    FUZZ_CHECK(!m.accounts.empty() && m.accounts.size() <= node::kMaxStreamAccounts);
    for (const std::string& a : m.accounts) FUZZ_CHECK(ValidateAccountId(a).ok());
  }
  return 0;
}
