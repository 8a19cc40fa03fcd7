// codec::DecodeFences: the fence list record of the store.
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<tally::Fence> sentinel = {tally::Fence{3, 77, 5}};
  tally::fuzz::CheckRecordDecoder(tally::fuzz::Bytes(data, size), tally::codec::DecodeFences,
                                  tally::codec::EncodeFences, sentinel);
  return 0;
}
