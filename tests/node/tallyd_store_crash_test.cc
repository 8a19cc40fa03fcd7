// tallyd's LevelDB store through a crash: the store is the file system as of its last sync
// (store.h, "Durability"), so every batch Store::Write acknowledged survives a crash of the
// machine, and reopening never fails, whatever the crash took of what was not acknowledged.
// The crash is FaultEnv's (fault_env.h): files cut back to their last sync, new files whose
// directory was not synced removed, optionally a torn tail.
#include <leveldb/db.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/replica.h"
#include "fault_env.h"
#include "node/store.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;

namespace {

const StoreIdentity kIdentity{"test", "eu", {"eu"}};

ReplicaOptions SoloOptions() {
  ReplicaOptions o;
  o.cluster_id = "test";
  o.regions = {"eu"};
  o.self = 0;
  return o;
}

// The replica's Effects of one command, as the batch tallyd would persist for it.
std::unique_ptr<PersistBatch> Batch(Effects* effects) {
  auto batch = std::make_unique<PersistBatch>();
  batch->TakeFrom(effects);
  effects->Clear();
  return batch;
}

}  // namespace

TEST_CASE("a crash keeps every write the store acknowledged, and the store reopens",
          "[store][crash]") {
  const std::uint64_t seed = GENERATE(1, 2, 3, 4, 5, 6);
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  tally::test::TempDir dir("tallyd-store-crash");
  tally::test::FaultEnv env;
  std::uint64_t now = 1'700'000'000'000;
  VariableWallClock wall{&now};
  std::set<Dot> acknowledged;  // ops of every Write that returned OK
  std::set<Dot> attempted;     // ops of every Write, acknowledged or not
  std::uint64_t next_key = 1, next_command = 1;

  for (int round = 0; round < 8; ++round) {
    INFO("round " << round);
    std::unique_ptr<Store> store;
    Status s = Store::Open(dir.path().string(), kIdentity, &store, &env);
    INFO(s.ToString());
    REQUIRE(s.ok());
    RecoveredState state;
    s = store->Load(&state);
    INFO(s.ToString());
    REQUIRE(s.ok());
    std::set<Dot> recovered;
    for (const Op& op : state.ops) recovered.insert(op.dot);
    for (const Dot& d : acknowledged) {
      INFO("acknowledged op " << d.ToString());
      CHECK(recovered.count(d) == 1);
    }
    for (const Dot& d : recovered) {
      INFO("recovered op " << d.ToString());
      CHECK(attempted.count(d) == 1);  // nothing the store was never given
    }

    Replica replica(SoloOptions(), wall);
    s = replica.Recover(std::move(state), now);
    INFO(s.ToString());
    REQUIRE(s.ok());
    Effects effects;
    auto run = [&](CommandBody body) {
      replica.Submit(Command{next_command++, std::move(body)}, now, &effects);
      REQUIRE(effects.completions.size() == 1);
      return Batch(&effects);
    };
    auto write = [&](std::vector<std::unique_ptr<PersistBatch>>& group) {
      std::vector<const PersistBatch*> batches;
      std::vector<Dot> dots;
      for (const auto& b : group) {
        batches.push_back(b.get());
        for (const Op& op : b->ops) dots.push_back(op.dot);
      }
      attempted.insert(dots.begin(), dots.end());
      const Status w = store->Write(batches, nullptr);
      if (w.ok()) acknowledged.insert(dots.begin(), dots.end());
      return w;
    };

    if (round == 0) {
      AccountConfig c;
      c.id = "a1";
      c.currency = "EUR";
      std::vector<std::unique_ptr<PersistBatch>> group;
      group.push_back(run(OpenAccount{c}));
      REQUIRE(write(group).ok());
    }
    // Synced writes, each a group of one to three commands (the storage thread's group commit).
    const int writes = 1 + static_cast<int>(rng() % 12);
    for (int w = 0; w < writes; ++w) {
      now += 1 + rng() % 50;
      std::vector<std::unique_ptr<PersistBatch>> group;
      const int commands = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < commands; ++i)
        group.push_back(run(
            Credit{"a1", static_cast<Amount>(1 + rng() % 100), "k-" + std::to_string(next_key++)}));
      s = write(group);
      INFO(s.ToString());
      REQUIRE(s.ok());
    }
    // Then the crash: between writes, or in the middle of one whose sync never happened (not
    // acknowledged), cutting its bytes off entirely or leaving a torn part of them.
    const int crash = static_cast<int>(rng() % 3);
    if (crash > 0) {
      env.FailNextLogSync();
      std::vector<std::unique_ptr<PersistBatch>> group;
      group.push_back(run(Credit{"a1", 1, "k-" + std::to_string(next_key++)}));
      CHECK_FALSE(write(group).ok());
    }
    store.reset();  // LevelDB syncs nothing on close: what it did not sync the crash may take
    env.Crash(crash == 2 ? &rng : nullptr);
  }
}

// The crash test above is only as good as its crash: LevelDB's own writes without sync are lost.
TEST_CASE("FaultEnv's crash loses what LevelDB wrote without a sync", "[store][crash]") {
  tally::test::TempDir dir("tallyd-fault-env");
  tally::test::FaultEnv env;
  leveldb::Options options;
  options.create_if_missing = true;
  options.env = &env;
  leveldb::DB* raw = nullptr;
  REQUIRE(leveldb::DB::Open(options, dir.path().string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  leveldb::WriteOptions synced;
  synced.sync = true;
  REQUIRE(db->Put(synced, "kept", "1").ok());
  REQUIRE(db->Put(leveldb::WriteOptions(), "lost", "2").ok());
  db.reset();
  CHECK(env.Crash() > 0);

  REQUIRE(leveldb::DB::Open(options, dir.path().string(), &raw).ok());
  db.reset(raw);
  std::string value;
  CHECK(db->Get(leveldb::ReadOptions(), "kept", &value).ok());
  CHECK(db->Get(leveldb::ReadOptions(), "lost", &value).IsNotFound());
}
