// The simulator's parts on their own: randomness, the agenda, the crash-faithful store, the
// network's partitions and bounds, simulated clocks, the ledger oracle, and bad configuration.

#include <catch2/catch.hpp>

#include "codec/codec.h"
#include "sim/clock.h"
#include "sim/config.h"
#include "sim/dots.h"
#include "sim/event_queue.h"
#include "sim/ledger.h"
#include "sim/network.h"
#include "sim/random.h"
#include "sim/store.h"

namespace tally::sim {
namespace {

Op MakeOp(RegionId origin, Seq seq, std::uint64_t wall_ms, OpKind kind, const std::string& account,
          Amount amount, const std::string& key = "", RegionId to = 0) {
  Op op;
  op.dot = Dot{origin, seq};
  op.hlc = Hlc::Make(wall_ms, 0);
  op.kind = kind;
  op.account = account;
  op.amount = amount;
  op.key = key;
  op.to = to;
  return op;
}

// A checkpoint the codec accepts: a valid config with one region's line, nothing spent.
AccountCheckpoint Checkpoint(const std::string& account) {
  AccountCheckpoint c;
  c.config.id = account;
  c.config.currency = "EUR";
  c.config.lines = {0, 0};
  return c;
}

Op OpenOp(RegionId origin, Seq seq, std::uint64_t wall_ms, const std::string& account, Amount limit,
          std::vector<Amount> lines, FeePolicy fee = {}) {
  Op op = MakeOp(origin, seq, wall_ms, OpKind::kOpen, account, 0);
  AccountConfig& c = op.config.mutable_value();
  c.id = account;
  c.currency = "EUR";
  c.overdraft_limit = limit;
  c.lines = std::move(lines);
  c.fee = fee;
  return op;
}

RecoveredState Read(const SimStore& store) {
  RecoveredState s;
  Status st = store.Recover(&s);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return s;
}

TEST_CASE("Rng is a pure function of its seed and stays in range", "[sim]") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t x = a.Next();
    REQUIRE(x == b.Next());
    differs = differs || x != c.Next();
    std::int64_t r = a.Range(-3, 5);
    b.Range(-3, 5);
    REQUIRE(r >= -3);
    REQUIRE(r <= 5);
    double u = a.Unit();
    b.Unit();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
  REQUIRE(differs);
  REQUIRE(DeriveSeed(7, "network") != DeriveSeed(7, "faults"));
  REQUIRE(DeriveSeed(7, "storage", 0) != DeriveSeed(7, "storage", 1));
  REQUIRE(DeriveSeed(7, "network") == DeriveSeed(7, "network"));
}

TEST_CASE("EventQueue runs events by time, then in the order they were scheduled", "[sim]") {
  EventQueue q;
  q.Schedule(10, EventKind::kTick, 1);
  q.Schedule(5, EventKind::kTick, 2);
  q.Schedule(10, EventKind::kTick, 3);
  q.Schedule(5, EventKind::kTick, 4);
  std::vector<std::uint32_t> order;
  while (!q.empty()) order.push_back(q.Pop().a);
  REQUIRE(order == std::vector<std::uint32_t>{2, 4, 1, 3});
}

TEST_CASE("SimStore keeps what was synced and loses the rest in a crash", "[sim]") {
  SimStore store;
  PersistBatch b1;
  b1.ops.push_back(MakeOp(0, 1, 1000, OpKind::kCredit, "a", 10));
  b1.high_water = Hlc::Make(2000, 0);
  PersistBatch b2;
  b2.ops.push_back(MakeOp(0, 2, 1001, OpKind::kDebit, "a", 5, "k1"));
  b2.keys.push_back(
      KeyRecord{"a", HashKey("k1"), Dot{0, 2}, Hlc::Make(1001, 0), OpKind::kDebit, 5, 0, false, 5});
  REQUIRE(store.Write(std::move(b1)) == 1);
  REQUIRE(store.Write(std::move(b2)) == 2);
  int seen = 0;
  store.SyncUpTo(1, [&](const PersistBatch& b) { seen += static_cast<int>(b.ops.size()); });
  REQUIRE(seen == 1);
  REQUIRE(store.synced() == 1);
  REQUIRE(store.written() == 2);
  store.Crash();
  REQUIRE(store.written() == 1);
  RecoveredState s = Read(store);
  REQUIRE(s.ops.size() == 1);
  REQUIRE(s.ops[0].dot == Dot{0, 1});
  REQUIRE(s.keys.empty());
  REQUIRE(s.high_water == Hlc::Make(2000, 0));
  REQUIRE_FALSE(store.FindOp(Dot{0, 2}));
}

TEST_CASE("SimStore applies a fold: checkpoints stored, ops at or below the floor deleted",
          "[sim]") {
  SimStore store;
  PersistBatch b;
  for (Seq s = 1; s <= 4; ++s) b.ops.push_back(MakeOp(1, s, 1000 + s, OpKind::kCredit, "a", 1));
  Fold fold;
  fold.frontier = Hlc::Make(1003, 0);
  fold.log_floor.set(1, 2);
  fold.checkpoints.push_back(Checkpoint("a"));
  b.folds.push_back(fold);
  store.Write(std::move(b));
  store.SyncUpTo(1, [](const PersistBatch&) {});
  RecoveredState s = Read(store);
  REQUIRE(s.ops.size() == 2);
  REQUIRE(s.ops[0].dot == Dot{1, 3});
  REQUIRE(s.log_floor.get(1) == 2);
  REQUIRE(s.frontier == Hlc::Make(1003, 0));
  REQUIRE(s.checkpoints.size() == 1);
}

TEST_CASE("SimStore: a batch that replaces the store keeps only what it carries, and the clock",
          "[sim]") {
  SimStore store;
  PersistBatch old;
  for (Seq s = 1; s <= 4; ++s) old.ops.push_back(MakeOp(1, s, 1000 + s, OpKind::kCredit, "a", 1));
  old.keys.push_back(KeyRecord{"a", HashKey("k1"), Dot{1, 2}, Hlc::Make(1002, 0), OpKind::kCredit,
                               1, 0, false, 2});
  old.high_water = Hlc::Make(9000, 0);
  Fold f1;
  f1.frontier = Hlc::Make(1001, 0);
  f1.log_floor.set(1, 1);
  f1.checkpoints.push_back(Checkpoint("a"));
  old.folds.push_back(f1);
  store.Write(std::move(old));
  store.SyncUpTo(1, [](const PersistBatch&) {});
  REQUIRE(Read(store).ops.size() == 3);

  // A snapshot: checkpoints valid with r0 folded up to 5 and r1 up to 3, r0's ops 6 and 7 retained.
  PersistBatch snap;
  snap.replaces_store = true;
  snap.ops.push_back(MakeOp(0, 6, 2006, OpKind::kDebit, "b", 3, "k9"));
  snap.ops.push_back(MakeOp(0, 7, 2007, OpKind::kCredit, "b", 4));
  snap.keys.push_back(KeyRecord{"b", HashKey("k9"), Dot{0, 6}, Hlc::Make(2006, 0), OpKind::kDebit,
                                3, 0, false, -3});
  Fold f2;
  f2.frontier = Hlc::Make(2005, 0);
  f2.log_floor.set(0, 5);
  f2.log_floor.set(1, 3);
  f2.checkpoints.push_back(Checkpoint("b"));
  snap.folds.push_back(f2);
  store.Write(std::move(snap));
  store.SyncUpTo(2, [](const PersistBatch&) {});
  REQUIRE(store.write_error().empty());
  RecoveredState s = Read(store);
  REQUIRE(s.ops.size() == 2);
  REQUIRE(s.ops[0].dot == Dot{0, 6});
  REQUIRE(s.ops[1].dot == Dot{0, 7});
  REQUIRE_FALSE(store.FindOp(Dot{1, 4}));  // the old retained log is gone
  REQUIRE(s.keys.size() == 1);
  REQUIRE(s.keys[0].key == HashKey("k9"));
  REQUIRE(s.checkpoints.size() == 1);
  REQUIRE(s.checkpoints[0].config.id == "b");
  REQUIRE(s.frontier == Hlc::Make(2005, 0));
  REQUIRE(s.log_floor.get(0) == 5);
  REQUIRE(s.log_floor.get(1) == 3);
  REQUIRE(s.high_water == Hlc::Make(9000, 0));  // never replaced: the clock must not go back
  REQUIRE(store.Extent(0) == 7);
  REQUIRE(store.Extent(1) == 3);
  // Ops after the snapshot extend its log.
  PersistBatch next;
  next.ops.push_back(MakeOp(0, 8, 2008, OpKind::kCredit, "b", 1));
  store.Write(std::move(next));
  store.SyncUpTo(3, [](const PersistBatch&) {});
  REQUIRE(store.write_error().empty());
  REQUIRE(store.Extent(0) == 8);
}

TEST_CASE("SimStore: the disk replaced by an empty one or by an older copy", "[sim]") {
  SimStore store;
  PersistBatch b1;
  b1.ops.push_back(MakeOp(0, 1, 1000, OpKind::kCredit, "a", 10));
  b1.high_water = Hlc::Make(5000, 0);
  store.Write(std::move(b1));
  store.SyncUpTo(1, [](const PersistBatch&) {});
  const SimStore::Durable copy = store.durable();
  PersistBatch b2;
  b2.ops.push_back(MakeOp(0, 2, 1001, OpKind::kCredit, "a", 10));
  b2.high_water = Hlc::Make(6000, 0);
  store.Write(std::move(b2));
  store.SyncUpTo(2, [](const PersistBatch&) {});
  REQUIRE(store.Extent(0) == 2);

  store.Crash();
  store.ReplaceDisk(copy);
  RecoveredState s = Read(store);
  REQUIRE(s.ops.size() == 1);
  REQUIRE(s.high_water == Hlc::Make(5000, 0));  // an older copy holds an older clock too
  REQUIRE(store.Extent(0) == 1);

  store.ReplaceDisk(SimStore::Durable{});
  s = Read(store);
  REQUIRE(s.ops.empty());
  REQUIRE(s.high_water.is_zero());
  REQUIRE(store.Extent(0) == 0);
  // An empty disk takes the region's ops from seq 1 again.
  PersistBatch b3;
  b3.ops.push_back(MakeOp(0, 1, 7000, OpKind::kCredit, "a", 5));
  store.Write(std::move(b3));
  store.SyncUpTo(store.written(), [](const PersistBatch&) {});
  REQUIRE(store.write_error().empty());
  REQUIRE(store.FindOp(Dot{0, 1})->amount == 5);
}

TEST_CASE(
    "SimStore keeps the codec's record encoding, and a record that does not decode fails "
    "recovery",
    "[sim]") {
  SimStore store;
  PersistBatch b;
  b.ops.push_back(OpenOp(0, 1, 1000, "a", 20, {10, 10}));
  b.ops.push_back(MakeOp(0, 2, 1001, OpKind::kDebit, "a", 7, "k1"));
  store.Write(std::move(b));
  store.SyncUpTo(1, [](const PersistBatch&) {});
  SimStore::Durable d = store.durable();
  REQUIRE(d.ops[0].size() == 2);
  REQUIRE(d.ops[0][1] == codec::EncodeOp(MakeOp(0, 2, 1001, OpKind::kDebit, "a", 7, "k1")));
  REQUIRE(store.FindOp(Dot{0, 2})->amount == 7);
  // A torn record on the disk: recovery says so instead of handing the replica a wrong op.
  d.ops[0][1].resize(d.ops[0][1].size() / 2);
  store.Crash();
  store.ReplaceDisk(std::move(d));
  RecoveredState s;
  Status st = store.Recover(&s);
  REQUIRE(st.code() == Code::kCorruption);
  REQUIRE(st.ToString().find("stored op") != std::string::npos);
}

TEST_CASE("Network carries the codec's bytes: a delivery decodes to the message sent", "[sim]") {
  EventQueue q;
  Network net(2, LinkParams{1, 1, 0, 0, 0, 0, 0, 4}, 1);
  OpBatch batch;
  batch.ops.push_back(MakeOp(0, 1, 1000, OpKind::kCredit, "a", 30, "c1"));
  batch.ops.push_back(MakeOp(0, 2, 1001, OpKind::kDebit, "a", 5, "d1"));
  const Message sent = batch;
  REQUIRE(net.Send(0, 0, 1, sent, &q).ok());
  std::string expect;
  REQUIRE(codec::EncodeMessage(sent, &expect).ok());
  REQUIRE(net.stats().bytes == expect.size());
  InFlight f;
  REQUIRE(net.Take(q.Pop().b, &f));
  REQUIRE(f.bytes == expect);
  Message got;
  REQUIRE(codec::DecodeMessage(f.bytes, &got).ok());
  REQUIRE(got == sent);
}

TEST_CASE("Network partitions cut directed links, and heal reports the links that came up",
          "[sim]") {
  EventQueue q;
  Network net(3, LinkParams{5, 5, 0, 0, 0, 0, 0, 2}, 1);
  Partition one_way{"asymmetric", {{0, 1}}, "r0 -> r1 cut"};
  net.Cut(one_way);
  REQUIRE_FALSE(net.up(0, 1));
  REQUIRE(net.up(1, 0));
  net.Send(0, 0, 1, Ack{}, &q);
  REQUIRE(net.stats().dropped_partition == 1);
  REQUIRE(q.empty());
  net.Send(0, 1, 0, Ack{}, &q);
  REQUIRE(q.size() == 1);
  // Overlapping partitions: the link is up only when every one of them has ended.
  Partition iso{"isolate", {{0, 1}, {1, 0}, {0, 2}, {2, 0}}, "r0 isolated"};
  net.Cut(iso);
  REQUIRE(net.Uncut(one_way).empty());
  auto up = net.Uncut(iso);
  REQUIRE(up.size() == 4);
  REQUIRE(net.up(0, 1));
  // A message in flight when its link goes down is lost at delivery.
  Event e = q.Pop();
  net.Cut(iso);
  InFlight f;
  REQUIRE_FALSE(net.Take(e.b, &f));
}

TEST_CASE("Network bounds each link and can duplicate", "[sim]") {
  EventQueue q;
  Network net(2, LinkParams{1, 1, 0, 0, 0, 0, 0, 2}, 1);
  for (int i = 0; i < 5; ++i) net.Send(0, 0, 1, Ack{}, &q);
  REQUIRE(q.size() == 2);
  REQUIRE(net.stats().dropped_capacity == 3);
  Network dup(2, LinkParams{1, 1, 0, 0, 0, 1.0, 0, 100}, 1);
  EventQueue q2;
  REQUIRE(dup.Send(0, 0, 1, Ack{}, &q2).ok());
  REQUIRE(q2.size() == 2);
  InFlight a, b;
  REQUIRE(dup.Take(q2.Pop().b, &a));
  REQUIRE(dup.Take(q2.Pop().b, &b));
  REQUIRE(a.bytes == b.bytes);
}

TEST_CASE("SimClock: offset, drift and steps", "[sim]") {
  SimClock c(500, 1000);  // +500 ms, 1000 ppm fast
  REQUIRE(c.Read(0) == kEpochMs + 500);
  REQUIRE(c.Read(1'000'000) == kEpochMs + 1'000'000 + 500 + 1000);
  c.Step(-3'600'000);
  REQUIRE(c.OffsetAt(0) == 500 - 3'600'000);
  c.Step(-10LL * 24 * 3'600'000);
  REQUIRE(c.OffsetAt(0) == -kMaxTotalOffsetMs);
}

TEST_CASE("Ledger: the floor holds per region, counting refunds of voided debits", "[sim]") {
  Ledger ledger(2);
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 20, {10, 10}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 30), 0).empty());
  // r1 spends 10 on its line: rights(r1) = -10 >= -10.
  REQUIRE(ledger.AddDurable(MakeOp(1, 1, 300, OpKind::kDebit, "a", 10, "k"), 0).empty());
  // r0's earlier use of the same key voids r1's debit: r1 is refunded 10.
  REQUIRE(ledger.AddDurable(MakeOp(0, 3, 250, OpKind::kDebit, "a", 10, "k"), 0).empty());
  REQUIRE(ledger.Refunds("a", 1) == 10);
  // rights(r1) -10 - 15 = -25, refunds 10: -15 < -10.
  std::string v = ledger.AddDurable(MakeOp(1, 2, 400, OpKind::kDebit, "a", 15, "k2"), 0);
  REQUIRE(v.rfind("I2 floor", 0) == 0);
}

TEST_CASE("Ledger: the effective floor claws back voided credits, also long after the spend",
          "[sim]") {
  SECTION("the earlier duplicate arrives after the credit was spent") {
    Ledger ledger(2);
    REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 20, {10, 10}), 0).empty());
    // r1 takes a credit of 100 and spends it: raw rights 0 >= -10.
    REQUIRE(ledger.AddDurable(MakeOp(1, 1, 300, OpKind::kCredit, "a", 100, "c"), 0).empty());
    REQUIRE(ledger.AddDurable(MakeOp(1, 2, 310, OpKind::kDebit, "a", 100, "d"), 0).empty());
    REQUIRE(ledger.CheckFloors().empty());
    // r0's canonically earlier credit with the same key voids r1's: r1 is clawed back 100, and its
    // floor, 0 - 100 = -100, is below its line of 10, though r1 originated nothing new.
    std::string v = ledger.AddDurable(MakeOp(0, 2, 250, OpKind::kCredit, "a", 100, "c"), 0);
    INFO(v);
    REQUIRE(v.rfind("I2 floor: a at r1: raw rights 0 + refunds 0 - clawbacks 100 = -100", 0) == 0);
    REQUIRE(v.find("clawback") != std::string::npos);
    REQUIRE(ledger.Clawbacks("a", 1) == 100);
    REQUIRE(ledger.CheckFloors().rfind("I2 floor: a at r1", 0) == 0);
  }
  SECTION("the credit is voided as it comes and spent afterwards") {
    Ledger ledger(2);
    REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 20, {10, 10}), 0).empty());
    REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 100, "c"), 0).empty());
    // r1's retry of the same credit is a later duplicate: voided, no net change for r1.
    REQUIRE(ledger.AddDurable(MakeOp(1, 1, 300, OpKind::kCredit, "a", 100, "c"), 0).empty());
    REQUIRE(ledger.Clawbacks("a", 1) == 100);
    // Spending within the line is fine: 100 - 10 - 100 = -10 >= -10.
    REQUIRE(ledger.AddDurable(MakeOp(1, 2, 310, OpKind::kDebit, "a", 10, "d1"), 0).empty());
    // One more is not, although raw rights (90 - 1) are positive.
    std::string v = ledger.AddDurable(MakeOp(1, 3, 320, OpKind::kDebit, "a", 1, "d2"), 0);
    INFO(v);
    REQUIRE(v.rfind("I2 floor: a at r1: raw rights 89 + refunds 0 - clawbacks 100 = -11", 0) == 0);
  }
}

TEST_CASE("Ledger: a seq reused for another op, a gap, a key used twice by one region", "[sim]") {
  Ledger ledger(2);
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 30, "c1"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 30, "c1"), 0)
              .empty());  // same op again
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 210, OpKind::kCredit, "a", 31, "c1"), 0)
              .rfind("I4 durability", 0) == 0);
  REQUIRE(
      ledger.AddDurable(MakeOp(0, 5, 300, OpKind::kCredit, "a", 1), 0).rfind("I4 durability", 0) ==
      0);
  REQUIRE(ledger.AddDurable(MakeOp(0, 3, 300, OpKind::kCredit, "a", 30, "c1"), 0)
              .rfind("I6 idempotency", 0) == 0);
}

TEST_CASE("DotBook: one op per dot while a copy of it is left", "[sim]") {
  DotBook book(2);
  const Op a = MakeOp(0, 1, 1000, OpKind::kCredit, "acct", 10, "k1");
  Op b = a;
  b.amount = 11;  // same dot, another op
  REQUIRE(book.See(a) == DotBook::Seen::kNew);
  REQUIRE(book.See(a) == DotBook::Seen::kKnown);  // a peer receives it, it is sent again, ...
  REQUIRE(book.See(b) == DotBook::Seen::kConflict);
  Op c = a;
  c.hlc = Hlc::Make(1001, 0);  // the same request stamped at another time is another op too
  REQUIRE(book.See(c) == DotBook::Seen::kConflict);
  book.MarkDurable(a.dot);
  REQUIRE(book.Holds(a.dot, DotBook::Fingerprint(a)));

  // Some region still holds r0's ops up to 1: nothing is freed.
  VersionVector held;
  held.set(0, 1);
  REQUIRE(book.Release(held).empty());
  REQUIRE(book.See(b) == DotBook::Seen::kConflict);
  // No copy left (its only durable copy went with a disk): the seq may carry another op now.
  held.set(0, 0);
  REQUIRE(book.Release(held) == std::vector<Dot>{Dot{0, 1}});
  REQUIRE_FALSE(book.Holds(a.dot, DotBook::Fingerprint(a)));
  REQUIRE(book.LostDurable() == 1);
  REQUIRE(book.See(b) == DotBook::Seen::kReissued);
  REQUIRE(book.reissued() == 1);
  REQUIRE(book.LostDurable() == 1);  // a lost for good
  // The first op comes back (a message sent before the disk went, delivered late): a fork.
  REQUIRE(book.See(a) == DotBook::Seen::kConflict);

  // An op whose last copy went and that comes back before anyone reused its dot is revived.
  const Op d = MakeOp(1, 1, 1000, OpKind::kDebit, "acct", 5, "k2");
  REQUIRE(book.See(d) == DotBook::Seen::kNew);
  REQUIRE(book.Release(VersionVector{}).size() == 2);  // r0:1 (now b) and r1:1
  REQUIRE(book.See(d) == DotBook::Seen::kRevived);
  REQUIRE(book.Holds(d.dot, DotBook::Fingerprint(d)));
}

TEST_CASE("Ledger: ops lost with a disk are forgotten, the rest reads as before", "[sim]") {
  Ledger ledger(2);
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 20, {10, 10}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 30, "c"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 1, 300, OpKind::kCredit, "a", 30, "c"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 2, 310, OpKind::kDebit, "a", 5, "d"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 3, 320, OpKind::kDebit, "a", 7, "e"), 0).empty());
  REQUIRE(ledger.Clawbacks("a", 1) == 30);  // r1's credit repeats r0's key
  VersionVector held;
  held.set(0, 1);  // r0's credit and debit went with its disk
  held.set(1, 2);
  REQUIRE(ledger.Truncate(held) == std::vector<Dot>{Dot{0, 2}, Dot{0, 3}});
  REQUIRE(ledger.durable().get(0) == 1);
  REQUIRE(ledger.durable().get(1) == 2);
  REQUIRE(ledger.op_count() == 3);
  REQUIRE(ledger.Find(Dot{0, 2}) == nullptr);
  REQUIRE(ledger.Clawbacks("a", 1) == 0);  // r1's credit is the first of its key now
  REQUIRE(ledger.Line("a", 1) == 10);      // the open kept its config
  OracleAccount o;
  REQUIRE(ledger.Oracle("a", &o));
  REQUIRE(o.balance == 25);
  REQUIRE(ledger.CheckFloors().empty());
  // r0 numbers its ops from 2 again, with other ops.
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 400, OpKind::kDebit, "a", 1, "f"), 0).empty());
  REQUIRE(ledger.Truncate(ledger.durable()).empty());
}

TEST_CASE("Ledger oracle: canonical replay, a fee and a void worked by hand", "[sim]") {
  Ledger ledger(2);
  FeePolicy fee{5, 100};  // 5 + 1 % of the overdrawn amount, rounded up
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 80, {0, 80}, fee), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 2, 200, OpKind::kCredit, "a", 50, "c"), 0).empty());
  // Arrival order differs from canonical order: r1's debit (hlc 400) is synced first.
  REQUIRE(ledger.AddDurable(MakeOp(1, 1, 400, OpKind::kDebit, "a", 30, "d2"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 3, 300, OpKind::kDebit, "a", 40, "d1"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 2, 500, OpKind::kDebit, "a", 40, "d1"), 0).empty());
  OracleAccount o;
  REQUIRE(ledger.Oracle("a", &o));
  // 50 - 40 = 10; - 30 = -20 crosses zero: fee 5 + ceil(20 × 100 / 10000) = 6, balance -26;
  // r1's d1 repeats r0's key: voided, refund 40 to r1.
  REQUIRE(o.raw_balance == 50 - 40 - 30 - 40);
  REQUIRE(o.fees == 6);
  REQUIRE(o.region_fees == std::vector<Amount>{0, 6});
  REQUIRE(o.voids == 40);
  REQUIRE(o.region_voids == std::vector<Amount>{0, 40});
  REQUIRE(o.balance == -26);
  REQUIRE(o.balance == o.raw_balance - o.fees + o.voids);
  REQUIRE(o.episodes == 1);
  REQUIRE(o.events.size() == 2);
  REQUIRE(o.events[0].kind == DerivedKind::kOverdraftFee);
  REQUIRE(o.events[0].overdrawn == 20);
  REQUIRE(o.events[0].balance_after == -26);
  REQUIRE(o.events[1].kind == DerivedKind::kVoid);
  REQUIRE(o.events[1].amount == 40);
  REQUIRE(o.region_rights[0] + o.region_rights[1] == o.balance);
  // Raw counters for a replica that holds r0's ops up to 2 and none of r1's.
  VersionVector vv;
  vv.set(0, 2);
  RawView raw;
  REQUIRE(ledger.Raw("a", vv, &raw));
  REQUIRE(raw.balance == 50);
  REQUIRE(raw.rights == std::vector<Amount>{50, 0});
}

Op TransferOp(RegionId origin, Seq seq, std::uint64_t wall_ms, const std::string& from,
              const std::string& to, Amount amount, const std::string& key) {
  Op op = MakeOp(origin, seq, wall_ms, OpKind::kTransfer, from, amount, key);
  op.to_account = to;
  return op;
}

TEST_CASE("Ledger: a transfer is a debit of its payer and a credit of its payee, voided together",
          "[sim]") {
  Ledger ledger(2);
  FeePolicy fee{5, 0};
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 40, {20, 20}, fee), 0).empty());
  REQUIRE(ledger.AddDurable(OpenOp(0, 2, 110, "b", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 3, 200, OpKind::kCredit, "a", 50, "c"), 0).empty());
  // r1 moves 20 from a to b on its line (it holds none of a's rights): a at r1 = -20 >= -20, and
  // b at r1 = +20.
  REQUIRE(ledger.AddDurable(TransferOp(1, 1, 300, "a", "b", 20, "t"), 0).empty());
  // The same transfer retried at r0, stamped later: the payer's key voids it on both sides.
  REQUIRE(ledger.AddDurable(TransferOp(0, 4, 400, "a", "b", 20, "t"), 0).empty());
  REQUIRE(ledger.Refunds("a", 0) == 20);
  REQUIRE(ledger.Clawbacks("b", 0) == 20);
  // A key is its payer's: the same string on the payee's own credit is another key.
  REQUIRE(ledger.AddDurable(MakeOp(1, 2, 410, OpKind::kCredit, "b", 5, "t"), 0).empty());
  REQUIRE(ledger.Clawbacks("b", 1) == 0);
  std::string payer;
  const LedgerOp* t = ledger.Find(Dot{1, 1}, &payer);
  REQUIRE(t != nullptr);
  REQUIRE(payer == "a");
  REQUIRE(ledger.AccountId(t->other_account) == "b");

  OracleAccount oa, ob;
  REQUIRE(ledger.Oracle("a", &oa));
  REQUIRE(ledger.Oracle("b", &ob));
  REQUIRE(oa.raw_balance == 50 - 20 - 20);
  REQUIRE(oa.voids == 20);
  REQUIRE(oa.balance == 30);
  REQUIRE(oa.events.size() == 1);
  REQUIRE(oa.events[0].kind == DerivedKind::kVoid);
  REQUIRE(oa.events[0].op_kind == OpKind::kDebit);  // the payer's side reads as a debit
  REQUIRE(oa.events[0].amount == 20);
  REQUIRE(ob.raw_balance == 20 + 20 + 5);
  REQUIRE(ob.voids == -20);
  REQUIRE(ob.region_voids == std::vector<Amount>{-20, 0});
  REQUIRE(ob.balance == 25);
  REQUIRE(ob.events.size() == 1);
  REQUIRE(ob.events[0].op_kind == OpKind::kCredit);  // the payee's side reads as a credit
  REQUIRE(ob.events[0].amount == -20);
  // Conservation across accounts: 50 + 5 came in, nothing went out, the transfer moved 20.
  const MoneyTotals m = ledger.Totals();
  REQUIRE(m.credits == 55);
  REQUIRE(m.debits == 0);
  REQUIRE(m.transfers == 2);
  REQUIRE(m.transfers_voided == 1);
  REQUIRE(m.transferred == 20);
  REQUIRE(oa.balance + ob.balance == m.credits - m.debits - oa.fees - ob.fees);
  // Raw counters of a replica holding r1's transfer and not r0's retry.
  VersionVector vv;
  vv.set(0, 3);
  vv.set(1, 1);
  RawView raw;
  REQUIRE(ledger.Raw("b", vv, &raw));
  REQUIRE(raw.balance == 20);
  REQUIRE(raw.rights == std::vector<Amount>{0, 20});
  REQUIRE(ledger.Raw("a", vv, &raw));
  REQUIRE(raw.rights == std::vector<Amount>{50, -20});
  REQUIRE(ledger.CheckFloors().empty());
  // The transfer comes back from a lost disk whole (Truncate rebuilds both sides).
  VersionVector held = ledger.durable();
  held.set(0, 3);
  REQUIRE(ledger.Truncate(held) == std::vector<Dot>{Dot{0, 4}});
  REQUIRE(ledger.Clawbacks("b", 0) == 0);
  REQUIRE(ledger.AddDurable(TransferOp(0, 4, 400, "a", "b", 20, "t"), 0).empty());
  REQUIRE(ledger.Clawbacks("b", 0) == 20);
  REQUIRE(ledger.AddDurable(TransferOp(0, 4, 400, "a", "c", 20, "t"), 0).rfind("I4", 0) == 0);
}

TEST_CASE("Ledger: a transfer clawed back from its payee once spent breaks the payee's floor",
          "[sim]") {
  Ledger ledger(2);
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "a", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(OpenOp(0, 2, 110, "b", 20, {10, 10}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 1, 200, OpKind::kCredit, "a", 100, "c"), 0).empty());
  // r1 moves 100 from a to b and b spends it there.
  REQUIRE(ledger.AddDurable(TransferOp(1, 2, 300, "a", "b", 100, "t"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 3, 310, OpKind::kDebit, "b", 100, "d"), 0).empty());
  // r0's canonically earlier use of a's key voids r1's transfer (a refund to a at r1): r1's
  // payee is clawed back 100 it spent, 10 past its line.
  const std::string v = ledger.AddDurable(MakeOp(0, 3, 250, OpKind::kCredit, "a", 1, "t"), 0);
  INFO(v);
  REQUIRE(v.rfind("I2 floor: b at r1: raw rights 0 + refunds 0 - clawbacks 100 = -100", 0) == 0);
  REQUIRE(v.find("transfer 100 to b (a clawback)") != std::string::npos);
  REQUIRE(ledger.Clawbacks("b", 1) == 100);
  REQUIRE(ledger.Refunds("a", 1) == 100);
  REQUIRE(ledger.CheckFloors().rfind("I2 floor: b at r1", 0) == 0);
}

Op BudgetOp(RegionId origin, Seq seq, std::uint64_t wall_ms, const std::string& account,
            std::vector<std::string> payers, Amount amount, const std::string& key) {
  Op op = MakeOp(origin, seq, wall_ms, OpKind::kBudgetDebit, account, amount, key);
  op.payers = std::move(payers);
  return op;
}

TEST_CASE("Ledger: a budget debit debits every payer, voided on all of them by the key it names",
          "[sim]") {
  Ledger ledger(2);
  REQUIRE(ledger.AddDurable(OpenOp(0, 1, 100, "org", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(OpenOp(0, 2, 110, "team", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(OpenOp(0, 3, 120, "user", 0, {0, 0}), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 4, 200, OpKind::kCredit, "org", 100, "c1"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 1, 210, OpKind::kCredit, "org", 100, "c2"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(0, 5, 220, OpKind::kCredit, "team", 30, "c3"), 0).empty());
  REQUIRE(ledger.AddDurable(MakeOp(1, 2, 230, OpKind::kCredit, "team", 30, "c4"), 0).empty());
  // team is a cap inside org: 25 from team at r0 takes 25 from each.
  REQUIRE(ledger.AddDurable(BudgetOp(0, 6, 300, "team", {"team", "org"}, 25, "k1"), 0).empty());
  // A fallback on user, paid by org at r1, retried at r0 (stamped later): the user's key voids the
  // retry on org, and the marker on user with it.
  REQUIRE(ledger.AddDurable(BudgetOp(1, 3, 310, "user", {"org"}, 40, "order-9"), 0).empty());
  REQUIRE(ledger.AddDurable(BudgetOp(0, 7, 320, "user", {"org"}, 40, "order-9"), 0).empty());
  REQUIRE(ledger.Refunds("org", 0) == 40);
  REQUIRE(ledger.Refunds("user", 0) == 0);  // the marker moved nothing
  // The same key string on org's own debit is org's key, not user's.
  REQUIRE(ledger.AddDurable(MakeOp(1, 4, 330, OpKind::kDebit, "org", 5, "order-9"), 0).empty());
  REQUIRE(ledger.Refunds("org", 1) == 0);

  OracleAccount org, team, user;
  REQUIRE(ledger.Oracle("org", &org));
  REQUIRE(ledger.Oracle("team", &team));
  REQUIRE(ledger.Oracle("user", &user));
  REQUIRE(org.raw_balance == 200 - 25 - 40 - 40 - 5);
  REQUIRE(org.voids == 40);
  REQUIRE(org.balance == 200 - 25 - 40 - 5);
  REQUIRE(org.region_rights == std::vector<Amount>{100 - 25, 100 - 40 - 5});
  REQUIRE(org.events.size() == 1);
  REQUIRE(org.events[0].op_kind == OpKind::kDebit);  // a payer's side reads as a debit
  REQUIRE(org.events[0].amount == 40);
  REQUIRE(team.balance == 60 - 25);
  REQUIRE(team.events.empty());
  REQUIRE(user.balance == 0);
  REQUIRE(user.events.size() == 1);  // the marker voided: a fork that moves nothing
  REQUIRE(user.events[0].op_kind == OpKind::kBudgetDebit);
  REQUIRE(user.events[0].amount == 0);
  REQUIRE(user.surviving_debits_max_per_key == 1);
  // Conservation: 260 in, 25 out of each of two payers, 40 and 5 out of org.
  const MoneyTotals m = ledger.Totals();
  REQUIRE(m.credits == 260);
  REQUIRE(m.debits == 25 + 25 + 40 + 5);
  REQUIRE(m.budget_debits == 3);
  REQUIRE(m.budget_voided == 1);
  REQUIRE(m.budget_fallbacks == 2);
  REQUIRE(m.budget_caps == 1);
  REQUIRE(org.balance + team.balance + user.balance == m.credits - m.debits);
  std::string named;
  const LedgerOp* found = ledger.Find(Dot{1, 3}, &named);
  REQUIRE(found != nullptr);
  REQUIRE(named == "user");
  REQUIRE(ledger.PayersOf(*found) == std::vector<std::string>{"org"});
  // Raw counters of a replica holding the cap debit and r1's fallback.
  VersionVector vv;
  vv.set(0, 6);
  vv.set(1, 3);
  RawView raw;
  REQUIRE(ledger.Raw("org", vv, &raw));
  REQUIRE(raw.rights == std::vector<Amount>{75, 60});
  REQUIRE(ledger.CheckFloors().empty());
  // Lost with a disk and back: rebuilt with its payers; another payer under the dot is I4.
  VersionVector held = ledger.durable();
  held.set(0, 6);
  REQUIRE(ledger.Truncate(held) == std::vector<Dot>{Dot{0, 7}});
  REQUIRE(ledger.Refunds("org", 0) == 0);
  REQUIRE(ledger.AddDurable(BudgetOp(0, 7, 320, "user", {"org"}, 40, "order-9"), 0).empty());
  REQUIRE(ledger.Refunds("org", 0) == 40);
  REQUIRE(
      ledger.AddDurable(BudgetOp(0, 7, 320, "user", {"team"}, 40, "order-9"), 0).rfind("I4", 0) ==
      0);
  // A cap debit past the parent's rights at a region breaks the parent's floor: org has 55 at
  // r1; spent to 5 there, a cap debit of 30 leaves team at 0 and org at -25.
  REQUIRE(ledger.AddDurable(MakeOp(1, 5, 390, OpKind::kDebit, "org", 50, "d"), 0).empty());
  const std::string v =
      ledger.AddDurable(BudgetOp(1, 6, 400, "team", {"team", "org"}, 30, "k2"), 0);
  INFO(v);
  REQUIRE(v.rfind("I2 floor: org at r1: raw rights -25", 0) == 0);
}

TEST_CASE("Bad configuration is refused with a clear error", "[sim]") {
  SimConfig c;
  c.profile = "stormy";
  Status s = ApplyProfile(&c);
  REQUIRE(s.code() == Code::kInvalidArgument);
  REQUIRE(s.message().find("stormy") != std::string::npos);
  c.profile = "default";
  c.regions = 1;
  REQUIRE(ApplyProfile(&c).code() == Code::kInvalidArgument);
  c.regions = 17;
  REQUIRE(ApplyProfile(&c).code() == Code::kInvalidArgument);
  c.regions = 3;
  c.accounts = 0;
  REQUIRE(ApplyProfile(&c).code() == Code::kInvalidArgument);
  c.accounts = 5;
  REQUIRE(ApplyProfile(&c).ok());
  PlantedBugs bugs;
  REQUIRE(SetPlantedBug("forget_everything", &bugs).code() == Code::kInvalidArgument);
  REQUIRE(SetPlantedBug("drop_relayed_ops", &bugs).ok());
  REQUIRE(bugs.drop_relayed_ops);
  FinalTopology t;
  REQUIRE(ParseFinalTopology("ring", &t).code() == Code::kInvalidArgument);
  REQUIRE(ParseFinalTopology("partial", &t).ok());
  REQUIRE(t == FinalTopology::kPartial);
  c.seed = 77;
  c.plant_bug = "ack_before_sync";
  REQUIRE(ReproduceCommand(c) ==
          "tally-sim run --seed 77 --regions 3 --accounts 5 --ops 2000 --faults default "
          "--plant-bug ack_before_sync");
  c.durability = "sometimes";
  REQUIRE(ApplyProfile(&c).code() == Code::kInvalidArgument);
  c.durability = "replicated";
  c.plant_bug = "";
  REQUIRE(ApplyProfile(&c).ok());
  REQUIRE(ReproduceCommand(c) ==
          "tally-sim run --seed 77 --regions 3 --accounts 5 --ops 2000 --faults default "
          "--durability replicated");
}

TEST_CASE("Swarm draws differ per seed and are reproducible", "[sim]") {
  SimConfig a, b, a2;
  a.seed = a2.seed = 5;
  b.seed = 6;
  a.profile = b.profile = a2.profile = "swarm";
  REQUIRE(ApplyProfile(&a).ok());
  REQUIRE(ApplyProfile(&b).ok());
  REQUIRE(ApplyProfile(&a2).ok());
  REQUIRE(a.faults.link.delay_max_ms == a2.faults.link.delay_max_ms);
  REQUIRE(a.faults.crashes_per_min == a2.faults.crashes_per_min);
  bool differ = a.faults.link.delay_max_ms != b.faults.link.delay_max_ms ||
                a.faults.crashes_per_min != b.faults.crashes_per_min ||
                a.workload.clients_per_region != b.workload.clients_per_region;
  REQUIRE(differ);
}

}  // namespace
}  // namespace tally::sim
