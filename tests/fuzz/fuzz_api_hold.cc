// The hold routes' inputs: node::ParseHoldBody (POST /v1/accounts/{id}/holds), ParseCaptureBody,
// ParseReleaseBody and ParseHoldId (the {hold} of /v1/holds/{hold}/...). The first byte picks
// which (mod 4); the rest is the body or the id.
#include <string>

#include "core/money.h"
#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  if (size == 0) return 0;
  const std::string_view in = fuzz::Bytes(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      Amount amount = -1;
      std::uint64_t expires = 0;
      const Status s = node::ParseHoldBody(in, &amount, &expires);
      if (!s.ok()) {
        FUZZ_CHECK(s.code() == Code::kInvalidArgument);
        return 0;
      }
      FUZZ_CHECK(amount >= 1 && amount <= kMaxOpAmount);
      FUZZ_CHECK(expires >= 1 && expires <= node::kMaxHoldExpiryMs);
      return 0;
    }
    case 1: {
      Amount amount = -1;
      const Status s = node::ParseCaptureBody(in, &amount);
      if (!s.ok()) {
        FUZZ_CHECK(s.code() == Code::kInvalidArgument);
        return 0;
      }
      FUZZ_CHECK(amount >= 0 && amount <= kMaxOpAmount);  // 0: the whole hold
      return 0;
    }
    case 2: {
      const Status s = node::ParseReleaseBody(in);
      FUZZ_CHECK(s.ok() || s.code() == Code::kInvalidArgument);
      return 0;
    }
    default: {
      const std::vector<std::string> regions = {"eu", "us-east", "ap"};
      Dot d;
      const Status s = node::ParseHoldId(in, regions, &d);
      if (!s.ok()) {
        FUZZ_CHECK(s.code() == Code::kInvalidArgument);
        return 0;
      }
      // An id it accepts names a region of the cluster and a seq, and is written back the same.
      FUZZ_CHECK(d.origin < regions.size() && d.seq >= 1);
      FUZZ_CHECK(node::HoldId(d, regions) == in);
      return 0;
    }
  }
}
