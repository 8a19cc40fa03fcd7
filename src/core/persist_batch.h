// PersistBatch: what one group commit must make durable — the persistable parts of every Effects
// a host absorbed since its previous write started, merged in the order the replica produced them.
//
// It is the unit of storage tallyd's LevelDB store (src/node/store.h), the simulator's store
// (sim/store.h) and the core tests' ideal store (tests/core/cluster_fixture.h) write. CommitGate
// (commit_gate.h) fills it and decides what may leave once it is synced.
//
// Applying a batch to a store, in this order:
//   1. `replaces_store`: drop every op, idempotency record and checkpoint, the frontier and the log
//      floor (not the high-water mark, not the fences): a peer's snapshot replaced the state.
//   2. Delete `forget_keys`, then write `keys` (TakeFrom keeps the two disjoint).
//   3. Write `ops`.
//   4. `high_water` and `fences`, when set, replace the stored ones.
//   5. Each fold in order: its frontier and log floor replace the stored ones, its checkpoints
//      replace the stored checkpoints of their accounts, and every op at or below the new floor
//      goes.
//
// Not thread-safe; a batch handed to a writer must not change until its write completes.

#ifndef TALLY_CORE_PERSIST_BATCH_H_
#define TALLY_CORE_PERSIST_BATCH_H_

#include <vector>

#include "core/replica.h"

namespace tally {

struct PersistBatch {
  std::vector<Op> ops;
  std::vector<KeyRecordId> forget_keys;
  std::vector<KeyRecord> keys;
  Hlc high_water;             // the largest asked for; zero: unchanged
  std::vector<Fence> fences;  // the newest list asked for; empty: unchanged
  std::vector<Fold> folds;  // in order: a later checkpoint of an account supersedes an earlier one
  bool replaces_store = false;

  bool empty() const {
    return ops.empty() && keys.empty() && forget_keys.empty() && high_water.is_zero() &&
           fences.empty() && folds.empty() && !replaces_store;
  }
  // Clears but keeps the vectors' capacity (a batch object is reused for every commit).
  void Clear();
  // Moves the persistable part of *e (ops, forget_keys, keys, high_water, fences, fold,
  // replaces_store) into this batch, leaving those fields of *e empty. An Effects that replaces
  // the store drops what the batch held before. A later Effects' deletion of a key record
  // supersedes an earlier one's write, and its write an earlier deletion.
  void TakeFrom(Effects* e);
};

}  // namespace tally

#endif  // TALLY_CORE_PERSIST_BATCH_H_
