#include "sim/store.h"

#include <utility>

namespace tally::sim {
namespace {

std::string KeyId(const KeyRecord& k) {
  std::string id;
  id.reserve(k.account.size() + 1 + k.key.size());
  id += k.account;
  id += '\n';
  id += k.key;
  return id;
}

}  // namespace

std::uint64_t SimStore::Write(WriteBatch batch) {
  pending_.push_back(std::move(batch));
  return written();
}

void SimStore::Crash() { pending_.clear(); }

void SimStore::Apply(WriteBatch batch) {
  for (Op& op : batch.ops) {
    Seq seq = op.dot.seq;
    ops_[op.dot.origin].insert_or_assign(seq, std::move(op));
  }
  for (KeyRecord& k : batch.keys) {
    std::string id = KeyId(k);
    keys_.insert_or_assign(std::move(id), std::move(k));
  }
  if (!batch.high_water.is_zero()) high_water_ = batch.high_water;
  if (batch.fold) {
    Fold& fold = *batch.fold;
    frontier_ = fold.frontier;
    log_floor_ = fold.log_floor;
    for (AccountCheckpoint& c : fold.checkpoints) {
      std::string id = c.config.id;
      checkpoints_.insert_or_assign(std::move(id), std::move(c));
    }
    for (RegionId r = 0; r < kMaxRegions; ++r) {
      auto& log = ops_[r];
      log.erase(log.begin(), log.upper_bound(log_floor_.get(r)));
    }
  }
}

RecoveredState SimStore::Recover() const {
  RecoveredState s;
  s.high_water = high_water_;
  s.frontier = frontier_;
  s.log_floor = log_floor_;
  s.checkpoints.reserve(checkpoints_.size());
  for (const auto& [id, c] : checkpoints_) s.checkpoints.push_back(c);
  for (const auto& log : ops_)
    for (const auto& [seq, op] : log) s.ops.push_back(op);
  s.keys.reserve(keys_.size());
  for (const auto& [id, k] : keys_) s.keys.push_back(k);
  return s;
}

const Op* SimStore::FindOp(Dot dot) const {
  if (dot.origin >= kMaxRegions) return nullptr;
  auto it = ops_[dot.origin].find(dot.seq);
  return it == ops_[dot.origin].end() ? nullptr : &it->second;
}

std::size_t SimStore::retained_ops() const {
  std::size_t n = 0;
  for (const auto& log : ops_) n += log.size();
  return n;
}

}  // namespace tally::sim
