// Rejoiner: a restarted region's way back — it picks a new epoch, asks its peers which of its own
// ops exist (Hellos), counts their answers (directly or relayed) and resumes originating once it
// holds every op they name (docs/design.md, "Rejoining").
//
// The count itself is core/rejoin_state.h; this class merges the answers' clocks, moves our
// epoch past a later start of ours a peer knows, sends the Hellos and decides when we resume.
// Acts on the replica's state (core/replica_state.h); calls nothing else. Not thread-safe; the
// replica's thread only.

#ifndef TALLY_CORE_REJOINER_H_
#define TALLY_CORE_REJOINER_H_

#include <cstdint>
#include <string>

#include "core/replica_state.h"

namespace tally {

class Rejoiner {
 public:
  explicit Rejoiner(ReplicaState& s) : s_(s) {}
  Rejoiner(const Rejoiner&) = delete;
  Rejoiner& operator=(const Rejoiner&) = delete;

  // ---- epochs ----
  // Our epoch: a timestamp above `floor` and our clock, plus this start's nonce.
  void PickEpochAbove(std::uint64_t floor);
  // Moves our epoch (and clock) past `seen`, an epoch of an earlier start of ours.
  void MoveEpochPast(std::uint64_t seen);
  // Where this incarnation resumes issuing its own ops (its fence).
  void Resume();

  // ---- answers ----
  // A peer's Hello while we rejoin.
  void NoteRejoinAnswer(RegionId from, const Hello& h, std::uint64_t now, Effects* out);
  // Region `from` knows (or relays) a later start of ours, `seen`: rejoin under a newer epoch.
  void RejoinPastLaterStart(std::uint64_t seen, RegionId from, const std::string& who,
                            Effects* out);
  // Region q's answer to this epoch of ours: it held `applied`, its clock was `clock`.
  void CountAnswer(RegionId q, std::uint64_t clock, const VersionVector& applied, std::uint64_t now,
                   Effects* out);
  // Some region holds our own ops up to `seq`: they exist, we wait for them.
  void OwnOpsExistUpTo(Seq seq);
  // Ends the rejoin if it may end.
  void MaybeFinishRejoin(std::uint64_t now, Effects* out);

  // ---- asking ----
  // Drops the answers so far and asks every peer again.
  void AskEveryPeerAgain(Effects* out);
  // Sends our Hello to every peer whose answer we still want.
  void AskUnanswered(Effects* out);

 private:
  bool HearsAnAnsweredPeer(std::uint64_t now) const;

  ReplicaState& s_;
};

}  // namespace tally

#endif  // TALLY_CORE_REJOINER_H_
