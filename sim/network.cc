#include "sim/network.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "codec/codec.h"

namespace tally::sim {

Partition EveryLinkCut(RegionId regions) {
  Partition p;
  p.kind = "split";
  p.description = "every region alone";
  for (RegionId a = 0; a < regions; ++a)
    for (RegionId b = 0; b < regions; ++b)
      if (a != b) p.cut.emplace_back(a, b);
  return p;
}

Network::Network(RegionId regions, LinkParams params, std::uint64_t seed)
    : n_(regions),
      params_(params),
      rng_(seed),
      cuts_(static_cast<std::size_t>(regions) * regions, 0),
      in_flight_(static_cast<std::size_t>(regions) * regions, 0),
      last_delivery_ms_(static_cast<std::size_t>(regions) * regions, 0) {
  stats_.sent_by_kind.assign(std::variant_size_v<Message>, 0);
}

std::uint64_t Network::DrawDelay() {
  std::uint64_t d =
      static_cast<std::uint64_t>(rng_.Range(params_.delay_min_ms, params_.delay_max_ms));
  if (params_.tail_p > 0 && rng_.Chance(params_.tail_p))
    d += rng_.Below(static_cast<std::uint64_t>(params_.tail_ms) + 1);
  if (params_.reorder > 0 && rng_.Chance(params_.reorder))
    d += rng_.Below(4ULL * params_.delay_max_ms + 1);
  return d;
}

Status Network::Send(std::uint64_t now_ms, RegionId from, RegionId to, const Message& msg,
                     EventQueue* queue, std::uint64_t to_incarnation) {
  std::string bytes;
  if (Status s = Encode(msg, &bytes); !s.ok()) return s;
  SendBytes(now_ms, from, to, msg.index(), std::move(bytes), queue, to_incarnation);
  return Status::OK();
}

Status Network::Encode(const Message& msg, std::string* bytes) {
  return codec::EncodeMessage(msg, bytes);
}

void Network::SendBytes(std::uint64_t now_ms, RegionId from, RegionId to, std::size_t kind,
                        std::string bytes, EventQueue* queue, std::uint64_t to_incarnation) {
  assert(from < n_ && to < n_ && from != to);
  ++stats_.sent;
  ++stats_.sent_by_kind[kind];
  stats_.bytes += bytes.size();
  if (!up(from, to)) {
    ++stats_.dropped_partition;
    return;
  }
  if (params_.loss > 0 && rng_.Chance(params_.loss)) {
    ++stats_.lost;
    return;
  }
  if (!params_.stream && params_.duplicate > 0 && rng_.Chance(params_.duplicate)) {
    ++stats_.duplicated;
    Enqueue(now_ms, from, to, bytes, queue, to_incarnation);
  }
  Enqueue(now_ms, from, to, std::move(bytes), queue, to_incarnation);
}

void Network::Enqueue(std::uint64_t now_ms, RegionId from, RegionId to, std::string bytes,
                      EventQueue* queue, std::uint64_t to_incarnation) {
  std::uint32_t& load = in_flight_[from * n_ + to];
  if (load >= params_.capacity) {
    ++stats_.dropped_capacity;
    return;
  }
  ++load;
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    slots_[slot] = InFlight{from, to, now_ms, to_incarnation, std::move(bytes)};
    slot_live_[slot] = true;
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(InFlight{from, to, now_ms, to_incarnation, std::move(bytes)});
    slot_live_.push_back(true);
  }
  std::uint64_t at = now_ms + DrawDelay();
  if (params_.stream) {
    // In order: never before the previous message on this link (ties keep send order).
    std::uint64_t& last = last_delivery_ms_[from * n_ + to];
    at = std::max(at, last);
    last = at;
  }
  queue->Schedule(at, EventKind::kDeliver, 0, slot);
}

bool Network::Take(std::uint64_t slot, InFlight* out) {
  assert(slot < slots_.size() && slot_live_[slot]);
  InFlight& f = slots_[slot];
  --in_flight_[f.from * n_ + f.to];
  bool deliver = up(f.from, f.to);
  if (deliver) {
    *out = std::move(f);
    ++stats_.delivered;
  } else {
    ++stats_.dropped_partition;
  }
  std::string().swap(f.bytes);  // release the payload now, not when the slot is reused
  slot_live_[slot] = false;
  free_.push_back(static_cast<std::uint32_t>(slot));
  return deliver;
}

std::vector<std::pair<RegionId, RegionId>> Network::Cut(const Partition& p) {
  std::vector<std::pair<RegionId, RegionId>> changed;
  for (auto [from, to] : p.cut) {
    if (cuts_[from * n_ + to]++ == 0) changed.emplace_back(from, to);
  }
  return changed;
}

std::vector<std::pair<RegionId, RegionId>> Network::Uncut(const Partition& p) {
  std::vector<std::pair<RegionId, RegionId>> changed;
  for (auto [from, to] : p.cut) {
    std::uint32_t& c = cuts_[from * n_ + to];
    assert(c > 0);
    if (--c == 0) changed.emplace_back(from, to);
  }
  return changed;
}

std::vector<std::pair<RegionId, RegionId>> Network::HealAll() {
  std::vector<std::pair<RegionId, RegionId>> changed;
  for (RegionId from = 0; from < n_; ++from)
    for (RegionId to = 0; to < n_; ++to) {
      std::uint32_t& c = cuts_[from * n_ + to];
      if (c > 0) {
        c = 0;
        changed.emplace_back(from, to);
      }
    }
  return changed;
}

}  // namespace tally::sim
