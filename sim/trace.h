// TraceHash: a 64-bit FNV-1a fingerprint of everything that happened in a run (I5).
//
// The simulator feeds it every delivery, completion, crash, restart and the final digests, in the
// order they happen. Two runs with the same seed and flags must end with the same value; any
// divergence (an unordered iteration, a stray wall-clock read) shows up as a different hash.

#ifndef TALLY_SIM_TRACE_H_
#define TALLY_SIM_TRACE_H_

#include <cstdint>
#include <string_view>

namespace tally::sim {

class TraceHash {
 public:
  void Add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= (v >> (8 * i)) & 0xff;
      h_ *= kPrime;
    }
  }
  void Add(std::string_view s) {
    Add(static_cast<std::uint64_t>(s.size()));
    for (char c : s) {
      h_ ^= static_cast<unsigned char>(c);
      h_ *= kPrime;
    }
  }
  std::uint64_t value() const { return h_; }

 private:
  static constexpr std::uint64_t kPrime = 0x100000001b3ULL;
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_TRACE_H_
