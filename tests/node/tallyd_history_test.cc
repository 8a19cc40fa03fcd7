// tallyd's history store (node/history_store.h) on a real LevelDB: the statement lines a Fold
// carries are written with it, read back a page at a time in both directions from any cursor,
// found by time (as_of), pruned past the retention, copied by a backup, kept when a snapshot
// replaces the store, and skipped by Load; a damaged line is an error, not a wrong statement.
// Statement lines of a live cluster: history_test.cc.
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "codec/codec.h"
#include "node/history_query.h"
#include "node/store.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;
using tally::test::TempDir;

namespace {

const StoreIdentity kIdentity{"test", "eu", {"eu", "us"}};
constexpr std::uint64_t kT0 = 1'700'000'000'000;

StatementLine Line(const std::string& account, std::uint64_t wall_ms, Seq seq, Amount change,
                   Amount balance_after) {
  StatementLine l;
  l.account = account;
  l.key = CanonicalKey{Hlc::Make(wall_ms, 0), static_cast<RegionId>(seq % 2), seq};
  l.kind = change >= 0 ? OpKind::kCredit : OpKind::kDebit;
  l.change = change;
  l.amount = change >= 0 ? change : -change;
  l.final = true;
  l.balance_after = balance_after;
  l.idempotency_key = "k" + std::to_string(seq);
  return l;
}

// A batch holding one fold with `lines`.
std::unique_ptr<PersistBatch> FoldOf(std::vector<StatementLine> lines, std::uint64_t wall_ms) {
  auto b = std::make_unique<PersistBatch>();
  Fold f;
  f.frontier = Hlc::Make(wall_ms, 0);
  f.lines.assign(std::make_move_iterator(lines.begin()), std::make_move_iterator(lines.end()));
  b->folds.push_back(std::move(f));
  return b;
}

void Write(Store& store, const PersistBatch& b) {
  const PersistBatch* batches[] = {&b};
  REQUIRE(store.Write(batches, nullptr).ok());
}

std::vector<Seq> Seqs(const std::vector<StatementLine>& lines) {
  std::vector<Seq> out;
  for (const StatementLine& l : lines) out.push_back(l.key.seq);
  return out;
}

std::vector<StatementLine> ReadAll(const HistoryStore& h, const std::string& account,
                                   HistoryQuery q, bool* more) {
  std::vector<StatementLine> out;
  REQUIRE(h.Read(account, q, &out, more).ok());
  return out;
}

}  // namespace

TEST_CASE("history store: lines come back a page at a time, either way, from any cursor",
          "[store][history]") {
  TempDir dir("history-store");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path() / "db", kIdentity, &store).ok());
  // Two accounts whose ids are a prefix of each other: their ranges must not mix.
  std::vector<StatementLine> lines;
  Amount balance = 0;
  for (Seq s = 1; s <= 7; ++s) {
    balance += 10;
    lines.push_back(Line("a", kT0 + s * 1000, s, 10, balance));
  }
  lines.push_back(Line("ab", kT0 + 500, 8, 99, 99));
  Write(*store, *FoldOf(lines, kT0 + 9000));
  const HistoryStore& h = store->history();

  bool more = false;
  HistoryQuery q;
  q.limit = 3;
  CHECK(Seqs(ReadAll(h, "a", q, &more)) == std::vector<Seq>{7, 6, 5});  // newest first
  CHECK(more);
  q.cursor = CanonicalKey{lines[4].key};  // after seq 5, going back
  CHECK(Seqs(ReadAll(h, "a", q, &more)) == std::vector<Seq>{4, 3, 2});
  CHECK(more);
  q.cursor = lines[1].key;
  CHECK(Seqs(ReadAll(h, "a", q, &more)) == std::vector<Seq>{1});
  CHECK_FALSE(more);
  q = HistoryQuery{};
  q.newest_first = false;
  q.limit = 4;
  CHECK(Seqs(ReadAll(h, "a", q, &more)) == std::vector<Seq>{1, 2, 3, 4});
  CHECK(more);
  q.cursor = lines[3].key;
  CHECK(Seqs(ReadAll(h, "a", q, &more)) == std::vector<Seq>{5, 6, 7});
  CHECK_FALSE(more);
  q.limit = 100;
  q.cursor.reset();
  const std::vector<StatementLine> all = ReadAll(h, "a", q, &more);
  REQUIRE(all.size() == 7);
  CHECK(all[6] == lines[6]);
  CHECK(Seqs(ReadAll(h, "ab", q, &more)) == std::vector<Seq>{8});
  CHECK(ReadAll(h, "nobody", q, &more).empty());
  CHECK(ReadAll(h, "", q, &more).empty());

  // as_of: the last line at or before a time.
  StatementLine at;
  bool found = false;
  REQUIRE(h.LastAtOrBefore("a", Hlc::Make(kT0 + 3500, Hlc::kLogicalMask), &at, &found).ok());
  REQUIRE(found);
  CHECK(at.key.seq == 3);
  CHECK(at.balance_after == 30);
  REQUIRE(h.LastAtOrBefore("a", Hlc::Make(kT0 + 3000, Hlc::kLogicalMask), &at, &found).ok());
  CHECK(at.key.seq == 3);  // at that very millisecond
  REQUIRE(h.LastAtOrBefore("a", Hlc::Make(kT0 + 999, Hlc::kLogicalMask), &at, &found).ok());
  CHECK_FALSE(found);
  REQUIRE(h.LastAtOrBefore("a", Hlc::Make(kT0 + 99000, 0), &at, &found).ok());
  CHECK(at.key.seq == 7);
}

TEST_CASE("history store: Load skips the lines, pruning bounds them, a snapshot drops them",
          "[store][history]") {
  TempDir dir("history-store");
  const auto path = dir.path() / "db";
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::Open(path, kIdentity, &store).ok());
    std::vector<StatementLine> lines;
    for (Seq s = 1; s <= 5; ++s) lines.push_back(Line("a", kT0 + s * 1000, s, 1, Amount(s)));
    Write(*store, *FoldOf(lines, kT0 + 6000));
    RecoveredState st;
    REQUIRE(store->Load(&st).ok());  // a line is not a record Load knows: skipped, not refused
    bool more = false;
    CHECK(ReadAll(store->history(), "a", HistoryQuery{}, &more).size() == 5);

    std::size_t deleted = 0;
    REQUIRE(store->history().Prune(kT0 + 3000, 1, &deleted).ok());  // bounded per call
    CHECK(deleted == 1);
    REQUIRE(store->history().Prune(kT0 + 3000, 100, &deleted).ok());
    CHECK(deleted == 1);  // seq 2; seq 3 is at the cutoff, not before it
    CHECK(Seqs(ReadAll(store->history(), "a", HistoryQuery{}, &more)) == std::vector<Seq>{5, 4, 3});
    REQUIRE(store->history().Prune(kT0 + 3000, 100, &deleted).ok());
    CHECK(deleted == 0);

    BackupStats stats;
    REQUIRE(store->Backup((dir.path() / "copy").string(), &stats).ok());

    // A peer's snapshot replaces the store: the lines go with the rest (the new state may lack
    // ops they show).
    auto replace = std::make_unique<PersistBatch>();
    replace->replaces_store = true;
    Write(*store, *replace);
    CHECK(ReadAll(store->history(), "a", HistoryQuery{}, &more).empty());
  }
  std::unique_ptr<Store> copy;
  REQUIRE(Store::Open(dir.path() / "copy", kIdentity, &copy).ok());
  bool more = false;
  CHECK(Seqs(ReadAll(copy->history(), "a", HistoryQuery{}, &more)) == std::vector<Seq>{5, 4, 3});
}

TEST_CASE("history store: a damaged line is an error, not a wrong statement", "[store][history]") {
  TempDir dir("history-store");
  const auto path = dir.path() / "db";
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::Open(path, kIdentity, &store).ok());
  }
  {
    leveldb::DB* raw = nullptr;
    REQUIRE(leveldb::DB::Open(leveldb::Options(), path.string(), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    const StatementLine good = Line("a", kT0 + 1000, 1, 5, 5);
    StatementLine other = Line("b", kT0 + 2000, 2, 5, 5);
    leveldb::WriteBatch wb;
    wb.Put(HistoryStore::LineKey("a", good.key), codec::EncodeStatementLine(good));
    // Under a's key, b's line: the record and its key disagree.
    wb.Put(HistoryStore::LineKey("a", other.key), codec::EncodeStatementLine(other));
    wb.Put(HistoryStore::LineKey("c", good.key), "not a protobuf \xff\xff");
    REQUIRE(db->Write(leveldb::WriteOptions(), &wb).ok());
  }
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(path, kIdentity, &store).ok());
  RecoveredState st;
  CHECK(store->Load(&st).ok());  // a restart does not read history
  std::vector<StatementLine> out;
  bool more = false;
  HistoryQuery q;
  q.newest_first = false;
  q.limit = 1;
  REQUIRE(store->history().Read("a", q, &out, &more).ok());  // the good one alone
  CHECK(out.size() == 1);
  const Status s = store->history().Read("a", HistoryQuery{}, &out, &more);
  CHECK(s.code() == Code::kCorruption);
  CHECK(s.message().find("another op or account") != std::string::npos);
  CHECK(store->history().Read("c", HistoryQuery{}, &out, &more).code() == Code::kCorruption);
}

TEST_CASE("history queries: cursors, limits, orders and times are checked", "[api][history]") {
  const CanonicalKey k{Hlc::Make(kT0, 7), 3, 42};
  CanonicalKey back;
  REQUIRE(ParseHistoryCursor(HistoryCursor(k), &back).ok());
  CHECK(back == k);
  for (const char* bad : {"", "h", "zz", "H0000000000000000000000000000000000000000",
                          "h00000000000000000000000000000000000000000",  // 42 characters
                          "h0000000000000000000000100000000000000001",   // origin 16
                          "h000000000000000000000000000000000000000g",
                          "h0000000000000000000000010000000000000000"})  // seq 0 of region 1
    CHECK(ParseHistoryCursor(bad, &back).code() == Code::kInvalidArgument);
  // A stream's cursor may be a position between ops: just before every op of a time.
  const CanonicalKey between{Hlc::Make(kT0, 0), 0, 0};
  REQUIRE(ParseHistoryCursor(HistoryCursor(between), &back).ok());
  CHECK(back == between);

  std::uint64_t ms = 0;
  REQUIRE(ParseUtcMs("1970-01-01T00:00:00Z", &ms).ok());
  CHECK(ms == 0);
  REQUIRE(ParseUtcMs("2026-12-05T07:00:00.5Z", &ms).ok());
  CHECK(ms == 1'796'454'000'500);
  REQUIRE(ParseUtcMs("2024-02-29T23:59:59.999Z", &ms).ok());
  CHECK(ms == 1'709'251'199'999);
  REQUIRE(ParseUtcMs("1796454000000", &ms).ok());
  CHECK(ms == 1'796'454'000'000);
  for (const char* bad :
       {"", "yesterday", "2026-12-05", "2026-12-05T07:00:00", "2023-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-12-05T24:00:00Z", "2026-12-05T07:00:00+01:00",
        "1969-12-31T23:59:59Z", "2026-12-05T07:00:00.1234Z", "-5", "99999999999999999999"})
    CHECK(ParseUtcMs(bad, &ms).code() == Code::kInvalidArgument);

  HistoryQuery q;
  std::optional<std::uint64_t> as_of;
  REQUIRE(ParseHistoryParams({{"limit", "5"}, {"order", "asc"}}, &q, &as_of).ok());
  CHECK(q.limit == 5);
  CHECK_FALSE(q.newest_first);
  CHECK_FALSE(as_of);
  REQUIRE(ParseHistoryParams({}, &q, &as_of).ok());
  CHECK(q.limit == kDefaultHistoryLimit);
  CHECK(q.newest_first);
  REQUIRE(ParseHistoryParams({{"as_of", "1000"}}, &q, &as_of).ok());
  CHECK(as_of == 1000u);
  CHECK(ParseHistoryParams({{"limit", "0"}}, &q, &as_of).code() == Code::kInvalidArgument);
  CHECK(ParseHistoryParams({{"limit", "1001"}}, &q, &as_of).code() == Code::kInvalidArgument);
  CHECK(ParseHistoryParams({{"order", "up"}}, &q, &as_of).code() == Code::kInvalidArgument);
  CHECK(ParseHistoryParams({{"as_of", "1000"}, {"limit", "5"}}, &q, &as_of).code() ==
        Code::kInvalidArgument);
  CHECK(ParseHistoryParams({{"as_of", "soon"}}, &q, &as_of).message().find("as_of:") == 0);
}
