// codec::DecodeVersionVector: the log floor record of the store.
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tally::VersionVector sentinel;
  sentinel.set(2, 99);
  tally::fuzz::CheckRecordDecoder(tally::fuzz::Bytes(data, size), tally::codec::DecodeVersionVector,
                                  tally::codec::EncodeVersionVector, sentinel);
  return 0;
}
