// A partition scenario written out by hand, with its outcome computed by hand: three regions, an
// account with balance 100 and an overdraft limit of 60 split 20/20/20, every region cut off from
// the others, concurrent debits, a client retrying a key at another region, then the heal.

#include <catch2/catch.hpp>

#include "sim/config.h"
#include "sim/simulation.h"

namespace tally::sim {
namespace {

// Every scenario here: three regions, every message 5 ms on its way (ScriptedConfig(3, 5)).

// Opens account `id` (EUR, no overdraft line) at region `at`.
void OpenPlain(Simulation* sim, RegionId at, const std::string& id) {
  AccountConfig cfg;
  cfg.id = id;
  cfg.currency = "EUR";
  sim->Submit(at, OpenAccount{cfg});
}

// Ends the run (heal, liveness phase, every checker) and requires every invariant to have held.
RunResult FinishOk(Simulation* sim) {
  RunResult res = sim->Finish();
  INFO(res.failure.invariant << ": " << res.failure.message);
  REQUIRE(res.ok);
  return res;
}

TEST_CASE("Hand-written partition: overdraft fork, cross-region duplicate key, heal", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  sim.RunUntil(100);

  AccountConfig cfg;
  cfg.id = "shared";
  cfg.currency = "EUR";
  cfg.overdraft_limit = 60;
  cfg.lines = {20, 20, 20};
  cfg.fee = FeePolicy{5, 100};  // 5 + 1 % of the overdrawn amount, rounded up
  const std::uint64_t open = sim.Submit(0, OpenAccount{cfg});
  sim.RunUntil(600);
  REQUIRE(sim.Result(open) != nullptr);
  REQUIRE(sim.Result(open)->status.ok());

  // Each region credits its own: rights 40 / 30 / 30, balance 100.
  const std::uint64_t c0 = sim.Submit(0, Credit{"shared", 40, "c0"});
  const std::uint64_t c1 = sim.Submit(1, Credit{"shared", 30, "c1"});
  const std::uint64_t c2 = sim.Submit(2, Credit{"shared", 30, "c2"});
  sim.RunUntil(1500);
  for (std::uint64_t h : {c0, c1, c2}) REQUIRE(sim.Result(h)->status.ok());
  AccountView v;
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetAccount("shared", &v).ok());
    REQUIRE(v.balance == 100);
  }

  // Everyone alone; wait past the peer timeout so no region waits for rights it cannot get.
  const Partition apart = EveryLinkCut(3);
  sim.Cut(apart);
  sim.RunUntil(3000);

  // r2 debits 10 with key K from its own rights (30 -> 20).
  const std::uint64_t k_at_r2 = sim.Submit(2, Debit{"shared", 10, "K"});
  sim.RunUntil(3100);
  // The client heard nothing and retries K at r1, which has not seen it: accepted there too.
  const std::uint64_t k_at_r1 = sim.Submit(1, Debit{"shared", 10, "K"});
  sim.RunUntil(3200);
  // r1 debits 40 with rights 20: 20 more on its line of 20.
  const std::uint64_t d1 = sim.Submit(1, Debit{"shared", 40, "d1"});
  sim.RunUntil(3300);
  // r0 debits 60 with rights 40: 20 on its line.
  const std::uint64_t d0 = sim.Submit(0, Debit{"shared", 60, "d0"});
  sim.RunUntil(3400);
  // r2 asks for 50 with rights 20 and line 20: refused, with the numbers.
  const std::uint64_t d2 = sim.Submit(2, Debit{"shared", 50, "d2"});
  sim.RunUntil(3500);

  REQUIRE(sim.Result(k_at_r2)->status.ok());
  REQUIRE_FALSE(sim.Result(k_at_r2)->overdraft);
  REQUIRE(sim.Result(k_at_r2)->balance == 90);
  REQUIRE(sim.Result(k_at_r1)->status.ok());
  REQUIRE_FALSE(sim.Result(k_at_r1)->replayed);
  REQUIRE(sim.Result(k_at_r1)->balance == 90);
  REQUIRE(sim.Result(d1)->status.ok());
  REQUIRE(sim.Result(d1)->overdraft);
  REQUIRE(sim.Result(d1)->balance == 50);
  REQUIRE(sim.Result(d0)->status.ok());
  REQUIRE(sim.Result(d0)->overdraft);
  REQUIRE(sim.Result(d0)->balance == 40);
  const CommandResult* refused = sim.Result(d2);
  REQUIRE(refused->status.code() == Code::kInsufficientFunds);
  REQUIRE(refused->rights == 20);
  REQUIRE(refused->overdraft_line == 20);
  REQUIRE(refused->requested == 50);

  // While apart, every region sees its own story.
  Amount seen[3];
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetAccount("shared", &v).ok());
    seen[r] = v.balance;
  }
  REQUIRE(seen[0] == 100 - 60);
  REQUIRE(seen[1] == 100 - 10 - 40);
  REQUIRE(seen[2] == 100 - 10);

  sim.Uncut(apart);
  RunResult res = FinishOk(&sim);
  REQUIRE(res.summary.convergence_ms.has_value());

  // Canonical order: credits (100), K at r2 (90), K at r1 voided (+10 refund to r1), d1 at r1 (50),
  // d0 at r0 (-10: crosses zero, fee 5 + ceil(1 % × 10) = 6, balance -16).
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetAccount("shared", &v).ok());
    CHECK(v.raw_balance == 100 - 10 - 10 - 40 - 60);
    CHECK(v.fees == 6);
    CHECK(v.voids == 10);
    CHECK(v.balance == -16);
    CHECK(v.episodes == 1);
    CHECK(v.regions[0].fees == 6);
    CHECK(v.regions[1].voids == 10);
    Amount rights = 0;
    for (const RegionView& rv : v.regions) rights += rv.rights;
    CHECK(rights == -16);
    CHECK(v.raw_balance >= -60);  // the floor: never below minus the overdraft limit

    std::vector<DerivedEvent> events;
    REQUIRE(sim.replica(r)->DerivedEvents("shared", &events).ok());
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == DerivedKind::kVoid);
    CHECK(events[0].op.origin == 1);
    CHECK(events[0].op_amount == 10);
    CHECK(events[0].amount == 10);
    CHECK(events[0].balance_after == 90);
    CHECK(events[1].kind == DerivedKind::kOverdraftFee);
    CHECK(events[1].op.origin == 0);
    CHECK(events[1].op_amount == 60);
    CHECK(events[1].overdrawn == 10);
    CHECK(events[1].amount == 6);
    CHECK(events[1].balance_after == -16);
  }
}

// A transfer between accounts retried at another region while every link is cut: both copies are
// accepted, the payer's key voids the canonically later one on both sides after the heal — the
// payer refunded, the payee clawed back, both at the region that took the copy — and meanwhile
// the payee's credit is not spendable beyond the line where it landed (it may still be voided).
TEST_CASE("Hand-written partition: a transfer retried elsewhere is voided on both sides", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  sim.RunUntil(100);
  AccountConfig payer;
  payer.id = "payer";
  payer.currency = "EUR";
  AccountConfig payee = payer;
  payee.id = "payee";
  payee.overdraft_limit = 30;
  payee.lines = {10, 10, 10};
  AccountConfig dollars = payer;
  dollars.id = "dollars";
  dollars.currency = "USD";
  for (const AccountConfig& c : {payer, payee, dollars}) sim.Submit(0, OpenAccount{c});
  sim.RunUntil(600);
  for (RegionId r = 0; r < 3; ++r) sim.Submit(r, Credit{"payer", 30, "c" + std::to_string(r)});
  sim.RunUntil(1500);  // rights 30 / 30 / 30, every credit final

  // What a transfer refuses up front.
  const std::uint64_t to_self = sim.Submit(0, Transfer{"payer", "payer", 5, "x1"});
  const std::uint64_t to_nobody = sim.Submit(0, Transfer{"payer", "nobody", 5, "x2"});
  const std::uint64_t to_usd = sim.Submit(0, Transfer{"payer", "dollars", 5, "x3"});
  sim.RunUntil(1600);
  CHECK(sim.Result(to_self)->status.code() == Code::kInvalidArgument);
  CHECK(sim.Result(to_nobody)->status.code() == Code::kNotFound);
  CHECK(sim.Result(to_usd)->status.code() == Code::kInvalidArgument);

  const Partition apart = EveryLinkCut(3);
  sim.Cut(apart);
  sim.RunUntil(3000);
  const std::uint64_t at_r1 = sim.Submit(1, Transfer{"payer", "payee", 25, "T"});
  sim.RunUntil(3100);
  // The client heard nothing and retries at r2, which has not seen the key.
  const std::uint64_t at_r2 = sim.Submit(2, Transfer{"payer", "payee", 25, "T"});
  sim.RunUntil(3200);
  // The payee's 25 at r2 may be voided: spendable only within r2's line of 10.
  const std::uint64_t spend = sim.Submit(2, Debit{"payee", 30, "d"});
  sim.RunUntil(3300);
  for (std::uint64_t h : {at_r1, at_r2}) {
    INFO(sim.Result(h)->status.ToString());
    REQUIRE(sim.Result(h)->status.ok());
    CHECK_FALSE(sim.Result(h)->replayed);
    CHECK(sim.Result(h)->balance == 90 - 25);
    CHECK(sim.Result(h)->payee_balance == 25);
  }
  const CommandResult* refused = sim.Result(spend);
  REQUIRE(refused->status.code() == Code::kInsufficientFunds);
  CHECK(refused->rights == 25);
  CHECK(refused->tentative_credit == 25);
  CHECK(refused->overdraft_line == 10);

  sim.Uncut(apart);
  FinishOk(&sim);
  // r1's copy is canonically first and stands; r2's is voided on both sides, booked to r2.
  for (RegionId r = 0; r < 3; ++r) {
    AccountView a, b;
    REQUIRE(sim.replica(r)->GetAccount("payer", &a).ok());
    REQUIRE(sim.replica(r)->GetAccount("payee", &b).ok());
    CHECK(a.raw_balance == 90 - 25 - 25);
    CHECK(a.voids == 25);
    CHECK(a.balance == 65);
    CHECK(a.regions[2].voids == 25);
    CHECK(b.raw_balance == 25 + 25);
    CHECK(b.voids == -25);
    CHECK(b.balance == 25);
    CHECK(b.regions[2].voids == -25);
    CHECK(a.balance + b.balance == 90);  // money moved, none made
    std::vector<DerivedEvent> ea, eb;
    REQUIRE(sim.replica(r)->DerivedEvents("payer", &ea).ok());
    REQUIRE(sim.replica(r)->DerivedEvents("payee", &eb).ok());
    REQUIRE(ea.size() == 1);
    REQUIRE(eb.size() == 1);
    CHECK(ea[0].kind == DerivedKind::kVoid);
    CHECK(ea[0].op.origin == 2);
    CHECK(ea[0].amount == 25);
    CHECK(eb[0].kind == DerivedKind::kVoid);
    CHECK(eb[0].op == ea[0].op);
    CHECK(eb[0].amount == -25);
  }
}

// Found by the workload's transfers (tally-sim run --seed 8, default faults): a key with two uses,
// transfers whose payee's tag (AccountTag, 8 bits) is 16 or more, was persisted as a record that
// recovery (and a snapshot's install) refused: KeyIndex::Load bounded every use's target by
// kMaxRegions (fixed in fc6531b; core test in key_retention_test.cc).
TEST_CASE("A region restarts on a key record holding a transfer's two uses", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  sim.RunUntil(100);
  for (const char* id : {"payer", "payee"}) OpenPlain(&sim, 0, id);
  sim.RunUntil(600);
  for (RegionId r = 0; r < 3; ++r) sim.Submit(r, Credit{"payer", 30, "c" + std::to_string(r)});
  sim.RunUntil(1500);
  const Partition apart = EveryLinkCut(3);
  sim.Cut(apart);
  sim.RunUntil(3000);
  sim.Submit(1, Transfer{"payer", "payee", 5, "T"});
  sim.RunUntil(3100);
  sim.Submit(2, Transfer{"payer", "payee", 5, "T"});
  sim.RunUntil(3200);
  sim.Uncut(apart);
  sim.RunUntil(5000);  // every region holds both uses of T, in one record
  sim.Crash(0);
  sim.RunUntil(5100);
  sim.Restart(0);
  sim.RunUntil(6000);
  FinishOk(&sim);
}

TEST_CASE("A retried key at the same region is answered from the stored result", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  OpenPlain(&sim, 0, "acct");
  sim.RunUntil(200);
  sim.Submit(0, Credit{"acct", 100, "c"});
  sim.RunUntil(300);
  const std::uint64_t first = sim.Submit(1, Debit{"acct", 30, "pay-1"});
  sim.RunUntil(400);
  const std::uint64_t again = sim.Submit(1, Debit{"acct", 30, "pay-1"});
  sim.RunUntil(500);
  const std::uint64_t other = sim.Submit(1, Debit{"acct", 31, "pay-1"});
  sim.RunUntil(600);
  REQUIRE(sim.Result(first)->status.ok());
  REQUIRE_FALSE(sim.Result(first)->replayed);
  REQUIRE(sim.Result(again)->status.ok());
  REQUIRE(sim.Result(again)->replayed);
  REQUIRE(sim.Result(again)->op == sim.Result(first)->op);
  REQUIRE(sim.Result(other)->status.code() == Code::kIdempotencyKeyReused);
  FinishOk(&sim);
  AccountView v;
  REQUIRE(sim.replica(2)->GetAccount("acct", &v).ok());
  REQUIRE(v.balance == 70);
}

// core/messages.h: "a message may be lost, duplicated, delayed or reordered. Every message is safe
// to apply twice or never." A Hello is a message: the one a region sent when it first connected,
// delivered again later (a duplicate, or overtaken by the region's ops relayed through a third
// region), must not make its peer take it for a region that lost its data.
TEST_CASE("A stale Hello delivered late does not cut its sender off", "[sim]") {
  SimConfig c = ScriptedConfig(3, 5);
  c.links = "stream";
  REQUIRE(ApplyProfile(&c).ok());
  c.faults.link.delay_min_ms = c.faults.link.delay_max_ms = 5;
  Simulation sim(c);
  sim.Start();
  OpenPlain(&sim, 1, "acct");
  sim.RunUntil(300);
  sim.Submit(1, Credit{"acct", 100, "c1"});
  sim.RunUntil(600);
  // r1's first Hello (it held nothing then) arrives at r0 once more.
  sim.Deliver(1, 0, Hello{"sim", kProtocolVersion, 1, VersionVector{}});
  sim.RunUntil(700);
  sim.Submit(1, Credit{"acct", 50, "c2"});
  sim.RunUntil(1500);
  FinishOk(&sim);
  AccountView v;
  REQUIRE(sim.replica(0)->GetAccount("acct", &v).ok());
  REQUIRE(v.balance == 150);
}

// The replica gets one time, the region's wall clock, and that clock may be set back (NTP, an
// operator). Its HLC copes; its timers must too: after a step back a region must go on
// heartbeating and re-sending, so finality keeps moving and lost messages are sent again.
TEST_CASE("A region whose clock steps back keeps heartbeating: every op becomes final", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  OpenPlain(&sim, 0, "acct");
  sim.RunUntil(300);
  sim.Submit(2, Credit{"acct", 100, "c1"});
  sim.RunUntil(1000);
  sim.StepClock(2, -2 * 3'600'000);  // r2's clock is set back two hours
  sim.Submit(0, Credit{"acct", 50, "c2"});
  sim.Submit(2, Debit{"acct", 30, "d1"});
  sim.RunUntil(2000);
  RunResult res = FinishOk(&sim);
  REQUIRE(res.summary.finality_ms.has_value());
  AccountView v;
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetAccount("acct", &v).ok());
    CHECK(v.balance == 120);
    CHECK_FALSE(v.tentative);
    CHECK(v.final_balance == 120);
  }
}

// Two-phase holds (docs/simulation.md, "Holds"): a hold at r0, then — every region alone — a
// capture of it at r1 and a release of it at r2, the capture first in canonical order. r0, the
// hold's region, hears of the release first and must keep the whole hold reserved until the
// release is final, for the capture it has not seen may still win. After the heal the capture
// wins on every replica, the release is a fork (a void of 0), and every checker passes: the floor
// over every durable op, the hold's fate everywhere against the oracle's, I1–I7.
TEST_CASE("Hand-written partition: a hold captured at one region, released at another", "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  sim.RunUntil(100);
  AccountConfig cfg;
  cfg.id = "held";
  cfg.currency = "EUR";
  cfg.overdraft_limit = 30;
  cfg.lines = {10, 10, 10};
  cfg.fee = FeePolicy{5, 0};
  const std::uint64_t open = sim.Submit(0, OpenAccount{cfg});
  sim.RunUntil(600);
  REQUIRE(sim.Result(open)->status.ok());
  const std::uint64_t credit = sim.Submit(0, Credit{"held", 100, ""});  // at once spendable
  sim.RunUntil(1000);
  REQUIRE(sim.Result(credit)->status.ok());

  // r0 holds 80 of its 100 for 2.5 s: no money moves, 80 are reserved.
  const std::uint64_t place = sim.Submit(0, PlaceHold{"held", 80, "auth-1", 2500});
  sim.RunUntil(1300);
  const CommandResult hold = *sim.Result(place);
  REQUIRE(hold.status.ok());
  REQUIRE(hold.hold == hold.op);
  REQUIRE(hold.held == 80);
  REQUIRE(hold.balance == 100);
  AccountView v;
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetAccount("held", &v).ok());
    CHECK(v.held == 80);
    CHECK(v.available == 20);
    CHECK(v.regions[0].reserved == 80);
  }
  // r0 may decide on 20 free rights and its line of 10: 31 is refused, with the free rights.
  const std::uint64_t greedy = sim.Submit(0, Debit{"held", 31, "d-greedy"});
  sim.RunUntil(1350);
  REQUIRE(sim.Result(greedy)->status.code() == Code::kInsufficientFunds);
  CHECK(sim.Result(greedy)->rights == 20);

  // Every region alone: r1 captures 60 of the hold, then r2 releases it.
  const Partition apart = EveryLinkCut(3);
  sim.Cut(apart);
  sim.RunUntil(1400);
  const std::uint64_t cap_at_r1 = sim.Submit(1, CaptureHold{hold.hold, 60});
  sim.RunUntil(1500);
  const std::uint64_t rel_at_r2 = sim.Submit(2, ReleaseHold{hold.hold});
  sim.RunUntil(1600);
  const CommandResult cap = *sim.Result(cap_at_r1);
  const CommandResult rel = *sim.Result(rel_at_r2);
  REQUIRE(cap.status.ok());
  REQUIRE(rel.status.ok());
  REQUIRE_FALSE(cap.replayed);
  REQUIRE_FALSE(rel.replayed);
  CHECK(cap.captured == 60);
  CHECK(cap.balance == 40);    // booked to the hold's region, r0
  REQUIRE(cap.hlc < rel.hlc);  // the capture is canonically first
  REQUIRE(sim.replica(1)->GetAccount("held", &v).ok());
  CHECK(v.regions[0].rights == 40);
  CHECK(v.held == 0);

  // r0 and r2 meet; r1 stays alone. r0 learns of the release only: as far as it knows the hold is
  // released, but the whole hold stays reserved until the release is final.
  const Partition r1_alone{"isolate", {{0, 1}, {1, 0}, {2, 1}, {1, 2}}, "r1 isolated"};
  sim.Cut(r1_alone);
  sim.Uncut(apart);
  sim.RunUntil(1900);
  HoldView hv;
  REQUIRE(sim.replica(0)->GetHold(hold.hold, &hv).ok());
  CHECK(hv.state == HoldView::State::kReleased);
  CHECK_FALSE(hv.final);
  REQUIRE(sim.replica(0)->GetAccount("held", &v).ok());
  CHECK(v.held == 0);
  CHECK(v.regions[0].reserved == 80);
  const std::uint64_t spend = sim.Submit(0, Debit{"held", 31, "d-after-release"});
  sim.RunUntil(1950);
  REQUIRE(sim.Result(spend)->status.code() == Code::kInsufficientFunds);

  sim.Uncut(r1_alone);
  FinishOk(&sim);

  // The capture wins everywhere: 60 taken from r0's rights, the release voided (a fork of 0).
  for (RegionId r = 0; r < 3; ++r) {
    INFO("r" << r);
    REQUIRE(sim.replica(r)->GetHold(hold.hold, &hv).ok());
    CHECK(hv.state == HoldView::State::kCaptured);
    CHECK(hv.captured == 60);
    CHECK(hv.resolved_by == cap.op);
    CHECK(hv.final);
    REQUIRE(sim.replica(r)->GetAccount("held", &v).ok());
    CHECK(v.balance == 40);
    CHECK(v.raw_balance == 40);
    CHECK(v.held == 0);
    CHECK(v.regions[0].rights == 40);
    CHECK(v.regions[0].reserved == 0);
    CHECK(v.fees == 0);
    CHECK(v.voids == 0);
    std::vector<DerivedEvent> events;
    REQUIRE(sim.replica(r)->DerivedEvents("held", &events).ok());
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == DerivedKind::kVoid);
    CHECK(events[0].op_kind == OpKind::kRelease);
    CHECK(events[0].op.origin == rel.op.origin);
    CHECK(events[0].op.seq == rel.op.seq);
    CHECK(events[0].amount == 0);
  }
  // Once final, what the capture left is r0's to spend again: 40 of rights and its line.
  const std::uint64_t after = sim.Submit(0, Debit{"held", 50, "d-final"});
  sim.RunUntil(sim.now() + 200);
  REQUIRE(sim.Result(after)->status.ok());
  CHECK(sim.Result(after)->overdraft);
}

// A hold nobody resolves: its region releases it once every region has passed its expiry, and a
// capture asked after the expiry is refused where it is asked.
TEST_CASE("Hand-written hold left to expire: released by its region, a late capture refused",
          "[sim]") {
  Simulation sim(ScriptedConfig(3, 5));
  sim.Start();
  OpenPlain(&sim, 1, "acct");
  sim.RunUntil(600);
  sim.Submit(1, Credit{"acct", 100, ""});
  sim.RunUntil(1000);
  const std::uint64_t place = sim.Submit(1, PlaceHold{"acct", 70, "auth-x", 500});
  sim.RunUntil(1200);
  const CommandResult hold = *sim.Result(place);
  REQUIRE(hold.status.ok());
  sim.RunUntil(1700);  // past the expiry
  const std::uint64_t late = sim.Submit(2, CaptureHold{hold.hold, 10});
  sim.RunUntil(2500);
  REQUIRE(sim.Result(late)->status.code() == Code::kFailedPrecondition);
  // "expired", or, once its region released it, "already resolved by expiry".
  CHECK(sim.Result(late)->status.message().find("expir") != std::string::npos);
  const RunResult res = FinishOk(&sim);
  CHECK(res.summary.holds_expired == 1);
  CHECK(res.summary.expiry_releases == 1);
  HoldView hv;
  AccountView v;
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(sim.replica(r)->GetHold(hold.hold, &hv).ok());
    CHECK(hv.state == HoldView::State::kExpired);
    CHECK(hv.resolved_by.origin == 1);
    REQUIRE(sim.replica(r)->GetAccount("acct", &v).ok());
    CHECK(v.balance == 100);
    CHECK(v.held == 0);
    CHECK(v.regions[1].reserved == 0);
  }
}

}  // namespace
}  // namespace tally::sim
