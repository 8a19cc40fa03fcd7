// SimStore: a region's storage as the simulator models it, with crash semantics.
//
// Like LevelDB's fault_injection_test, the store keeps two things: the state "as of the last sync",
// and the write batches made since. A sync makes every batch written before it durable, in order
// (group commit); a crash drops every batch not yet synced. Recover() reads back what survived in
// the shape Replica::Recover takes. A batch is the core's PersistBatch, the one the host's
// CommitGate hands out (tallyd's LevelDB store writes the same type), applied in the order
// core/persist_batch.h gives: a batch that replaces the store (a peer's snapshot was installed)
// first drops every op, record and checkpoint, the frontier and the log floor — not the high-water
// mark nor the fences; forgotten idempotency records are deleted, then records and ops stored;
// the high-water mark and fences replaced; each Fold stores its checkpoints, frontier and log
// floor and deletes the ops at or below the floor.
//
// The durable state is one value (Durable), so the disk faults can copy it and put it back: a wiped
// disk is an empty Durable, a restored one an older copy. Records are kept as tallyd's store keeps
// them — the codec's bytes (EncodeOp, EncodeKeyRecord, EncodeCheckpoint, EncodeFences) — and
// Recover decodes them as tallyd's recovery does; a record that does not decode fails recovery.
// The store's own bookkeeping (timestamps, the log floor, seq bounds) stays in values.
//
// Not thread-safe; one host owns one store.

#ifndef TALLY_SIM_STORE_H_
#define TALLY_SIM_STORE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/persist_batch.h"
#include "core/replica.h"

namespace tally::sim {

class SimStore {
 public:
  // What survives a crash. Each origin's ops form a contiguous run of seqs (first_seq .. first_seq
  // + size - 1) above its log floor; keys and checkpoints keep their first-write order (so Recover
  // is deterministic) with a hash index for overwrites, which is only looked up, never iterated.
  // Every std::string below is a record's encoding.
  struct KeyRecordIdHash {
    std::size_t operator()(const KeyRecordId& id) const;
  };
  struct Durable {
    Hlc high_water;
    std::string fences;  // empty: none stored yet
    Hlc frontier;
    VersionVector log_floor;
    std::array<std::deque<std::string>, kMaxRegions> ops;
    std::array<Seq, kMaxRegions> first_seq = Ones();
    std::vector<std::string> checkpoints;
    std::unordered_map<std::string, std::size_t> checkpoint_index;  // by account id
    // Idempotency records by (account, key hash, displaced): a later write replaces, a
    // forgotten key (past its retention window) is erased. Hashed on the id's values (a string
    // key "account\nh1:h2" in an ordered map cost the simulator 6 % of its time comparing long
    // common prefixes); only looked up, never iterated, except by Recover, which sorts the
    // records by that string so a replica reads them back in the order it always has.
    std::unordered_map<KeyRecordId, std::string, KeyRecordIdHash> keys;

    // Decoded reads, for checkers. A record that does not decode asserts: only this store writes
    // them, from the codec's own encoding (Recover reports the same failure as a Status).
    std::vector<Op> Ops(RegionId origin) const;
    std::vector<Fence> Fences() const;

    static std::array<Seq, kMaxRegions> Ones() {
      std::array<Seq, kMaxRegions> a;
      a.fill(1);
      return a;
    }
  };

  SimStore() = default;
  SimStore(const SimStore&) = delete;
  SimStore& operator=(const SimStore&) = delete;
  SimStore(SimStore&&) = default;
  SimStore& operator=(SimStore&&) = default;

  // Appends a batch (not yet durable); returns its number (1, 2, ...). The store keeps it.
  std::uint64_t Write(PersistBatch batch);
  // The same without a copy: *batch must stay valid and unchanged until it is synced or the store
  // crashes, which CommitGate promises of the batch StartWrite() returns until Synced() retires
  // it. The host writes the gate's batch this way (copying every batch cost 4 % of a run).
  std::uint64_t WriteBorrowed(const PersistBatch* batch);

  // Makes every batch numbered <= `upto` durable, oldest first. Each batch made durable is passed
  // to `on_durable` (before it is applied) so checkers see exactly what became durable.
  template <typename F>
  void SyncUpTo(std::uint64_t upto, F&& on_durable) {
    while (!pending_.empty() && synced_ < upto) {
      on_durable(pending_.front().get());
      Apply(pending_.front().get());
      pending_.pop_front();
      ++synced_;
    }
  }

  // A crash: every batch not yet synced is gone. Batch numbers restart after the durable ones.
  void Crash();

  // The disk itself replaced, on a crashed store: by an empty one (a wipe) or by a copy of an
  // earlier durable state (a restore). Nothing may be pending (Crash first).
  void ReplaceDisk(Durable state);
  const Durable& durable() const { return d_; }

  // What a restarting replica reads back: every record decoded. Not ok when one does not decode.
  Status Recover(RecoveredState* out) const;

  std::uint64_t written() const { return synced_ + pending_.size(); }
  std::uint64_t synced() const { return synced_; }

  // Reads of the durable state, for checkers.
  std::optional<Op> FindOp(Dot dot) const;
  Hlc high_water() const { return d_.high_water; }
  const VersionVector& log_floor() const { return d_.log_floor; }
  // The highest seq of `origin` the durable state covers, as an op or below the log floor.
  Seq Extent(RegionId origin) const;
  std::size_t retained_ops() const;
  std::size_t key_records() const { return d_.keys.size(); }
  // "" or what was wrong with a write: an op that does not extend its origin's log (a gap), which
  // no correct replica asks for and which Recover would refuse.
  const std::string& write_error() const { return write_error_; }

 private:
  void Apply(const PersistBatch& batch);

  // A batch written and not yet synced: the store's own or one it borrows (WriteBorrowed).
  struct Pending {
    PersistBatch owned;
    const PersistBatch* borrowed = nullptr;
    const PersistBatch& get() const { return borrowed ? *borrowed : owned; }
  };
  std::deque<Pending> pending_;
  std::uint64_t synced_ = 0;
  std::string write_error_;

  Durable d_;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_STORE_H_
