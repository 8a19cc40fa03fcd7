// KeyBook: the idempotency side of an AccountBook — the key index of every account (KeyIndex, by
// account book index), our own ops that lost their key to another region's (kept so a retry of
// the original request gets its original answer), and the key records the host stores. It knows
// accounts only by book index; the records it writes are named with the ids the caller passes.
//
// The void rule itself is KeyIndex's (core/key_index.h); a use's outcome goes back to the account
// book, which voids journal entries. Not thread-safe.

#ifndef TALLY_CORE_KEY_BOOK_H_
#define TALLY_CORE_KEY_BOOK_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/account.h"
#include "core/key_index.h"
#include "core/replica_types.h"
#include "core/status.h"

namespace tally {

class KeyBook {
 public:
  explicit KeyBook(const ReplicaOptions& opt);
  KeyBook(KeyBook&&) = default;
  KeyBook& operator=(KeyBook&&) = default;

  // Adds `op`'s use of its key on the account at book index `account` (the op's account). With
  // `write_keys`, the key's record goes to out->keys; records of our own displaced ops always do.
  // `out` may be null.
  KeyIndex::Outcome Use(std::uint32_t account, const Op& op, bool write_keys, Effects* out);
  // The answer to our own keyed op just used (the last Use): stored, and written to out->keys.
  void SetAnswer(Dot op, Amount balance_after, Effects* out);

  // What a command's idempotency key says, inside the window of its last use (retry_at: the
  // earliest timestamp an op originated now could carry).
  struct Lookup {
    enum Kind { kNew, kMismatch, kReplay, kReplayDisplaced } kind = kNew;
    KeyUse binding;  // the key's binding: replayed, or what the mismatch names
    KeyUse own;      // kReplayDisplaced: our original op, voided by `binding`
  };
  Lookup Find(std::uint32_t account, const std::string& key, OpKind kind, Amount amount,
              RegionId to, Hlc retry_at) const;

  // The use that voided the use at `c` of `key` on `account` (its canonical predecessor).
  bool Predecessor(std::uint32_t account, const std::string& key, const CanonicalKey& c,
                   CanonicalKey* out) const {
    return keys_.Predecessor(MakeKeyId(account, key), c, out);
  }

  // Forgets keys past their window at `frontier`; their deletes and rewrites go to `out`. Returns
  // how many were forgotten. `accounts` names them.
  std::uint64_t Sweep(Hlc frontier, const std::vector<Account>& accounts, Effects* out);
  std::vector<KeyRecord> Records(bool with_displaced, const std::vector<Account>& accounts) const;
  // A stored or sent record of the account at book index `account`, validated by the caller.
  Status Load(std::uint32_t account, const KeyRecord& k);

  std::size_t size() const { return keys_.size(); }
  std::size_t memory_bytes() const { return keys_.MemoryBytes(); }

 private:
  KeyRecord RecordOf(const KeyId& id, const std::string& account) const;

  RegionId self_;
  PlantedBugs bugs_;
  KeyIndex keys_;   // (account, key) -> binding, last use
  KeyId last_key_;  // the key the last Use used
  std::string last_account_;
  // Our own ops voided because another region's canonically earlier op took their key (rare:
  // forks only), so a retry of our original request gets our original answer.
  std::map<std::pair<std::uint32_t, KeyHash>, KeyUse> displaced_;
};

}  // namespace tally

#endif  // TALLY_CORE_KEY_BOOK_H_
