#include "node/history_store.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>

#include <memory>

#include "codec/codec.h"
#include "node/store_keys.h"

namespace tally::node {

namespace {

constexpr std::size_t kLineKeyTail = 8 + 4 + 8;  // hlc, origin, seq

std::string AccountPrefix(std::string_view account) {
  // Account ids are at most 64 bytes: one length byte keeps one account's range apart from the
  // ranges of ids it is a prefix of.
  std::string k(1, HistoryStore::kPrefix);
  k.push_back(static_cast<char>(account.size()));
  k.append(account);
  return k;
}

std::string_view View(const leveldb::Slice& s) { return {s.data(), s.size()}; }

// Decodes the line under `key` (of the account whose prefix is `prefix`), checking that it is
// the line that key names.
Status DecodeAt(std::string_view key, std::string_view value, std::string_view prefix,
                const std::string& dir, StatementLine* out) {
  Status s = codec::DecodeStatementLine(value, out);
  if (s.ok() && (key.size() != prefix.size() + kLineKeyTail ||
                 key != HistoryStore::LineKey(out->account, out->key)))
    s = Status::Corruption("holds the line of another op or account");
  if (!s.ok()) return Status::Corruption("store " + dir + ": history record: " + s.message());
  return Status::OK();
}

}  // namespace

std::string HistoryStore::LineKey(std::string_view account, const CanonicalKey& key) {
  std::string k = AccountPrefix(account);
  PutBigEndian(key.hlc.value, 8, &k);
  PutBigEndian(key.origin, 4, &k);
  PutBigEndian(key.seq, 8, &k);
  return k;
}

void HistoryStore::Put(const StatementLine& line, leveldb::WriteBatch* wb) {
  wb->Put(LineKey(line.account, line.key), codec::EncodeStatementLine(line));
}

Status HistoryStore::Read(std::string_view account, const HistoryQuery& q,
                          std::vector<StatementLine>* out, bool* more) const {
  *more = false;
  const std::string prefix = AccountPrefix(account);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  const std::string cursor = q.cursor ? LineKey(account, *q.cursor) : std::string();
  if (!q.newest_first) {
    it->Seek(q.cursor ? cursor : prefix);
    if (it->Valid() && q.cursor && View(it->key()) == cursor) it->Next();
  } else {
    // Past the account's last line (every line key is the prefix and kLineKeyTail bytes), or at
    // the cursor; then one back.
    it->Seek(q.cursor ? cursor : prefix + std::string(kLineKeyTail, '\xff'));
    if (it->Valid()) {
      it->Prev();
    } else {
      it->SeekToLast();
    }
  }
  std::size_t n = 0;
  for (; it->Valid() && View(it->key()).starts_with(prefix);
       q.newest_first ? it->Prev() : it->Next()) {
    if (n == q.limit) {
      *more = true;
      break;
    }
    StatementLine line;
    if (Status s = DecodeAt(View(it->key()), View(it->value()), prefix, dir_, &line); !s.ok())
      return s;
    out->push_back(std::move(line));
    ++n;
  }
  if (!it->status().ok())
    return Status::IOError("store " + dir_ + ": history read: " + it->status().ToString());
  return Status::OK();
}

Status HistoryStore::LastAtOrBefore(std::string_view account, Hlc at, StatementLine* out,
                                    bool* found) const {
  *found = false;
  HistoryQuery q;
  q.newest_first = true;
  // Just past every line at `at`: the cursor's line itself is never read.
  q.cursor = CanonicalKey{Hlc{at.value}, kMaxRegions, ~Seq{0}};
  q.limit = 1;
  std::vector<StatementLine> lines;
  bool more = false;
  if (Status s = Read(account, q, &lines, &more); !s.ok()) return s;
  if (lines.empty()) return Status::OK();
  *out = std::move(lines.front());
  *found = true;
  return Status::OK();
}

Status HistoryStore::Prune(std::uint64_t before_wall_ms, std::size_t max_deletes,
                           std::size_t* deleted) {
  *deleted = 0;
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  leveldb::WriteBatch wb;
  const Hlc cutoff = Hlc::Make(before_wall_ms, 0);
  it->Seek(std::string(1, kPrefix));
  while (it->Valid() && *deleted < max_deletes) {
    const std::string_view key = View(it->key());
    if (key.empty() || key[0] != kPrefix || key.size() < 2) break;
    const std::size_t prefix_size = 2 + static_cast<unsigned char>(key[1]);
    if (key.size() != prefix_size + kLineKeyTail) {
      return Status::Corruption("store " + dir_ + ": history record with a key of " +
                                std::to_string(key.size()) + " bytes");
    }
    const std::string prefix(key.substr(0, prefix_size));
    if (Hlc{GetBigEndian(key.substr(prefix_size, 8))} < cutoff) {
      wb.Delete(it->key());
      ++*deleted;
      it->Next();
      continue;
    }
    // The rest of this account's lines are newer: on to the next account.
    it->Seek(prefix + std::string(kLineKeyTail, '\xff'));
  }
  if (!it->status().ok())
    return Status::IOError("store " + dir_ + ": history prune: " + it->status().ToString());
  if (*deleted == 0) return Status::OK();
  leveldb::Status ls = db_->Write(leveldb::WriteOptions(), &wb);
  if (!ls.ok()) return Status::IOError("store " + dir_ + ": history prune: " + ls.ToString());
  return Status::OK();
}

}  // namespace tally::node
