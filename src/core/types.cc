#include "core/types.h"

namespace tally {

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

std::string_view OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kOpen: return "open";
    case OpKind::kCredit: return "credit";
    case OpKind::kDebit: return "debit";
    case OpKind::kTransfer: return "transfer";
  }
  return "unknown";
}

}  // namespace tally
