#include "sim/statement_check.h"

#include <algorithm>
#include <sstream>

namespace tally::sim {

namespace {

// FNV-1a, written here: the oracle shares no code with the replica.
struct Fnv {
  std::uint64_t h = 14695981039346656037ull;
  void Bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void U64(std::uint64_t v) { Bytes(&v, sizeof v); }
  void Str(const std::string& s) {
    U64(s.size());
    Bytes(s.data(), s.size());
  }
};

std::uint64_t IdOf(const StatementLine& l) {
  Fnv f;
  f.Str(l.account);
  f.U64(l.key.hlc.value);
  f.U64(l.key.origin);
  f.U64(l.key.seq);
  return f.h;
}

std::uint64_t ContentOf(const StatementLine& l) {
  Fnv f;
  f.U64(static_cast<std::uint64_t>(l.kind));
  for (Amount a : {l.change, l.amount, l.fee, l.void_amount, l.balance_after})
    f.U64(static_cast<std::uint64_t>(a));
  f.U64((l.voided ? 1 : 0) | (l.final ? 2 : 0) | (l.crossing ? 4 : 0));
  f.Str(l.idempotency_key);
  f.Str(l.counterparty);
  f.Str(l.memo);
  for (const auto& [k, v] : l.metadata) {
    f.Str(k);
    f.Str(v);
  }
  f.U64(l.hold.origin);
  f.U64(l.hold.seq);
  return f.h;
}

std::string Name(RegionId r, const StatementLine& l) {
  std::ostringstream o;
  o << "r" << r << " " << l.account << " line of r" << l.key.origin << ":" << l.key.seq << " ("
    << OpKindName(l.kind) << " " << l.change << ", fee " << l.fee << ", balance after "
    << l.balance_after << (l.voided ? ", voided" : "") << ")";
  return o.str();
}

}  // namespace

void StatementCheck::Forget(RegionId r) {
  last_[r].clear();
  for (Stored& s : lines_) s.regions &= ~(std::uint32_t{1} << r);
}

StatementCheck::Stored* StatementCheck::Slot(std::uint64_t id) {
  if (2 * (used_ + 1) > lines_.size()) {
    std::vector<Stored> old(std::max<std::size_t>(1024, 2 * lines_.size()));
    old.swap(lines_);
    used_ = 0;
    for (const Stored& s : old)
      if (s.id != 0) {
        *Slot(s.id) = s;
        ++used_;
      }
  }
  const std::size_t mask = lines_.size() - 1;
  std::size_t i = static_cast<std::size_t>((id ^ (id >> 31)) * 0x9e3779b97f4a7c15ULL) & mask;
  while (lines_[i].id != 0 && lines_[i].id != id) i = (i + 1) & mask;
  return &lines_[i];
}

std::string StatementCheck::See(RegionId r, const PersistBatch& batch) {
  if (batch.replaces_store) Forget(r);  // its lines went with the store
  for (const Fold& f : batch.folds) {
    for (const StatementLine& line : f.lines) {
      std::string problem = SeeLine(r, line);
      if (!problem.empty()) return problem;
    }
  }
  return {};
}

std::string StatementCheck::SeeLine(RegionId r, const StatementLine& line) {
  ++lines_checked_;
  if (!line.final) return "I7 agreement: " + Name(r, line) + " stored but not final";
  const std::uint64_t content = ContentOf(line);
  const std::uint64_t id = std::max<std::uint64_t>(IdOf(line), 1);  // 0 marks a free slot
  const std::uint32_t bit = std::uint32_t{1} << r;
  Stored* known = Slot(id);
  if (known->id == 0) {
    *known = Stored{id, content, 0};
    ++used_;
  } else if (known->regions == 0) {
    known->content = content;  // stored nowhere any more: this line is the first again
  } else if (known->content != content) {
    return "I7 agreement: " + Name(r, line) + " differs from the line another region stores";
  }
  known->regions |= bit;
  auto [last, first] = last_[r].try_emplace(line.account, Last{line.key, line.balance_after});
  if (first) return {};
  if (line.key <= last->second.key) return {};  // refolded after a restore: agreement alone
  const Amount expected = last->second.balance + (line.voided ? 0 : line.change) - line.fee;
  if (line.balance_after != expected) {
    std::ostringstream o;
    o << "I3 conservation: " << Name(r, line) << " follows a balance of " << last->second.balance
      << ", so its balance after should be " << expected;
    return o.str();
  }
  last->second = Last{line.key, line.balance_after};
  return {};
}

}  // namespace tally::sim
