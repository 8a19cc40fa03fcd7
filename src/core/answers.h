// Answers: how a command's answer leaves the replica — at once, or, for a command that asked for
// durability "replicated", once some other region holds its op durably (or it waited too long).
//
// It decides when an op of ours counts as replicated (ReplicatedSeq: what peers say they hold,
// less what may be of a history its origin lost) and keeps the waiting answers in the state's
// ReplicationWaits. Acts on the replica's state (core/replica_state.h); calls nothing else.
// Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_ANSWERS_H_
#define TALLY_CORE_ANSWERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/replica_state.h"

namespace tally {

class Answers {
 public:
  explicit Answers(ReplicaState& s) : s_(s) {}
  Answers(const Answers&) = delete;
  Answers& operator=(const Answers&) = delete;

  // Answers command r.id (into out->completions), or holds the answer (see above).
  void Complete(CommandResult r, std::uint64_t now, Effects* out);
  void CompleteAll(std::vector<CommandResult> results, std::uint64_t now, Effects* out);
  // Releases the held answers whose ops another region now holds; refuses those that waited
  // replicated_wait_ms.
  void ReleaseReplicated(std::uint64_t now, Effects* out);

 private:
  Seq ReplicatedSeq(RegionId origin) const;
  Seq SettledSeq(RegionId origin) const;
  bool IsReplicated(const Dot& op) const;
  std::string NotReplicatedReason(const Dot& op, const std::string& why) const;

  ReplicaState& s_;
};

}  // namespace tally

#endif  // TALLY_CORE_ANSWERS_H_
