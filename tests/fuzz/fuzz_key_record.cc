// codec::DecodeKeyRecord: an idempotency record as the store holds it.
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tally::KeyRecord sentinel;
  sentinel.account = "sentinel";
  sentinel.uses.resize(1);
  tally::fuzz::CheckRecordDecoder(tally::fuzz::Bytes(data, size), tally::codec::DecodeKeyRecord,
                                  tally::codec::EncodeKeyRecord, sentinel);
  return 0;
}
