#include "core/answers.h"

#include <algorithm>

#include "core/command_desk.h"

namespace tally {

// Answers a command, or, for one that asked for durability "replicated" and whose op of ours no
// other region is known to hold yet, holds the answer until one does (ReleaseReplicated).
void Answers::Complete(CommandResult r, std::uint64_t now, Effects* out) {
  const bool wants_replicated = s_.replication.TakeWant(r.id);
  r.replicated = r.status.ok() && r.op.seq != 0 && IsReplicated(r.op);
  if (wants_replicated && r.status.ok() && !r.replicated) {
    if (s_.replication.size() >= s_.opt.max_pending_debits) {
      r = Rejected(r.id, Status::Unavailable(
                             NotReplicatedReason(r.op, "too many answers wait for replication")));
    } else {
      s_.replication.Hold(std::move(r), now + s_.opt.replicated_wait_ms);
      return;
    }
  }
  out->completions.push_back(std::move(r));
}

void Answers::CompleteAll(std::vector<CommandResult> results, std::uint64_t now, Effects* out) {
  for (CommandResult& r : results) Complete(std::move(r), now, out);
}

// The highest seq of `origin` that some region other than us holds durably, by any route: peers
// ack (and heartbeat, and relay) only what they have synced. For another origin's op that is
// not simply "its origin has it": the origin may have lost its disk since (its new epoch's claims
// then replace its old ones), and our copy may be the only one.
Seq Answers::ReplicatedSeq(RegionId origin) const {
  return std::min(
      {s_.peers.HeldByAnyPeer(origin), s_.log.applied().get(origin), SettledSeq(origin)});
}

// Up to which seq the ops of `origin` we hold are known not to be of a history it lost. Claims
// of those seqs name ops, not just seqs, only below that: once `origin` has an incarnation
// whose fence (resume point) it has not told us itself, any op we hold of an earlier one may be
// fenced off, and its seq issued again with another op (seed 303554). Our own ops are settled
// by KnowsOurFence instead.
Seq Answers::SettledSeq(RegionId origin) const {
  const std::uint64_t newest = s_.inc.NewestEpochOf(origin);
  if (origin == s_.opt.self || s_.inc.own_fence_epoch(origin) >= newest)
    return s_.log.applied().get(origin);
  for (const Op& op : s_.log.Retained(origin))
    if (op.epoch < newest) return op.dot.seq - 1;
  return s_.log.applied().get(origin);
}

bool Answers::IsReplicated(const Dot& op) const { return op.seq <= ReplicatedSeq(op.origin); }

std::string Answers::NotReplicatedReason(const Dot& op, const std::string& why) const {
  return "op " + s_.opt.regions[s_.opt.self] + ":" + std::to_string(op.seq) +
         " is accepted and durable in this region, but " + why +
         "; it is kept and replicates once a peer is reachable: retry with the same "
         "Idempotency-Key for its answer";
}

// Releases the answers whose ops another region now holds, and times out those that waited
// replicated_wait_ms.
void Answers::ReleaseReplicated(std::uint64_t now, Effects* out) {
  if (s_.replication.empty()) return;
  for (RegionId o = 0; o < s_.n; ++o)
    s_.replication.ReleaseUpTo(o, ReplicatedSeq(o), &out->completions);
  for (const CommandResult& waited : s_.replication.TakeExpired(now)) {
    CommandResult r =
        Rejected(waited.id, Status::Unavailable(NotReplicatedReason(
                                waited.op, "no other region confirmed it within " +
                                               std::to_string(s_.opt.replicated_wait_ms) + " ms")));
    r.op = waited.op;
    out->completions.push_back(std::move(r));
  }
}

}  // namespace tally
