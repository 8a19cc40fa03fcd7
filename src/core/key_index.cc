#include "core/key_index.h"

#include <algorithm>
#include <cassert>

namespace tally {

KeyId MakeKeyId(std::uint32_t account, const KeyHash& key) {
  return KeyId{key.h1, key.h2, account};
}
KeyId MakeKeyId(std::uint32_t account, std::string_view key) {
  return MakeKeyId(account, HashKey(key));
}

namespace {

// Bits of the packed word: amount (<= kMaxOpAmount = 2^50, 51 bits), kind (3: PackKind), to (8: a
// region, or a payee's AccountTag), overdraft, multi.
constexpr int kKindShift = 51;
constexpr int kToShift = 54;
constexpr int kOverdraftBit = 62;
constexpr std::uint64_t kAmountMask = (std::uint64_t{1} << kKindShift) - 1;
// The dot: origin (< kMaxRegions = 16) in the top 4 bits, seq below.
constexpr int kOriginShift = 60;
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kOriginShift) - 1;

// The eight op kinds in 3 bits: kCredit..kRelease as kind - 1, and kOpen (1, which our own opens
// never key, but a peer's op may) as 0.
std::uint64_t PackKind(OpKind k) {
  return k == OpKind::kOpen ? 0 : static_cast<std::uint64_t>(k) - 1;
}
OpKind UnpackKind(std::uint64_t bits) {
  return bits == 0 ? OpKind::kOpen : static_cast<OpKind>(bits + 1);
}

}  // namespace

KeyUse KeyIndex::Dense::binding() const {
  KeyUse u;
  u.dot = dot();
  u.hlc = hlc();
  const std::uint64_t p = U64(9);
  u.amount = static_cast<Amount>(p & kAmountMask);
  u.kind = UnpackKind((p >> kKindShift) & 7);
  u.to = static_cast<RegionId>((p >> kToShift) & 255);
  u.overdraft = (p >> kOverdraftBit) & 1;
  u.balance_after = static_cast<Amount>(U64(11));
  return u;
}

Dot KeyIndex::Dense::dot() const {
  const std::uint64_t d = U64(5);
  return Dot{static_cast<RegionId>(d >> kOriginShift), d & kSeqMask};
}

void KeyIndex::Dense::set_binding(const KeyUse& u) {
  assert(u.dot.origin < kMaxRegions && u.dot.seq <= kSeqMask);
  assert(u.amount >= 0 && u.amount <= kMaxOpAmount && u.to < kAccountTagLimit);
  assert(u.kind >= OpKind::kOpen && u.kind <= OpKind::kRelease);
  SetU64(5, (std::uint64_t{u.dot.origin} << kOriginShift) | u.dot.seq);
  SetU64(7, u.hlc.value);
  const std::uint64_t multi = U64(9) & (std::uint64_t{1} << kMultiBit);
  SetU64(9, static_cast<std::uint64_t>(u.amount) | (PackKind(u.kind) << kKindShift) |
                (std::uint64_t{u.to} << kToShift) | (std::uint64_t{u.overdraft} << kOverdraftBit) |
                multi);
  SetU64(11, static_cast<std::uint64_t>(u.balance_after));
}

KeyIndex::KeyIndex(std::uint64_t retention_ms)
    : retention_ms_(retention_ms), blocks_(kInitialBlocks) {}

std::size_t KeyIndex::Home(const KeyId& id) const {
  // h1 is an FNV-64 hash, whose top bits barely move between keys that differ in their last
  // characters (k-…0001, k-…0002): finalised (murmur3's fmix64) before its top bits pick a home,
  // or such keys pile into long probe runs.
  std::uint64_t h = id.h1 ^ (std::uint64_t{id.account} * 0x9e3779b97f4a7c15ULL);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  // Multiply-shift onto [0, slots): the table size need not be a power of two.
  return static_cast<std::size_t>((static_cast<unsigned __int128>(h) * slot_count()) >> 64);
}

std::size_t KeyIndex::Probe(const KeyId& id) const {
  const std::uint8_t tag = TagOf(id);
  const std::size_t home = Home(id);
  std::size_t b = home / kSlotsPerBlock;
  std::size_t p = home % kSlotsPerBlock;
  for (;;) {
    const SlotBlock& block = blocks_[b];
    for (; p < kSlotsPerBlock; ++p) {
      const std::uint32_t e = block.entry[p];
      if (e == kEmpty || (block.tag[p] == tag && At(e).id() == id)) return b * kSlotsPerBlock + p;
    }
    p = 0;
    b = b + 1 == blocks_.size() ? 0 : b + 1;
  }
}

bool KeyIndex::Find(const KeyId& id, State* out) const {
  const std::uint32_t e = EntryAt(Probe(id));
  if (e == kEmpty) return false;
  const Dense& d = At(e);
  out->binding = d.binding();
  out->multi = d.multi();
  out->last_use = out->multi ? side_.at(id).back().hlc : out->binding.hlc;
  return true;
}

void KeyIndex::Grow() {
  // A quarter more each time: the table stays between 1/2 and 5/8 full (8.5 to 10.7 bytes a key).
  std::vector<SlotBlock> grown(blocks_.size() + blocks_.size() / 4);
  grown.swap(blocks_);
  for (std::uint32_t i = 0; i < size_; ++i) {
    const KeyId id = At(i).id();
    SetSlot(Probe(id), i, TagOf(id));
  }
}

std::uint32_t KeyIndex::Insert(const KeyId& id) {
  if ((std::size_t{size_} + 1) * 8 > slot_count() * 5) Grow();
  assert(size_ < kEmpty);
  if (size_ == chunks_.size() * kChunkEntries)
    chunks_.push_back(std::make_unique<Dense[]>(kChunkEntries));
  const std::uint32_t e = size_++;
  At(e) = Dense{};
  At(e).set_id(id);
  SetSlot(Probe(id), e, TagOf(id));
  return e;
}

void KeyIndex::Drop(std::size_t slot) {
  const std::uint32_t e = EntryAt(slot);
  assert(e != kEmpty);
  // Backward-shift deletion: no tombstones, so probes stay as short as the load allows.
  const std::size_t n = slot_count();
  std::size_t hole = slot;
  for (std::size_t i = hole + 1 == n ? 0 : hole + 1; EntryAt(i) != kEmpty;
       i = i + 1 == n ? 0 : i + 1) {
    const KeyId at_i = At(EntryAt(i)).id();
    const std::size_t home = Home(at_i);
    // Move i into the hole unless its home lies cyclically in (hole, i].
    const bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!stays) {
      SetSlot(hole, EntryAt(i), TagOf(at_i));
      hole = i;
    }
  }
  SetSlot(hole, kEmpty, 0);
  // Keep entries dense: the last one takes the freed place.
  const std::uint32_t last = size_ - 1;
  if (e != last) {
    const KeyId moved = At(last).id();
    At(e) = At(last);
    SetSlot(Probe(moved), e, TagOf(moved));
  }
  --size_;
  if (chunks_.size() * kChunkEntries >= std::size_t{size_} + kChunkEntries) chunks_.pop_back();
}

void KeyIndex::SyncBinding(Dense& d, const std::vector<KeyUse>& uses) {
  for (auto it = uses.rbegin(); it != uses.rend(); ++it) {
    if (!it->voided) {
      d.set_binding(*it);
      return;
    }
  }
  assert(false && "a key always has an unvoided use: its canonically first one kept");
}

KeyIndex::Outcome KeyIndex::AddUse(const KeyId& id, const KeyUse& in, VoidRule rule) {
  KeyUse use = in;
  use.voided = false;
  use.balance_after = 0;
  Outcome out;
  const std::uint32_t e = EntryAt(Probe(id));
  if (e == kEmpty) {
    At(Insert(id)).set_binding(use);
    return out;
  }
  Dense& d = At(e);
  if (!d.multi()) {
    const KeyUse only = d.binding();
    if (only.dot == use.dot) {
      out.known = true;
      return out;
    }
    d.set_multi(true);
    side_[id] = {only};
  }
  std::vector<KeyUse>& uses = side_.at(id);
  for (const KeyUse& u : uses) {
    if (u.dot == use.dot) {
      out.known = true;
      out.voided = u.voided;
      return out;
    }
  }
  auto pos =
      std::upper_bound(uses.begin(), uses.end(), use.canonical(),
                       [](const CanonicalKey& c, const KeyUse& u) { return c < u.canonical(); });
  switch (rule) {
    case VoidRule::kWindow:
      use.voided = pos != uses.begin() && WithinWindow(std::prev(pos)->hlc, use.hlc);
      if (pos != uses.end() && !pos->voided && WithinWindow(use.hlc, pos->hlc)) {
        pos->voided = true;
        out.voids_next = true;
        out.next = *pos;
      }
      break;
    case VoidRule::kIndex:  // "a use of a key still in the index is a duplicate"
      use.voided = pos != uses.begin();
      if (pos != uses.end() && !pos->voided) {
        pos->voided = true;
        out.voids_next = true;
        out.next = *pos;
      }
      break;
    case VoidRule::kArrival:
      use.voided = true;
      break;
  }
  out.voided = use.voided;
  uses.insert(pos, use);
  SyncBinding(At(e), uses);
  return out;
}

void KeyIndex::SetAnswer(const KeyId& id, Dot dot, Amount balance_after) {
  const std::uint32_t e = EntryAt(Probe(id));
  if (e == kEmpty) return;
  Dense& d = At(e);
  if (d.dot() == dot) d.set_balance_after(balance_after);
  if (d.multi()) {
    for (KeyUse& u : side_.at(id))
      if (u.dot == dot) u.balance_after = balance_after;
  }
}

bool KeyIndex::Predecessor(const KeyId& id, const CanonicalKey& c, CanonicalKey* out) const {
  const std::uint32_t e = EntryAt(Probe(id));
  if (e == kEmpty) return false;
  const Dense& d = At(e);
  if (!d.multi()) {
    const KeyUse b = d.binding();
    if (!(b.canonical() < c)) return false;
    *out = b.canonical();
    return true;
  }
  const std::vector<KeyUse>& uses = side_.at(id);
  auto pos =
      std::lower_bound(uses.begin(), uses.end(), c,
                       [](const KeyUse& u, const CanonicalKey& k) { return u.canonical() < k; });
  if (pos == uses.begin()) return false;
  *out = std::prev(pos)->canonical();
  return true;
}

void KeyIndex::FillRecord(const KeyId& id, KeyRecord* out) const {
  const std::uint32_t e = EntryAt(Probe(id));
  assert(e != kEmpty);
  const Dense& d = At(e);
  const KeyUse b = d.binding();
  out->dot = b.dot;
  out->hlc = b.hlc;
  out->kind = b.kind;
  out->amount = b.amount;
  out->to = b.to;
  out->overdraft = b.overdraft;
  out->balance_after = b.balance_after;
  out->last_use = b.hlc;
  out->uses.clear();
  if (d.multi()) {
    out->uses = side_.at(id);
    out->last_use = out->uses.back().hlc;
  }
}

bool KeyIndex::Load(const KeyId& id, const KeyRecord& r) {
  std::uint32_t e = EntryAt(Probe(id));
  if (e == kEmpty) e = Insert(id);
  Dense& d = At(e);
  auto known_kind = [](OpKind k) { return k >= OpKind::kOpen && k <= OpKind::kRelease; };
  if (r.uses.empty()) {
    if (!r.last_use.is_zero() && r.last_use != r.hlc) return false;
    if (!known_kind(r.kind)) return false;
    d.set_binding(
        KeyUse{r.dot, r.hlc, r.kind, r.amount, r.to, r.overdraft, r.balance_after, false});
    d.set_multi(false);
    side_.erase(id);
    return true;
  }
  std::vector<KeyUse> uses = r.uses;
  std::sort(uses.begin(), uses.end(),
            [](const KeyUse& a, const KeyUse& b) { return a.canonical() < b.canonical(); });
  if (uses.front().voided) return false;
  for (const KeyUse& u : uses) {
    // A use's target is a region, or a transfer's payee tag (KeyTarget).
    const std::uint32_t targets = u.kind == OpKind::kTransfer ? kAccountTagLimit : kMaxRegions;
    if (!known_kind(u.kind) || u.dot.origin >= kMaxRegions || u.dot.seq == 0 ||
        u.dot.seq > kSeqMask || u.amount < 0 || u.amount > kMaxOpAmount || u.to >= targets)
      return false;
  }
  if (uses.size() == 1) {
    d.set_binding(uses.front());
    d.set_multi(false);
    side_.erase(id);
    return true;
  }
  d.set_multi(true);
  SyncBinding(d, uses);
  side_[id] = std::move(uses);
  return true;
}

bool KeyIndex::Fold(std::vector<KeyUse>* uses, Hlc frontier) {
  std::size_t below = 0;
  while (below < uses->size() && (*uses)[below].hlc < frontier) ++below;
  if (below == 0) return false;
  // Below the frontier only two uses can still matter: the binding (for retries) and the last
  // use (the predecessor of anything still to come).
  std::size_t binding = below;
  for (std::size_t i = below; i-- > 0;) {
    if (!(*uses)[i].voided) {
      binding = i;
      break;
    }
  }
  std::vector<KeyUse> kept;
  if (binding < below) kept.push_back((*uses)[binding]);
  if (binding != below - 1) kept.push_back((*uses)[below - 1]);
  if (kept.size() == below) return false;
  kept.insert(kept.end(), uses->begin() + static_cast<std::ptrdiff_t>(below), uses->end());
  *uses = std::move(kept);
  return true;
}

std::size_t KeyIndex::MemoryBytes() const {
  std::size_t side = 0;
  for (const auto& [id, uses] : side_) side += 64 + sizeof(id) + uses.capacity() * sizeof(KeyUse);
  return chunks_.size() * kChunkEntries * sizeof(Dense) + blocks_.capacity() * sizeof(SlotBlock) +
         side;
}

}  // namespace tally
