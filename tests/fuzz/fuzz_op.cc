// codec::DecodeOp: an op record as the store holds it (also the op inside every OpBatch).
#include "codec/codec.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tally::Op sentinel;
  sentinel.account = "sentinel";
  sentinel.amount = 7;
  tally::fuzz::CheckRecordDecoder(tally::fuzz::Bytes(data, size), tally::codec::DecodeOp,
                                  tally::codec::EncodeOp, sentinel);
  return 0;
}
