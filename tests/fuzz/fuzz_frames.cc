// codec::FrameReader over a byte stream from a peer, fed in the uneven pieces a socket returns,
// each whole frame decoded as the gossip links do (NextMessage, src/node/gossip_host.h). The
// frames it pops must be exactly those a direct walk over the length prefixes finds, however the
// stream is cut.
//
// Input: one byte seeding the cut points, then the stream.
#include <vector>

#include "codec/codec.h"
#include "fuzz.h"

namespace {

using namespace tally;

// The frames of `stream` by its length prefixes; *bad when a prefix exceeds kMaxFrameBytes (the
// reader then refuses the stream for good), *rest the bytes of an unfinished frame.
std::vector<std::string> Walk(std::string_view stream, bool* bad, std::size_t* rest) {
  std::vector<std::string> frames;
  *bad = false;
  std::size_t pos = 0;
  while (stream.size() - pos >= codec::kFrameHeaderBytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(stream.data() + pos);
    const std::size_t n = (std::size_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (n > codec::kMaxFrameBytes) {
      *bad = true;
      break;
    }
    if (stream.size() - pos - codec::kFrameHeaderBytes < n) break;
    frames.emplace_back(stream.substr(pos + codec::kFrameHeaderBytes, n));
    pos += codec::kFrameHeaderBytes + n;
  }
  *rest = stream.size() - pos;
  return frames;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint32_t cut = data[0] * 2654435761u + 1;
  const std::string_view stream = fuzz::Bytes(data + 1, size - 1);

  bool want_bad = false;
  std::size_t want_rest = 0;
  const std::vector<std::string> want = Walk(stream, &want_bad, &want_rest);

  codec::FrameReader reader;
  std::vector<std::string> got;
  bool bad = false;
  std::string frame;
  for (std::size_t pos = 0; pos < stream.size() && !bad;) {
    cut ^= cut << 13, cut ^= cut >> 17, cut ^= cut << 5;
    const std::size_t n = std::min<std::size_t>(stream.size() - pos, 1 + cut % 64);
    reader.Append(stream.substr(pos, n));
    pos += n;
    bool ready = false;
    Status s;
    while ((s = reader.Next(&frame, &ready)).ok() && ready) {
      got.push_back(frame);
      Message m;
      if (!codec::DecodeMessage(frame, &m).ok()) continue;  // gossip drops the connection here
      // An accepted message framed again comes out of a fresh reader as itself.
      std::string framed;
      FUZZ_CHECK(codec::AppendFrame(m, &framed).ok());
      codec::FrameReader again;
      again.Append(framed);
      std::string body;
      bool one = false;
      FUZZ_CHECK(again.Next(&body, &one).ok() && one && again.buffered_bytes() == 0);
      Message back;
      FUZZ_CHECK(codec::DecodeMessage(body, &back).ok() && back == m);
    }
    if (!s.ok()) {
      FUZZ_CHECK(s.code() == Code::kResourceExhausted);
      bad = true;
    }
  }
  FUZZ_CHECK(got == want);
  FUZZ_CHECK(bad == want_bad);
  if (!bad) FUZZ_CHECK(reader.buffered_bytes() == want_rest);
  return 0;
}
