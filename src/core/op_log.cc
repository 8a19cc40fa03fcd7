#include "core/op_log.h"

#include <cassert>
#include <utility>

namespace tally {

OpLog::OpLog(RegionId regions)
    : n_(regions), log_(regions), buffered_(regions), awaiting_fence_(regions) {}

void OpLog::Reset(const VersionVector& floor) {
  floor_ = floor;
  applied_ = floor;
  for (auto& l : log_) l.clear();
}

void OpLog::Append(const Op& op) {
  const RegionId o = op.dot.origin;
  assert(o < n_ && op.dot.seq == applied_.get(o) + 1 && "ops are appended in seq order");
  applied_.set(o, op.dot.seq);
  log_[o].push_back(op);
  assert(floor_.get(o) + log_[o].size() == applied_.get(o));
}

const Op& OpLog::At(RegionId origin, Seq seq) const {
  const Seq floor = floor_.get(origin);
  assert(seq > floor && seq <= applied_.get(origin) && "log index out of the retained range");
  return log_[origin][seq - floor - 1];
}

const Op* OpLog::Lookup(const CanonicalKey& k) const {
  if (k.origin >= n_) return nullptr;
  const auto& log = log_[k.origin];
  const Seq floor = floor_.get(k.origin);
  if (k.seq <= floor || k.seq > floor + log.size()) return nullptr;
  return &log[k.seq - floor - 1];
}

std::vector<Op> OpLog::AllRetained() const {
  std::vector<Op> ops;
  for (RegionId o = 0; o < n_; ++o) ops.insert(ops.end(), log_[o].begin(), log_[o].end());
  return ops;
}

void OpLog::Prune(const VersionVector& upto, Hlc frontier) {
  for (RegionId o = 0; o < n_; ++o) {
    auto& log = log_[o];
    Seq floor = floor_.get(o);
    while (!log.empty() && floor < upto.get(o) && log.front().hlc < frontier) {
      log.pop_front();
      ++floor;
    }
    floor_.set(o, floor);
  }
}

void OpLog::AdoptLog(OpLog&& other) {
  assert(other.n_ == n_);
  applied_ = other.applied_;
  floor_ = other.floor_;
  log_ = std::move(other.log_);
}

void OpLog::Buffer(const Op& op) {
  auto& buf = buffered_[op.dot.origin];
  if (buf.size() < kMaxHeldPerOrigin) buf.emplace(op.dot.seq, op);
}

bool OpLog::TakeReady(RegionId origin, Op* op) {
  auto& buf = buffered_[origin];
  if (buf.empty() || buf.begin()->first > applied_.get(origin) + 1) return false;
  *op = std::move(buf.begin()->second);
  buf.erase(buf.begin());
  return true;
}

std::size_t OpLog::buffered() const {
  std::size_t n = 0;
  for (const auto& b : buffered_) n += b.size();
  for (const auto& h : awaiting_fence_) n += h.size();
  return n;
}

bool OpLog::HoldForFence(const Op& op) {
  auto& held = awaiting_fence_[op.dot.origin];
  return held.size() < kMaxHeldPerOrigin && held.emplace(op.dot.seq, op).second;
}

std::map<Seq, Op> OpLog::TakeHeldForFence(RegionId origin) {
  std::map<Seq, Op> held;
  held.swap(awaiting_fence_[origin]);
  return held;
}

VersionVector OpLog::Held() const {
  VersionVector v = applied_;
  for (RegionId o = 0; o < n_; ++o) {
    Seq s = v.get(o);
    const auto& held = awaiting_fence_[o];
    for (auto it = held.upper_bound(s); it != held.end() && it->first == s + 1; ++it) ++s;
    v.set(o, s);
  }
  return v;
}

}  // namespace tally
