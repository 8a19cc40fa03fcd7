// codec::DecodeMessage: one gossip envelope as a peer sends it.
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  const Message sentinel = RightsRequest{"sentinel", 5};
  Message m = sentinel;
  const Status s = codec::DecodeMessage(fuzz::Bytes(data, size), &m);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kCorruption || s.code() == Code::kResourceExhausted);
    FUZZ_CHECK(m == sentinel);
    return 0;
  }
  // What was accepted may be sent on: it encodes, and decodes back to itself.
  std::string again;
  FUZZ_CHECK(codec::EncodeMessage(m, &again).ok());
  Message back = sentinel;
  FUZZ_CHECK(codec::DecodeMessage(again, &back).ok());
  FUZZ_CHECK(back == m);
  std::string third;
  FUZZ_CHECK(codec::EncodeMessage(back, &third).ok() && third == again);
  return 0;
}
