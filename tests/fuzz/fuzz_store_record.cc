// node::Store::LoadRecord: the records a region reads back from its LevelDB at start, as
// Store::Load applies them one after another.
//
// Input: one byte for the cluster's region count, then records, each a one-byte key length, the
// key, a two-byte big-endian value length and the value (a short last record takes what is left).
#include "codec/codec.h"
#include "fuzz.h"
#include "node/store.h"

namespace {

using namespace tally;
using node::Store;

std::string_view Take(std::string_view* in, std::size_t n) {
  n = std::min(n, in->size());
  std::string_view out = in->substr(0, n);
  in->remove_prefix(n);
  return out;
}

std::size_t Length(std::string_view* in, std::size_t bytes) {
  std::size_t n = 0;
  for (unsigned char c : Take(in, bytes)) n = (n << 8) | c;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const RegionId regions = 1 + data[0] % kMaxRegions;
  std::string_view in = fuzz::Bytes(data + 1, size - 1);
  RecoveredState st;
  while (!in.empty()) {
    const std::string_view key = Take(&in, Length(&in, 1));
    const std::string_view value = Take(&in, Length(&in, 2));
    const Status s = Store::LoadRecord(key, value, regions, &st);
    if (!s.ok()) {
      FUZZ_CHECK(s.code() == Code::kCorruption);
      break;  // Load stops at the first bad record
    }
  }
  // What was loaded, written back under its own key, loads again as itself.
  for (const Op& op : st.ops) {
    RecoveredState again;
    FUZZ_CHECK(Store::LoadRecord(Store::OpKey(op.dot.origin, op.dot.seq), codec::EncodeOp(op),
                                 regions, &again)
                   .ok());
    FUZZ_CHECK(again.ops.size() == 1 && again.ops[0] == op);
  }
  for (const KeyRecord& k : st.keys) {
    RecoveredState again;
    FUZZ_CHECK(Store::LoadRecord(Store::KeyRecordKey(k.account, k.key, k.displaced),
                                 codec::EncodeKeyRecord(k), regions, &again)
                   .ok());
    FUZZ_CHECK(again.keys.size() == 1 && again.keys[0] == k);
  }
  for (const AccountCheckpoint& c : st.checkpoints) {
    RecoveredState again;
    FUZZ_CHECK(Store::LoadRecord(Store::CheckpointKey(c.config.id), codec::EncodeCheckpoint(c),
                                 regions, &again)
                   .ok());
    FUZZ_CHECK(again.checkpoints.size() == 1 && again.checkpoints[0] == c);
  }
  return 0;
}
