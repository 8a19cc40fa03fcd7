#include "core/types.h"

#include "core/digest.h"

namespace tally {
namespace {

// Murmur-style mixing, 8 bytes at a time: independent of FNV-1a, so the pair acts as 128 bits.
std::uint64_t Mix64(std::string_view s) {
  std::uint64_t h = 0x6a09e667f3bcc909ULL ^ (s.size() * 0xff51afd7ed558ccdULL);
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    for (int b = 0; b < 8; ++b) w |= std::uint64_t{static_cast<unsigned char>(s[i + b])} << (8 * b);
    w *= 0x87c37b91114253d5ULL;
    w = (w << 31) | (w >> 33);
    h ^= w * 0x4cf5ad432745937fULL;
    h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
  }
  for (; i < s.size(); ++i) {
    h ^= static_cast<unsigned char>(s[i]);
    h *= 0xc4ceb9fe1a85ec53ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

KeyHash HashKey(std::string_view key) {
  Fnv64 f;
  f.Add(key);
  return KeyHash{f.value(), Mix64(key)};
}

std::string Dot::ToString() const {
  return "r" + std::to_string(origin) + ":" + std::to_string(seq);
}

std::string VersionVector::ToString(RegionId regions) const {
  std::string s = "[";
  for (RegionId r = 0; r < regions && r < kMaxRegions; ++r) {
    if (r) s += ",";
    s += std::to_string(seqs_[r]);
  }
  return s + "]";
}

std::vector<Amount> SplitOverdraft(Amount limit, RegionId regions) {
  std::vector<Amount> lines(regions, 0);
  if (regions == 0 || limit <= 0) return lines;
  const Amount share = limit / regions;
  Amount rest = limit % regions;
  for (RegionId r = 0; r < regions; ++r) lines[r] = share + (rest-- > 0 ? 1 : 0);
  return lines;
}

std::uint32_t AccountTag(std::string_view account) {
  return static_cast<std::uint32_t>(HashKey(account).h1 % kAccountTagLimit);
}

RegionId KeyTarget(const Op& op) {
  return op.kind == OpKind::kTransfer ? AccountTag(op.to_account) : op.to;
}

std::string HoldKey(Dot hold) {
  return std::string(kHoldKeyPrefix) + std::to_string(hold.origin) + ":" + std::to_string(hold.seq);
}

bool IsHoldResolution(OpKind k) { return k == OpKind::kCapture || k == OpKind::kRelease; }

OpKind RequestKind(OpKind k) { return k == OpKind::kBudgetDebit ? OpKind::kDebit : k; }

bool MayCarryNote(OpKind k) {
  return k == OpKind::kCredit || k == OpKind::kDebit || k == OpKind::kTransfer ||
         k == OpKind::kHold || k == OpKind::kBudgetDebit;
}

std::string_view OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kOpen:
      return "open";
    case OpKind::kCredit:
      return "credit";
    case OpKind::kDebit:
      return "debit";
    case OpKind::kRights:
      return "rights";
    case OpKind::kTransfer:
      return "transfer";
    case OpKind::kHold:
      return "hold";
    case OpKind::kCapture:
      return "capture";
    case OpKind::kRelease:
      return "release";
    case OpKind::kBudgetDebit:
      return "budget debit";
  }
  return "unknown";
}

}  // namespace tally
