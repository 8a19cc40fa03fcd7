// codec::DecodeCheckpoint: an account folded at the stable frontier, as the store holds it.
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tally::AccountCheckpoint sentinel;
  sentinel.config.id = "sentinel";
  sentinel.events.resize(1);
  tally::fuzz::CheckRecordDecoder(tally::fuzz::Bytes(data, size), tally::codec::DecodeCheckpoint,
                                  tally::codec::EncodeCheckpoint, sentinel);
  return 0;
}
