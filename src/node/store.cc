#include "node/store.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>

#include <chrono>
#include <filesystem>

#include "codec/codec.h"
#include "node/store_keys.h"

namespace tally::node {

namespace {

constexpr char kMetaPrefix = 'M';
constexpr char kOpPrefix = 'O';
constexpr char kKeyRecordPrefix = 'K';
constexpr char kCheckpointPrefix = 'C';

constexpr std::string_view kMetaIdentity = "identity";
constexpr std::string_view kMetaHighWater = "high_water";
constexpr std::string_view kMetaFrontier = "frontier";
constexpr std::string_view kMetaFences = "fences";
constexpr std::string_view kMetaLogFloor = "log_floor";

// Bumped when the key layout or record encoding changes incompatibly.
// The layout version, the first line of the identity record. 2: idempotency records under the
// key's hash (1 had them under the key itself, which this build cannot read back).
constexpr std::string_view kFormat = "tally-store 2";

std::string EncodeHlc(Hlc h) {
  std::string s;
  PutBigEndian(h.value, 8, &s);
  return s;
}

Status FromLevelDb(const leveldb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(std::string(what) + ": " + s.ToString());
  if (s.IsNotFound()) return Status::NotFound(std::string(what) + ": " + s.ToString());
  if (s.IsInvalidArgument())
    return Status::InvalidArgument(std::string(what) + ": " + s.ToString());
  return Status::IOError(std::string(what) + ": " + s.ToString());
}

std::string Printable(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c >= 0x21 && c <= 0x7e && c != '\\') {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 15]);
    }
  }
  return out;
}

std::string_view View(const leveldb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace

std::string StoreIdentity::Encode() const {
  std::string s(kFormat);
  s += "\ncluster=" + cluster_id + "\nregion=" + region + "\nregions=";
  for (std::size_t i = 0; i < regions.size(); ++i) s += (i ? "," : "") + regions[i];
  s += "\n";
  return s;
}

std::string Store::OpKey(RegionId origin, Seq seq) {
  std::string k(1, kOpPrefix);
  PutBigEndian(origin, 4, &k);
  PutBigEndian(seq, 8, &k);
  return k;
}

std::string Store::KeyRecordKey(std::string_view account, const KeyHash& key, bool displaced) {
  // Account ids are at most 64 bytes, so one length byte makes the split unambiguous. A trailing
  // 0x01 marks the record of our own displaced op, which lives beside the record of the op that
  // took the key.
  std::string k(1, kKeyRecordPrefix);
  k.push_back(static_cast<char>(account.size()));
  k.append(account);
  PutBigEndian(key.h1, 8, &k);
  PutBigEndian(key.h2, 8, &k);
  if (displaced) k.push_back('\x01');
  return k;
}

std::string Store::CheckpointKey(std::string_view account) {
  std::string k(1, kCheckpointPrefix);
  k.append(account);
  return k;
}

std::string Store::MetaKey(std::string_view name) {
  std::string k(1, kMetaPrefix);
  k.append(name);
  return k;
}

Status Store::Open(const std::string& dir, const StoreIdentity& identity,
                   std::unique_ptr<Store>* out, leveldb::Env* env) {
  leveldb::Options options;
  options.env = env;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.write_buffer_size = 16 << 20;
  leveldb::DB* db = nullptr;
  leveldb::Status ls = leveldb::DB::Open(options, dir, &db);
  if (!ls.ok()) return FromLevelDb(ls, "store " + dir + ": open");
  std::unique_ptr<Store> store(new Store(db, static_cast<RegionId>(identity.regions.size()), dir));

  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string stored;
  ls = db->Get(ro, MetaKey(kMetaIdentity), &stored);
  const std::string want = identity.Encode();
  if (ls.IsNotFound()) {
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ro));
    it->SeekToFirst();
    if (it->Valid())
      return Status::Corruption("store " + dir + ": holds records but no identity record (" +
                                Printable(MetaKey(kMetaIdentity)) + ")");
    if (!it->status().ok()) return FromLevelDb(it->status(), "store " + dir + ": scan");
    leveldb::WriteOptions wo;
    wo.sync = true;
    ls = db->Put(wo, MetaKey(kMetaIdentity), want);
    if (!ls.ok()) return FromLevelDb(ls, "store " + dir + ": write identity");
  } else if (!ls.ok()) {
    return FromLevelDb(ls, "store " + dir + ": read identity");
  } else if (stored != want) {
    if (stored.rfind("tally-store 1\n", 0) == 0)
      return Status::FailedPrecondition(
          "store " + dir +
          " has layout 1 (idempotency records by key), written by an older "
          "tally; this build reads layout 2 and does not convert: start the region on an empty "
          "data folder, and it gets its state back from its peers (docs/operations.md)");
    if (stored.rfind(kFormat, 0) != 0)
      return Status::Corruption("store " + dir + ": unknown format (identity record \"" +
                                Printable(stored) + "\")");
    return Status::FailedPrecondition(
        "store " + dir + " belongs to another cluster or region: it has \"" + Printable(stored) +
        "\", this node is \"" + Printable(want) + "\"");
  }
  *out = std::move(store);
  return Status::OK();
}

Store::~Store() { delete db_; }

Status Store::Load(RecoveredState* out) {
  RecoveredState st;
  st.log_floor = VersionVector();
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  const std::string where = "store " + dir_ + ": ";
  for (it->SeekToFirst(); it->Valid();) {
    if (it->key().size() > 0 && it->key()[0] == HistoryStore::kPrefix) {
      it->Seek(std::string(1, HistoryStore::kPrefix + 1));  // past every statement line
      continue;
    }
    if (Status s = LoadRecord(View(it->key()), View(it->value()), regions_, &st); !s.ok())
      return Status::Corruption(where + s.message());
    it->Next();
  }
  if (!it->status().ok()) return FromLevelDb(it->status(), where + "scan");
  for (const Op& op : st.ops) {
    if (op.dot.seq <= st.log_floor.get(op.dot.origin))
      return Status::Corruption(where + "op " + op.dot.ToString() +
                                " is at or below the log floor " + st.log_floor.ToString(regions_));
  }
  floor_ = st.log_floor;
  high_water_ = st.high_water;
  *out = std::move(st);
  return Status::OK();
}

Status Store::LoadRecord(std::string_view key, std::string_view value, RegionId regions,
                         RecoveredState* st) {
  auto bad = [&](std::string_view problem) {
    return Status::Corruption("record " + Printable(key) + ": " + std::string(problem));
  };
  if (key.empty()) return bad("empty key");
  switch (key[0]) {
    case kMetaPrefix: {
      std::string_view name = key.substr(1);
      if (name == kMetaIdentity) return Status::OK();  // checked by Open
      if (name == kMetaHighWater || name == kMetaFrontier) {
        if (value.size() != 8) return bad("expected 8 bytes");
        (name == kMetaHighWater ? st->high_water : st->frontier) = Hlc{GetBigEndian(value)};
      } else if (name == kMetaLogFloor) {
        if (Status s = codec::DecodeVersionVector(value, &st->log_floor); !s.ok())
          return bad(s.ToString());
      } else if (name == kMetaFences) {
        if (Status s = codec::DecodeFences(value, &st->fences); !s.ok()) return bad(s.ToString());
        for (const Fence& f : st->fences) {
          if (f.origin >= regions) return bad("a fence of a region the cluster does not have");
        }
      } else {
        return bad("unknown meta record");
      }
      break;
    }
    case kOpPrefix: {
      if (key.size() != 13) return bad("op key must be 13 bytes");
      const std::uint64_t origin = GetBigEndian(key.substr(1, 4));
      const Seq seq = GetBigEndian(key.substr(5, 8));
      if (origin >= regions) return bad("origin is not a configured region");
      Op op;
      if (Status s = codec::DecodeOp(value, &op); !s.ok()) return bad(s.ToString());
      if (op.dot != Dot{static_cast<RegionId>(origin), seq})
        return bad("holds op " + op.dot.ToString());
      st->ops.push_back(std::move(op));
      break;
    }
    case kKeyRecordPrefix: {
      if (key.size() < 2 || key.size() < 2u + static_cast<unsigned char>(key[1]))
        return bad("truncated key");
      KeyRecord k;
      if (Status s = codec::DecodeKeyRecord(value, &k); !s.ok()) return bad(s.ToString());
      if (key != KeyRecordKey(k.account, k.key, k.displaced))
        return bad("holds the record of another key of account '" + k.account + "'");
      st->keys.push_back(std::move(k));
      break;
    }
    case kCheckpointPrefix: {
      AccountCheckpoint c;
      if (Status s = codec::DecodeCheckpoint(value, &c); !s.ok()) return bad(s.ToString());
      if (c.config.id != key.substr(1)) return bad("holds the checkpoint of '" + c.config.id + "'");
      if (c.counters.regions() != regions)
        return bad("checkpoint has " + std::to_string(c.counters.regions()) +
                   " regions, the cluster has " + std::to_string(regions));
      st->checkpoints.push_back(std::move(c));
      break;
    }
    default:
      return bad("unknown key prefix");
  }
  return Status::OK();
}

// Deletes every op, idempotency record, checkpoint and statement line (not the meta records) in
// `wb`. The lines go too: the state that replaces ours may lack ops whose lines we stored (a lost
// history's), and a statement must not show an op that no longer exists.
Status Store::DeleteRecords(leveldb::WriteBatch* wb, std::size_t* records) {
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  for (const char prefix :
       {kOpPrefix, kKeyRecordPrefix, kCheckpointPrefix, HistoryStore::kPrefix}) {
    const std::string start(1, prefix);
    for (it->Seek(start); it->Valid() && it->key().size() > 0 && it->key()[0] == prefix;
         it->Next()) {
      wb->Delete(it->key());
      ++*records;
    }
  }
  if (!it->status().ok()) return FromLevelDb(it->status(), "store " + dir_ + ": scan to replace");
  return Status::OK();
}

Status Store::Write(std::span<const PersistBatch* const> batches, WriteStats* stats) {
  leveldb::WriteBatch wb;
  std::size_t records = 0, ops = 0;

  // A batch that replaces the store (a snapshot was installed) supersedes every batch before it,
  // but for their high-water marks: it starts by deleting every op, record and checkpoint.
  Hlc batch_high_water;
  std::size_t first = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (batches[i]->replaces_store) first = i;
    if (batches[i]->high_water > batch_high_water) batch_high_water = batches[i]->high_water;
  }
  const bool replace = !batches.empty() && batches[first]->replaces_store;
  if (replace) {
    Status s = DeleteRecords(&wb, &records);
    if (!s.ok()) return s;
  }
  batches = batches.subspan(first);

  VersionVector floor = replace ? VersionVector{} : floor_;
  Hlc frontier;
  bool any_fold = false;
  for (const PersistBatch* batch : batches) {
    for (const Fold& f : batch->folds) {
      floor.JoinWith(f.log_floor);
      if (f.frontier > frontier) frontier = f.frontier;
      any_fold = true;
    }
  }
  for (const PersistBatch* batch : batches) {
    for (const Op& op : batch->ops) {
      // Already covered by a checkpoint of this group or an earlier one: the log keeps only what
      // lies above the floor.
      if (op.dot.seq <= floor.get(op.dot.origin)) continue;
      wb.Put(OpKey(op.dot.origin, op.dot.seq), codec::EncodeOp(op));
      ++ops;
    }
    for (const KeyRecordId& id : batch->forget_keys) {
      wb.Delete(KeyRecordKey(id.account, id.key, id.displaced));
      ++records;
    }
    for (const KeyRecord& k : batch->keys) {
      wb.Put(KeyRecordKey(k.account, k.key, k.displaced), codec::EncodeKeyRecord(k));
      ++records;
    }
    for (const Fold& f : batch->folds) {
      for (const AccountCheckpoint& c : f.checkpoints) {
        wb.Put(CheckpointKey(c.config.id), codec::EncodeCheckpoint(c));
        ++records;
      }
      for (const StatementLine& line : f.lines) HistoryStore::Put(line, &wb);
      records += f.lines.size();
    }
  }
  if (any_fold) {
    wb.Put(MetaKey(kMetaFrontier), EncodeHlc(frontier));
    wb.Put(MetaKey(kMetaLogFloor), codec::EncodeVersionVector(floor));
    records += 2;
    leveldb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    for (RegionId r = 0; r < regions_ && !replace; ++r) {
      if (floor.get(r) <= floor_.get(r)) continue;
      const std::string end = OpKey(r, floor.get(r) + 1);
      for (it->Seek(OpKey(r, floor_.get(r) + 1)); it->Valid() && it->key().compare(end) < 0;
           it->Next()) {
        wb.Delete(it->key());
        ++records;
      }
      if (!it->status().ok())
        return FromLevelDb(it->status(), "store " + dir_ + ": scan for pruning");
    }
  }
  Hlc high_water = high_water_;
  if (batch_high_water > high_water_) {
    high_water = batch_high_water;
    wb.Put(MetaKey(kMetaHighWater), EncodeHlc(high_water));
    ++records;
  }
  for (std::size_t i = batches.size(); i-- > 0;) {  // the newest list: each is the whole one
    if (!batches[i]->fences.empty()) {
      wb.Put(MetaKey(kMetaFences), codec::EncodeFences(batches[i]->fences));
      ++records;
      break;
    }
  }
  records += ops;

  leveldb::WriteOptions wo;
  wo.sync = true;
  const auto start = std::chrono::steady_clock::now();
  leveldb::Status ls = db_->Write(wo, &wb);
  const auto end = std::chrono::steady_clock::now();
  if (!ls.ok()) return FromLevelDb(ls, "store " + dir_ + ": write");
  floor_ = floor;
  high_water_ = high_water;
  if (stats) {
    stats->ops = ops;
    stats->records = records;
    stats->bytes = wb.ApproximateSize();
    stats->sync_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(end - start).count());
  }
  return Status::OK();
}

// ---- Backup
// --------------------------------------------------------------------------------------

namespace {

// Makes `dir` an empty directory for a new LevelDB. *created: whether it was made here (so a
// failed copy removes the directory too, not only what it wrote into it).
Status PrepareBackupDir(const std::string& dir, bool* created) {
  namespace fs = std::filesystem;
  *created = false;
  if (dir.empty()) return Status::InvalidArgument("backup: no directory given");
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (ec && st.type() != fs::file_type::not_found)
    return Status::IOError("backup " + dir + ": " + ec.message());
  if (fs::exists(st)) {
    if (!fs::is_directory(st))
      return Status::FailedPrecondition("backup " + dir + ": exists and is not a directory");
    fs::directory_iterator it(dir, ec);
    if (ec) return Status::IOError("backup " + dir + ": cannot list it: " + ec.message());
    if (it != fs::directory_iterator())
      return Status::FailedPrecondition(
          "backup " + dir +
          ": exists and is not empty; a backup goes into a new or empty directory");
    return Status::OK();
  }
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("backup " + dir + ": cannot create it: " + ec.message());
  *created = true;
  return Status::OK();
}

// Removes what a failed backup wrote. `dir` was empty or new when the backup began, so everything
// in it is the backup's own.
void RemoveBackupLeftovers(const std::string& dir, bool created) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (created) {
    fs::remove_all(dir, ec);
    return;
  }
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    entries.push_back(it->path());
  for (const fs::path& p : entries) fs::remove_all(p, ec);
}

// Counts one copied record into *stats (ops, and the newest op per origin).
Status CountBackupRecord(std::string_view key, std::string_view value, RegionId regions,
                         BackupStats* stats) {
  ++stats->keys;
  stats->bytes += key.size() + value.size();
  if (key.size() == 13 && key[0] == kOpPrefix) {
    ++stats->ops;
    const std::uint64_t origin = GetBigEndian(key.substr(1, 4));
    const Seq seq = GetBigEndian(key.substr(5, 8));
    if (origin < regions && seq > stats->newest.get(static_cast<RegionId>(origin)))
      stats->newest.set(static_cast<RegionId>(origin), seq);
  } else if (key.size() > 1 && key[0] == kMetaPrefix && key.substr(1) == kMetaLogFloor) {
    VersionVector floor;
    if (Status s = codec::DecodeVersionVector(value, &floor); !s.ok())
      return Status::Corruption("record " + Printable(key) + ": " + s.ToString());
    stats->newest.JoinWith(floor);
  }
  return Status::OK();
}

Status WriteBackupBatch(leveldb::DB* copy, leveldb::WriteBatch* wb, const std::string& dir,
                        BackupStats* stats) {
  leveldb::WriteOptions wo;
  wo.sync = true;
  leveldb::Status ls = copy->Write(wo, wb);
  if (!ls.ok()) return FromLevelDb(ls, "backup " + dir + ": write");
  wb->Clear();
  ++stats->batches;
  return Status::OK();
}

// Releases a snapshot when the scan is over, whichever way it ends.
class SnapshotGuard {
 public:
  explicit SnapshotGuard(leveldb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~SnapshotGuard() { db_->ReleaseSnapshot(snapshot_); }
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;
  const leveldb::Snapshot* get() const { return snapshot_; }

 private:
  leveldb::DB* const db_;
  const leveldb::Snapshot* const snapshot_;
};

// Backup's scan: every record of `db` (the store at `from`) as of one snapshot into `copy` (at
// `dir`), the identity record last.
Status CopySnapshot(leveldb::DB* db, const std::string& from, RegionId regions, leveldb::DB* copy,
                    const std::string& dir, BackupStats* stats, const std::atomic<bool>* cancel) {
  SnapshotGuard snapshot(db);
  leveldb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  ro.verify_checksums = true;  // a damaged source record fails the backup, not a later restore
  ro.fill_cache = false;       // a full scan would evict what the live store reads
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ro));
  auto cancelled = [&] {
    return cancel && cancel->load(std::memory_order_relaxed)
               ? Status::Unavailable("backup " + dir + ": cancelled (the node is shutting down)")
               : Status::OK();
  };
  if (Status s = cancelled(); !s.ok()) return s;
  const std::string identity_key = Store::MetaKey(kMetaIdentity);
  std::string identity;
  leveldb::WriteBatch wb;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = View(it->key());
    const std::string_view value = View(it->value());
    if (key == identity_key) {
      // Written last: until it is there, tallyd refuses the copy (records without identity).
      identity.assign(value);
      continue;
    }
    if (Status s = CountBackupRecord(key, value, regions, stats); !s.ok())
      return Status::Corruption("store " + from + ": " + s.message());
    wb.Put(it->key(), it->value());
    if (wb.ApproximateSize() < kBackupBatchBytes) continue;
    if (Status s = cancelled(); !s.ok()) return s;
    if (Status s = WriteBackupBatch(copy, &wb, dir, stats); !s.ok()) return s;
  }
  if (!it->status().ok()) return FromLevelDb(it->status(), "store " + from + ": scan for backup");
  if (identity.empty()) return Status::Corruption("store " + from + ": no identity record to copy");
  if (Status s = CountBackupRecord(identity_key, identity, regions, stats); !s.ok())
    return Status::Corruption("store " + from + ": " + s.message());
  wb.Put(identity_key, identity);
  return WriteBackupBatch(copy, &wb, dir, stats);
}

}  // namespace

Status Store::Backup(const std::string& dir, BackupStats* stats,
                     const std::atomic<bool>* cancel) const {
  const auto start = std::chrono::steady_clock::now();
  bool created = false;
  if (Status s = PrepareBackupDir(dir, &created); !s.ok()) return s;

  leveldb::Options options;
  options.create_if_missing = true;
  options.error_if_exists = true;  // another writer got there first: never mix two stores
  options.paranoid_checks = true;
  options.write_buffer_size = 16 << 20;
  leveldb::DB* raw = nullptr;
  leveldb::Status ls = leveldb::DB::Open(options, dir, &raw);
  if (!ls.ok()) {
    if (created) RemoveBackupLeftovers(dir, created);
    return FromLevelDb(ls, "backup " + dir + ": create");
  }
  std::unique_ptr<leveldb::DB> copy(raw);

  BackupStats st;
  Status s = CopySnapshot(db_, dir_, regions_, copy.get(), dir, &st, cancel);
  copy.reset();  // closes the copy: its log is synced, its tables complete
  if (!s.ok()) {
    RemoveBackupLeftovers(dir, created);
    return s;
  }
  st.elapsed_us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count());
  if (stats) *stats = st;
  return Status::OK();
}

}  // namespace tally::node
