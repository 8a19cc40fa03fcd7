#include "sim/store.h"

#include <algorithm>
#include <utility>

namespace tally::sim {
namespace {

std::string KeyId(const KeyRecord& k) {
  std::string id;
  id.reserve(k.account.size() + 1 + 2 * 20 + 1);
  id += k.account;
  id += '\n';
  id += std::to_string(k.key.h1);
  id += ':';
  id += std::to_string(k.key.h2);
  if (k.displaced) id += '\x01';  // beside the record of the op that took the key
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
    const RegionId o = op.dot.origin;
    auto& log = ops_[o];
    if (log.empty()) first_seq_[o] = std::max(first_seq_[o], log_floor_.get(o) + 1);
    const Seq next = first_seq_[o] + log.size();
    if (op.dot.seq == next) {
      log.push_back(std::move(op));
    } else if (op.dot.seq >= first_seq_[o] && op.dot.seq < next) {
      log[op.dot.seq - first_seq_[o]] = std::move(op);
    } else if (op.dot.seq > log_floor_.get(o) && write_error_.empty()) {
      write_error_ = "op " + op.dot.ToString() + " written after seq " + std::to_string(next - 1) +
                     " of its origin: a gap in the stored log";
    }
  }
  for (KeyRecord& k : batch.keys) keys_.push_back(std::move(k));
  if (!batch.high_water.is_zero()) high_water_ = batch.high_water;
  if (batch.fold) {
    Fold& fold = *batch.fold;
    frontier_ = fold.frontier;
    log_floor_ = fold.log_floor;
    for (AccountCheckpoint& c : fold.checkpoints) {
      auto [it, inserted] = checkpoint_index_.try_emplace(c.config.id, checkpoints_.size());
      if (inserted) {
        checkpoints_.push_back(std::move(c));
      } else {
        checkpoints_[it->second] = std::move(c);
      }
    }
    for (RegionId r = 0; r < kMaxRegions; ++r) {
      auto& log = ops_[r];
      while (!log.empty() && first_seq_[r] <= log_floor_.get(r)) {
        log.pop_front();
        ++first_seq_[r];
      }
    }
  }
}

RecoveredState SimStore::Recover() const {
  RecoveredState s;
  s.high_water = high_water_;
  s.frontier = frontier_;
  s.log_floor = log_floor_;
  s.checkpoints = checkpoints_;
  std::size_t n = 0;
  for (const auto& log : ops_) n += log.size();
  s.ops.reserve(n);
  for (const auto& log : ops_) s.ops.insert(s.ops.end(), log.begin(), log.end());
  std::unordered_map<std::string, std::size_t> slot;  // (account, key) -> index in s.keys
  slot.reserve(keys_.size());
  for (const KeyRecord& k : keys_) {
    auto [it, inserted] = slot.try_emplace(KeyId(k), s.keys.size());
    if (inserted) {
      s.keys.push_back(k);
    } else {
      s.keys[it->second] = k;
    }
  }
  return s;
}

const Op* SimStore::FindOp(Dot dot) const {
  if (dot.origin >= kMaxRegions) return nullptr;
  const auto& log = ops_[dot.origin];
  if (dot.seq < first_seq_[dot.origin] || dot.seq >= first_seq_[dot.origin] + log.size())
    return nullptr;
  return &log[dot.seq - first_seq_[dot.origin]];
}

std::size_t SimStore::retained_ops() const {
  std::size_t n = 0;
  for (const auto& log : ops_) n += log.size();
  return n;
}

}  // namespace tally::sim
