#include "core/replication_waits.h"

#include <utility>

namespace tally {

void ReplicationWaits::Hold(CommandResult r, std::uint64_t deadline_ms) {
  const Dot op = r.op;
  held_.emplace(op, Held{deadline_ms, std::move(r)});
}

void ReplicationWaits::ReleaseUpTo(RegionId origin, Seq seq, std::vector<CommandResult>* out) {
  auto it = held_.lower_bound(Dot{origin, 0});
  while (it != held_.end() && it->first.origin == origin && it->first.seq <= seq) {
    CommandResult r = std::move(it->second.result);
    it = held_.erase(it);
    r.replicated = true;
    out->push_back(std::move(r));
  }
}

std::vector<CommandResult> ReplicationWaits::TakeExpired(std::uint64_t now) {
  std::vector<CommandResult> out;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second.result));
    it = held_.erase(it);
  }
  return out;
}

std::vector<CommandResult> ReplicationWaits::TakeBeyond(const VersionVector& applied) {
  std::vector<CommandResult> out;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first.seq <= applied.get(it->first.origin)) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second.result));
    it = held_.erase(it);
  }
  return out;
}

std::vector<CommandResult> ReplicationWaits::TakeAll() {
  std::vector<CommandResult> out;
  for (auto& [op, held] : held_) out.push_back(std::move(held.result));
  held_.clear();
  return out;
}

}  // namespace tally
