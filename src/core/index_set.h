// IndexSet: a set of account indices (AccountBook) with O(1) insert, visited in ascending order as
// a std::set would be — what depends on the order stays deterministic — at the cost of one sort
// per visit. Ops insert into these sets on every apply; a tree insert there cost more than the
// apply itself. Not thread-safe.

#ifndef TALLY_CORE_INDEX_SET_H_
#define TALLY_CORE_INDEX_SET_H_

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace tally {

class IndexSet {
 public:
  void insert(std::uint32_t i) {
    if (i >= member_.size()) member_.resize(std::max<std::size_t>(i + 1, member_.size() * 2), 0);
    if (member_[i]) return;
    member_[i] = 1;
    sorted_ = sorted_ && (items_.empty() || items_.back() < i);
    items_.push_back(i);
  }
  // The members in ascending order. Inserting invalidates the reference.
  const std::vector<std::uint32_t>& sorted() {
    if (!sorted_) std::sort(items_.begin(), items_.end());
    sorted_ = true;
    return items_;
  }
  // Keeps the members for which keep(index) holds.
  template <class Keep>
  void retain(Keep keep) {
    std::size_t n = 0;
    for (std::uint32_t i : items_) {
      if (keep(i)) {
        items_[n++] = i;
      } else {
        member_[i] = 0;
      }
    }
    items_.resize(n);
  }
  void clear() {
    retain([](std::uint32_t) { return false; });
    sorted_ = true;
  }
  void swap(IndexSet& other) {
    member_.swap(other.member_);
    items_.swap(other.items_);
    std::swap(sorted_, other.sorted_);
  }

 private:
  std::vector<std::uint8_t> member_;  // by account index
  std::vector<std::uint32_t> items_;
  bool sorted_ = true;
};

}  // namespace tally

#endif  // TALLY_CORE_INDEX_SET_H_
