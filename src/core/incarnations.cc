#include "core/incarnations.h"

#include <algorithm>

namespace tally {

Incarnations::Incarnations(RegionId regions, RegionId self)
    : n_(regions),
      self_(self),
      peer_epoch_(regions, 0),
      relayed_epoch_(regions, 0),
      own_fence_epoch_(regions, 0),
      fences_(regions) {}

void Incarnations::Resume(Seq applied_self) {
  resumed_from_ = applied_self;
  fences_.Add(Fence{self_, epoch_, resumed_from_});
  unsaved_ = true;
}

bool Incarnations::KnowsOurFence(const std::vector<Fence>& fences) const {
  if (epoch_ == 0) return true;  // never recovered (a test's new replica): no fence to know
  return std::any_of(fences.begin(), fences.end(), [&](const Fence& f) {
    return f.origin == self_ &&
           (f.epoch > epoch_ || (f.epoch == epoch_ && f.resumed_from <= resumed_from_));
  });
}

std::uint64_t Incarnations::NotePeerEpoch(RegionId from, std::uint64_t epoch) {
  const std::uint64_t known = peer_epoch_[from];
  peer_epoch_[from] = std::max(known, epoch);
  return known;
}

void Incarnations::NoteRelayedEpoch(RegionId r, std::uint64_t epoch) {
  if (r < n_ && r != self_) relayed_epoch_[r] = std::max(relayed_epoch_[r], epoch);
}

void Incarnations::NoteOwnFences(RegionId from, const std::vector<Fence>& fences) {
  for (const Fence& f : fences)
    if (f.origin == from) own_fence_epoch_[from] = std::max(own_fence_epoch_[from], f.epoch);
}

std::uint64_t Incarnations::NewestEpochOf(RegionId o) const {
  return std::max(peer_epoch_[o], fences_.NewestEpoch(o));
}

std::vector<std::uint64_t> Incarnations::KnownEpochs() const {
  std::vector<std::uint64_t> v(n_);
  for (RegionId r = 0; r < n_; ++r)
    v[r] = r == self_ ? epoch_ : std::max(NewestEpochOf(r), relayed_epoch_[r]);
  return v;
}

bool Incarnations::AwaitsFence(const Op& op) const {
  if (op.dot.origin == self_) return false;  // our own: our fences decide
  const std::uint64_t newest = NewestEpochOf(op.dot.origin);
  return op.epoch < newest && fences_.NewestEpoch(op.dot.origin) < newest;
}

std::optional<std::vector<Fence>> Incarnations::TakeUnsaved() {
  if (!unsaved_) return std::nullopt;
  unsaved_ = false;
  return fences_.All();
}

}  // namespace tally
