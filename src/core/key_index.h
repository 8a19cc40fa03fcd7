// KeyIndex: the idempotency index of a replica, internal to the core. Maps (account, 128-bit hash
// of an idempotency key) to what a retry and the void rule need: the key's binding (its latest
// unvoided use, which a retry inside the window replays) and its last use (the window runs from
// it).
//
// The void rule, a function of the set of uses alone (docs/design.md, "Idempotency"): a use of a
// key with timestamp h is voided iff some canonically earlier use of the key has a wall time
// within `retention` before h — every use counts, voided or not. Only the immediate predecessor
// matters (an earlier use is at least as far away), and a new use can void only its immediate
// successor (every later use is within the window of that successor already, or not of the new
// one either), so AddUse decides in any arrival order what canonical replay would.
//
// Memory (issue 9: at most 64 bytes per retained key). A key with one use kept — nearly all of
// them — is a 52-byte dense entry (packed, 4-byte aligned) in chunks of kChunkEntries, found
// through slots of an open-addressing table with linear probing, kept at most 5/8 full (grown by a
// quarter, so at least half full). Slots come twelve to a 64-byte cache line (SlotBlock): each a
// 4-byte entry index and a 1-byte tag from the key's hash, so a probe compares tags inside one
// line and reads a dense entry only when its tag matches — a new key (every debit's) costs one
// cache miss, not one per slot probed. 52 + (64 / 12) / 0.5 = 62.7 bytes a key at most, plus one
// partly used chunk (53 KB). A
// key with several uses that may still matter (a cross-region duplicate, a reuse after the window
// while the older use is not yet forgotten) also keeps them in a side table until the stable
// frontier passes them (Sweep), then only its binding and its last use.
//
// Forgetting: Sweep(frontier) drops a key once frontier.wall >= last use.wall + retention: every
// use still to come has a timestamp >= the frontier, so no comparison with the forgotten uses can
// ever matter again. The dense scan is bounded per call (kMaxSweepEntries, or a kSweepPasses-th of
// the keys) and resumes where it stopped, so a sweep costs little however many keys there are and
// a forgotten key lingers at most kSweepPasses sweeps.
//
// Deterministic: iteration follows insertion and deletion history, never addresses. Not
// thread-safe.

#ifndef TALLY_CORE_KEY_INDEX_H_
#define TALLY_CORE_KEY_INDEX_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/messages.h"
#include "core/types.h"

namespace tally {

struct KeyId {
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  std::uint32_t account = 0;
  bool operator==(const KeyId&) const = default;
  auto operator<=>(const KeyId&) const = default;
};

KeyId MakeKeyId(std::uint32_t account, const KeyHash& key);
KeyId MakeKeyId(std::uint32_t account, std::string_view key);  // HashKey(key)

// How AddUse decides voids. Only kWindow is correct; the others are planted bugs for tally-sim.
enum class VoidRule : std::uint8_t {
  kWindow,   // the rule above
  kArrival,  // PlantedBugs::order_forks_by_arrival: the first use to arrive wins
  kIndex,    // PlantedBugs::expiry_decides_voids: a use is voided while an earlier one is indexed
};

class KeyIndex {
 public:
  static constexpr std::size_t kChunkEntries = 1024;
  static constexpr std::size_t kMaxSweepEntries = 65536;  // dense entries examined per Sweep...
  static constexpr std::size_t kSweepPasses = 16;         // ...or a 16th of them, if more

  explicit KeyIndex(std::uint64_t retention_ms);
  KeyIndex(KeyIndex&&) = default;
  KeyIndex& operator=(KeyIndex&&) = default;

  std::uint64_t retention_ms() const { return retention_ms_; }

  // True when a use at `later` falls within the window of a use at `earlier` (and so is voided
  // by it, if `earlier` is its canonical predecessor).
  bool WithinWindow(Hlc earlier, Hlc later) const {
    return later.wall_ms() < earlier.wall_ms() + retention_ms_;
  }

  struct State {
    KeyUse binding;  // the latest unvoided use
    Hlc last_use;    // the latest use
    bool multi = false;
  };
  // What the index holds for `id`; false if nothing.
  bool Find(const KeyId& id, State* out) const;

  struct Outcome {
    bool known = false;       // the op was already a use of the key: nothing changed
    bool voided = false;      // the use's status
    bool voids_next = false;  // the use voided the next use, `next` (unvoided until now)
    KeyUse next;
  };
  // Adds a use (use.voided and use.balance_after are ignored; the answer is set by SetAnswer).
  Outcome AddUse(const KeyId& id, const KeyUse& use, VoidRule rule);

  // The answer the origin gave for its use `dot` (its balance right after).
  void SetAnswer(const KeyId& id, Dot dot, Amount balance_after);

  // The use that voided the use at `c` (its canonical predecessor), for fork reports.
  bool Predecessor(const KeyId& id, const CanonicalKey& c, CanonicalKey* out) const;

  // Fills the binding, last use and uses of `id` into *out (account and key are the caller's).
  void FillRecord(const KeyId& id, KeyRecord* out) const;
  // Loads a stored record (Recover, a snapshot). False when it contradicts itself.
  bool Load(const KeyId& id, const KeyRecord& r);

  // Forgets keys whose last use + retention <= frontier (dropped(id) for each) and folds the uses
  // of multi-use keys below the frontier into their binding and last use (changed(id) for each
  // whose record changed). Examines every multi-use key and at most kMaxSweepEntries dense ones.
  template <class Dropped, class Changed>
  void Sweep(Hlc frontier, Dropped&& dropped, Changed&& changed);

  // Calls f(id) for every key, in entry order: deterministic for a given history, not sorted.
  template <class F>
  void ForEach(F&& f) const {
    for (std::uint32_t i = 0; i < size_; ++i) f(At(i).id());
  }

  std::size_t size() const { return size_; }
  std::size_t multi_size() const { return side_.size(); }
  // Bytes held: dense chunks, slots and (estimated) side entries.
  std::size_t MemoryBytes() const;

  // The dense entry: key hash, account, binding (dot, hlc, amount + kind + to + overdraft + multi
  // flag packed in 64 bits, answer). Packed to 4-byte alignment: 52 bytes, not 56.
  class Dense {
   public:
    KeyId id() const { return KeyId{U64(0), U64(2), w_[4]}; }
    void set_id(const KeyId& id) {
      SetU64(0, id.h1);
      SetU64(2, id.h2);
      w_[4] = id.account;
    }
    KeyUse binding() const;
    void set_binding(const KeyUse& u);
    bool multi() const { return (U64(9) >> kMultiBit) & 1; }
    void set_multi(bool m) {
      SetU64(9, (U64(9) & ~(std::uint64_t{1} << kMultiBit)) | (std::uint64_t{m} << kMultiBit));
    }
    Hlc hlc() const { return Hlc{U64(7)}; }
    Dot dot() const;
    void set_balance_after(Amount b) { SetU64(11, static_cast<std::uint64_t>(b)); }

   private:
    static constexpr int kMultiBit = 63;
    std::uint64_t U64(int i) const {
      std::uint64_t v;
      std::memcpy(&v, &w_[i], sizeof v);
      return v;
    }
    void SetU64(int i, std::uint64_t v) { std::memcpy(&w_[i], &v, sizeof v); }
    std::uint32_t w_[13] = {};
  };
  static_assert(sizeof(Dense) == 52, "a dense entry must stay 52 bytes (64 bytes a key, issue 9)");

 private:
  static constexpr std::uint32_t kEmpty = 0xffffffffu;
  static constexpr std::size_t kSlotsPerBlock = 12;
  static constexpr std::size_t kInitialBlocks = 86;  // about 1024 slots

  // Twelve slots in one cache line: their entry indexes (kEmpty: free) and tags.
  struct alignas(64) SlotBlock {
    std::uint32_t entry[kSlotsPerBlock];
    std::uint8_t tag[kSlotsPerBlock];
    SlotBlock() { std::fill(std::begin(entry), std::end(entry), kEmpty); }
  };
  static_assert(sizeof(SlotBlock) == 64, "a slot block is one cache line");

  static std::uint8_t TagOf(const KeyId& id) { return static_cast<std::uint8_t>(id.h2 >> 56); }
  std::size_t slot_count() const { return blocks_.size() * kSlotsPerBlock; }
  std::uint32_t EntryAt(std::size_t slot) const {
    return blocks_[slot / kSlotsPerBlock].entry[slot % kSlotsPerBlock];
  }
  void SetSlot(std::size_t slot, std::uint32_t entry, std::uint8_t tag) {
    SlotBlock& b = blocks_[slot / kSlotsPerBlock];
    b.entry[slot % kSlotsPerBlock] = entry;
    b.tag[slot % kSlotsPerBlock] = tag;
  }

  Dense& At(std::uint32_t i) { return chunks_[i / kChunkEntries][i % kChunkEntries]; }
  const Dense& At(std::uint32_t i) const { return chunks_[i / kChunkEntries][i % kChunkEntries]; }
  std::size_t Home(const KeyId& id) const;
  // Slot holding `id`, or the empty slot where it would go.
  std::size_t Probe(const KeyId& id) const;
  std::uint32_t Insert(const KeyId& id);  // a new dense entry; returns its index
  void Drop(std::size_t slot);            // removes the entry of `slot`
  void Grow();
  // The binding of a multi-use key from its uses (the latest unvoided one).
  void SyncBinding(Dense& d, const std::vector<KeyUse>& uses);
  // Folds uses below `frontier` into the binding and the last use among them. True if changed.
  static bool Fold(std::vector<KeyUse>* uses, Hlc frontier);

  std::uint64_t retention_ms_;
  std::vector<SlotBlock> blocks_;  // the slots, kSlotsPerBlock to a block
  std::vector<std::unique_ptr<Dense[]>> chunks_;
  std::uint32_t size_ = 0;
  std::uint32_t cursor_ = 0;                   // where the next Sweep resumes its dense scan
  std::map<KeyId, std::vector<KeyUse>> side_;  // multi-use keys: every use kept, canonical order
};

template <class Dropped, class Changed>
void KeyIndex::Sweep(Hlc frontier, Dropped&& dropped, Changed&& changed) {
  const std::uint64_t f = frontier.wall_ms();
  for (auto it = side_.begin(); it != side_.end();) {
    const KeyId id = it->first;
    std::vector<KeyUse>& uses = it->second;
    if (f >= uses.back().hlc.wall_ms() + retention_ms_) {
      it = side_.erase(it);
      Drop(Probe(id));
      dropped(id);
      continue;
    }
    if (Fold(&uses, frontier)) {
      Dense& d = At(EntryAt(Probe(id)));
      if (uses.size() == 1) {
        d.set_binding(uses.front());
        d.set_multi(false);
        it = side_.erase(it);
      } else {
        ++it;
      }
      changed(id);
      continue;
    }
    ++it;
  }
  // Round-robin over the dense entries, each at most once a call: kMaxSweepEntries, or a
  // kSweepPasses-th of the table when that is more, so a pass over all of them takes at most
  // kSweepPasses sweeps (checkpoint intervals) however fast keys arrive.
  const std::size_t budget =
      std::min<std::size_t>(std::max<std::size_t>(kMaxSweepEntries, size_ / kSweepPasses), size_);
  for (std::size_t n = 0; n < budget && size_ > 0; ++n) {
    if (cursor_ >= size_) cursor_ = 0;
    const Dense& d = At(cursor_);
    if (!d.multi() && f >= d.hlc().wall_ms() + retention_ms_) {
      const KeyId id = d.id();
      Drop(Probe(id));  // the last entry moves to cursor_: examine it next
      dropped(id);
    } else {
      ++cursor_;
    }
  }
}

}  // namespace tally

#endif  // TALLY_CORE_KEY_INDEX_H_
