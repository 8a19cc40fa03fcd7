// Shared by the libFuzzer targets in tests/fuzz (docs/fuzzing.md).
//
// Every target checks more than "does not crash": a decoder that refuses bytes must leave its
// output untouched (codec/codec.h promises it), and a value it accepts must survive a round trip —
// encoding it and decoding that gives the same value, and the same bytes again. A broken check
// aborts, which libFuzzer reports as a crash with the input saved.

#ifndef TALLY_TESTS_FUZZ_FUZZ_H_
#define TALLY_TESTS_FUZZ_FUZZ_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/status.h"

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace tally::fuzz {

inline std::string_view Bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A storage record decoder: Status decode(bytes, T*) and std::string encode(const T&). `sentinel`
// is what the output holds before each decode; it should differ from a default T, so that a
// decoder that writes half a value before refusing is caught.
template <typename T, typename Decode, typename Encode>
void CheckRecordDecoder(std::string_view bytes, Decode decode, Encode encode, const T& sentinel) {
  T value = sentinel;
  const Status s = decode(bytes, &value);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kCorruption);
    FUZZ_CHECK(value == sentinel);
    return;
  }
  const std::string again = encode(value);
  T back = sentinel;
  FUZZ_CHECK(decode(again, &back).ok());
  FUZZ_CHECK(back == value);
  FUZZ_CHECK(encode(back) == again);
}

}  // namespace tally::fuzz

#endif  // TALLY_TESTS_FUZZ_FUZZ_H_
