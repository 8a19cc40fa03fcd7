// Every planted bug is caught, by the invariant that should catch it. Each bug runs over the first
// few seeds of the default fault profile (as `tally-sim run --seed S --plant-bug NAME` would) and
// must fail within them; the same seeds pass without the bug.

#include <catch2/catch.hpp>
#include <set>

#include "sim/config.h"
#include "sim/simulation.h"

namespace tally::sim {
namespace {

constexpr std::uint64_t kSeedsPerBug = 6;

struct Caught {
  bool failed = false;
  std::uint64_t seed = 0;
  Failure failure;
  std::string reproduce;
};

Caught Hunt(const std::string& bug, FinalTopology topology = FinalTopology::kRandom,
            std::uint64_t seeds = kSeedsPerBug) {
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.ops = 2000;
    c.plant_bug = bug;
    c.final_topology = topology;
    REQUIRE(ApplyProfile(&c).ok());
    Simulation sim(c);
    RunResult r = sim.Run();
    if (!r.ok) return Caught{true, seed, r.failure, r.reproduce};
  }
  return Caught{};
}

Caught ExpectCaught(const std::string& bug, const std::set<std::string>& by,
                    FinalTopology topology = FinalTopology::kRandom,
                    std::uint64_t seeds = kSeedsPerBug) {
  Caught c = Hunt(bug, topology, seeds);
  INFO(bug << " caught at seed " << c.seed << " by " << c.failure.invariant << ": "
           << c.failure.message);
  REQUIRE(c.failed);
  REQUIRE(by.count(c.failure.invariant) == 1);
  REQUIRE(c.reproduce.find("--plant-bug " + bug) != std::string::npos);
  return c;
}

TEST_CASE("skip_rights_check: a debit past rights plus line is caught by the floor",
          "[sim][bugs]") {
  ExpectCaught("skip_rights_check", {"I2 floor"});
}

TEST_CASE("cap_checks_named_only: a cap debit that overdraws its parent is caught by the floor",
          "[sim][bugs]") {
  // The workload opens about a third of the accounts under a parent, half of them caps, and the
  // ledger books a cap's debit to every payer: the parent's region below its floor is I2.
  const Caught c = ExpectCaught("cap_checks_named_only", {"I2 floor"});
  CHECK(c.failure.message.find("budget debit") != std::string::npos);
}

TEST_CASE("statement_without_fee: a statement line without its fee is caught line by line",
          "[sim][bugs]") {
  // Balances, fees and events are right: only the stored statement lines are wrong, and only the
  // oracle's sum over them (sim/statement_check.h) sees it.
  const Caught c = ExpectCaught("statement_without_fee", {"I3 conservation"});
  CHECK(c.failure.message.find("line of") != std::string::npos);
}

TEST_CASE("misreport_overdrawn: a fee event unlike the oracle's is caught by the event list",
          "[sim][bugs]") {
  // Fees, voids, balances and bookings are all right: only the I7 comparison of the derived
  // events with the oracle's own replay can see it (issue 11, item 9).
  const Caught c = ExpectCaught("misreport_overdrawn", {"I7 agreement"});
  CHECK(c.failure.message.find("derives") != std::string::npos);
}

TEST_CASE("book_fee_elsewhere: a fee booked to the wrong region is caught by the bookings",
          "[sim][bugs]") {
  // The fee, the balance and the events are right, and the regions' rights still add up: only
  // the per-region comparison of fees and rights with the oracle's can see it (issue 11, item 9).
  const Caught c = ExpectCaught("book_fee_elsewhere", {"I7 agreement", "I2 floor"});
  if (c.failure.invariant == "I7 agreement")
    CHECK(c.failure.message.find("the oracle says") != std::string::npos);
}

TEST_CASE(
    "spend_buffered_transfer: rights spent before they are applied are caught by the answer "
    "check",
    "[sim][bugs]") {
  // The transfer is real and arrives once the gap before it fills, so the floor over the durable
  // ops may hold; the answer reports the inflated rights too. Only the per-answer check against
  // the figures the region's view showed just before the debit sees it (issue 11, item 9).
  const Caught c = ExpectCaught("spend_buffered_transfer", {"I2 floor"});
  CHECK(c.failure.message.find("past the rights its view showed") != std::string::npos);
}

TEST_CASE("release_reserve_early: a hold's reserve ended before its resolution is final is caught",
          "[sim][bugs]") {
  // The hold's region must keep the whole amount reserved until the winning resolution is final:
  // a release it sees first may still lose to an earlier capture. The oracle bounds each region's
  // reserve from below by what its holds may still take.
  const Caught c = ExpectCaught("release_reserve_early", {"I2 floor"});
  CHECK(c.failure.message.find("reserve") != std::string::npos);
}

TEST_CASE(
    "void_transfer_payer_only: a transfer voided for its payer only is caught as money created",
    "[sim][bugs]") {
  // A client retries a transfer at another region while the first attempt is on its way; the
  // payer's key voids the canonically later copy, and the bug refunds the payer without clawing
  // the payee's credit back. Every account still adds up on its own and every replica agrees with
  // every other: only conservation across accounts (the two sides of one op voided unequally)
  // sees it — or the effective floor, when the payee's region spends the credit it keeps. Each
  // of the first seeds that voids a transfer fails by one of the two, and the check across
  // accounts catches at least one of them itself (without it, per-account I7 would: issue 11's
  // rule that each check keeps a planted bug of its own). Since holds joined the default mix
  // (about a tenth of the requests) fewer transfers are voided early in a run: the first seed the
  // check across accounts catches is 8, so that part looks at twice as many seeds.
  ExpectCaught("void_transfer_payer_only", {"I3 conservation", "I2 floor"});
  bool by_conservation = false;
  for (std::uint64_t seed = 1; seed <= 2 * kSeedsPerBug && !by_conservation; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.ops = 2000;
    c.plant_bug = "void_transfer_payer_only";
    REQUIRE(ApplyProfile(&c).ok());
    Simulation sim(c);
    const RunResult r = sim.Run();
    if (r.ok) continue;
    INFO("seed " << seed << ": " << r.failure.invariant << ": " << r.failure.message);
    if (r.failure.invariant == "I3 conservation") {
      CHECK(r.failure.message.find("no clawback from the payee: money created") !=
            std::string::npos);
      by_conservation = true;
    } else {
      REQUIRE(r.failure.invariant == "I2 floor");
      CHECK(r.failure.message.find(" - clawbacks 0 ") == std::string::npos);
    }
  }
  CHECK(by_conservation);
}

TEST_CASE("order_forks_by_arrival: replicas disagree on fees and voids", "[sim][bugs]") {
  // Usually I7 (different derived events); when a crash comes first, the arrival-ordered fold
  // leaves a checkpoint that does not hold the ops below its own frontier (I3 on recovery). Or the
  // effective floor: a region that saw its own copy of a duplicated credit first keeps that copy
  // and spends it, while canonical replay voids it (I2 floor, the clawback).
  ExpectCaught("order_forks_by_arrival",
               {"I7 agreement", "I1 convergence", "I3 conservation", "I2 floor"});
}

TEST_CASE("order_forks_by_arrival without crashes: caught as disagreement", "[sim][bugs]") {
  SimConfig c;
  c.seed = 1;
  c.ops = 2000;
  c.profile = "none";
  c.plant_bug = "order_forks_by_arrival";
  REQUIRE(ApplyProfile(&c).ok());
  // The workload of this seed as it was before budgets: with them, a hold's reserve misread by
  // the bug is seen first (I2 floor), which is no disagreement.
  c.workload.budget_p = 0;
  Simulation sim(c);
  RunResult r = sim.Run();
  INFO(r.failure.invariant << ": " << r.failure.message);
  REQUIRE_FALSE(r.ok);
  // Or the statement lines, folded in arrival order, whose balances do not add up line by line
  // (sim/statement_check.h): I3 on the lines, which only the bug's order can break here.
  REQUIRE((r.failure.invariant == "I7 agreement" || r.failure.invariant == "I1 convergence" ||
           (r.failure.invariant == "I3 conservation" &&
            r.failure.message.find(" line of ") != std::string::npos)));
}

TEST_CASE("expiry_decides_voids: a key reused past its window is voided where it lingers",
          "[sim][bugs]") {
  // Replicas forget keys at different moments (their frontiers differ), so voiding a use because
  // the index still holds an older one voids an op that the windowed rule, applied by the oracle
  // to the ops alone, lets survive — and only in some regions.
  ExpectCaught("expiry_decides_voids", {"I7 agreement", "I1 convergence", "I2 floor"});
}

TEST_CASE("forget_hlc_high_water: the clock goes back after a restart", "[sim][bugs]") {
  ExpectCaught("forget_hlc_high_water", {"HLC monotonic"});
}

// The amnesia fault, scripted: cut a region off, set its clock back two hours, crash it and bring
// it back while it hears nobody. Only the persisted high-water mark keeps its clock from going
// back.
RunResult Amnesia(const std::string& bug) {
  SimConfig c;
  c.seed = 3;
  c.profile = "none";
  c.plant_bug = bug;
  c.final_topology = FinalTopology::kComplete;
  REQUIRE(ApplyProfile(&c).ok());
  Simulation sim(c);
  sim.Start();
  AccountConfig cfg;
  cfg.id = "acct";
  cfg.currency = "EUR";
  sim.Submit(1, OpenAccount{cfg});
  sim.RunUntil(500);
  sim.Submit(1, Credit{"acct", 100, "c1"});
  sim.RunUntil(1000);
  Partition alone{"isolate", {{1, 0}, {0, 1}, {1, 2}, {2, 1}}, "r1 isolated"};
  sim.Cut(alone);
  sim.StepClock(1, -2 * 3'600'000);
  sim.RunUntil(1500);
  sim.Crash(1);
  sim.RunUntil(1600);
  sim.Restart(1);
  sim.RunUntil(1700);
  sim.Submit(1, Debit{"acct", 10, "d1"});
  sim.RunUntil(2500);
  if (sim.failed()) return sim.Finish();
  sim.Uncut(alone);
  return sim.Finish();
}

TEST_CASE("forget_hlc_high_water: caught by the amnesia fault, which a correct replica survives",
          "[sim][bugs]") {
  RunResult bad = Amnesia("forget_hlc_high_water");
  INFO(bad.failure.invariant << ": " << bad.failure.message);
  REQUIRE_FALSE(bad.ok);
  REQUIRE(bad.failure.invariant == "HLC monotonic");
  RunResult good = Amnesia("");
  INFO(good.failure.invariant << ": " << good.failure.message);
  REQUIRE(good.ok);
}

TEST_CASE("drop_relayed_ops: a partial heal never converges", "[sim][bugs]") {
  // Only a run that still has ops in flight toward the pair the final heal leaves apart shows it:
  // about a third of the default seeds once heartbeats relay what each region holds (main
  // 80e9ac7: seeds 8, 9, 12, ...; seed 1 before), so the hunt goes further than for the others.
  ExpectCaught("drop_relayed_ops", {"I1 convergence"}, FinalTopology::kPartial, 3 * kSeedsPerBug);
}

TEST_CASE("ack_before_sync: an acknowledged op is lost in a crash", "[sim][bugs]") {
  ExpectCaught("ack_before_sync", {"I4 durability"});
}

TEST_CASE("spend_tentative_credit: a credit spent before it is final is clawed back",
          "[sim][bugs]") {
  // A client retries a credit at another region while a partition hides the first attempt, and
  // spends it there. Counting such credit as spendable lets the region spend it past its line; the
  // canonically earlier copy voids it, and the clawback takes the region below its line. Only the
  // effective floor sees this (raw rights + refunds - clawbacks); before it counted clawbacks the
  // simulator passed every seed with this bug.
  Caught c = ExpectCaught("spend_tentative_credit", {"I2 floor"});
  INFO(c.failure.message);
  REQUIRE(c.failure.message.find(" - clawbacks ") != std::string::npos);
  REQUIRE(c.failure.message.find(" - clawbacks 0 ") == std::string::npos);
}

TEST_CASE("skip_rejoin: under lost disks a region that serves at once reuses its peers' seqs",
          "[sim][bugs]") {
  // A region whose disk was wiped or restored from an older copy, serving writes at once, numbers
  // its ops from where its disk left off; its peers hold other ops under those seqs. One op per
  // dot sees it as the region takes the first such op (tests/sim/disk_test.cc shows it step by
  // step). Without the bug a region can reuse a seq only after rejoining — on the word of the
  // peers that answered, a known limit (docs/design.md, "Left out") — so the failure must name a
  // region that started on a replaced disk and never rejoined.
  Caught c;
  for (std::uint64_t seed = 1; seed <= 2 * kSeedsPerBug && !c.failed; ++seed) {
    SimConfig cfg;
    cfg.seed = seed;
    cfg.ops = 2000;
    cfg.profile = "disks";
    cfg.plant_bug = "skip_rejoin";
    REQUIRE(ApplyProfile(&cfg).ok());
    Simulation sim(cfg);
    RunResult r = sim.Run();
    if (!r.ok && r.failure.invariant == "one op per dot")
      c = Caught{true, seed, r.failure, r.reproduce};
  }
  INFO("caught at seed " << c.seed << ": " << c.failure.message);
  REQUIRE(c.failed);
  REQUIRE(c.failure.message.find("started on a wiped or restored disk") != std::string::npos);
  REQUIRE(c.failure.message.find("rejoined at") == std::string::npos);
  REQUIRE(c.reproduce.find("--faults disks --plant-bug skip_rejoin") != std::string::npos);
}

// A debit waits for rights asked of a peer whose grant never arrives, and the asking region's
// wall clock steps back an hour meanwhile. Its wait is timed on the monotonic clock, so it ends
// and the debit is answered; timed on the wall clock (the bug, as tallyd's timers were before
// issue 10) it would wait for the hour, and the answer bound catches it.
bool ParkedDebitAnswered(const std::string& bug, Failure* failure) {
  SimConfig c = ScriptedConfig(2, 5);
  c.seed = 7;
  c.plant_bug = bug;
  Simulation sim(c);
  sim.Start();
  sim.RunUntil(100);
  AccountConfig cfg;
  cfg.id = "a";
  cfg.currency = "EUR";
  sim.Submit(0, OpenAccount{cfg});
  sim.RunUntil(300);
  sim.Submit(0, Credit{"a", 1000, "funds"});
  sim.RunUntil(2500);  // r1 holds the account; every right is at r0
  // r0's messages to r1 are lost from now on; r1 still counts r0 live for a moment and asks it.
  Partition mute;
  mute.kind = "asymmetric";
  mute.description = "r0 -> r1 lost";
  mute.cut.emplace_back(0, 1);
  sim.Cut(mute);
  const std::uint64_t d = sim.Submit(1, Debit{"a", 10, "d"});
  sim.StepClock(1, -3'600'000);
  sim.RunUntil(sim.now() + 10'000);
  *failure = Failure{};
  if (sim.failed()) {
    RunResult r = sim.Finish();
    *failure = r.failure;
    return false;
  }
  const CommandResult* res = sim.Result(d);
  REQUIRE(res != nullptr);
  CHECK(res->status.code() == Code::kInsufficientFunds);  // no rights came, no line
  sim.Uncut(mute);
  RunResult r = sim.Finish();
  *failure = r.failure;
  return r.ok;
}

TEST_CASE("wall_clock_deadlines: a debit parked across a clock step breaks the answer bound",
          "[sim][bugs]") {
  Failure f;
  CHECK(ParkedDebitAnswered("", &f));
  INFO(f.invariant << ": " << f.message);
  CHECK_FALSE(ParkedDebitAnswered("wall_clock_deadlines", &f));
  CHECK(f.invariant == "answer bound");
}

TEST_CASE("Without a planted bug the same seeds pass", "[sim][bugs]") {
  for (FinalTopology t : {FinalTopology::kRandom, FinalTopology::kPartial}) {
    for (std::uint64_t seed = 1; seed <= kSeedsPerBug; ++seed) {
      SimConfig c;
      c.seed = seed;
      c.ops = 2000;
      c.final_topology = t;
      REQUIRE(ApplyProfile(&c).ok());
      Simulation sim(c);
      RunResult r = sim.Run();
      INFO("seed " << seed << ": " << r.failure.invariant << ": " << r.failure.message);
      REQUIRE(r.ok);
    }
  }
}

}  // namespace
}  // namespace tally::sim
