// Fnv64: a small deterministic 64-bit hash (FNV-1a) for digests and fingerprints that must be equal
// on every replica and every run. Not cryptographic: it detects divergence, it does not resist an
// adversary (peers are authenticated by the transport, not by these digests).

#ifndef TALLY_CORE_DIGEST_H_
#define TALLY_CORE_DIGEST_H_

#include <cstdint>
#include <string_view>

namespace tally {

class Fnv64 {
 public:
  void Add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= (v >> (8 * i)) & 0xff;
      h_ *= kPrime;
    }
  }
  // Length first, so ("ab","c") and ("a","bc") differ.
  void Add(std::string_view s) {
    Add(static_cast<std::uint64_t>(s.size()));
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= kPrime;
    }
  }
  std::uint64_t value() const { return h_; }

 private:
  static constexpr std::uint64_t kPrime = 0x100000001b3ULL;
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace tally

#endif  // TALLY_CORE_DIGEST_H_
