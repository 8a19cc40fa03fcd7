#include "core/key_index.h"

namespace tally {

KeyId MakeKeyId(std::uint32_t account, const KeyHash& key) { return KeyId{key.h1, key.h2, account}; }
KeyId MakeKeyId(std::uint32_t account, std::string_view key) { return MakeKeyId(account, HashKey(key)); }

}  // namespace tally
