// CommitGate: what may leave before a sync, and what waits for which batch.

#include "core/commit_gate.h"

#include <catch2/catch.hpp>

namespace tally {
namespace {

Op MakeCredit(Seq seq) {
  Op op;
  op.dot = Dot{0, seq};
  op.kind = OpKind::kCredit;
  op.account = "a";
  op.amount = 1;
  return op;
}

// An Effects that persists op `seq` (0: nothing), sends one Ack and completes command `id`.
Effects Step(Seq seq, std::uint64_t id) {
  Effects e;
  if (seq != 0) e.ops.push_back(MakeCredit(seq));
  e.send.push_back(Outbound{1, Ack{}});
  CommandResult r;
  r.id = id;
  e.completions.push_back(r);
  return e;
}

std::vector<std::uint64_t> Ids(const CommitGate::Release& r) {
  std::vector<std::uint64_t> ids;
  for (const CommandResult& c : r.completions) ids.push_back(c.id);
  return ids;
}

TEST_CASE("with nothing unsynced, sends and answers leave at once", "[core][gate]") {
  CommitGate gate;
  CommitGate::Release now;
  Effects e = Step(0, 7);
  gate.Absorb(&e, &now);
  CHECK(Ids(now) == std::vector<std::uint64_t>{7});
  CHECK(now.send.size() == 1);
  CHECK(e.send.empty());
  CHECK(e.completions.empty());
  CHECK_FALSE(gate.has_open_batch());
  CHECK(gate.Barrier() == 0);
}

TEST_CASE("what follows a write waits for the sync of every batch before it", "[core][gate]") {
  CommitGate gate;
  CommitGate::Release now;
  Effects e1 = Step(1, 1);
  gate.Absorb(&e1, &now);
  CHECK(now.empty());  // its op is not durable yet
  CHECK(gate.has_open_batch());
  CHECK(gate.Barrier() == 1);
  const PersistBatch& first = gate.StartWrite();
  CHECK(first.ops.size() == 1);
  CHECK(gate.in_flight() == 1);

  // Nothing new to persist, but a message that claims op 1 must not overtake its sync.
  Effects e2 = Step(0, 2);
  gate.Absorb(&e2, &now);
  CHECK(now.empty());
  CHECK(gate.Barrier() == 1);

  // A second write joins the open batch while the first syncs: group commit.
  Effects e3 = Step(2, 3);
  gate.Absorb(&e3, &now);
  Effects e4 = Step(3, 4);
  gate.Absorb(&e4, &now);
  CHECK(gate.Barrier() == 2);
  CHECK(gate.StartWrite().ops.size() == 2);
  CHECK(gate.in_flight() == 2);
  CHECK(gate.oldest_in_flight().ops.front().dot.seq == 1);

  CommitGate::Release out;
  gate.Synced(&out);
  CHECK(Ids(out) == std::vector<std::uint64_t>{1, 2});
  CHECK(out.send.size() == 2);
  CHECK(gate.synced_through() == 1);
  out.Clear();
  gate.Synced(&out);
  CHECK(Ids(out) == std::vector<std::uint64_t>{3, 4});
  CHECK(gate.Barrier() == 0);
}

TEST_CASE("a crash drops every batch not synced and everything waiting for one", "[core][gate]") {
  CommitGate gate;
  CommitGate::Release now;
  Effects e1 = Step(1, 1);
  gate.Absorb(&e1, &now);
  gate.StartWrite();
  Effects e2 = Step(2, 2);
  gate.Absorb(&e2, &now);
  int unsynced = 0;
  gate.ForEachUnsynced([&](const PersistBatch& b) { unsynced += static_cast<int>(b.ops.size()); });
  CHECK(unsynced == 2);
  gate.Crash();
  CHECK(gate.in_flight() == 0);
  CHECK_FALSE(gate.has_open_batch());
  CHECK(gate.Barrier() == 0);
  Effects e3 = Step(0, 3);
  gate.Absorb(&e3, &now);
  CHECK(Ids(now) == std::vector<std::uint64_t>{3});  // the next process starts clean
}

TEST_CASE("the planted bug ack_before_sync lets answers out before their ops are synced",
          "[core][gate]") {
  CommitGate gate(/*ack_before_sync=*/true);
  CommitGate::Release now;
  Effects e = Step(1, 1);
  gate.Absorb(&e, &now);
  CHECK(Ids(now) == std::vector<std::uint64_t>{1});
  CHECK(now.send.empty());  // messages still wait
  CHECK(gate.has_open_batch());
}

TEST_CASE("a batch takes the persistable part of many Effects, a store replacement superseding",
          "[core][gate]") {
  PersistBatch b;
  Effects e1;
  e1.ops.push_back(MakeCredit(1));
  e1.keys.push_back(
      KeyRecord{"a", HashKey("k"), Dot{0, 1}, Hlc{}, OpKind::kCredit, 1, 0, false, 1});
  e1.high_water = Hlc::Make(5, 0);
  b.TakeFrom(&e1);
  Effects e2;
  e2.forget_keys.push_back(KeyRecordId{"a", HashKey("k"), false});
  e2.high_water = Hlc::Make(4, 0);
  b.TakeFrom(&e2);
  CHECK(b.keys.empty());  // the later deletion supersedes the earlier write
  CHECK(b.forget_keys.size() == 1);
  CHECK(b.high_water == Hlc::Make(5, 0));  // the largest asked for
  Effects e3;
  e3.replaces_store = true;
  e3.ops.push_back(MakeCredit(9));
  e3.fold = Fold{};
  b.TakeFrom(&e3);
  CHECK(b.replaces_store);
  REQUIRE(b.ops.size() == 1);
  CHECK(b.ops[0].dot.seq == 9);
  CHECK(b.folds.size() == 1);
  CHECK(b.high_water == Hlc::Make(5, 0));  // never dropped: the clock must not go back
}

}  // namespace
}  // namespace tally
