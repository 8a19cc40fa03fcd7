// HistoryStore: the final lines of every account's statement (StatementLine,
// core/replica_types.h), kept in the region's LevelDB beside its state under
//
//   H<len u8><account><hlc u64 BE><origin u32 BE><seq u64 BE>   codec::EncodeStatementLine
//
// so one account's lines are contiguous and in canonical order. Store::Write puts the lines a Fold
// carries in the same synced WriteBatch as the Fold's checkpoints: a line is stored exactly when
// its op's fold is, and a crash before that folds the op again after the restart. Store::Load
// skips the range (a restart reads none of it), a backup copies it, and a snapshot that replaces
// the store drops it with the rest (the state that replaces ours may lack ops whose lines we had:
// a lost history's).
//
// What it does not hold: lines of ops folded by a peer's snapshot this region installed, or lost
// with a disk, and lines older than the retention (Prune). docs/operations.md, "GET
// /v1/accounts/{id}/history".
//
// Threading: every call may run on any thread, at the same time as Store::Write and each other
// (LevelDB serves concurrent reads and writes). Not copyable.

#ifndef TALLY_NODE_HISTORY_STORE_H_
#define TALLY_NODE_HISTORY_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica_types.h"
#include "core/status.h"
#include "node/history_query.h"

namespace leveldb {
class DB;
class WriteBatch;
}  // namespace leveldb

namespace tally::node {

class HistoryStore {
 public:
  static constexpr char kPrefix = 'H';

  HistoryStore(leveldb::DB* db, std::string dir) : db_(db), dir_(std::move(dir)) {}
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  static std::string LineKey(std::string_view account, const CanonicalKey& key);
  // Adds the put of `line` to `wb`.
  static void Put(const StatementLine& line, leveldb::WriteBatch* wb);

  // Up to q.limit lines of `account` as q asks, appended to *out; *more: whether the store holds
  // further lines in that direction. Corruption when a stored line does not decode.
  Status Read(std::string_view account, const HistoryQuery& q, std::vector<StatementLine>* out,
              bool* more) const;
  // The last line of `account` at or before `at` (*found false if the store has none: the
  // account's history here starts later, or was pruned).
  Status LastAtOrBefore(std::string_view account, Hlc at, StatementLine* out, bool* found) const;
  // Deletes up to `max_deletes` lines whose time is before `before_wall_ms`, oldest of each
  // account first; *deleted: how many. Not synced: a crash may bring some back, to be pruned again.
  Status Prune(std::uint64_t before_wall_ms, std::size_t max_deletes, std::size_t* deleted);

 private:
  leveldb::DB* const db_;
  const std::string dir_;  // for messages
};

}  // namespace tally::node

#endif  // TALLY_NODE_HISTORY_STORE_H_
