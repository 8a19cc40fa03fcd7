#include "core/commit_gate.h"

#include <cassert>
#include <utility>

#include "core/move_append.h"

namespace tally {
namespace {

constexpr std::size_t kMaxSpares = 4;

}  // namespace

CommitGate::CommitGate(bool ack_before_sync)
    : ack_before_sync_(ack_before_sync), open_(std::make_unique<Slot>()) {}

CommitGate::Slot* CommitGate::Newest() {
  if (has_open_batch()) return open_.get();
  return in_flight_.empty() ? nullptr : in_flight_.back().get();
}

void CommitGate::Absorb(Effects* e, Release* now) {
  if (e->needs_persist()) open_->persist.TakeFrom(e);
  Slot* wait_for = Newest();
  if (ack_before_sync_ || wait_for == nullptr) MoveAppend(&e->completions, &now->completions);
  if (wait_for == nullptr) {
    MoveAppend(&e->send, &now->send);
    return;
  }
  MoveAppend(&e->send, &wait_for->held.send);
  MoveAppend(&e->completions, &wait_for->held.completions);
}

const PersistBatch& CommitGate::StartWrite() {
  assert(has_open_batch());
  in_flight_.push_back(std::move(open_));
  if (spares_.empty()) {
    open_ = std::make_unique<Slot>();
  } else {
    open_ = std::move(spares_.back());
    spares_.pop_back();
  }
  return in_flight_.back()->persist;
}

void CommitGate::Synced(Release* out) {
  assert(!in_flight_.empty());
  std::unique_ptr<Slot> done = std::move(in_flight_.front());
  in_flight_.pop_front();
  ++synced_;
  MoveAppend(&done->held.send, &out->send);
  MoveAppend(&done->held.completions, &out->completions);
  done->Clear();
  if (spares_.size() < kMaxSpares) spares_.push_back(std::move(done));
}

void CommitGate::Crash() {
  for (auto& b : in_flight_) b->Clear();
  in_flight_.clear();
  open_->Clear();
}

std::uint64_t CommitGate::Barrier() const {
  if (has_open_batch()) return synced_ + in_flight_.size() + 1;
  return in_flight_.empty() ? 0 : synced_ + in_flight_.size();
}

}  // namespace tally
