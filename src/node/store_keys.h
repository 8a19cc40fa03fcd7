// Big-endian integers in LevelDB keys: fixed width, so keys sort as the numbers do. Shared by the
// store's key layouts (store.cc, history_store.cc). Pure; thread-safe.

#ifndef TALLY_NODE_STORE_KEYS_H_
#define TALLY_NODE_STORE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tally::node {

inline void PutBigEndian(std::uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t GetBigEndian(std::string_view s) {
  std::uint64_t v = 0;
  for (char c : s) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace tally::node

#endif  // TALLY_NODE_STORE_KEYS_H_
