#include "sim/dots.h"

#include "sim/trace.h"

namespace tally::sim {

DotBook::DotBook(RegionId regions) : n_(regions), by_origin_(regions) {}

std::uint64_t DotBook::Fingerprint(const Op& op) {
  TraceHash h;  // FNV-1a: 64 bits, ample to tell two ops apart
  h.Add(op.account);
  h.Add(static_cast<std::uint64_t>(op.kind));
  h.Add(static_cast<std::uint64_t>(op.amount));
  h.Add(op.key);
  h.Add(op.to);
  if (op.kind == OpKind::kTransfer) h.Add(op.to_account);  // the payee
  if (op.kind == OpKind::kHold) h.Add(op.expires_ms);
  if (IsHoldResolution(op.kind)) {  // the hold it resolves, its amount, at expiry or not
    h.Add((std::uint64_t{op.hold.origin} << 48) ^ op.hold.seq);
    h.Add(static_cast<std::uint64_t>(op.held));
    h.Add(std::uint64_t{op.expired});
  }
  h.Add(op.hlc.value);
  if (op.kind == OpKind::kOpen) {
    h.Add(op.config->currency);
    h.Add(static_cast<std::uint64_t>(op.config->overdraft_limit));
    h.Add(op.config->lines.size());
    for (Amount line : op.config->lines) h.Add(static_cast<std::uint64_t>(line));
    h.Add(static_cast<std::uint64_t>(op.config->fee.flat));
    h.Add(op.config->fee.bps);
  }
  return h.value();
}

DotBook::Binding* DotBook::Find(Dot dot) {
  if (dot.origin >= n_ || dot.seq == 0) return nullptr;
  auto& v = by_origin_[dot.origin];
  if (v.size() < dot.seq) v.resize(dot.seq);
  return &v[dot.seq - 1];
}

DotBook::Seen DotBook::See(const Op& op) {
  Binding* b = Find(op.dot);
  if (!b) return Seen::kConflict;  // an impossible dot: no op may carry it
  const std::uint64_t fp = Fingerprint(op);
  if (!b->bound) {
    *b = Binding{fp, true, true, false, 0, 0, op.epoch};
    return Seen::kNew;
  }
  if (b->fingerprint == fp) {
    const bool was_live = b->live;
    b->live = true;
    return was_live ? Seen::kKnown : Seen::kRevived;
  }
  if (b->live && op.epoch < b->epoch) return Seen::kStale;
  if (b->live && op.epoch == b->epoch) return Seen::kConflict;
  const bool fenced = b->live;
  ++reissued_;
  if (b->durable) ++reissued_durable_;
  *b = Binding{fp, true, true, false, 0, 0, op.epoch};
  return fenced ? Seen::kFenced : Seen::kReissued;
}

std::vector<Dot> DotBook::Release(const VersionVector& held) {
  std::vector<Dot> freed;
  for (RegionId o = 0; o < n_; ++o) {
    auto& v = by_origin_[o];
    for (Seq s = held.get(o) + 1; s <= v.size(); ++s) {
      Binding& b = v[s - 1];
      if (!b.live) continue;
      b.live = false;
      b.durable_at = 0;  // every disk it was on is gone
      freed.push_back(Dot{o, s});
    }
  }
  return freed;
}

const DotBook::Binding* DotBook::Get(Dot dot) const {
  if (dot.origin >= n_ || dot.seq == 0 || dot.seq > by_origin_[dot.origin].size()) return nullptr;
  return &by_origin_[dot.origin][dot.seq - 1];
}

void DotBook::MarkDurable(Dot dot) {
  if (Binding* b = Find(dot); b && b->bound) b->durable = true;
}

bool DotBook::Durable(Dot dot) const {
  const Binding* b = Get(dot);
  return b && b->bound && b->durable;
}

void DotBook::MarkDurableAt(Dot dot, RegionId where) {
  if (Binding* b = Find(dot); b && b->bound && where < kMaxRegions) {
    b->durable_at |= 1u << where;
    b->ever_durable_at |= 1u << where;
  }
}

Dot DotBook::DurableElsewhereAbove(RegionId origin, Seq above, std::uint32_t* holders) const {
  if (origin >= n_) return Dot{};
  const std::uint32_t self = origin < 32 ? 1u << origin : 0;
  const auto& v = by_origin_[origin];
  for (Seq s = above + 1; s <= v.size(); ++s) {
    const Binding& b = v[s - 1];
    if (b.bound && b.live && (b.durable_at & ~self) != 0) {
      *holders = b.durable_at & ~self;
      return Dot{origin, s};
    }
  }
  return Dot{};
}

Seq DotBook::LastDurableElsewhere(RegionId origin) const {
  if (origin >= n_) return 0;
  const std::uint32_t self = origin < 32 ? 1u << origin : 0;
  const auto& v = by_origin_[origin];
  for (Seq s = v.size(); s > 0; --s) {
    const Binding& b = v[s - 1];
    if (b.bound && b.live && (b.durable_at & ~self) != 0) return s;
  }
  return 0;
}

bool DotBook::WasDurableElsewhere(Dot dot, RegionId not_here) const {
  const Binding* b = Get(dot);
  const std::uint32_t here = not_here < 32 ? 1u << not_here : 0;
  return b && b->bound && (b->ever_durable_at & ~here) != 0;
}

bool DotBook::DurableElsewhere(Dot dot, RegionId not_here) const {
  const Binding* b = Get(dot);
  const std::uint32_t here = not_here < 32 ? 1u << not_here : 0;
  return b && b->bound && (b->durable_at & ~here) != 0;
}

std::uint64_t DotBook::Bound(Dot dot) const {
  const Binding* b = Get(dot);
  return b && b->bound ? b->fingerprint : 0;
}

bool DotBook::Holds(Dot dot, std::uint64_t fingerprint) const {
  const Binding* b = Get(dot);
  return b && b->bound && b->live && b->fingerprint == fingerprint;
}

std::uint64_t DotBook::LostDurable() const {
  std::uint64_t n = reissued_durable_;
  for (const auto& v : by_origin_)
    for (const Binding& b : v) n += b.bound && b.durable && !b.live;
  return n;
}

}  // namespace tally::sim
