// Gossip that stops for good (issue 10, item 6), written out by hand. Four fresh swarm seeds
// (`tally-sim swarm --first 300000`) never converged on main 8c8f067: after the heal the replicas
// stopped applying anything while ops were missing. In each, a replica waited on a deadline it had
// read from its wall clock, and that clock had been set back, so the deadline lay minutes or hours
// ahead:
//
// - 309727 (two regions, complete topology, clock steps and lost messages, no crashes): r1:3984
//   was lost on its way to r0. r1 did not send it again while r0's acks moved (the re-send then
//   waited for the whole ack vector to stand still, and r0 acked its own ops), and r1's clock
//   stepped back (849 s, later 33 s more) after r0's acks had last moved. r1's re-send deadline
//   ("nothing acked for resend_after_ms") lay ahead of its clock, so it never sent the op again
//   while r0 held back every later op of r1 for the gap: r0 stuck at 3,983 of r1's 4,501.
// - 304912 (two regions, complete, 42 crashes and 22 clock steps): the same, the other way. After
//   both regions had crashed and restarted, r0's ops r0:5267 and r0:5328 were lost on their way to
//   r1, then r0's clock stepped back 21 s: r1 stuck at 5,266 of r0's 5,341. (On that code the
//   re-send was also judged over the whole vector, so r1's own ops, acked all along, had held it
//   back in the three seconds between the first loss and the step.)
// - 303616 (three regions, stream links, final topology r1⟂r2 down): r2:226 was lost on its way
//   to r1; r0 saw r1 lag on it, marked when the lag began (the relay waits relay_delay_ms from
//   that mark), relayed it, and lost that batch too; then r0's clock stepped back 606 s. Every
//   later relay to r1 of r2's ops, the re-send included, waited on the mark, ten minutes ahead of
//   r0's clock, and r2 could no longer reach r1: r1 held r2's ops up to 225 of 3,005.
// - 301124 (four regions, final topology r0⟂r1, r1⟂r2, r2⟂r3 down): r1 was down while r0 and r2
//   wrote; it restarted and crashed again at once, and r3 marked r1's lag on r0's and r2's ops and
//   relayed them into the void; then r3's clock stepped back 41 s, and r1 came back able to hear
//   r3 only. r3's relays waited on its mark: r1 never got 7 of r0's ops and 3 of r2's.
//
// Fixed in f97d110 (re-sends are timed per origin and a re-send mark in the future is pulled back
// to the clock) and 522384d (the relay mark likewise); since adb007f every timer runs on a
// monotonic clock and the wall clock only feeds the HLC. Each test below builds its seed's topology
// and fault shape by hand, so a change in what the swarm draws cannot hide it, and must end with
// every replica holding every op. On the code before the fix (8eaaaf4 for the two-region tests,
// 0bffe35 for the relay tests) each fails the liveness phase: "no replica applied anything for
// 15000 ms while ops are missing".
//
// Messages are lost with Simulation::Lose, not with a cut: healing a cut makes both ends reconnect,
// and a reconnect is itself a reason to send everything again, which would hide these stalls.

#include <catch2/catch.hpp>
#include <string>

#include "sim/config.h"
#include "sim/simulation.h"

namespace tally::sim {
namespace {

SimConfig GossipConfig(RegionId regions, const std::string& links = "datagram") {
  return ScriptedConfig(regions, 5, links);  // every message takes 5 ms
}

// Both directions of each pair.
Partition Down(std::initializer_list<std::pair<RegionId, RegionId>> pairs, std::string what) {
  Partition p;
  p.kind = "partial";
  p.description = std::move(what);
  for (auto [a, b] : pairs) {
    p.cut.emplace_back(a, b);
    p.cut.emplace_back(b, a);
  }
  return p;
}

// A credit of 1 to "acct" at `r`, keyed by region and instant (at most one per region and instant).
void Write(Simulation* sim, RegionId r) {
  sim->Submit(r, Credit{"acct", 1, "r" + std::to_string(r) + "@" + std::to_string(sim->now())});
}

// Opens "acct" at r0 and lets every region credit it once; by 1 s every region holds every op.
void Prepare(Simulation* sim, RegionId regions) {
  sim->Start();
  AccountConfig cfg;
  cfg.id = "acct";
  cfg.currency = "EUR";
  sim->Submit(0, OpenAccount{cfg});
  sim->RunUntil(300);
  for (RegionId r = 0; r < regions; ++r) Write(sim, r);
  sim->RunUntil(1000);
  for (RegionId r = 1; r < regions; ++r)
    REQUIRE(sim->replica(r)->applied() == sim->replica(0)->applied());
}

// The liveness phase and every checker; then every replica holds every op.
void RequireConverged(Simulation* sim, const RunResult& res, RegionId regions) {
  INFO(res.failure.invariant << ": " << res.failure.message);
  REQUIRE(res.ok);
  REQUIRE(res.summary.convergence_ms.has_value());
  for (RegionId r = 1; r < regions; ++r)
    REQUIRE(sim->replica(r)->applied() == sim->replica(0)->applied());
}

TEST_CASE("Seed 309727: a batch lost as its sender's clock steps back is sent again",
          "[sim][gossip]") {
  Simulation sim(GossipConfig(2));
  Prepare(&sim, 2);
  const Seq before = sim.replica(0)->applied().get(1);
  // r1's next op is lost on its way to r0.
  sim.Lose(1, 0, 1030);
  Write(&sim, 1);
  sim.RunUntil(1030);
  REQUIRE(sim.replica(0)->applied().get(1) == before);
  REQUIRE(sim.replica(1)->applied().get(1) == before + 1);
  // r0 writes (r1 sees its acks move); r1 writes more, which r0 holds back for the gap.
  Write(&sim, 0);
  for (std::uint64_t t = 1050; t <= 1150; t += 50) {
    Write(&sim, 1);
    sim.RunUntil(t);
  }
  REQUIRE(sim.replica(0)->applied().get(1) == before);
  // Before r1 sends the lost op again (resend_after_ms, 500 ms), its wall clock is set back 849 s
  // (the seed's step); from then on r0's acks say nothing new.
  sim.RunUntil(1200);
  sim.StepClock(1, -849'285);
  sim.RunUntil(2000);
  RequireConverged(&sim, sim.Finish(), 2);
}

TEST_CASE("Seed 304912: after crashes, ops lost as their sender's clock steps back are sent again",
          "[sim][gossip]") {
  Simulation sim(GossipConfig(2));
  Prepare(&sim, 2);
  // Both regions crash and restart (the seed had 42 crashes), then write again.
  sim.Crash(0);
  sim.RunUntil(1100);
  sim.Restart(0);
  sim.RunUntil(1500);
  sim.Crash(1);
  sim.RunUntil(1600);
  sim.Restart(1);
  sim.RunUntil(2500);
  Write(&sim, 0);
  Write(&sim, 1);
  sim.RunUntil(3000);
  REQUIRE(sim.replica(1)->applied() == sim.replica(0)->applied());
  const Seq before = sim.replica(1)->applied().get(0);
  // r0's next op is lost on its way to r1 (the seed's r0:5267). r1 writes all along, so r0 sees
  // r1's acks move; r1 holds r0's later ops back for the gap.
  sim.Lose(0, 1, 3030);
  Write(&sim, 0);
  sim.RunUntil(3030);
  REQUIRE(sim.replica(1)->applied().get(0) == before);
  for (std::uint64_t t = 3050; t <= 4800; t += 50) {
    Write(&sim, 1);
    if (t % 250 == 0) Write(&sim, 0);
    sim.RunUntil(t);
  }
  // Another of r0's ops is lost (the seed's r0:5328) and, before r0 sends it again, r0's wall
  // clock is set back an hour (the seed's step was 21 s, which outlasted the simulator's 15 s
  // bound on no progress; an hour outlasts every bound). From then on r1's acks say nothing new;
  // r0 writes on, and r1 holds those back for the gap.
  const Seq before2 = sim.replica(0)->applied().get(0);
  sim.Lose(0, 1, 4830);
  Write(&sim, 0);
  sim.RunUntil(4830);
  REQUIRE(sim.replica(1)->applied().get(0) < before2 + 1);
  sim.RunUntil(5000);
  sim.StepClock(0, -3'600'000);
  for (std::uint64_t t = 5050; t <= 5500; t += 50) {
    Write(&sim, 0);
    sim.RunUntil(t);
  }
  RequireConverged(&sim, sim.Finish(), 2);
}

TEST_CASE("Seed 303616: with r1⟂r2 down, r0 relays r2's ops though r0's clock steps back",
          "[sim][gossip]") {
  Simulation sim(GossipConfig(3, "stream"));
  Prepare(&sim, 3);
  const Seq before = sim.replica(1)->applied().get(2);
  // r2's next op is lost on its way to r1 (the seed's r2:226); the next ones arrive and r1 holds
  // them back for the gap.
  sim.Lose(2, 1, 1030);
  Write(&sim, 2);
  sim.RunUntil(1040);
  Write(&sim, 2);
  sim.RunUntil(1060);
  Write(&sim, 2);
  sim.RunUntil(1090);
  REQUIRE(sim.replica(0)->applied().get(2) == before + 3);
  REQUIRE(sim.replica(1)->applied().get(2) == before);
  // r1⟂r2 goes down for good: r2's ops reach r1 only through r0, which relays them once r1 has
  // lagged on them for relay_delay_ms (200 ms, from about 1015). That relay is lost too.
  const Partition down = Down({{1, 2}}, "r1⟂r2");
  sim.Cut(down);
  const std::uint64_t sent = sim.replica(0)->stats().ops_sent;
  sim.Lose(0, 1, 1300);
  sim.RunUntil(1300);
  REQUIRE(sim.replica(0)->stats().ops_sent > sent);  // r0 originated none: the relay
  REQUIRE(sim.replica(1)->applied().get(2) == before);
  // Before r0 sends the relayed ops again (resend_after_ms, 500 ms), its wall clock is set back
  // 606 s (the seed's step).
  sim.StepClock(0, -606'152);
  for (std::uint64_t t = 1350; t <= 2500; t += 50) {
    Write(&sim, static_cast<RegionId>(t / 50 % 3));
    sim.RunUntil(t);
  }
  RequireConverged(&sim, sim.Finish(down), 3);
}

TEST_CASE("Seed 301124: r3, r1's only link, relays to it though r3's clock steps back",
          "[sim][gossip]") {
  Simulation sim(GossipConfig(4));
  Prepare(&sim, 4);
  // r1 is down, long enough for every peer to count it unreachable (peer_timeout_ms, 1 s), while
  // r0 and r2 write: every other region gets their ops directly.
  sim.Crash(1);
  sim.RunUntil(2200);
  for (std::uint64_t t = 2250; t <= 3000; t += 50) {
    Write(&sim, t % 100 == 0 ? 0 : 2);
    sim.RunUntil(t);
  }
  // The final topology: r1 can reach r0 and r2 only through r3 (and r2 reaches r3 through r0).
  const Partition down = Down({{0, 1}, {1, 2}, {2, 3}}, "r0⟂r1, r1⟂r2, r2⟂r3");
  sim.Cut(down);
  // r1 restarts and crashes again at once. r3 has heard it and seen it lag on r0's and r2's ops;
  // it relays them once r1 has lagged for relay_delay_ms (200 ms), to a region that is down.
  sim.Restart(1);
  sim.RunUntil(3010);
  REQUIRE(sim.replica(1)->applied().get(0) < sim.replica(3)->applied().get(0));
  REQUIRE(sim.replica(1)->applied().get(2) < sim.replica(3)->applied().get(2));
  sim.Crash(1);
  const std::uint64_t sent = sim.replica(3)->stats().ops_sent;
  sim.RunUntil(3500);
  REQUIRE(sim.replica(3)->stats().ops_sent > sent);  // r3 originated none: the relay
  // r3's wall clock is set back an hour (the seed's step was 41 s, which outlasted the
  // simulator's 15 s bound on no progress), and r1 comes back, able to hear r3 only.
  sim.StepClock(3, -3'600'000);
  sim.RunUntil(3700);
  sim.Restart(1);
  for (std::uint64_t t = 3750; t <= 4500; t += 50) {
    Write(&sim, t % 100 == 0 ? 0 : 2);
    sim.RunUntil(t);
  }
  RequireConverged(&sim, sim.Finish(down), 4);
}

}  // namespace
}  // namespace tally::sim
