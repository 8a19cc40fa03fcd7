// KeyIndex: the idempotency index of a replica, internal to the core. Maps (account, 128-bit hash of
// an idempotency key) to the canonically first op that used the key.
//
// Open addressing with linear probing over one flat array (power-of-two capacity, at most half
// full): a lookup is usually one cache miss and an insert allocates nothing but the occasional
// doubling. Entries are never removed individually. Not thread-safe.

#ifndef TALLY_CORE_KEY_INDEX_H_
#define TALLY_CORE_KEY_INDEX_H_

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/types.h"

namespace tally {

struct KeyId {
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  std::uint32_t account = 0;
  bool operator==(const KeyId&) const = default;
};

KeyId MakeKeyId(std::uint32_t account, const KeyHash& key);
KeyId MakeKeyId(std::uint32_t account, std::string_view key);  // HashKey(key)

struct KeyEntry {
  Dot dot;
  Hlc hlc;
  Amount amount = 0;
  Amount balance_after = 0;
  RegionId to = 0;
  OpKind kind = OpKind::kCredit;
  bool overdraft = false;
  CanonicalKey canonical() const { return {hlc, dot.origin, dot.seq}; }
};

class KeyIndex {
 public:
  KeyIndex() : slots_(kInitialCapacity) {}

  // The entry for `id`, or nullptr.
  KeyEntry* Find(const KeyId& id) {
    for (std::size_t i = Home(id);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.id == id) return &s.entry;
    }
  }

  // The entry for `id`, created (value-initialized) if absent; .second is true when created.
  // Pointers returned earlier are invalidated by a creation.
  std::pair<KeyEntry*, bool> FindOrInsert(const KeyId& id) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    for (std::size_t i = Home(id);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (!s.used) {
        s.used = true;
        s.id = id;
        s.entry = KeyEntry{};
        ++size_;
        return {&s.entry, true};
      }
      if (s.id == id) return {&s.entry, false};
    }
  }

  std::size_t size() const { return size_; }

  // Calls f(id, entry) for every entry, in slot order: deterministic for a given history of
  // inserts, not sorted.
  template <class F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.used) f(s.id, s.entry);
    }
  }

 private:
  static constexpr std::size_t kInitialCapacity = 1024;
  struct Slot {
    KeyId id;
    KeyEntry entry;
    bool used = false;
  };

  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t Home(const KeyId& id) const {
    return (id.h1 ^ (std::uint64_t{id.account} * 0x9e3779b97f4a7c15ULL)) & mask();
  }
  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (Slot& s : old) {
      if (s.used) *FindOrInsert(s.id).first = s.entry;
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace tally

#endif  // TALLY_CORE_KEY_INDEX_H_
