// Heartbeats: what makes ops final. Every heartbeat interval a region promises (a heartbeat) that
// it will originate nothing below its clock; once every region has promised past a timestamp,
// and we hold every op below it, that timestamp is stable: the frontier. Journals below it are
// folded into checkpoints, which are saved now and then, and the log is pruned below what every
// peer holds (docs/design.md, "Finality").
//
// Sends and reads heartbeats (promises, relayed holds and epochs, clock offsets), moves the
// frontier and emits the checkpoints. The promises are counted by core/finality.h. Acts on the
// replica's state (core/replica_state.h) and tells the rejoiner what a heartbeat says of our
// own ops; calls nothing else. Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_HEARTBEATS_H_
#define TALLY_CORE_HEARTBEATS_H_

#include <cstdint>
#include <vector>

#include "core/rejoiner.h"
#include "core/replica_state.h"

namespace tally {

class Heartbeats {
 public:
  Heartbeats(ReplicaState& s, Rejoiner& rejoiner) : s_(s), rejoiner_(rejoiner) {}
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;

  // Sends our heartbeat to every peer.
  void Send(std::uint64_t now, Effects* out);
  // A peer's heartbeat. The replica learns its fences first.
  void On(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out);
  // Folds every journal below the stable frontier into its checkpoint, in memory. True when the
  // frontier moved.
  bool FoldToFrontier();
  // Emits the checkpoints folded since the last save and prunes the log below them.
  void SaveCheckpoints(Effects* out);

 private:
  void MeasureClock(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out);
  void LearnEpochs(RegionId from, const std::vector<std::uint64_t>& epochs, Effects* out);
  void NoteRelayedAnswer(RegionId q, const HoldsEntry& e, std::uint64_t now, Effects* out);
  void PruneLogs();

  ReplicaState& s_;
  Rejoiner& rejoiner_;
};

}  // namespace tally

#endif  // TALLY_CORE_HEARTBEATS_H_
