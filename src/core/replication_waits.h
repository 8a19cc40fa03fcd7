// ReplicationWaits: the answers held for durability "replicated" — a command that asked for it is
// answered only once some other region holds its op durably, or told it waited too long.
//
// It holds results and releases them when the replica says how far each origin's ops are held
// elsewhere; it decides nothing else. Not thread-safe.

#ifndef TALLY_CORE_REPLICATION_WAITS_H_
#define TALLY_CORE_REPLICATION_WAITS_H_

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "core/replica_types.h"

namespace tally {

class ReplicationWaits {
 public:
  // Command `id` asked for durability "replicated".
  void Want(std::uint64_t id) { wanted_.insert(id); }
  // Whether command `id` asked for it; forgets that it did.
  bool TakeWant(std::uint64_t id) { return wanted_.erase(id) > 0; }

  bool empty() const { return held_.empty(); }
  std::size_t size() const { return held_.size(); }
  // Holds `r` (its op r.op) until ReleaseUpTo covers it or `deadline_ms` passes.
  void Hold(CommandResult r, std::uint64_t deadline_ms);
  // Releases, marked replicated, the held answers of `origin`'s ops up to `seq`.
  void ReleaseUpTo(RegionId origin, Seq seq, std::vector<CommandResult>* out);
  // Takes the answers whose deadline is at or before `now`.
  std::vector<CommandResult> TakeExpired(std::uint64_t now);
  // Takes the answers whose op is above what `applied` holds (of a history their region lost).
  std::vector<CommandResult> TakeBeyond(const VersionVector& applied);
  // Takes every held answer.
  std::vector<CommandResult> TakeAll();

 private:
  struct Held {
    std::uint64_t deadline_ms = 0;
    CommandResult result;
  };
  std::set<std::uint64_t> wanted_;
  std::multimap<Dot, Held> held_;  // by op: origin, then seq
};

}  // namespace tally

#endif  // TALLY_CORE_REPLICATION_WAITS_H_
