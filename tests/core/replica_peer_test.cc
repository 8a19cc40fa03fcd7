// The replica facing its peers: malformed or hostile input is refused (reported, never applied,
// never a crash); clocks ahead are reported but their ops taken; a partial partition converges
// through relays; nothing is marked final while a region that could still add earlier ops is cut
// off; bounded queues stay bounded.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cluster_fixture.h"
#include "replica_checks.h"

using namespace tally;
using namespace tally::testing;

namespace {

auto Quiet = [](ReplicaOptions& o) {
  o.rebalance_interval_ms = 0;
  o.rights_wait_ms = 0;
};

void OpenEverywhere(Cluster& c, const AccountConfig& config, Amount credit) {
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{config}).status.ok());
  if (credit > 0) REQUIRE(c.Run(0, Credit{config.id, credit, "seed-deposit"}).status.ok());
  c.Settle(6);
  REQUIRE(c.Converged(config.id));
}

// The next op region `origin` would send, as seen by `at`.
Op NextOpFrom(Cluster& c, RegionId at, RegionId origin, OpKind kind, Amount amount) {
  Op op;
  op.dot = Dot{origin, c.at(at).applied().get(origin) + 1};
  op.hlc = Hlc::Make(c.now, 0);
  op.kind = kind;
  op.account = "alice";
  op.amount = amount;
  return op;
}

bool Refused(const Effects& e, RegionId region) {
  for (const Notice& n : e.notices)
    if (n.kind == Notice::Kind::kPeerRefused && n.region == region && !n.text.empty()) return true;
  return false;
}

}  // namespace

TEST_CASE("a peer's malformed ops are refused with a notice and never applied", "[replica][peer]") {
  Cluster c(3, Quiet);
  OpenEverywhere(c, Config("alice", 30), 100);
  const std::uint64_t digest = c.at(1).StateDigest();
  const VersionVector applied = c.at(1).applied();

  auto expect_refused = [&](Op op, const char* what) {
    INFO(what);
    Effects e;
    c.at(1).OnMessage(0, OpBatch{{op}}, c.now, &e);
    CHECK(Refused(e, 0));
    CHECK(e.ops.empty());
    CHECK(c.at(1).applied() == applied);
    CHECK(c.at(1).StateDigest() == digest);
  };
  Op op = NextOpFrom(c, 1, 0, OpKind::kCredit, 5);
  op.amount = 0;
  expect_refused(op, "zero amount");
  op.amount = -5;
  expect_refused(op, "negative amount");
  op.amount = kMaxOpAmount + 1;
  expect_refused(op, "amount over the maximum");
  op = NextOpFrom(c, 1, 0, OpKind::kDebit, 5);
  op.account = "no such/account";
  expect_refused(op, "bad account id");
  op = NextOpFrom(c, 1, 0, OpKind::kDebit, 5);
  op.key = "two words";
  expect_refused(op, "bad idempotency key");
  op.key = std::string(256, 'k');
  expect_refused(op, "idempotency key too long");
  op = NextOpFrom(c, 1, 0, OpKind::kRights, 5);
  op.to = 0;
  expect_refused(op, "transfer to its own origin");
  op.to = 3;
  expect_refused(op, "transfer to an unknown region");
  op = NextOpFrom(c, 1, 0, OpKind::kOpen, 0);
  op.account = "mallory";
  op.config = Config("mallory", -1);
  op.config.mutable_value().lines = {0, 0, 0};
  expect_refused(op, "open with a bad config");
  op.config = Config("other", 0);
  op.config.mutable_value().lines = {0, 0, 0};
  expect_refused(op, "open of another account");
  op = NextOpFrom(c, 1, 0, static_cast<OpKind>(99), 5);
  expect_refused(op, "unknown op kind");

  // Ops claiming an origin that does not exist, or to come from us, are ignored.
  Effects e;
  Op ghost = NextOpFrom(c, 1, 0, OpKind::kCredit, 5);
  ghost.dot.origin = 7;
  c.at(1).OnMessage(0, OpBatch{{ghost}}, c.now, &e);
  ghost.dot.origin = 1;
  ghost.dot.seq = 1;
  c.at(1).OnMessage(0, OpBatch{{ghost}}, c.now, &e);
  CHECK(e.ops.empty());
  CHECK(c.at(1).applied() == applied);
  CHECK(c.at(1).StateDigest() == digest);
  // Messages claiming to come from ourselves or a region that does not exist are ignored.
  Effects e2;
  c.at(1).OnMessage(1, OpBatch{{NextOpFrom(c, 1, 1, OpKind::kCredit, 5)}}, c.now, &e2);
  c.at(1).OnMessage(9, OpBatch{{NextOpFrom(c, 1, 0, OpKind::kCredit, 5)}}, c.now, &e2);
  CHECK(e2.ops.empty());
  CHECK(c.at(1).StateDigest() == digest);

  // The well-formed op after all that is applied.
  Effects ok;
  c.at(1).OnMessage(0, OpBatch{{NextOpFrom(c, 1, 0, OpKind::kCredit, 5)}}, c.now, &ok);
  CHECK(ok.ops.size() == 1);
  CHECK(View(c, 1, "alice").balance == 105);
}

TEST_CASE("a peer's op past a counter cap is refused and not applied", "[replica][peer]") {
  Cluster c(2, Quiet);
  OpenEverywhere(c, Config("alice", 0), 0);
  // r0 "sends" credits of the maximum amount until its credit counter is at the cap.
  const int to_cap = static_cast<int>(kMaxCounter / kMaxOpAmount);
  for (int i = 0; i < to_cap; ++i) {
    Effects e;
    c.at(1).OnMessage(0, OpBatch{{NextOpFrom(c, 1, 0, OpKind::kCredit, kMaxOpAmount)}}, c.now, &e);
    REQUIRE(e.ops.size() == 1);
  }
  const std::uint64_t digest = c.at(1).StateDigest();
  Effects e;
  c.at(1).OnMessage(0, OpBatch{{NextOpFrom(c, 1, 0, OpKind::kCredit, 1)}}, c.now, &e);
  CHECK(Refused(e, 0));
  CHECK(e.ops.empty());
  CHECK(c.at(1).StateDigest() == digest);
  CheckConservationAt(c.at(1), "alice");
}

TEST_CASE("hello: another cluster, protocol or region is refused", "[replica][peer]") {
  Cluster c(3, Quiet);
  Replica& r1 = c.at(1);
  Hello good{"test", kProtocolVersion, 0, VersionVector{}};
  CHECK(r1.CheckHello(good).ok());
  Hello h = good;
  h.cluster_id = "prod";
  CHECK(r1.CheckHello(h).code() == Code::kPermissionDenied);
  h = good;
  h.protocol_version = kProtocolVersion + 1;
  CHECK(r1.CheckHello(h).code() == Code::kFailedPrecondition);
  h = good;
  h.region = 3;
  CHECK(r1.CheckHello(h).code() == Code::kInvalidArgument);
  h.region = 1;  // claims to be us
  CHECK(r1.CheckHello(h).code() == Code::kInvalidArgument);

  // Through OnMessage: refused with a notice; a region on the wrong link too.
  for (const Hello& bad : {Hello{"prod", kProtocolVersion, 0, {}}, Hello{"test", 99, 0, {}},
                           Hello{"test", kProtocolVersion, 2, {}}}) {
    Effects e;
    r1.OnMessage(0, bad, c.now, &e);
    CHECK(Refused(e, 0));
    CHECK(e.send.empty());
  }
}

TEST_CASE("clock offsets are the peers' physical offsets, measured both ways", "[replica][peer]") {
  // Issue 10, item 4: the offset came from HLCs, so a region an hour behind saw the others an
  // hour "ahead" while they saw it in step (its HLC follows theirs). Heartbeats now carry wall
  // times and echo monotonic ones: the offset is the peer's wall clock less ours, corrected by half
  // the round trip.
  Cluster c(2, Quiet);
  c.skew_ms[1] = -3'600'000;  // r1's wall clock an hour behind
  c.Settle(10);
  auto offset = [&](RegionId at, RegionId of) {
    for (const PeerView& p : c.at(at).Peers(c.now))
      if (p.region == of) return p.clock_offset_ms;
    return std::int64_t{0};
  };
  CHECK(std::llabs(offset(0, 1) + 3'600'000) <= 100);
  CHECK(std::llabs(offset(1, 0) - 3'600'000) <= 100);
  for (const PeerView& p : c.at(0).Peers(c.now)) {
    if (p.region == 1) CHECK(p.rtt_ms >= 0);
  }
}

TEST_CASE("a peer clock far ahead is reported, and its ops are still taken", "[replica][peer]") {
  Cluster c(2, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 0;
    o.max_clock_offset_ms = 500;
  });
  c.skew_ms[0] = 10'000;  // r0 runs ten seconds ahead
  std::vector<Notice> notices;
  c.observe = [&](RegionId r, const Effects& e) {
    if (r == 1)
      for (const Notice& n : e.notices) notices.push_back(n);
  };
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 0)}).status.ok());
  REQUIRE(c.Run(0, Credit{"alice", 5, "x"}).status.ok());
  c.Settle(4);
  bool reported = false;
  for (const Notice& n : notices) {
    if (n.kind == Notice::Kind::kClockAhead && n.region == 0) {
      reported = true;
      CHECK(n.value >= 9'000);
      CHECK(n.value <= 11'000);
    }
  }
  CHECK(reported);
  CHECK(c.at(1).stats().clock_ahead_reports > 0);
  CHECK(View(c, 1, "alice").balance == 5);
  bool peer_offset = false;
  for (const PeerView& p : c.at(1).Peers(c.now))
    if (p.region == 0) peer_offset = p.clock_offset_ms >= 9'000;
  CHECK(peer_offset);
  // r1's own ops follow r0's clock: causality is kept, the canonical order is r0's op first.
  const CommandResult mine = c.Run(1, Credit{"alice", 1, "y"});
  REQUIRE(mine.status.ok());
  CHECK(mine.hlc.wall_ms() >= c.now + 10'000);
}

TEST_CASE("a peer's absurd timestamp never sends our own timestamps back in time",
          "[replica][peer]") {
  // Any 64-bit value can arrive in a heartbeat (a corrupt or hostile peer). Whatever the replica
  // does with it, the ops it originates afterwards must still be ordered after its earlier ones:
  // otherwise a new op lands canonically first and re-decides old forks (voids, fees).
  Cluster c(2, Quiet);
  OpenEverywhere(c, Config("alice", 0), 100);
  const CommandResult before = c.Run(1, Credit{"alice", 1, "before"});
  REQUIRE(before.status.ok());
  Heartbeat hb;
  hb.entries.push_back(
      HeartbeatEntry{0, Hlc{~std::uint64_t{0}}, c.at(1).applied().get(0), c.at(0).epoch()});
  hb.applied = c.at(1).applied();
  Effects e;
  c.at(1).OnMessage(0, hb, c.now, &e);
  c.Absorb(1, e);
  for (int i = 0; i < 3; ++i) {
    const CommandResult after = c.Run(1, Credit{"alice", 1, "after-" + std::to_string(i)});
    REQUIRE(after.status.ok());
    INFO("op " << i << " at " << after.hlc.ToString() << ", the one before at "
               << before.hlc.ToString());
    CHECK(after.hlc > before.hlc);
  }
}

namespace {

// A–B and B–C up, A–C down (r0 ⟂ r2): the links of a partial partition.
bool NoAC(RegionId from, RegionId to) {
  return !((from == 0 && to == 2) || (from == 2 && to == 0));
}

// Ticks `rounds` × 50 ms, delivering over NoAC only.
void RunWithoutAC(Cluster& c, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    c.Tick(50);
    c.Deliver(NoAC);
  }
}

// "alice" (overdraft 30), opened at r0 and relayed to r2 through r1.
void OpenAliceWithoutAC(Cluster& c) {
  c.Settle(2);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 30)}).status.ok());
  RunWithoutAC(c, 40);
  REQUIRE(c.at(2).HasAccount("alice"));
}

}  // namespace

TEST_CASE("the timestamp of an op held back for a gap is merged into the clock at once",
          "[replica][peer]") {
  // The simulator (seed 304912 of issue 10): r0 held back r1's newest ops for a gap when r1 lost
  // its disk; r1 rejoined on r0's clock, which had not merged them, and stamped its next op with
  // a timestamp r0 had already seen. A replica merges every timestamp it receives.
  Cluster c(2, Quiet);
  OpenEverywhere(c, Config("alice", 0), 100);
  const Seq held = c.at(1).applied().get(0);
  Op op;
  op.dot = Dot{0, held + 2};  // seq held + 1 never arrives
  op.epoch = c.at(0).epoch();
  op.hlc = Hlc::Make(c.now + 3'600'000, 0);
  op.kind = OpKind::kCredit;
  op.account = "alice";
  op.amount = 1;
  op.key = "gap";
  OpBatch batch;
  batch.ops.push_back(op);
  Effects e;
  c.at(1).OnMessage(0, batch, c.now, &e);
  c.Absorb(1, e);
  CHECK(c.at(1).applied().get(0) == held);
  CHECK(c.at(1).clock() >= op.hlc);
}

TEST_CASE("ops held beyond a gap show in the buffered_ops gauge until the gap fills",
          "[replica][peer]") {
  // The gauge was declared and exported as a metric but never written (issue 11, review).
  Cluster c(2, Quiet);
  OpenEverywhere(c, Config("alice", 0), 100);
  REQUIRE(c.at(1).stats().buffered_ops == 0);
  Op first = NextOpFrom(c, 1, 0, OpKind::kCredit, 1);
  first.epoch = c.at(0).epoch();
  Op second = first;
  second.dot.seq = first.dot.seq + 1;
  second.hlc = Hlc::Make(c.now + 1, 0);
  Effects e;
  c.at(1).OnMessage(0, OpBatch{{second}}, c.now, &e);
  CHECK(c.at(1).stats().buffered_ops == 1);
  CHECK(c.at(1).applied().get(0) == first.dot.seq - 1);
  c.at(1).OnMessage(0, OpBatch{{first}}, c.now, &e);
  CHECK(c.at(1).stats().buffered_ops == 0);
  CHECK(c.at(1).applied().get(0) == second.dot.seq);
  c.Absorb(1, e);
}

TEST_CASE("a partial partition converges through relays", "[replica][peer]") {
  // A–B and B–C up, A–C down, for good.
  Cluster c(3, Quiet);
  OpenAliceWithoutAC(c);
  REQUIRE(c.Run(0, Credit{"alice", 100, "a"}).status.ok());
  REQUIRE(c.Run(2, Credit{"alice", 7, "c"}).status.ok());
  REQUIRE(c.Run(2, Debit{"alice", 3, "d"}).status.ok());
  RunWithoutAC(c, 60);
  CHECK(c.Converged("alice"));
  CHECK(c.at(0).applied() == c.at(2).applied());
  CHECK(View(c, 0, "alice").balance == 104);
  // Finality needs every origin's promise: relayed heartbeats carry them.
  for (RegionId r = 0; r < 3; ++r) CHECK_FALSE(View(c, r, "alice").tentative);
  CheckMoney(c, "alice");
}

TEST_CASE("a wall clock stepped back an hour keeps no silent peer reachable and parks no debit",
          "[replica][peer]") {
  // Issue 10, item 3: eu's clock stepped back 1 h at the moment of a cut; its peers stayed
  // "reachable" for the hour and a debit parked for rights. Timers now run on the monotonic clock
  // the host passes; the wall clock (here the skew) feeds timestamps only.
  Cluster c(2, [](ReplicaOptions& o) {
    Quiet(o);
    o.rights_wait_ms = 50;
  });
  c.Settle(2);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 30)}).status.ok());
  REQUIRE(c.Run(0, Credit{"alice", 100, "c"}).status.ok());
  c.Settle(10);
  REQUIRE(c.at(1).HasAccount("alice"));
  c.skew_ms[1] -= 3'600'000;      // r1's wall clock steps back an hour as the link dies
  for (int i = 0; i < 40; ++i) {  // 2 s, nothing delivered
    c.Tick(50);
    c.queue.clear();
  }
  for (const PeerView& p : c.at(1).Peers(c.now)) {
    if (p.region == 0) CHECK_FALSE(p.reachable);
  }
  const std::uint64_t id = c.next_id + 1;
  c.Run(1, Debit{"alice", 10, "d"});  // r1 holds no rights; its line is 15
  c.Tick(100);
  const std::optional<CommandResult> done = c.CompletionOf(id);
  REQUIRE(done.has_value());
  CHECK(done->status.ok());
  CHECK(done->overdraft);
  CHECK(c.at(1).stats().rights_requests_sent == 0);
}

TEST_CASE("a relay goes on after the relaying region's clock steps back", "[replica][peer]") {
  // The lost-disk swarm (seed 633, a partial partition to the end): the relaying region started
  // its relay delay for a lagging peer, then its clock stepped back; the delay then ran until the
  // clock caught up again (hours), and the peer never got the ops. The relay mark is pulled back
  // to the clock like the re-send mark. (Issue 10 moves every timer to a monotonic clock.)
  Cluster c(3, Quiet);
  OpenAliceWithoutAC(c);
  REQUIRE(c.Run(2, Credit{"alice", 7, "c"}).status.ok());
  RunWithoutAC(c, 2);  // r1 has the credit; r0 lags on r2's ops: r1's relay delay starts
  REQUIRE(c.at(1).applied().get(2) > c.at(0).applied().get(2));
  c.skew_ms[1] -= 3'600'000;  // r1's clock steps back an hour
  RunWithoutAC(c, 100);       // 5 s
  CHECK(c.at(0).applied().get(2) == c.at(2).applied().get(2));
  CHECK(View(c, 0, "alice").balance == 7);
}

TEST_CASE(
    "under a partial partition what a region holds through a relay counts: no lag, pruning goes on",
    "[replica][peer]") {
  // Issue 9: with eu–ap cut and us relaying, eu reported 11,381 ops behind for ap, which had them
  // all through us, and eu's pruning stalled (it knew only ap's direct acks). Heartbeats now relay
  // what each region holds, tagged with its epoch.
  Cluster c(3, [](ReplicaOptions& o) {
    Quiet(o);
    o.checkpoint_interval_ms = 100;
  });
  OpenAliceWithoutAC(c);
  for (int i = 0; i < 30; ++i)
    REQUIRE(c.Run(0, Credit{"alice", 1, "k" + std::to_string(i)}).status.ok());
  RunWithoutAC(c, 60);
  REQUIRE(c.at(2).applied() == c.at(0).applied());
  for (const PeerView& p : c.at(0).Peers(c.now)) {
    INFO("eu's view of region " << p.region);
    CHECK_FALSE((p.region == 2 && p.reachable));
    CHECK(p.ops_behind == 0);
  }
  // eu pruned its own ops: every other region holds them (ap through us).
  CHECK(c.stores[0].log_floor.get(0) >= 30);
  CHECK(c.stores[1].log_floor.get(0) >= 30);
  CHECK(c.Converged("alice"));
}

TEST_CASE("a Hello that claims more than the peer holds never stops gossip to it",
          "[replica][peer]") {
  // Issue 9: a Hello claiming applied = 2^40 in the name of r2, told to r0 and r1, made both stop
  // sending to the real r2 for good while showing it 0 ops behind. Claims are capped at what we
  // hold, and the real r2's next ack replaces the lie.
  Cluster c(3, Quiet);
  OpenEverywhere(c, Config("alice", 0), 0);
  VersionVector huge;
  for (RegionId o = 0; o < 3; ++o) huge.set(o, Seq{1} << 40);
  for (RegionId victim : {RegionId{0}, RegionId{1}}) {
    Effects e;
    c.at(victim).OnMessage(2, Hello{"test", kProtocolVersion, 2, huge}, c.now, &e);
    c.Absorb(victim, e);
    for (const PeerView& p : c.at(victim).Peers(c.now)) {
      if (p.region == 2) CHECK(p.acked == c.at(victim).applied());  // capped at what it holds
    }
  }
  for (int i = 0; i < 5; ++i) {
    REQUIRE(c.Run(0, Credit{"alice", 10, "k" + std::to_string(i)}).status.ok());
    REQUIRE(c.Run(1, Credit{"alice", 1, "j" + std::to_string(i)}).status.ok());
  }
  c.Settle(30);
  CHECK(c.at(2).applied() == c.at(0).applied());
  CHECK(View(c, 2, "alice").balance == 55);
  REQUIRE(c.Converged("alice"));
  for (RegionId r : {RegionId{0}, RegionId{1}}) {
    for (const PeerView& p : c.at(r).Peers(c.now)) CHECK(p.ops_behind == 0);
  }
}

TEST_CASE("a Hello that claims more than the peer holds never makes us prune what it lacks",
          "[replica][peer]") {
  // Found by the simulator's lying-Hello fault: r1 believed a Hello in r0's name, pruned its own
  // ops below that claim once its checkpoint was saved, and the real r0 — which had not got them —
  // could never get them from anyone. A Hello steers what we send, never what we prune.
  Cluster c(2, [](ReplicaOptions& o) {
    Quiet(o);
    o.checkpoint_interval_ms = 100;
  });
  OpenEverywhere(c, Config("alice", 0), 0);
  auto only_r0_to_r1 = [](RegionId from, RegionId) { return from == 0; };
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.Run(1, Credit{"alice", 10, "k" + std::to_string(i)}).status.ok());
  VersionVector huge;
  for (RegionId o = 0; o < 2; ++o) huge.set(o, Seq{1} << 40);
  for (int i = 0; i < 20; ++i) {  // r0 hears nothing from r1; r1 hears r0's heartbeats, and lies
    c.Tick(50);
    c.Deliver(only_r0_to_r1);
    c.queue.clear();
    Effects e;
    c.at(1).OnMessage(0, Hello{"test", kProtocolVersion, 0, huge}, c.now, &e);
    c.Absorb(1, e);
    c.queue.clear();
  }
  c.Settle(30);
  CHECK(c.at(0).applied() == c.at(1).applied());
  CHECK(View(c, 0, "alice").balance == 50);
}

TEST_CASE("nothing is final while a region that could add earlier ops is cut off",
          "[replica][peer][finality]") {
  Cluster c(3, Quiet);
  OpenEverywhere(c, Config("alice", 60, 5, 0), 100);
  c.Settle(20);
  REQUIRE_FALSE(View(c, 0, "alice").tentative);
  auto cut_r2 = [](RegionId from, RegionId to) { return from != 2 && to != 2; };
  // r2 spends during the partition, then r0. Nobody may call any of it final.
  REQUIRE(c.Run(2, Debit{"alice", 20, "x"}).overdraft);  // on its line of 20
  c.Tick(10);
  c.Deliver(cut_r2);
  REQUIRE(c.Run(0, Debit{"alice", 90, "y"}).status.ok());
  for (int i = 0; i < 60; ++i) {
    c.Tick(50);
    c.Deliver(cut_r2);
  }
  for (RegionId r = 0; r < 3; ++r) {
    INFO("region " << r);
    const AccountView v = View(c, r, "alice");
    CHECK(v.tentative);
    CHECK(v.final_balance == 100);
    std::vector<ForkReport> forks;
    REQUIRE(c.at(r).Forks("alice", &forks).ok());
    for (const ForkReport& f : forks) CHECK_FALSE(f.final);
  }
  // After the heal r2's debit lands canonically before r0's, which crosses: 100 − 20 − 90 = −10,
  // fee 5 booked to r0.
  c.Settle(30);
  REQUIRE(c.Converged("alice"));
  const AccountView v = View(c, 0, "alice");
  CHECK_FALSE(v.tentative);
  CHECK(v.balance == 100 - 20 - 90 - 5);
  CHECK(v.regions[0].fees == 5);
  CheckMoney(c, "alice");
}

TEST_CASE("debits waiting for rights are bounded by max_pending_debits", "[replica][peer]") {
  Cluster c(3, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 50;
    o.max_pending_debits = 2;
  });
  OpenEverywhere(c, Config("alice", 30), 100);
  CHECK(c.Run(1, Debit{"alice", 5, "a"}).status.code() == Code::kUnavailable);
  CHECK(c.Run(1, Debit{"alice", 5, "b"}).status.code() == Code::kUnavailable);
  // The queue is full: the third is decided at once, on the overdraft line.
  const CommandResult third = c.Run(1, Debit{"alice", 5, "c"});
  REQUIRE(third.status.ok());
  CHECK(third.overdraft);
  c.Deliver();
  c.Settle(4);
  std::size_t answered = 0;
  for (const CommandResult& r : c.completions)
    if (r.status.ok() && r.op.origin == 1) ++answered;
  CHECK(answered == 3);
  CheckMoney(c, "alice");
}

TEST_CASE("rights requests that are malformed or for unknown accounts grant nothing",
          "[replica][peer]") {
  Cluster c(3, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 50;
  });
  OpenEverywhere(c, Config("alice", 30), 100);
  const std::uint64_t digest = c.at(0).StateDigest();
  for (const RightsRequest& rq :
       {RightsRequest{"alice", 0}, RightsRequest{"alice", -5}, RightsRequest{"alice", INT64_MIN},
        RightsRequest{"alice", kMaxOpAmount + 1}, RightsRequest{"nobody", 5},
        RightsRequest{"bad id", 5}, RightsRequest{"", 5}}) {
    INFO("request of " << rq.amount << " on '" << rq.account << "'");
    Effects e;
    c.at(0).OnMessage(1, rq, c.now, &e);
    CHECK(e.ops.empty());
    CHECK(c.at(0).StateDigest() == digest);
  }
  // A well-formed request for more than the donor holds gets what it holds, no more.
  Effects e;
  c.at(0).OnMessage(1, RightsRequest{"alice", 1000}, c.now, &e);
  REQUIRE(e.ops.size() == 1);
  CHECK(e.ops[0].kind == OpKind::kRights);
  CHECK(e.ops[0].dot.origin == 0);
  CHECK(e.ops[0].to == 1);
  CHECK(e.ops[0].amount == 100);
  CHECK(View(c, 0, "alice").regions[0].rights == 0);
  // Asked again with nothing left: nothing.
  Effects again;
  c.at(0).OnMessage(2, RightsRequest{"alice", 5}, c.now, &again);
  CHECK(again.ops.empty());
}

TEST_CASE("ReplicaOptions::Validate names the bad field", "[replica][peer]") {
  ReplicaOptions good;
  good.cluster_id = "test";
  good.regions = {"eu-west", "us-east", "ap-south"};
  good.self = 1;
  REQUIRE(good.Validate().ok());
  auto bad = [&](ReplicaOptions o, const char* field) {
    INFO("field " << field);
    const Status s = o.Validate();
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find(field) != std::string::npos);
  };
  ReplicaOptions o = good;
  o.cluster_id = "";
  bad(o, "cluster_id");
  o.cluster_id = std::string(65, 'c');
  bad(o, "cluster_id");
  o = good;
  o.regions = {};
  bad(o, "regions");
  o.regions.assign(kMaxRegions + 1, "r");
  for (std::size_t i = 0; i < o.regions.size(); ++i) o.regions[i] = "r" + std::to_string(i);
  bad(o, "regions");
  o = good;
  o.regions = {"eu-west", "EU"};
  bad(o, "regions");
  o.regions = {"eu-west", "eu-west"};
  bad(o, "regions");
  o = good;
  o.self = 3;
  bad(o, "self");
  o = good;
  o.heartbeat_interval_ms = 0;
  bad(o, "heartbeat_interval_ms");
  o = good;
  o.peer_timeout_ms = 0;
  bad(o, "peer_timeout_ms");
  o = good;
  o.max_batch_ops = 0;
  bad(o, "max_batch_ops");
  o = good;
  o.max_inflight_ops = o.max_batch_ops - 1;
  bad(o, "max_inflight_ops");
  // Exactly kMaxRegions is fine.
  o = good;
  o.regions.clear();
  for (RegionId i = 0; i < kMaxRegions; ++i) o.regions.push_back("r" + std::to_string(i));
  CHECK(o.Validate().ok());
}

TEST_CASE("reads of an unknown account are not_found", "[replica][peer]") {
  Cluster c(2, Quiet);
  AccountView v;
  CHECK(c.at(0).GetAccount("nobody", &v).code() == Code::kNotFound);
  std::vector<ForkReport> forks;
  CHECK(c.at(0).Forks("nobody", &forks).code() == Code::kNotFound);
  std::vector<DerivedEvent> ev;
  CHECK(c.at(0).DerivedEvents("nobody", &ev).code() == Code::kNotFound);
  CHECK(c.at(0).GetAccount("", &v).code() != Code::kOk);
  CHECK(c.at(0).GetAccount(std::string(1000, 'x'), &v).code() != Code::kOk);
  CHECK_FALSE(c.at(0).HasAccount("nobody"));
  CHECK(c.at(0).AccountIds().empty());
}
