// Codec: core values <-> bytes, for gossip between regions and for records in a region's store.
//
// The schema is proto/tally/v1/tally.proto; docs/protocol.md describes the wire format and the
// stored records. Protobuf stays behind this header: callers see core types only.
//
// Everything decoded is validated before it is returned: region ids below kMaxRegions, amounts in
// 1..kMaxOpAmount where an op moves money, account ids and idempotency keys as core/ids.h has
// them, known enum values, sizes within bounds. Bad bytes give a non-OK Status (Corruption, or
// ResourceExhausted for a size past a bound), never a crash, and leave the output untouched.
//
// All functions are pure and thread-safe; a FrameReader is not (one per connection).

#ifndef TALLY_CODEC_CODEC_H_
#define TALLY_CODEC_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "core/messages.h"
#include "core/replica_types.h"
#include "core/status.h"
#include "core/types.h"

namespace tally::codec {

// The largest envelope accepted or produced, in bytes; a bigger frame is refused.
inline constexpr std::size_t kMaxFrameBytes = 4u << 20;
// Bytes of the big-endian length prefix in front of every TCP frame.
inline constexpr std::size_t kFrameHeaderBytes = 4;

// ---- Gossip messages

// Envelope bytes (no length prefix) for one gossip message. InvalidArgument when the message holds
// something DecodeMessage would refuse (so bad content never leaves), ResourceExhausted when it
// would exceed kMaxFrameBytes. *out is replaced, and untouched on error.
Status EncodeMessage(const Message& m, std::string* out);

// Parses and validates one envelope. Corruption on malformed bytes, unknown enum values,
// out-of-range region ids (>= kMaxRegions), amounts <= 0 or > kMaxOpAmount, bad account ids or
// keys, an empty or unknown body; ResourceExhausted when `bytes` exceeds kMaxFrameBytes.
// Never crashes; *out is untouched on error.
Status DecodeMessage(std::string_view bytes, Message* out);

// Framing for TCP: appends a 4-byte big-endian length and the envelope to *out. Errors as for
// EncodeMessage; *out is untouched on error.
Status AppendFrame(const Message& m, std::string* out);

// Splits a byte stream into frames. Feed it whatever the socket returned, then pop whole envelopes
// (without their length prefix) until it says it needs more bytes:
//
//   reader.Append(chunk);
//   std::string frame; bool ready;
//   while ((s = reader.Next(&frame, &ready)).ok() && ready) { DecodeMessage(frame, &msg) ... }
//
// A length prefix above kMaxFrameBytes makes the stream bad for good (ResourceExhausted from then
// on): the connection must be dropped, since the frame boundaries are lost.
class FrameReader {
 public:
  FrameReader() = default;

  void Append(std::string_view bytes);

  // OK with *ready = true and the envelope in *frame when a whole frame is buffered; OK with
  // *ready = false when more bytes are needed; an error when the stream is bad.
  Status Next(std::string* frame, bool* ready);

  // Bytes held that do not yet make a whole frame.
  std::size_t buffered_bytes() const { return buffer_.size() - read_pos_; }

 private:
  std::string buffer_;
  std::size_t read_pos_ = 0;
  Status error_;
};

// ---- Storage records (LevelDB values)
//
// Less compact than the gossip batch (each record stands alone) and without a checksum of their
// own: LevelDB checks block CRCs. Decoding validates as DecodeMessage does and reports Corruption.
// The Encode functions expect values the core produced (valid); DecodeX(EncodeX(v)) == v for those.

std::string EncodeOp(const Op& op);
Status DecodeOp(std::string_view bytes, Op* out);

std::string EncodeKeyRecord(const KeyRecord& record);
Status DecodeKeyRecord(std::string_view bytes, KeyRecord* out);

std::string EncodeCheckpoint(const AccountCheckpoint& checkpoint);
Status DecodeCheckpoint(std::string_view bytes, AccountCheckpoint* out);

// A line of an account's statement, as tallyd's history store keeps it.
std::string EncodeStatementLine(const StatementLine& line);
Status DecodeStatementLine(std::string_view bytes, StatementLine* out);

std::string EncodeVersionVector(const VersionVector& vv);
// The fences a replica persists (Effects::fences), as a FenceList record.
std::string EncodeFences(const std::vector<Fence>& fences);
Status DecodeFences(std::string_view bytes, std::vector<Fence>* out);
Status DecodeVersionVector(std::string_view bytes, VersionVector* out);

}  // namespace tally::codec

#endif  // TALLY_CODEC_CODEC_H_
