// tallyd's LevelDB store: what a replica persisted comes back identical after a reopen (including
// folds and pruning), and a damaged store refuses to load instead of serving wrong balances.
#include <leveldb/db.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "codec/codec.h"
#include "node/store.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;

namespace {

namespace fs = std::filesystem;

const StoreIdentity kIdentity{"test", "eu", {"eu"}};

ReplicaOptions SoloOptions() {
  ReplicaOptions o;
  o.cluster_id = "test";
  o.regions = {"eu"};
  o.self = 0;
  o.checkpoint_interval_ms = 100;
  o.heartbeat_interval_ms = 50;
  return o;
}

// Drives a replica and persists everything it asks to, as tallyd does: one batch per step, and
// `group` consecutive batches written together (tallyd's storage thread merges the batches handed
// over while it was syncing).
struct Driver {
  Driver(Store* s, std::size_t group_size)
      : store(s), group(group_size), replica(SoloOptions(), wall) {}
  Store* store;
  std::size_t group;
  std::uint64_t now = 1'700'000'000'000;  // the monotonic and the wall clock, alike here
  VariableWallClock wall{&now};
  Replica replica;
  Effects effects;
  std::uint64_t next_id = 1;
  std::size_t folds = 0;
  std::vector<std::unique_ptr<PersistBatch>> queued;

  void Persist() {
    auto batch = std::make_unique<PersistBatch>();
    if (effects.fold) ++folds;
    batch->TakeFrom(&effects);
    if (!batch->empty()) queued.push_back(std::move(batch));
    if (queued.size() >= group) Flush();
    effects.Clear();
  }
  void Flush() {
    if (queued.empty()) return;
    std::vector<const PersistBatch*> batches;
    for (const auto& b : queued) batches.push_back(b.get());
    REQUIRE(store->Write(batches, nullptr).ok());
    queued.clear();
  }
  CommandResult Run(CommandBody body) {
    replica.Submit(Command{next_id++, std::move(body)}, now, &effects);
    REQUIRE(effects.completions.size() == 1);
    CommandResult r = effects.completions[0];
    Persist();
    return r;
  }
  void Tick(std::uint64_t ms) {
    for (std::uint64_t t = 0; t < ms; t += 10) {
      now += 10;
      replica.Tick(now, &effects);
      Persist();
    }
  }
};

AccountConfig Config(std::string id, Amount limit) {
  AccountConfig c;
  c.id = std::move(id);
  c.currency = "EUR";
  c.overdraft_limit = limit;
  c.fee = FeePolicy{5, 100};
  return c;
}

void Reload(const std::string& dir, std::unique_ptr<Store>* store, RecoveredState* state) {
  store->reset();
  Status s = Store::Open(dir, kIdentity, store);
  INFO(s.ToString());
  REQUIRE(s.ok());
  s = (*store)->Load(state);
  INFO(s.ToString());
  REQUIRE(s.ok());
}

}  // namespace

TEST_CASE("what a replica persisted recovers to the same state", "[store]") {
  const std::size_t group = GENERATE(1, 3, 8);
  INFO("batches per write: " << group);
  tally::test::TempDir dir("tallyd-store");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  RecoveredState empty;
  REQUIRE(store->Load(&empty).ok());
  CHECK(empty.ops.empty());

  Driver d(store.get(), group);
  REQUIRE(d.replica.Recover(std::move(empty), d.now).ok());
  REQUIRE(d.Run(OpenAccount{Config("a1", 100)}).status.ok());
  REQUIRE(d.Run(OpenAccount{Config("a2", 0)}).status.ok());
  REQUIRE(d.Run(Credit{"a1", 500, "c-1"}).status.ok());
  d.Tick(300);  // overdraft lines open once the account's open is final
  CommandResult overdraft = d.Run(Debit{"a1", 550, "d-1"});  // an overdraft debit: a fee is derived
  INFO(overdraft.status.ToString());
  REQUIRE(overdraft.status.ok());
  CommandResult first = d.Run(Debit{"a2", 1, "d-2"});
  REQUIRE(first.status.code() == Code::kInsufficientFunds);
  d.Tick(500);  // the frontier passes everything: folds and pruning
  CHECK(d.folds > 0);
  REQUIRE(d.Run(Credit{"a2", 70, "c-2"}).status.ok());  // above the frontier: stays in the log
  d.Flush();

  RecoveredState state;
  Reload(dir.path().string(), &store, &state);
  CHECK(state.log_floor.get(0) > 0);  // pruned
  for (const Op& op : state.ops) CHECK(op.dot.seq > state.log_floor.get(0));
  CHECK_FALSE(state.checkpoints.empty());
  CHECK(state.keys.size() == 3);
  CHECK_FALSE(state.high_water.is_zero());

  Replica again(SoloOptions(), d.wall);
  REQUIRE(again.Recover(std::move(state), d.now).ok());
  CHECK(again.applied() == d.replica.applied());
  CHECK(again.StateDigest() == d.replica.StateDigest());
  for (const char* id : {"a1", "a2"}) {
    AccountView x, y;
    REQUIRE(d.replica.GetAccount(id, &x).ok());
    REQUIRE(again.GetAccount(id, &y).ok());
    CHECK(x.balance == y.balance);
    CHECK(x.final_balance == y.final_balance);
    CHECK(x.fees == y.fees);
    CHECK(x.digest == y.digest);
  }
  // A retried key answers from the recovered record, and the clock never goes back.
  Effects e;
  again.Submit(Command{99, Debit{"a1", 550, "d-1"}}, d.now, &e);
  REQUIRE(e.completions.size() == 1);
  CHECK(e.completions[0].replayed);
  CHECK(e.completions[0].op.seq == 4);
  CHECK(again.clock() >= d.replica.clock());
}

TEST_CASE("a displaced key record is stored beside the winner's and reloads", "[store]") {
  // A region keeps the record of its own op whose key another region's earlier op took (issue 9);
  // both records of one (account, key) must survive a reload. The first version of this stored
  // them under different keys but checked the stored key without the marker, refusing to load.
  tally::test::TempDir dir("tallyd-store-displaced");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  RecoveredState empty;
  REQUIRE(store->Load(&empty).ok());
  PersistBatch batch;
  KeyRecord winner{"acct", HashKey("c-1"), Dot{0, 7}, Hlc::Make(1000, 0), OpKind::kDebit, 300,
                   0,      false,          0};
  KeyRecord mine{"acct", HashKey("c-1"), Dot{0, 9}, Hlc::Make(1001, 0), OpKind::kDebit, 100,
                 0,      false,          42};
  mine.displaced = true;
  batch.keys = {winner, mine};
  const PersistBatch* batches[] = {&batch};
  WriteStats stats;
  REQUIRE(store->Write(batches, &stats).ok());
  CHECK(Store::KeyRecordKey("acct", HashKey("c-1"), true) !=
        Store::KeyRecordKey("acct", HashKey("c-1")));

  RecoveredState state;
  Reload(dir.path().string(), &store, &state);
  REQUIRE(state.keys.size() == 2);
  CHECK(state.keys[0] == winner);  // sorted: the marker byte comes after the plain key
  CHECK(state.keys[1] == mine);
}

TEST_CASE("key layout sorts ops by origin then seq", "[store]") {
  CHECK(Store::OpKey(0, 255) < Store::OpKey(0, 256));
  CHECK(Store::OpKey(0, ~Seq{0}) < Store::OpKey(1, 1));
  CHECK(Store::OpKey(1, 2).size() == 13);
  CHECK(Store::KeyRecordKey("ab", HashKey("c")) != Store::KeyRecordKey("a", HashKey("c")));
  CHECK(Store::KeyRecordKey("a", HashKey("c")) != Store::KeyRecordKey("a", HashKey("d")));
}

TEST_CASE("a batch that replaces the store leaves only what it carries", "[store]") {
  // A rejoining region installed a peer's snapshot (Effects::replaces_store): every op, record and
  // checkpoint it stored before goes, in the same synced batch as the new state; the high-water
  // mark stays. An earlier batch of the same group is superseded too.
  tally::test::TempDir dir("tallyd-store-replace");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  RecoveredState empty;
  REQUIRE(store->Load(&empty).ok());
  auto op = [](Seq seq, Hlc hlc, const char* account) {
    Op o;
    o.dot = Dot{0, seq};
    o.hlc = hlc;
    o.kind = OpKind::kCredit;
    o.account = account;
    o.amount = 5;
    return o;
  };
  PersistBatch old_state;
  old_state.ops = {op(1, Hlc::Make(1000, 0), "old"), op(2, Hlc::Make(1001, 0), "old")};
  old_state.keys = {KeyRecord{"old", HashKey("k"), Dot{0, 2}, Hlc::Make(1001, 0), OpKind::kCredit,
                              5, 0, false, 0}};
  old_state.high_water = Hlc::Make(9000, 0);
  const PersistBatch* first[] = {&old_state};
  REQUIRE(store->Write(first, nullptr).ok());

  PersistBatch superseded;
  superseded.ops = {op(3, Hlc::Make(1002, 0), "old")};
  Effects installed;
  installed.replaces_store = true;
  installed.ops = {op(41, Hlc::Make(2000, 0), "new")};
  installed.keys = {KeyRecord{"new", HashKey("n"), Dot{0, 41}, Hlc::Make(2000, 0), OpKind::kCredit,
                              5, 0, false, 0}};
  VersionVector floor;
  floor.set(0, 40);
  installed.fold = Fold{Hlc::Make(1999, 0), floor, {}};
  PersistBatch replacing;
  replacing.ops = {op(4, Hlc::Make(1003, 0), "old")};  // taken before the install: dropped too
  replacing.TakeFrom(&installed);
  CHECK(replacing.replaces_store);
  const PersistBatch* group[] = {&superseded, &replacing};
  REQUIRE(store->Write(group, nullptr).ok());

  RecoveredState state;
  Reload(dir.path().string(), &store, &state);
  REQUIRE(state.ops.size() == 1);
  CHECK(state.ops[0].dot == Dot{0, 41});
  REQUIRE(state.keys.size() == 1);
  CHECK(state.keys[0].account == "new");
  CHECK(state.log_floor.get(0) == 40);
  CHECK(state.frontier == Hlc::Make(1999, 0));
  CHECK(state.high_water == Hlc::Make(9000, 0));
}

TEST_CASE("a store of another cluster or region is refused", "[store]") {
  tally::test::TempDir dir("tallyd-store");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  store.reset();
  Status s = Store::Open(dir.path().string(), StoreIdentity{"test", "us", {"eu"}}, &store);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK_THAT(s.message(), Catch::Contains("belongs to another cluster or region"));
  s = Store::Open(dir.path().string(), StoreIdentity{"other", "eu", {"eu"}}, &store);
  CHECK(s.code() == Code::kFailedPrecondition);
  s = Store::Open(dir.path().string(), StoreIdentity{"test", "eu", {"eu", "us"}}, &store);
  CHECK(s.code() == Code::kFailedPrecondition);
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
}

TEST_CASE("a store of the older layout is refused with what to do", "[store]") {
  // Layout 1 kept idempotency records under the key itself; this build keys them by hash and
  // would misread them, so it must refuse such a store clearly rather than call it corrupt.
  tally::test::TempDir dir("tallyd-store");
  {
    leveldb::DB* db = nullptr;
    leveldb::Options options;
    options.create_if_missing = true;
    REQUIRE(leveldb::DB::Open(options, dir.path().string(), &db).ok());
    REQUIRE(db->Put(leveldb::WriteOptions(), Store::MetaKey("identity"),
                    "tally-store 1\ncluster=test\nregion=eu\nregions=eu\n")
                .ok());
    delete db;
  }
  std::unique_ptr<Store> store;
  Status s = Store::Open(dir.path().string(), kIdentity, &store);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK_THAT(s.message(), Catch::Contains("layout 1") && Catch::Contains("empty data folder"));
}

TEST_CASE("the fences a replica knows are stored, the newest list of a group winning", "[store]") {
  // Fences lived in memory only, so a restarted region forgot where its peers' incarnations
  // resumed (see core [fence]); the list persists now, and a batch that replaces the store keeps
  // it.
  tally::test::TempDir dir("tallyd-store-fences");
  std::unique_ptr<Store> store;
  REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  RecoveredState empty;
  REQUIRE(store->Load(&empty).ok());
  CHECK(empty.fences.empty());
  Effects older, newer;
  older.fences = {Fence{0, 100, 7}};
  newer.fences = {Fence{0, 100, 7}, Fence{0, 200, 9}};
  PersistBatch a, b;
  a.TakeFrom(&older);
  b.TakeFrom(&newer);
  const PersistBatch* group[] = {&a, &b};
  REQUIRE(store->Write(group, nullptr).ok());
  Effects installed;  // a snapshot installed later: the fences stay
  installed.replaces_store = true;
  PersistBatch replacing;
  replacing.TakeFrom(&installed);
  const PersistBatch* second[] = {&replacing};
  REQUIRE(store->Write(second, nullptr).ok());

  RecoveredState state;
  Reload(dir.path().string(), &store, &state);
  CHECK(state.fences == std::vector<Fence>{Fence{0, 100, 7}, Fence{0, 200, 9}});
}

TEST_CASE("a record that does not decode makes the store refuse to load", "[store]") {
  tally::test::TempDir dir("tallyd-store");
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
  }
  auto plant = [&](const std::string& key, const std::string& value) {
    leveldb::DB* db = nullptr;
    leveldb::Options options;
    REQUIRE(leveldb::DB::Open(options, dir.path().string(), &db).ok());
    REQUIRE(db->Put(leveldb::WriteOptions(), key, value).ok());
    delete db;
  };
  auto load_error = [&]() {
    std::unique_ptr<Store> store;
    REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
    RecoveredState state;
    Status s = store->Load(&state);
    REQUIRE(s.code() == Code::kCorruption);
    return s.message();
  };

  SECTION("garbage in an op record") {
    plant(Store::OpKey(0, 1), "not a protobuf \xff\xff");
    CHECK_THAT(load_error(), Catch::Contains("record O"));
  }
  SECTION("an op stored under another op's key") {
    Op op;
    op.dot = Dot{0, 7};
    op.hlc = Hlc::Make(1000, 0);
    op.kind = OpKind::kCredit;
    op.account = "a1";
    op.amount = 5;
    plant(Store::OpKey(0, 1), codec::EncodeOp(op));
    CHECK_THAT(load_error(), Catch::Contains("holds op r0:7"));
  }
  SECTION("an op of a region the cluster does not have") {
    Op op;
    op.dot = Dot{3, 1};
    op.hlc = Hlc::Make(1000, 0);
    op.kind = OpKind::kCredit;
    op.account = "a1";
    op.amount = 5;
    plant(Store::OpKey(3, 1), codec::EncodeOp(op));
    CHECK_THAT(load_error(), Catch::Contains("origin is not a configured region"));
  }
  SECTION("a truncated meta record") {
    plant(Store::MetaKey("high_water"), "abc");
    CHECK_THAT(load_error(), Catch::Contains("expected 8 bytes"));
  }
  SECTION("a fence list that does not decode, or names a region the cluster does not have") {
    plant(Store::MetaKey("fences"), "\xff\xff\xff");
    CHECK_THAT(load_error(), Catch::Contains("fence list"));
    plant(Store::MetaKey("fences"), codec::EncodeFences({Fence{2, 5, 1}}));
    CHECK_THAT(load_error(), Catch::Contains("a fence of a region the cluster does not have"));
  }
  SECTION("a key outside the documented ranges") {
    plant("Zzz", "x");
    CHECK_THAT(load_error(), Catch::Contains("unknown key prefix"));
  }
}

TEST_CASE("damaged LevelDB files make the store refuse to open or load", "[store]") {
  tally::test::TempDir dir("tallyd-store");
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::Open(dir.path().string(), kIdentity, &store).ok());
    Driver d(store.get(), 1);
    RecoveredState empty;
    REQUIRE(d.replica.Recover(std::move(empty), d.now).ok());
    REQUIRE(d.Run(OpenAccount{Config("a1", 0)}).status.ok());
    for (int i = 0; i < 50; ++i)
      REQUIRE(d.Run(Credit{"a1", 10 + i, "k" + std::to_string(i)}).status.ok());
  }
  // Flip bytes in the middle of every write-ahead log (where the records above live).
  int damaged = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() != ".log" || fs::file_size(entry.path()) < 200) continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(entry.path()));
    for (std::streamoff at = size / 3; at < size / 3 + 16; ++at) {
      f.seekg(at);
      char c = 0;
      f.read(&c, 1);
      f.seekp(at);
      c = static_cast<char>(c ^ 0x5a);
      f.write(&c, 1);
    }
    ++damaged;
  }
  REQUIRE(damaged > 0);
  std::unique_ptr<Store> store;
  Status s = Store::Open(dir.path().string(), kIdentity, &store);
  RecoveredState state;
  if (s.ok()) s = store->Load(&state);
  INFO(s.ToString());
  CHECK(s.code() == Code::kCorruption);
}
