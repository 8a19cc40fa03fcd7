// Store: a region's durable state in LevelDB, in the key ranges docs/protocol.md ("Storage
// (LevelDB)") documents.
//
//   M<name>                      meta: identity, HLC high-water mark, stable frontier, log floor
//   O<origin u32 BE><seq u64 BE> an op of the retained log (codec::EncodeOp)
//   K<len u8><account><h1 u64 BE><h2 u64 BE>[0x01]
//                                an idempotency record, by key hash (codec::EncodeKeyRecord);
//                                0x01: our own displaced op's record
//   C<account>                   an account checkpoint at the frontier (codec::EncodeCheckpoint)
//   H<len u8><account><canonical key>
//                                a final line of the account's statement (node/history_store.h)
//
// Write() turns one or more PersistBatches (core/persist_batch.h: the persistable parts of many
// Effects, accumulated while the previous write was syncing: group commit) into ONE LevelDB
// WriteBatch written with sync=true, so a group is on disk entirely or not at all. A fold's
// checkpoints, frontier and log floor go in the same batch as the deletion of the ops it made
// redundant.
//
// Load() reads everything back for Replica::Recover and refuses (Corruption) a store whose LevelDB
// checksums fail, whose records do not decode, or whose keys and values disagree: a corrupt region
// must not start and serve wrong balances. It skips the statement lines (history()): a restart
// needs none of them, however many there are. The store remembers the cluster and region it was
// created for and refuses to open under another identity.
//
// Backup() copies the store, as of one LevelDB snapshot, into a new LevelDB that tallyd can open
// as its data directory (the identity record is just another key). A group commit is one
// WriteBatch, so the copy holds each group entirely or not at all.
//
// Durability: what Write returned OK for survives a crash of the process or the machine. The
// store is the file system as of its last sync: every Write is one synced WriteBatch, and
// LevelDB's log, recovered on Open, replays each synced batch entirely or not at all; a write
// that did not return OK may or may not be there, never half. Open recovers from a crash at any
// point without Corruption. tests/node/tallyd_store_crash_test.cc crashes a real store through a
// fault-injecting Env (modelled on LevelDB's db/fault_injection_test.cc) to check it.
//
// Thread contract: Open/Load first, then Write from one thread at a time (tallyd's storage
// thread). Backup may run on any other thread at the same time as Write: it reads only through a
// LevelDB snapshot (LevelDB serves concurrent reads and writes) and touches no member Write
// changes. A Store is not copyable.

#ifndef TALLY_NODE_STORE_H_
#define TALLY_NODE_STORE_H_

#include <leveldb/env.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/persist_batch.h"
#include "core/replica.h"
#include "core/status.h"
#include "node/history_store.h"

namespace leveldb {
class DB;
class WriteBatch;
}  // namespace leveldb

namespace tally::node {

// Who a data directory belongs to. A store opened under another identity is refused: its op logs
// and region numbering would mean something else.
struct StoreIdentity {
  std::string cluster_id;
  std::string region;
  std::vector<std::string> regions;  // names, indexed by RegionId
  std::string Encode() const;
};

struct WriteStats {
  std::size_t ops = 0;        // op records written
  std::size_t records = 0;    // puts and deletes in the WriteBatch
  std::size_t bytes = 0;      // WriteBatch size
  std::uint64_t sync_us = 0;  // time in leveldb::DB::Write (sync=true)
};

// A backup writes its copy in WriteBatches of about this size, each synced: bounded memory however
// large the store, and the copy's disk is never asked to hold more than this unsynced.
inline constexpr std::size_t kBackupBatchBytes = std::size_t{4} << 20;

struct BackupStats {
  std::size_t keys = 0;          // records copied, every kind
  std::size_t ops = 0;           // of which op records
  std::size_t bytes = 0;         // key and value bytes copied
  std::size_t batches = 0;       // synced WriteBatches written to the copy
  std::uint64_t elapsed_us = 0;  // from the call to the copy's close
  // Per origin, the newest op the copy holds: in its op log, or folded into checkpoints below its
  // log floor. What a region restored from it has before its peers give it the rest.
  VersionVector newest;
};

class Store {
 public:
  // Opens (creating if missing) the LevelDB at `dir` with paranoid checks on. Corruption when
  // LevelDB finds damage; FailedPrecondition when the directory belongs to another identity.
  // `env` is the file system LevelDB goes through (leveldb::Options::env): the real one, or a
  // test's (a fault-injecting EnvWrapper); it must outlive the Store. Backup's copy always goes
  // through the default Env.
  // The statement lines, read by the API (any thread) and written by Write with their folds.
  HistoryStore& history() { return *history_; }

  static Status Open(const std::string& dir, const StoreIdentity& identity,
                     std::unique_ptr<Store>* out, leveldb::Env* env = leveldb::Env::Default());
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Reads every record back. Corruption (naming the record) when anything fails to verify.
  Status Load(RecoveredState* out);

  // Writes `batches`, in order (a later one's records supersede an earlier one's), as one synced
  // WriteBatch.
  Status Write(std::span<const PersistBatch* const> batches, WriteStats* stats);

  // The key layout, exposed for tests and tools.
  static std::string OpKey(RegionId origin, Seq seq);
  static std::string KeyRecordKey(std::string_view account, const KeyHash& key,
                                  bool displaced = false);
  static std::string CheckpointKey(std::string_view account);
  static std::string MetaKey(std::string_view name);

  // Adds one stored record (a LevelDB key and its value) of a store of `regions` regions to *st,
  // checked as Load checks every record: Corruption "record <key>: <problem>" when it is not a
  // record this layout writes. Pure (no LevelDB), so tests/fuzz can feed it any bytes.
  static Status LoadRecord(std::string_view key, std::string_view value, RegionId regions,
                           RecoveredState* st);

  // Copies every record, as of one snapshot, into a new LevelDB at `dir`, in synced WriteBatches
  // of at most kBackupBatchBytes, and closes it. `dir` must not exist or be an empty directory
  // (FailedPrecondition otherwise; IOError when it cannot be created). The identity record is
  // written last, so a copy that stopped half-way is refused by tallyd (records but no identity);
  // on failure what the copy wrote is removed. `cancel` (may be null) is checked before the scan
  // and between batches: when set, the copy stops with Unavailable.
  Status Backup(const std::string& dir, BackupStats* stats,
                const std::atomic<bool>* cancel = nullptr) const;

 private:
  Store(leveldb::DB* db, RegionId regions, const std::string& dir)
      : db_(db), regions_(regions), dir_(dir), history_(std::make_unique<HistoryStore>(db, dir)) {}
  Status DeleteRecords(leveldb::WriteBatch* wb, std::size_t* records);

  leveldb::DB* const db_;
  const RegionId regions_;
  const std::string dir_;  // for messages
  const std::unique_ptr<HistoryStore> history_;
  VersionVector floor_;  // the log floor as stored: ops at or below it are deleted
  Hlc high_water_;       // as stored; never written lower
};

}  // namespace tally::node

#endif  // TALLY_NODE_STORE_H_
