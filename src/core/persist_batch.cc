#include "core/persist_batch.h"

#include <set>
#include <utility>

#include "core/move_append.h"

namespace tally {

void PersistBatch::Clear() {
  ops.clear();
  forget_keys.clear();
  keys.clear();
  high_water = Hlc{};
  fences.clear();
  folds.clear();
  replaces_store = false;
}

void PersistBatch::TakeFrom(Effects* e) {
  if (e->replaces_store) {
    // A snapshot replaced the replica's state: what this batch held before is superseded.
    ops.clear();
    forget_keys.clear();
    keys.clear();
    folds.clear();
    replaces_store = true;
    e->replaces_store = false;
  }
  MoveAppend(&e->ops, &ops);
  // The Effects deletes before it writes. Its deletions supersede what earlier Effects of this
  // group wrote; its writes supersede what earlier ones (or its own sweep) deleted.
  if (!e->forget_keys.empty()) {
    const std::set<KeyRecordId> gone(e->forget_keys.begin(), e->forget_keys.end());
    std::erase_if(keys, [&](const KeyRecord& k) {
      return gone.count(KeyRecordId{k.account, k.key, k.displaced}) > 0;
    });
    forget_keys.insert(forget_keys.end(), e->forget_keys.begin(), e->forget_keys.end());
    e->forget_keys.clear();
  }
  if (!forget_keys.empty() && !e->keys.empty()) {
    std::set<KeyRecordId> written;
    for (const KeyRecord& k : e->keys) written.insert(KeyRecordId{k.account, k.key, k.displaced});
    std::erase_if(forget_keys, [&](const KeyRecordId& id) { return written.count(id) > 0; });
  }
  MoveAppend(&e->keys, &keys);
  if (e->high_water > high_water) high_water = e->high_water;
  e->high_water = Hlc{};
  if (!e->fences.empty()) fences = std::move(e->fences);  // each list is the whole one
  e->fences.clear();
  if (e->fold) {
    folds.push_back(std::move(*e->fold));
    e->fold.reset();
  }
}

}  // namespace tally
