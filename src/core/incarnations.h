// Incarnations: what a replica knows of every region's runs (incarnations) — ours: the epoch this
// run stamps on its ops and where it resumed issuing them (its fence); the others': the newest
// epoch each told us itself (Hello), the newest relayed by peers, the newest of its own fences it
// sent us itself — and every fence known (core/fence_book.h), with whether they changed since the
// host last persisted them.
//
// Bookkeeping only: the replica decides when an epoch begins and what follows from a new fence
// (removing ops of a lost history, releasing ops held for a fence); this class answers the
// questions those decisions ask ("is this op of a run whose fence we lack?", "does this peer
// know where we resumed?"). Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_INCARNATIONS_H_
#define TALLY_CORE_INCARNATIONS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/fence_book.h"
#include "core/messages.h"
#include "core/types.h"

namespace tally {

class Incarnations {
 public:
  Incarnations(RegionId regions, RegionId self);

  // ---- ours ----
  std::uint64_t epoch() const { return epoch_; }  // 0: never recovered (a test's new replica)
  Seq resumed_from() const { return resumed_from_; }
  void BeginEpoch(std::uint64_t epoch) { epoch_ = epoch; }
  // This run resumes issuing its own ops after `applied_self`: our fence, to be persisted.
  void Resume(Seq applied_self);
  // Whether a peer's list of fences (its Hello's or heartbeat's) has this incarnation's. Our
  // epoch alone is not enough: a peer that got an op of ours of this epoch knows the fence that
  // op implies, whose resume point may be above ours (seed 300887): it may hold, below that op,
  // an op of our lost history it applied before the new op came, and count it.
  bool KnowsOurFence(const std::vector<Fence>& fences) const;

  // ---- theirs ----
  // The newest epoch `from` told us itself (its Hello); returns the one known before.
  std::uint64_t NotePeerEpoch(RegionId from, std::uint64_t epoch);
  std::uint64_t peer_epoch(RegionId r) const { return peer_epoch_[r]; }
  // Newest epochs relayed by a peer (heartbeats), for regions other than us.
  void NoteRelayedEpoch(RegionId r, std::uint64_t epoch);
  // The fences of its own a peer sent us itself (in its Hello or heartbeat) hold its real resume
  // points: a region's own book never holds a fence of its current epoch that an op implied.
  void NoteOwnFences(RegionId from, const std::vector<Fence>& fences);
  // The newest epoch of `r` whose fence `r` itself told us.
  std::uint64_t own_fence_epoch(RegionId r) const { return own_fence_epoch_[r]; }
  // The latest incarnation of region o we know of: from its Hello, or from a fence (its own,
  // relayed, or implied by one of its ops).
  std::uint64_t NewestEpochOf(RegionId o) const;
  // The newest epoch we know of every region, ours being the current one: what heartbeats carry.
  std::vector<std::uint64_t> KnownEpochs() const;
  // Whether `op` is of a run of its origin older than the newest we know of, whose fence we do
  // not know yet (never for our own ops: our fences decide).
  bool AwaitsFence(const Op& op) const;

  // ---- fences ----
  const FenceBook& fences() const { return fences_; }
  // True when `f` is new (FenceBook::Add). Does not mark the fences unsaved: a fence read back
  // from the store is saved already.
  bool AddFence(const Fence& f) { return fences_.Add(f); }
  void MarkUnsaved() { unsaved_ = true; }
  // Every fence, when they changed since the last call (for Effects::fences).
  std::optional<std::vector<Fence>> TakeUnsaved();

 private:
  RegionId n_;
  RegionId self_;
  std::uint64_t epoch_ = 0;
  Seq resumed_from_ = 0;                        // our fence: this run issues own ops after this seq
  std::vector<std::uint64_t> peer_epoch_;       // per region: the newest epoch it told us
  std::vector<std::uint64_t> relayed_epoch_;    // per region: the newest epoch peers relayed
  std::vector<std::uint64_t> own_fence_epoch_;  // per region: NoteOwnFences
  FenceBook fences_;                            // where each region's incarnations resumed
  bool unsaved_ = false;  // fences_ changed since the host last persisted them
};

}  // namespace tally

#endif  // TALLY_CORE_INCARNATIONS_H_
