// The per-account lattice (counters.h) under generated histories: every region mutates only its
// own entries, states and deltas travel between regions in random order, and the lattice laws,
// the delta law and conservation (Σ rights == balance) must hold at every step. Then the refusals:
// caps, transfer to self, non-positive amounts — each leaves the state unchanged.
#include "core/counters.h"

#include <catch2/catch.hpp>
#include <climits>
#include <random>
#include <vector>

#include "test_seed.h"

using namespace tally;
using tally::testing::CaseSeed;

namespace {

constexpr int kCases = 200;

Amount RandomAmount(std::mt19937_64& rng) {
  // Mostly small amounts (entries collide often), sometimes large ones (far from int32).
  switch (rng() % 4) {
    case 0:
      return 1 + static_cast<Amount>(rng() % 3);
    case 1:
      return 1 + static_cast<Amount>(rng() % 1000);
    case 2:
      return 1 + static_cast<Amount>(rng() % (Amount{1} << 40));
    default:
      return 1 + static_cast<Amount>(rng() % kMaxOpAmount);
  }
}

Amount SumRights(const Counters& c) {
  Amount s = 0;
  for (RegionId r = 0; r < c.regions(); ++r) s += c.rights(r);
  return s;
}

// Checks the definitions of the derived figures against the raw entries.
void CheckDerived(const Counters& c) {
  Amount p = 0, d = 0;
  for (RegionId r = 0; r < c.regions(); ++r) {
    Amount given = 0, received = 0;
    for (RegionId s = 0; s < c.regions(); ++s) {
      given += c.transferred(r, s);
      received += c.transferred(s, r);
    }
    REQUIRE(c.given(r) == given);
    REQUIRE(c.received(r) == received);
    REQUIRE(c.rights(r) == c.credits(r) + received - given - c.debits(r));
    REQUIRE(c.transferred(r, r) == 0);
    p += c.credits(r);
    d += c.debits(r);
  }
  REQUIRE(c.total_credits() == p);
  REQUIRE(c.total_debits() == d);
  REQUIRE(c.balance() == p - d);
  REQUIRE(SumRights(c) == c.balance());
}

Counters Joined(Counters a, const Counters& b) {
  a.Join(b);
  return a;
}

// Pointwise a >= b on every entry.
bool Dominates(const Counters& a, const Counters& b) {
  for (RegionId r = 0; r < a.regions(); ++r) {
    if (a.credits(r) < b.credits(r) || a.debits(r) < b.debits(r)) return false;
    for (RegionId s = 0; s < a.regions(); ++s)
      if (a.transferred(r, s) < b.transferred(r, s)) return false;
  }
  return true;
}

// Exactly one entry of `delta` is non-zero and equals that entry of `state`.
enum class Entry { kCredit, kDebit, kTransfer };
void CheckDeltaShape(const Counters& delta, const Counters& state, Entry which, RegionId r,
                     RegionId to) {
  REQUIRE(delta.regions() == state.regions());
  for (RegionId i = 0; i < state.regions(); ++i) {
    const bool credit_here = which == Entry::kCredit && i == r;
    const bool debit_here = which == Entry::kDebit && i == r;
    REQUIRE(delta.credits(i) == (credit_here ? state.credits(i) : 0));
    REQUIRE(delta.debits(i) == (debit_here ? state.debits(i) : 0));
    for (RegionId s = 0; s < state.regions(); ++s) {
      const bool here = which == Entry::kTransfer && i == r && s == to;
      REQUIRE(delta.transferred(i, s) == (here ? state.transferred(i, s) : 0));
    }
  }
}

// A generated history: n regions, each holding its own Counters, mutating only its own entries
// and merging what others send (whole states, or single deltas, in any order, duplicated).
struct History {
  explicit History(RegionId n, std::uint64_t seed) : n(n), rng(seed) {
    for (RegionId r = 0; r < n; ++r) {
      state.emplace_back(n);
      from_deltas.emplace_back(n);
    }
  }

  // One random step; `pool` collects states seen along the way for the lattice laws.
  void Step(std::vector<Counters>* pool) {
    const RegionId r = static_cast<RegionId>(rng() % n);
    const unsigned action = rng() % 10;
    if (action < 6) {
      Counters delta;
      const Counters before = state[r];
      Entry which;
      RegionId to = 0;
      Status s;
      const Amount x = RandomAmount(rng);
      if (action < 2) {
        which = Entry::kCredit;
        s = state[r].Credit(r, x, &delta);
      } else if (action < 4) {
        which = Entry::kDebit;
        s = state[r].Debit(r, x, &delta);
      } else {
        which = Entry::kTransfer;
        to = static_cast<RegionId>((r + 1 + rng() % (n - 1)) % n);
        s = state[r].Transfer(r, to, x, &delta);
      }
      if (!s.ok()) {
        // Only the cap can refuse a positive amount to another region; then nothing changed.
        REQUIRE(s.code() == Code::kResourceExhausted);
        REQUIRE(state[r] == before);
        return;
      }
      CheckDeltaShape(delta, state[r], which, r, to);
      REQUIRE(Dominates(state[r], before));
      REQUIRE_FALSE(state[r] == before);
      // The delta alone reproduces the mutation on the state before it.
      REQUIRE(Joined(before, delta) == state[r]);
      from_deltas[r].Join(delta);
      deltas.push_back(delta);
      in_flight.push_back({r, delta});
    } else if (action < 8 && !in_flight.empty()) {
      // A delta reaches some region (maybe again, maybe its own origin), in any order.
      const std::size_t i = rng() % in_flight.size();
      const RegionId dst = static_cast<RegionId>(rng() % n);
      state[dst].Join(in_flight[i].second);
      from_deltas[dst].Join(in_flight[i].second);
      if (rng() % 2) in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      // Anti-entropy: a whole state is joined into another region.
      const RegionId src = static_cast<RegionId>(rng() % n);
      state[r].Join(state[src]);
      from_deltas[r].Join(from_deltas[src]);
    }
    CheckDerived(state[r]);
    // Joining deltas equals joining states: what a region holds is exactly the join of the deltas
    // that reached it (directly or inside a state).
    REQUIRE(state[r] == from_deltas[r]);
    if (pool && rng() % 3 == 0) pool->push_back(state[r]);
  }

  RegionId n;
  std::mt19937_64 rng;
  std::vector<Counters> state;
  std::vector<Counters> from_deltas;
  std::vector<Counters> deltas;
  std::vector<std::pair<RegionId, Counters>> in_flight;
};

}  // namespace

TEST_CASE("join is commutative, associative and idempotent on generated states", "[counters]") {
  for (int c = 0; c < kCases; ++c) {
    TALLY_INFO_SEED(c);
    std::mt19937_64 rng(CaseSeed(c));
    const RegionId n = 2 + static_cast<RegionId>(rng() % 6);  // 2..7
    History h(n, rng());
    std::vector<Counters> pool;
    const int steps = 20 + static_cast<int>(rng() % 60);
    for (int i = 0; i < steps; ++i) h.Step(&pool);
    for (auto& s : h.state) pool.push_back(s);
    pool.push_back(Counters(n));

    for (int t = 0; t < 60; ++t) {
      const Counters& a = pool[rng() % pool.size()];
      const Counters& b = pool[rng() % pool.size()];
      const Counters& d = pool[rng() % pool.size()];
      const Counters ab = Joined(a, b);
      REQUIRE(ab == Joined(b, a));                        // commutative
      REQUIRE(Joined(ab, d) == Joined(a, Joined(b, d)));  // associative
      REQUIRE(Joined(a, a) == a);                         // idempotent
      REQUIRE(Joined(ab, a) == ab);                       // absorbs what it covers
      REQUIRE(Dominates(ab, a));                          // an upper bound ...
      REQUIRE(Dominates(ab, b));
      REQUIRE(Joined(a, Counters(0)) == a);  // the bottom is neutral
      REQUIRE(Joined(Counters(0), a) == a);
      CheckDerived(ab);
    }
  }
}

TEST_CASE("joining deltas equals joining states, in any order with duplicates", "[counters]") {
  for (int c = 0; c < kCases; ++c) {
    TALLY_INFO_SEED(c);
    std::mt19937_64 rng(CaseSeed(c));
    const RegionId n = 2 + static_cast<RegionId>(rng() % 6);
    History h(n, rng());
    const int steps = 30 + static_cast<int>(rng() % 100);
    for (int i = 0; i < steps; ++i) h.Step(nullptr);  // checks state == ⊔ deltas received

    // Full exchange: the join of every region's state equals the join of every delta, taken in a
    // shuffled order with duplicates.
    Counters all_states(n);
    for (auto& s : h.state) all_states.Join(s);
    std::vector<Counters> shuffled = h.deltas;
    for (std::size_t i = 0; i < h.deltas.size() / 3; ++i)
      shuffled.push_back(h.deltas[rng() % h.deltas.size()]);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Counters all_deltas(n);
    for (auto& d : shuffled) all_deltas.Join(d);
    REQUIRE(all_deltas == all_states);
    CheckDerived(all_deltas);

    // Every region that receives everything reaches that same state.
    for (RegionId r = 0; r < n; ++r) {
      Counters got = h.state[r];
      for (auto it = shuffled.rbegin(); it != shuffled.rend(); ++it) got.Join(*it);
      REQUIRE(got == all_states);
    }
  }
}

TEST_CASE("Σ rights == balance after every mutation and join", "[counters]") {
  // CheckDerived runs inside every History::Step; this case also walks long histories at the
  // maximum region count the tests use.
  for (int c = 0; c < 50; ++c) {
    TALLY_INFO_SEED(c);
    std::mt19937_64 rng(CaseSeed(c));
    History h(7, rng());
    for (int i = 0; i < 400; ++i) h.Step(nullptr);
    for (auto& s : h.state) CheckDerived(s);
  }
}

TEST_CASE("a counter is refused past kMaxCounter and nothing changes", "[counters]") {
  Counters c(3);
  Counters delta;
  REQUIRE(c.Credit(1, kMaxCounter - 10, &delta).ok());
  REQUIRE(c.Credit(1, 10, &delta).ok());  // exactly at the cap: accepted
  REQUIRE(c.credits(1) == kMaxCounter);
  const Counters before = c;
  Status s = c.Credit(1, 1, &delta);
  CHECK(s.code() == Code::kResourceExhausted);
  CHECK_FALSE(s.message().empty());
  CHECK(c == before);
  CHECK(c.Credit(1, kMaxOpAmount, nullptr).code() == Code::kResourceExhausted);
  CHECK(c.Credit(1, INT64_MAX, nullptr).code() == Code::kResourceExhausted);
  CHECK(c == before);
  // Other regions' credits are separate counters.
  CHECK(c.Credit(0, 1, nullptr).ok());

  Counters d(2);
  REQUIRE(d.Debit(0, kMaxCounter, nullptr).ok());
  const Counters d_before = d;
  CHECK(d.Debit(0, 1, nullptr).code() == Code::kResourceExhausted);
  CHECK(d.Debit(0, INT64_MAX, nullptr).code() == Code::kResourceExhausted);
  CHECK(d == d_before);
  CHECK(d.balance() == -kMaxCounter);
  CHECK(SumRights(d) == d.balance());

  // Transfers: the cap is on the donor's whole row, so two columns share it.
  Counters t(3);
  REQUIRE(t.Transfer(0, 1, kMaxCounter - 5, nullptr).ok());
  const Counters t_before = t;
  CHECK(t.Transfer(0, 2, 6, nullptr).code() == Code::kResourceExhausted);
  CHECK(t.Transfer(0, 1, 6, nullptr).code() == Code::kResourceExhausted);
  CHECK(t == t_before);
  CHECK(t.Transfer(0, 2, 5, nullptr).ok());  // exactly at the cap
  CHECK(t.given(0) == kMaxCounter);
  CHECK(t.Transfer(0, 1, 1, nullptr).code() == Code::kResourceExhausted);
  CHECK(t.Transfer(1, 0, 1, nullptr).ok());  // another donor's row is its own
  CHECK(SumRights(t) == t.balance());
}

TEST_CASE("transfer to self and non-positive amounts are refused and change nothing",
          "[counters]") {
  Counters c(3);
  REQUIRE(c.Credit(0, 100, nullptr).ok());
  REQUIRE(c.Transfer(0, 2, 40, nullptr).ok());
  const Counters before = c;
  for (RegionId r = 0; r < 3; ++r) {
    INFO("region " << r);
    Status s = c.Transfer(r, r, 10, nullptr);
    CHECK(s.code() == Code::kFailedPrecondition);
    CHECK_FALSE(s.message().empty());
    CHECK(c == before);
  }
  for (Amount bad : {Amount{0}, Amount{-1}, Amount{-100}, INT64_MIN}) {
    INFO("amount " << bad);
    Counters delta;
    CHECK(c.Credit(1, bad, &delta).code() == Code::kInvalidArgument);
    CHECK(c.Debit(1, bad, &delta).code() == Code::kInvalidArgument);
    CHECK(c.Transfer(0, 1, bad, &delta).code() == Code::kInvalidArgument);
    CHECK(c == before);
  }
}

TEST_CASE("join with the bottom, and of states of different histories", "[counters]") {
  Counters bottom;
  CHECK(bottom.regions() == 0);
  Counters a(2);
  REQUIRE(a.Credit(0, 5, nullptr).ok());
  bottom.Join(a);
  CHECK(bottom == a);
  a.Join(Counters());
  CHECK(bottom == a);
  // Two regions' independent mutations merge entry by entry, whatever the order.
  Counters x(2), y(2);
  REQUIRE(x.Credit(0, 10, nullptr).ok());
  REQUIRE(x.Transfer(0, 1, 4, nullptr).ok());
  REQUIRE(y.Debit(1, 3, nullptr).ok());
  Counters xy = Joined(x, y);
  CHECK(xy.balance() == 7);
  CHECK(xy.rights(0) == 6);
  CHECK(xy.rights(1) == 1);
  CHECK(xy == Joined(y, x));
}
