// The hybrid logical clock (hlc.h) under physical clocks that misbehave: random walks with jumps of
// hours both ways, restarts from a persisted high-water mark, peers ahead of us, a logical counter
// that runs out within one millisecond. And the canonical order of ops, (hlc, origin, seq): total.
#include "core/hlc.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "core/types.h"
#include "test_seed.h"

using namespace tally;
using tally::testing::CaseSeed;

namespace {

constexpr std::uint64_t kHourMs = 3'600'000;
constexpr std::uint64_t kStart = 1'700'000'000'000;  // ms

// A physical clock that wanders: small steps, stalls, and jumps of hours back and forth.
std::uint64_t NextPhysical(std::uint64_t pt, std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return pt;  // stalled
    case 1:
      return pt + kHourMs * (1 + rng() % 48);  // jumps ahead hours
    case 2:
      return pt - std::min(pt - 1, kHourMs * (1 + rng() % 48));  // jumps back hours
    case 3:
      return pt - std::min(pt - 1, rng() % 1000);  // small step back
    default:
      return pt + rng() % 50;
  }
}

}  // namespace

TEST_CASE("Hlc packs wall ms and logical counter and orders as (wall, logical)", "[hlc]") {
  const Hlc a = Hlc::Make(kStart, 7);
  CHECK(a.wall_ms() == kStart);
  CHECK(a.logical() == 7);
  CHECK(a.ToString() == "1700000000000.7");
  CHECK(Hlc::Make(kStart, 7) < Hlc::Make(kStart, 8));
  CHECK(Hlc::Make(kStart, Hlc::kLogicalMask) < Hlc::Make(kStart + 1, 0));
  CHECK(Hlc{}.is_zero());
  CHECK_FALSE(a.is_zero());
  std::mt19937_64 rng(CaseSeed(0));
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t w1 = rng() % 1000, l1 = rng() % 4, w2 = rng() % 1000, l2 = rng() % 4;
    const Hlc x = Hlc::Make(w1, l1), y = Hlc::Make(w2, l2);
    REQUIRE((x < y) == (std::tie(w1, l1) < std::tie(w2, l2)));
    REQUIRE((x == y) == (w1 == w2 && l1 == l2));
  }
}

TEST_CASE("Now follows the physical clock when it moves forward", "[hlc]") {
  HybridClock c;
  std::uint64_t pt = kStart;
  for (int i = 0; i < 1000; ++i) {
    pt += 1 + i % 7;
    const Hlc h = c.Now(pt);
    REQUIRE(h.wall_ms() == pt);
    REQUIRE(h.logical() == 0);
  }
  // Two events in the same millisecond are told apart by the logical counter.
  const Hlc x = c.Now(pt);
  REQUIRE(x.wall_ms() == pt);
  REQUIRE(x.logical() == 1);
}

TEST_CASE("Now is strictly increasing under physical clocks that jump back and forward", "[hlc]") {
  for (int cs = 0; cs < 200; ++cs) {
    TALLY_INFO_SEED(cs);
    std::mt19937_64 rng(CaseSeed(cs));
    HybridClock c(500);
    std::uint64_t pt = kStart;
    Hlc prev, max_remote;
    for (int i = 0; i < 2000; ++i) {
      pt = NextPhysical(pt, rng);
      if (rng() % 5 == 0) {
        // A peer's timestamp: anywhere within a day of our physical clock.
        const std::uint64_t rw = pt - 24 * kHourMs + rng() % (48 * kHourMs);
        const Hlc remote = Hlc::Make(rw, rng() % 5 == 0 ? Hlc::kLogicalMask : rng() % 100);
        const std::int64_t offset = c.Update(remote, pt);
        REQUIRE(offset == static_cast<std::int64_t>(rw) - static_cast<std::int64_t>(pt));
        max_remote = std::max(max_remote, remote);
        REQUIRE(c.last() >= remote);
        REQUIRE(c.last() >= prev);
      }
      const Hlc h = c.Now(pt);
      INFO("step " << i << " physical " << pt << " prev " << prev.ToString() << " now "
                   << h.ToString());
      REQUIRE(h > prev);
      REQUIRE(h > max_remote);     // causality: after every timestamp we merged
      REQUIRE(h.wall_ms() >= pt);  // never behind the physical clock
      REQUIRE(c.last() == h);
      prev = h;
    }
  }
}

TEST_CASE("after Restore(high water) the clock stays above it with the wall clock hours behind",
          "[hlc]") {
  std::mt19937_64 rng(CaseSeed(1));
  HybridClock before;
  std::uint64_t pt = kStart + 10 * kHourMs;
  Hlc last;
  for (int i = 0; i < 100; ++i) last = before.Now(pt += rng() % 3);
  const Hlc high_water = Hlc::Make(last.wall_ms() + 1000, 0);  // leased ahead, as the replica does

  HybridClock after;
  after.Restore(high_water);
  REQUIRE(after.last() == high_water);
  Hlc prev = high_water;
  std::uint64_t behind = kStart;  // ten hours behind the clock we had
  for (int i = 0; i < 5000; ++i) {
    const Hlc h = after.Now(behind + rng() % 5);
    REQUIRE(h > prev);
    REQUIRE(h > last);
    prev = h;
  }
  // A lower high-water mark never moves the clock back.
  after.Restore(Hlc::Make(kStart, 0));
  REQUIRE(after.last() == prev);
  REQUIRE(after.Now(kStart) > prev);
  // Restore on a fresh clock with a zero mark is harmless.
  HybridClock fresh;
  fresh.Restore(Hlc{});
  REQUIRE(fresh.Now(kStart).wall_ms() == kStart);
}

TEST_CASE("Update with a timestamp ahead makes the next Now larger than it", "[hlc]") {
  HybridClock c(500);
  const Hlc local = c.Now(kStart);
  const Hlc remote = Hlc::Make(kStart + 2 * kHourMs, 17);
  const std::int64_t offset = c.Update(remote, kStart);
  CHECK(offset == static_cast<std::int64_t>(2 * kHourMs));
  CHECK(c.FarAhead(offset));
  const Hlc next = c.Now(kStart + 1);
  CHECK(next > remote);
  CHECK(next > local);
  CHECK(next.wall_ms() == remote.wall_ms());
  CHECK(next.logical() == 18);

  // A timestamp behind ours changes nothing but reports a negative offset.
  const Hlc mark = c.last();
  const std::int64_t behind = c.Update(Hlc::Make(kStart - 5000, 3), kStart);
  CHECK(behind == -5000);
  CHECK_FALSE(c.FarAhead(behind));
  CHECK(c.last() == mark);
  CHECK(c.Now(kStart) > mark);
}

TEST_CASE("FarAhead is strictly past max_offset", "[hlc]") {
  HybridClock c(250);
  CHECK(c.max_offset_ms() == 250);
  CHECK_FALSE(c.FarAhead(-1'000'000));
  CHECK_FALSE(c.FarAhead(0));
  CHECK_FALSE(c.FarAhead(250));
  CHECK(c.FarAhead(251));
  CHECK(c.FarAhead(INT64_MAX));
  HybridClock strict(0);
  CHECK_FALSE(strict.FarAhead(0));
  CHECK(strict.FarAhead(1));
  // Measured through Update: the peer is 251 ms ahead of our physical clock.
  HybridClock m(250);
  CHECK(m.FarAhead(m.Update(Hlc::Make(kStart + 251, 0), kStart)));
  CHECK_FALSE(m.FarAhead(m.Update(Hlc::Make(kStart + 250, 0), kStart)));
  // The peer's timestamp is still taken: its ops are never dropped.
  CHECK(m.last() == Hlc::Make(kStart + 251, 0));
}

TEST_CASE("logical counter overflow within one millisecond stays strictly increasing", "[hlc]") {
  HybridClock c;
  Hlc prev;
  const int calls = static_cast<int>(Hlc::kLogicalMask) * 2 + 10;  // two exhaustions
  for (int i = 0; i < calls; ++i) {
    const Hlc h = c.Now(kStart);  // the physical clock is stuck
    REQUIRE(h > prev);
    prev = h;
  }
  CHECK(prev.wall_ms() >= kStart + 2);
  // When the physical clock catches up with the borrowed milliseconds, order still holds.
  CHECK(c.Now(kStart + 1) > prev);
  CHECK(c.Now(kStart + 100) == Hlc::Make(kStart + 100, 0));

  // A peer timestamp whose logical part is exhausted.
  HybridClock d;
  const Hlc remote = Hlc::Make(kStart + 5, Hlc::kLogicalMask);
  d.Update(remote, kStart);
  const Hlc h = d.Now(kStart);
  CHECK(h > remote);
  CHECK(h == Hlc::Make(kStart + 6, 0));
}

TEST_CASE("the clock never goes back at the top of its range", "[hlc]") {
  // A corrupt or hostile peer may send any 64-bit timestamp; Update takes it (ops are never
  // dropped). Whatever the clock does then, it must not wrap around to small values: that would
  // break the canonical order and every promise made by heartbeats.
  HybridClock c;
  c.Update(Hlc{~std::uint64_t{0}}, kStart);
  Hlc prev = c.last();
  for (int i = 0; i < 3; ++i) {
    const Hlc h = c.Now(kStart);
    INFO("call " << i << " prev " << prev.ToString() << " now " << h.ToString());
    CHECK(h >= prev);
    prev = std::max(prev, h);
  }
  // Physical time itself at the top of the range: clamped, then the logical counter runs out.
  HybridClock top;
  Hlc p = top.Now(~std::uint64_t{0});
  CHECK(p.wall_ms() == Hlc::kMaxWallMs);
  for (std::uint64_t i = 0; i <= Hlc::kLogicalMask; ++i) {
    const Hlc h = top.Now(~std::uint64_t{0});
    if (h < p) {
      FAIL("clock wrapped after " << i << " calls: " << p.ToString() << " -> " << h.ToString());
    }
    p = h;
  }
}

TEST_CASE("canonical order (hlc, origin, seq) is total and lexicographic", "[hlc]") {
  // Small domains so that ties on each field are common.
  std::vector<CanonicalKey> keys;
  for (std::uint64_t w = 0; w < 3; ++w)
    for (std::uint64_t l = 0; l < 2; ++l)
      for (RegionId o = 0; o < 3; ++o)
        for (Seq s = 0; s < 3; ++s) keys.push_back(CanonicalKey{Hlc::Make(kStart + w, l), o, s});
  std::mt19937_64 rng(CaseSeed(2));
  for (int i = 0; i < 40; ++i)
    keys.push_back(CanonicalKey{Hlc{rng()}, static_cast<RegionId>(rng() % 16), rng() % 1000});

  auto tuple = [](const CanonicalKey& k) { return std::make_tuple(k.hlc.value, k.origin, k.seq); };
  for (const auto& a : keys) {
    for (const auto& b : keys) {
      const int relations = (a < b) + (a == b) + (b < a);
      REQUIRE(relations == 1);                      // trichotomy
      REQUIRE((a == b) == (tuple(a) == tuple(b)));  // equal only if the same key
      REQUIRE((a < b) == (tuple(a) < tuple(b)));    // hlc, then origin, then seq
      if (a < b) REQUIRE_FALSE(b < a);              // antisymmetric
    }
  }
  for (const auto& a : keys)
    for (const auto& b : keys)
      if (a < b)
        for (const auto& d : keys)
          if (b < d) REQUIRE(a < d);  // transitive

  // Sorting any permutation gives one sequence: the order does not depend on arrival.
  std::vector<CanonicalKey> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (int round = 0; round < 20; ++round) {
    std::vector<CanonicalKey> p = keys;
    std::shuffle(p.begin(), p.end(), rng);
    std::sort(p.begin(), p.end());
    REQUIRE(p == sorted);
  }

  // An op's canonical key is (hlc, origin, seq) of the op.
  Op op;
  op.dot = Dot{4, 99};
  op.hlc = Hlc::Make(kStart, 3);
  CHECK(op.canonical() == CanonicalKey{Hlc::Make(kStart, 3), 4, 99});
  CHECK(Dot{4, 99}.ToString() == "r4:99");
}
