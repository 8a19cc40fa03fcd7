// The replica's collaborators on their own (docs/design.md, "Inside the core"): the pure debit
// rules and rebalancing plan (rights.h), the op log's gap and fence bookkeeping (op_log.h), and
// the stable frontier of heartbeat promises (finality.h). Each is exercised without a Replica,
// so a defect in one shows here by name and not only as a diverging cluster.
#include <catch2/catch.hpp>

#include "cluster_fixture.h"
#include "core/boxed.h"
#include "core/finality.h"
#include "core/op_log.h"
#include "core/rights.h"

using namespace tally;
using namespace tally::testing;

namespace {

Op OpOf(RegionId origin, Seq seq, std::uint64_t wall_ms = 1000, std::uint64_t epoch = 1) {
  Op op;
  op.dot = Dot{origin, seq};
  op.epoch = epoch;
  op.hlc = Hlc::Make(wall_ms, 0);
  op.kind = OpKind::kCredit;
  op.account = "alice";
  op.amount = 1;
  return op;
}

}  // namespace

TEST_CASE("DecideDebit follows the four rules of the brief", "[rights]") {
  // rights 100, of which 30 tentative: 70 spendable; line 20.
  const DebitFigures f{0, 100, 30, 20};
  auto decide = [&](Amount amount, bool may_wait) {
    DebitFigures g = f;
    g.amount = amount;
    return DecideDebit(g, may_wait, /*skip_rights_check=*/false);
  };
  CHECK(decide(70, true) == DebitVerdict::kAccept);      // rule 1: spendable covers it
  CHECK(decide(71, true) == DebitVerdict::kWait);        // rule 2: waiting may help
  CHECK(decide(71, false) == DebitVerdict::kOverdraft);  // rule 3: the line covers it
  CHECK(decide(90, false) == DebitVerdict::kOverdraft);
  CHECK(decide(91, false) == DebitVerdict::kReject);  // rule 4
  // Tentative credit is spendable only within the line: 100 of rights do not cover 91.
  CHECK(decide(100, false) == DebitVerdict::kReject);
  // The planted bug accepts anything, flagged as an overdraft.
  DebitFigures g = f;
  g.amount = 1000;
  CHECK(DecideDebit(g, false, /*skip_rights_check=*/true) == DebitVerdict::kOverdraft);
}

TEST_CASE("a wait for finality can help only when tentative credit would cover the debit",
          "[rights]") {
  CHECK(FinalityCouldCover(DebitFigures{90, 100, 30, 0}));
  CHECK_FALSE(FinalityCouldCover(DebitFigures{90, 100, 0, 0}));     // nothing tentative
  CHECK_FALSE(FinalityCouldCover(DebitFigures{130, 100, 30, 20}));  // beyond rights and line
}

TEST_CASE("a debit counts the fees booked to its region: the worked case of issue 11",
          "[rights][replica]") {
  // One region, line 20, flat fee 5. A debit of 8 overdraws: balance −8, fee 5 → −13, and the
  // region's effective rights are −13. A debit of 12 would take it to −25, past the line: it is
  // refused. A decision that ignored the fee would see −8 + 20 = 12 and accept it.
  Cluster c(1, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 0;
    o.finality_wait_ms = 0;
  });
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 20, 5)}).status.ok());
  c.Settle(3);  // the open turns final: the line is usable
  const CommandResult first = c.Run(0, Debit{"alice", 8, "d1"});
  REQUIRE(first.status.ok());
  CHECK(first.overdraft);
  AccountView v;
  REQUIRE(c.at(0).GetAccount("alice", &v).ok());
  REQUIRE(v.balance == -13);
  const Amount rights_before = v.regions[0].rights;
  CHECK(rights_before == -13);
  const CommandResult second = c.Run(0, Debit{"alice", 12, "d2"});
  CHECK(second.status.code() == Code::kInsufficientFunds);
  CHECK(second.rights == rights_before);  // the answer is judged on the rights read before it
  REQUIRE(c.at(0).GetAccount("alice", &v).ok());
  CHECK(v.balance == -13);
  CHECK(v.balance >= -20);
  // The most it takes: 7 more, to −20 exactly.
  CHECK(c.Run(0, Debit{"alice", 7, "d3"}).status.ok());
  REQUIRE(c.at(0).GetAccount("alice", &v).ok());
  CHECK(v.balance == -20);
}

TEST_CASE("one idempotency key on two accounts is two requests, in every region",
          "[replica][idempotency]") {
  // Keys are scoped to an account: clients number their requests, so one key string is in use on
  // many accounts at once. A replica that scoped keys wider would answer bob's credit as a replay
  // of alice's, or refuse it as a reused key (issue 11, item 9).
  Cluster c(2, [](ReplicaOptions& o) { o.rebalance_interval_ms = 0; });
  REQUIRE(c.Run(0, OpenAccount{Config("alice")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Config("bob")}).status.ok());
  c.Settle(3);
  const CommandResult a = c.Run(0, Credit{"alice", 10, "req-1"});
  const CommandResult b = c.Run(0, Credit{"bob", 20, "req-1"});
  REQUIRE(a.status.ok());
  REQUIRE(b.status.ok());
  CHECK_FALSE(b.replayed);
  CHECK(b.op != a.op);
  // The same key at the other region, on a third account, after both have gossiped.
  c.Settle(3);
  REQUIRE(c.Run(1, OpenAccount{Config("carol")}).status.ok());
  const CommandResult k = c.Run(1, Credit{"carol", 30, "req-1"});
  REQUIRE(k.status.ok());
  CHECK_FALSE(k.replayed);
  c.Settle(6);
  for (RegionId r = 0; r < 2; ++r) {
    AccountView v;
    REQUIRE(c.at(r).GetAccount("alice", &v).ok());
    CHECK(v.balance == 10);
    REQUIRE(c.at(r).GetAccount("bob", &v).ok());
    CHECK(v.balance == 20);
    CHECK(v.voids == 0);
    REQUIRE(c.at(r).GetAccount("carol", &v).ok());
    CHECK(v.balance == 30);
  }
}

TEST_CASE("PlanRebalance serves regions on their line first, only live ones, within the budget",
          "[rights]") {
  RebalanceInput in;
  in.self = 0;
  in.demand = {0, 10, 0};
  in.rights = {1000, -50, 0};
  in.live = {false, true, true};
  in.overdraft_limit = 0;
  RebalancePlan p = PlanRebalance(in);
  REQUIRE_FALSE(p.gives.empty());
  CHECK(p.gives[0].to == 1);  // below zero: its floor is at stake
  Amount given = 0;
  for (const auto& g : p.gives) given += g.amount;
  // Budget: (950 + 0) / 20 = 47 in flight at most.
  CHECK(given <= 47);
  CHECK_FALSE(p.done);  // 50 wanted, 47 allowed

  SECTION("a region that is not live gets nothing now, and the need stays") {
    in.live = {false, false, true};
    p = PlanRebalance(in);
    for (const auto& g : p.gives) CHECK(g.to != 1);
    CHECK_FALSE(p.done);
    CHECK(p.marks[1] == RebalancePlan::Mark::kKeep);
  }
  SECTION("rights already in flight use up the budget") {
    in.in_flight = 47;
    p = PlanRebalance(in);
    CHECK(p.gives.empty());
    CHECK_FALSE(p.done);
  }
  SECTION("tentative credit is never given away") {
    in.tentative = 1000;
    p = PlanRebalance(in);
    CHECK(p.gives.empty());
  }
}

TEST_CASE("OpLog appends in seq order, holds ops beyond a gap, and hands them over in order",
          "[oplog]") {
  OpLog log(2);
  log.Append(OpOf(1, 1));
  log.Buffer(OpOf(1, 3));
  log.Buffer(OpOf(1, 4));
  CHECK(log.buffered() == 2);
  Op op;
  CHECK_FALSE(log.TakeReady(1, &op));  // seq 2 is missing
  log.Append(OpOf(1, 2));
  REQUIRE(log.TakeReady(1, &op));
  CHECK(op.dot.seq == 3);
  log.Append(op);
  REQUIRE(log.TakeReady(1, &op));
  CHECK(op.dot.seq == 4);
  log.Append(op);
  CHECK(log.buffered() == 0);
  CHECK(log.applied().get(1) == 4);
  CHECK(log.At(1, 2).dot.seq == 2);
  CHECK(log.Lookup(CanonicalKey{Hlc::Make(1000, 0), 1, 3}) != nullptr);
  CHECK(log.Lookup(CanonicalKey{Hlc::Make(1000, 0), 1, 5}) == nullptr);
}

TEST_CASE("OpLog counts ops held for a fence as held, not applied, and prunes only what it may",
          "[oplog]") {
  OpLog log(2);
  log.Append(OpOf(0, 1, 100));
  log.Append(OpOf(0, 2, 200));
  CHECK(log.HoldForFence(OpOf(0, 3, 300)));
  CHECK_FALSE(log.HoldForFence(OpOf(0, 3, 300)));  // known already
  CHECK(log.HoldForFence(OpOf(0, 5, 500)));        // not contiguous: not counted as held
  CHECK(log.applied().get(0) == 2);
  CHECK(log.Held().get(0) == 3);
  CHECK(log.buffered() == 2);

  VersionVector upto;
  upto.set(0, 2);
  log.Prune(upto, Hlc::Make(150, 0));  // only seq 1 is below the frontier
  CHECK(log.floor().get(0) == 1);
  CHECK(log.Lookup(CanonicalKey{Hlc::Make(100, 0), 0, 1}) == nullptr);
  CHECK(log.Retained(0).size() == 1);
  const auto held = log.TakeHeldForFence(0);
  CHECK(held.size() == 2);
  CHECK_FALSE(log.HoldsForFence(0));
}

TEST_CASE("Finality: the frontier is the least confirmed promise, per incarnation", "[finality]") {
  Finality f(3, 0);
  const Hlc clock = Hlc::Make(10'000, 0);
  CHECK(f.StableFrontier(clock) == Hlc{});  // nobody promised yet
  CHECK(f.Promise(HeartbeatEntry{1, Hlc::Make(500, 0), 4, 1}));
  CHECK(f.Promise(HeartbeatEntry{2, Hlc::Make(700, 0), 2, 1}));
  f.Confirm(1, 3, 1);  // seq 4 not yet applied: not confirmed
  f.Confirm(2, 2, 1);
  CHECK(f.StableFrontier(clock) == Hlc{});
  f.Confirm(1, 4, 1);
  CHECK(f.StableFrontier(clock) == Hlc::Make(500, 0));
  CHECK(f.RegionsNotPast(Hlc::Make(600, 0)) == std::vector<RegionId>{1});
  CHECK_FALSE(f.Promise(HeartbeatEntry{1, Hlc::Make(400, 0), 4, 1}));  // not newer
  // A promise of region 2's old run that waits for its ops binds nothing once a newer run is
  // known (seed 302977).
  CHECK(f.Promise(HeartbeatEntry{2, Hlc::Make(900, 0), 5, 1}));
  f.Confirm(2, 5, /*newest_epoch=*/2);
  CHECK(f.StableFrontier(clock) == Hlc::Make(500, 0));
  CHECK(f.RegionsNotPast(Hlc::Make(800, 0)) == std::vector<RegionId>{1, 2});
}

// Boxed (core/boxed.h), which keeps an op's config out of line: absent reads as a default value,
// copies are deep, and equality is of values, so an op round-trips and compares as before.
TEST_CASE("boxed: absent reads as default, copies are deep, equality is of values", "[boxed]") {
  Boxed<AccountConfig> absent;
  CHECK(absent->id.empty());
  CHECK(absent == AccountConfig{});
  Boxed<AccountConfig> set = AccountConfig{};
  CHECK(set == absent);  // a default value set equals an absent one
  set.mutable_value().id = "alice";
  CHECK_FALSE(set == absent);
  Boxed<AccountConfig> copy = set;
  copy.mutable_value().id = "bob";
  CHECK(set->id == "alice");  // the copy owns its own value
  CHECK(copy->id == "bob");
  absent = copy;
  CHECK(absent->id == "bob");
  Boxed<AccountConfig> moved = std::move(copy);
  CHECK(moved->id == "bob");
}
