// Store::Backup: the copy is a store tallyd opens as its data directory (same records, same
// identity), taken as of one snapshot even while another thread writes, and refused or removed
// rather than left half-made. The cluster-level test is tests/node/backup_test.cc.
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "node/store.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;

namespace {

namespace fs = std::filesystem;

const StoreIdentity kIdentity{"test", "eu", {"eu", "us"}};

// A credit op of `origin` and its idempotency record, in one PersistBatch: like a group commit of
// one request, so a snapshot holds both or neither.
PersistBatch CreditBatch(RegionId origin, Seq seq) {
  PersistBatch b;
  Op op;
  op.dot = Dot{origin, seq};
  op.hlc = Hlc::Make(1'700'000'000'000ull + seq, 0);
  op.kind = OpKind::kCredit;
  op.account = "acct-" + std::to_string(seq % 7);
  op.amount = static_cast<Amount>(seq);
  op.key = "key-" + std::to_string(origin) + "-" + std::to_string(seq);
  KeyRecord k;
  k.account = op.account;
  k.key = HashKey(op.key);
  k.dot = op.dot;
  k.hlc = op.hlc;
  k.kind = op.kind;
  k.amount = op.amount;
  k.balance_after = op.amount;
  b.ops.push_back(op);
  b.keys.push_back(k);
  b.high_water = op.hlc;
  return b;
}

void WriteCredits(Store* store, RegionId origin, Seq from, Seq to) {
  for (Seq seq = from; seq <= to; ++seq) {
    PersistBatch b = CreditBatch(origin, seq);
    const PersistBatch* one[] = {&b};
    REQUIRE(store->Write(one, nullptr).ok());
  }
}

std::unique_ptr<Store> MustOpen(const fs::path& dir, const StoreIdentity& identity = kIdentity) {
  std::unique_ptr<Store> store;
  Status s = Store::Open(dir.string(), identity, &store);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return store;
}

RecoveredState MustLoad(Store* store) {
  RecoveredState st;
  Status s = store->Load(&st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return st;
}

// Ops and key records of a loaded store, by dot, for comparing two stores.
std::map<std::pair<RegionId, Seq>, Op> OpsByDot(const RecoveredState& st) {
  std::map<std::pair<RegionId, Seq>, Op> m;
  for (const Op& op : st.ops) m[{op.dot.origin, op.dot.seq}] = op;
  return m;
}
std::map<std::pair<RegionId, Seq>, KeyRecord> KeysByDot(const RecoveredState& st) {
  std::map<std::pair<RegionId, Seq>, KeyRecord> m;
  for (const KeyRecord& k : st.keys) m[{k.dot.origin, k.dot.seq}] = k;
  return m;
}

bool EmptyDir(const fs::path& p) { return fs::is_directory(p) && fs::is_empty(p); }

}  // namespace

TEST_CASE("a backup holds every record and opens as the same store", "[store][backup]") {
  tally::test::TempDir dir("store-backup");
  auto store = MustOpen(dir.path() / "live");
  WriteCredits(store.get(), 0, 1, 40);
  WriteCredits(store.get(), 1, 1, 15);
  const RecoveredState live = MustLoad(store.get());

  const fs::path copy = dir.path() / "nested" / "copy";  // parents are created
  BackupStats stats;
  Status s = store->Backup(copy.string(), &stats);
  INFO(s.ToString());
  REQUIRE(s.ok());
  // 55 ops, 55 key records, the high-water mark and the identity.
  CHECK(stats.ops == 55);
  CHECK(stats.keys == 55 + 55 + 2);
  CHECK(stats.batches >= 1);
  CHECK(stats.bytes > 0);
  CHECK(stats.newest.get(0) == 40);
  CHECK(stats.newest.get(1) == 15);

  auto restored = MustOpen(copy);
  const RecoveredState back = MustLoad(restored.get());
  CHECK(OpsByDot(back) == OpsByDot(live));
  CHECK(KeysByDot(back) == KeysByDot(live));
  CHECK(back.high_water == live.high_water);
  CHECK(back.frontier == live.frontier);
  CHECK(back.log_floor == live.log_floor);

  // The identity came along: the copy belongs to the same region and no other.
  restored.reset();
  std::unique_ptr<Store> other;
  Status refused = Store::Open(copy.string(), StoreIdentity{"test", "us", {"eu", "us"}}, &other);
  INFO(refused.ToString());
  CHECK(refused.code() == Code::kFailedPrecondition);
}

TEST_CASE("a backup goes only into a new or empty directory", "[store][backup]") {
  tally::test::TempDir dir("store-backup-dirs");
  auto store = MustOpen(dir.path() / "live");
  WriteCredits(store.get(), 0, 1, 3);

  SECTION("a directory holding anything is refused and left alone") {
    const fs::path target = dir.path() / "full";
    fs::create_directories(target);
    std::ofstream(target / "keep.txt") << "operator's file";
    Status s = store->Backup(target.string(), nullptr);
    CHECK(s.code() == Code::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("not empty"));
    CHECK(fs::exists(target / "keep.txt"));
    CHECK(std::distance(fs::directory_iterator(target), fs::directory_iterator()) == 1);
  }
  SECTION("the live store's own directory is refused") {
    Status s = store->Backup((dir.path() / "live").string(), nullptr);
    CHECK(s.code() == Code::kFailedPrecondition);
    auto st = MustLoad(store.get());
    CHECK(st.ops.size() == 3);
  }
  SECTION("a file is refused") {
    const fs::path target = dir.path() / "a-file";
    std::ofstream(target) << "x";
    Status s = store->Backup(target.string(), nullptr);
    CHECK(s.code() == Code::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("not a directory"));
  }
  SECTION("a directory that cannot be created is an I/O error") {
    const fs::path blocker = dir.path() / "blocker";
    std::ofstream(blocker) << "x";
    Status s = store->Backup((blocker / "copy").string(), nullptr);
    CHECK(s.code() == Code::kIOError);
    CHECK_THAT(s.message(), Catch::Contains("cannot create"));
  }
  SECTION("an empty directory is taken") {
    const fs::path target = dir.path() / "empty";
    fs::create_directories(target);
    REQUIRE(store->Backup(target.string(), nullptr).ok());
    auto copy = MustOpen(target);
    CHECK(MustLoad(copy.get()).ops.size() == 3);
  }
  SECTION("no directory at all is refused") {
    CHECK(store->Backup("", nullptr).code() == Code::kInvalidArgument);
  }
}

TEST_CASE("a cancelled backup leaves nothing behind", "[store][backup]") {
  tally::test::TempDir dir("store-backup-cancel");
  auto store = MustOpen(dir.path() / "live");
  WriteCredits(store.get(), 0, 1, 3);
  std::atomic<bool> cancel{true};

  const fs::path fresh = dir.path() / "fresh";
  Status s = store->Backup(fresh.string(), nullptr, &cancel);
  CHECK(s.code() == Code::kUnavailable);
  CHECK_FALSE(fs::exists(fresh));  // it made the directory, so it removed it

  const fs::path empty = dir.path() / "empty";
  fs::create_directories(empty);
  s = store->Backup(empty.string(), nullptr, &cancel);
  CHECK(s.code() == Code::kUnavailable);
  CHECK(EmptyDir(empty));  // the operator's directory stays, emptied of what the backup wrote
}

// The thread contract: Backup on one thread while Write runs on another. Each write is one op
// and its key record in one WriteBatch, so every copy, taken as of one snapshot, holds both or
// neither, and holds a gap-free prefix of the ops.
TEST_CASE("backups taken while another thread writes are consistent", "[store][backup]") {
  tally::test::TempDir dir("store-backup-live");
  auto store = MustOpen(dir.path() / "live");
  WriteCredits(store.get(), 0, 1, 200);
  std::atomic<bool> stop{false};
  std::atomic<Seq> written{200};
  std::thread writer([&] {
    for (Seq seq = 201; !stop.load() && seq <= 200000; ++seq) {
      PersistBatch b = CreditBatch(0, seq);
      const PersistBatch* one[] = {&b};
      if (!store->Write(one, nullptr).ok()) break;
      written.store(seq);
    }
  });
  std::vector<BackupStats> taken;
  std::vector<Status> failures;
  for (int i = 0; i < 8; ++i) {
    BackupStats stats;
    Status s = store->Backup((dir.path() / ("copy-" + std::to_string(i))).string(), &stats);
    if (!s.ok()) failures.push_back(s);
    taken.push_back(stats);
  }
  stop.store(true);
  writer.join();
  for (const Status& s : failures) UNSCOPED_INFO(s.ToString());
  REQUIRE(failures.empty());

  Seq previous = 0;
  for (int i = 0; i < 8; ++i) {
    INFO("copy " << i);
    auto copy = MustOpen(dir.path() / ("copy-" + std::to_string(i)));
    const RecoveredState st = MustLoad(copy.get());
    const auto ops = OpsByDot(st);
    const auto keys = KeysByDot(st);
    REQUIRE(!ops.empty());
    const Seq newest = ops.rbegin()->first.second;
    CHECK(newest == taken[i].newest.get(0));
    CHECK(ops.size() == newest);  // seqs 1..newest, no gap
    CHECK(keys.size() == ops.size());
    for (const auto& [dot, op] : ops) CHECK(keys.count(dot) == 1);
    CHECK(newest >= previous);  // later copies see at least as much
    previous = newest;
  }
  CHECK(previous <= written.load());
}
