// MoveAppend: appends one vector's elements to another and leaves the source empty, reusing
// buffers: when the destination is empty the two swap, so the caller keeps the destination's
// (cleared, still allocated) buffer and a hot path that hands vectors back and forth allocates
// nothing once both have grown. Used where Effects are merged into batches (PersistBatch,
// CommitGate). Stateless; thread-safe as far as the vectors are.

#ifndef TALLY_CORE_MOVE_APPEND_H_
#define TALLY_CORE_MOVE_APPEND_H_

#include <iterator>
#include <vector>

namespace tally {

template <typename T>
void MoveAppend(std::vector<T>* from, std::vector<T>* to) {
  if (to->empty()) {
    to->swap(*from);
  } else {
    to->insert(to->end(), std::make_move_iterator(from->begin()),
               std::make_move_iterator(from->end()));
  }
  from->clear();
}

}  // namespace tally

#endif  // TALLY_CORE_MOVE_APPEND_H_
