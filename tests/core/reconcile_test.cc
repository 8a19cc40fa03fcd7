// Reconciliation (reconcile.h): a worked example per fork kind with numbers written out by hand,
// then the property that makes it safe to run on every replica: the same set of ops, in any
// arrival order and with duplicates, gives the same ReplayState and the same derived events, and
// every fee and void is booked to the region that originated the op it concerns.
#include "core/reconcile.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_seed.h"

using namespace tally;
using tally::testing::CaseSeed;

namespace {

constexpr std::uint64_t kT0 = 1'700'000'000'000;

// Builds ops with explicit (hlc ms, origin); seqs are numbered per origin in creation order.
struct OpSet {
  std::vector<Op> ops;
  std::map<RegionId, Seq> next_seq;

  Op& Add(OpKind kind, std::uint64_t t_ms, RegionId origin, Amount amount, std::string key = "",
          RegionId to = 0) {
    Op op;
    op.dot = Dot{origin, ++next_seq[origin]};
    op.hlc = Hlc::Make(kT0 + t_ms, 0);
    op.kind = kind;
    op.account = "acct";
    op.amount = amount;
    op.key = std::move(key);
    op.to = to;
    ops.push_back(op);
    return ops.back();
  }
  Op& Credit(std::uint64_t t, RegionId o, Amount x, std::string key = "") {
    return Add(OpKind::kCredit, t, o, x, std::move(key));
  }
  Op& Debit(std::uint64_t t, RegionId o, Amount x, std::string key = "") {
    return Add(OpKind::kDebit, t, o, x, std::move(key));
  }
};

CanonicalKey KeyAt(std::uint64_t t_ms, RegionId origin, Seq seq) {
  return CanonicalKey{Hlc::Make(kT0 + t_ms, 0), origin, seq};
}

}  // namespace

TEST_CASE("worked example: concurrent overdraft debits, one fee per episode", "[reconcile]") {
  // Policy: 100 flat + 250 bps (2.5 %) of the overdrawn amount at the crossing debit.
  const FeePolicy policy{100, 250};
  OpSet s;
  // clang-format off
  s.Credit(1, 0, 10'000);  // r0:1  balance 10 000
  s.Debit(2, 1, 7'000);    // r1:1  3 000
  s.Debit(2, 2, 5'000);    // r2:1  same ms, origin 2 after origin 1: 3 000 − 5 000 = −2 000
                           //       crosses: fee 100 + ceil(2 000 × 250 / 10 000) = 150 → −2 150
  s.Debit(3, 1, 1'000);    // r1:2  −3 150, same episode: no fee
  s.Credit(4, 0, 3'000);   // r0:2  −150, still below zero: the episode stays open
  s.Debit(5, 2, 50);       // r2:2  −200, no fee
  s.Credit(6, 0, 200);     // r0:3  0: the episode closes (balance >= 0)
  s.Debit(7, 1, 1);        // r1:3  −1 crosses again: fee 100 + ceil(1 × 250 / 10 000) = 101 → −102
  s.Credit(8, 0, 500);     // r0:4  398
  s.Debit(9, 2, 398);      // r2:3  exactly 0: not below zero, no fee
  // clang-format on

  const Reconciliation r = Reconcile(policy, 3, s.ops);
  CHECK(r.state.balance == 0);
  CHECK(r.state.fees == std::vector<Amount>{0, 101, 150});
  CHECK(r.state.total_fees() == 251);
  CHECK(r.state.voids == std::vector<Amount>{0, 0, 0});
  CHECK(r.state.refunds == 0);
  CHECK(r.state.episodes == 2);
  CHECK_FALSE(r.state.in_episode);
  CHECK(r.state.ops == 10);
  // Σ credits − Σ debits − fees + voids: 13 700 − 13 449 − 251 + 0.
  CHECK(r.state.balance == 13'700 - 13'449 - 251);

  REQUIRE(r.events.size() == 2);
  const DerivedEvent first{
      DerivedKind::kOverdraftFee, KeyAt(2, 2, 1), OpKind::kDebit, 5'000, 150, 2'000, -2'150};
  const DerivedEvent second{
      DerivedKind::kOverdraftFee, KeyAt(7, 1, 3), OpKind::kDebit, 1, 101, 1, -102};
  CHECK(r.events[0] == first);
  CHECK(r.events[1] == second);
}

TEST_CASE("worked example: the crossing debit is decided by canonical order, not arrival",
          "[reconcile]") {
  // Two regions each spend 80 of a balance of 100 during a partition. Whichever is canonically
  // second crosses below zero and carries the fee: here r1's debit (t=5) before r0's (t=5,
  // origin 0 < 1) — so r0's is first, r1's crosses.
  const FeePolicy policy{10, 1000};  // 10 + 10 %
  OpSet s;
  s.Credit(1, 2, 100);
  s.Debit(5, 1, 80);  // r1:1
  s.Debit(5, 0, 80);  // r0:1, canonically before r1:1 (same ms, lower origin)
  const Reconciliation r = Reconcile(policy, 3, s.ops);
  // 100 − 80 = 20 (r0); 20 − 80 = −60 (r1) crosses: fee 10 + ceil(60 × 1000 / 10 000) = 16 → −76.
  CHECK(r.state.balance == -76);
  CHECK(r.state.fees == std::vector<Amount>{0, 16, 0});
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].op == KeyAt(5, 1, 1));
  CHECK(r.events[0].overdrawn == 60);
  CHECK(r.events[0].amount == 16);
  CHECK(r.events[0].balance_after == -76);
}

TEST_CASE("worked example: the same key accepted in two regions", "[reconcile]") {
  const FeePolicy policy{5, 0};
  OpSet s;
  s.Credit(1, 0, 100, "dep-1");  // r0:1
  s.Debit(4, 2, 10, "pay-10");   // r2:1  first use of pay-10 ...
  s.Debit(5, 1, 30, "pay-9");    // r1:1  the client's first try of pay-9
  s.Debit(5, 2, 30, "pay-9");    // r2:2  its retry elsewhere: same ms, origin 2 > 1: voided
  s.Debit(6, 0, 10, "pay-10");   // r0:2  ... and its retry at r0, later: voided
  const Reconciliation r = Reconcile(policy, 3, s.ops);
  // Canonical order: r0:1 +100 → 100; r2:1 −10 → 90; r1:1 −30 → 60; r2:2 void; r0:2 void.
  // Survivors: 60. Refunds: 30 to r2, 10 to r0.
  CHECK(r.state.balance == 60);
  CHECK(r.state.voids == std::vector<Amount>{10, 0, 30});
  CHECK(r.state.refunds == 40);
  CHECK(r.state.total_voids() == 40);
  CHECK(r.state.total_fees() == 0);
  CHECK(r.state.episodes == 0);
  // Σ credits − Σ debits − fees + voids = 100 − 80 − 0 + 40.
  CHECK(r.state.balance == 100 - 80 - 0 + 40);
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0] ==
        DerivedEvent{DerivedKind::kVoid, KeyAt(5, 2, 2), OpKind::kDebit, 30, 30, 0, 60});
  CHECK(r.events[1] ==
        DerivedEvent{DerivedKind::kVoid, KeyAt(6, 0, 2), OpKind::kDebit, 10, 10, 0, 60});
}

TEST_CASE("worked example: a voided duplicate never opens an overdraft episode", "[reconcile]") {
  const FeePolicy policy{7, 100};
  OpSet s;
  s.Credit(1, 0, 100);
  s.Debit(2, 1, 80, "k");  // 20
  s.Debit(3, 2, 80, "k");  // voided: would have taken the balance to −60 with a fee
  const Reconciliation r = Reconcile(policy, 3, s.ops);
  CHECK(r.state.balance == 20);
  CHECK(r.state.total_fees() == 0);
  CHECK(r.state.episodes == 0);
  CHECK(r.state.voids == std::vector<Amount>{0, 0, 80});
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].kind == DerivedKind::kVoid);
  CHECK(r.events[0].balance_after == 20);
}

TEST_CASE("worked example: a voided credit is a clawback", "[reconcile]") {
  const FeePolicy policy{0, 0};
  OpSet s;
  s.Credit(1, 0, 50, "dep-7");  // r0:1 first use
  s.Credit(2, 1, 50, "dep-7");  // r1:1 the retry: voided, −50 booked to r1
  s.Debit(3, 1, 20);
  const Reconciliation r = Reconcile(policy, 2, s.ops);
  CHECK(r.state.balance == 30);
  CHECK(r.state.voids == std::vector<Amount>{0, -50});
  CHECK(r.state.refunds == 0);  // clawbacks are not refunds
  CHECK(r.state.total_voids() == -50);
  // Σ credits − Σ debits − fees + voids = 100 − 20 − 0 − 50.
  CHECK(r.state.balance == 100 - 20 - 0 - 50);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0] ==
        DerivedEvent{DerivedKind::kVoid, KeyAt(2, 1, 1), OpKind::kCredit, 50, -50, 0, 50});
}

TEST_CASE("ReplayStep on its own: fees, episode boundaries, transfers and opens", "[reconcile]") {
  const FeePolicy policy{3, 5000};  // 3 + 50 %
  ReplayState s(2);
  std::vector<DerivedEvent> ev;
  ReplayStep(policy, ReplayEntry{KeyAt(1, 0, 1), OpKind::kOpen, 0, false}, &s, &ev);
  ReplayStep(policy, ReplayEntry{KeyAt(2, 0, 2), OpKind::kRights, 40, false}, &s, &ev);
  CHECK(s.balance == 0);
  CHECK(s.ops == 2);
  CHECK(ev.empty());
  // 0 − 9 = −9 crosses: 3 + ceil(9 × 5000 / 10 000) = 3 + 5 = 8 → −17.
  ReplayStep(policy, ReplayEntry{KeyAt(3, 1, 1), OpKind::kDebit, 9, false}, &s, &ev);
  CHECK(s.balance == -17);
  CHECK(s.fees == std::vector<Amount>{0, 8});
  CHECK(s.in_episode);
  // A credit that leaves it negative keeps the episode open; a debit then charges nothing.
  ReplayStep(policy, ReplayEntry{KeyAt(4, 0, 3), OpKind::kCredit, 10, false}, &s, &ev);
  CHECK(s.in_episode);
  ReplayStep(policy, ReplayEntry{KeyAt(5, 0, 4), OpKind::kDebit, 1, false}, &s, &ev);
  CHECK(s.balance == -8);
  CHECK(s.fees == std::vector<Amount>{0, 8});
  // A voided debit inside an episode changes nothing but the void.
  ReplayStep(policy, ReplayEntry{KeyAt(6, 0, 5), OpKind::kDebit, 100, true}, &s, &ev);
  CHECK(s.balance == -8);
  CHECK(s.voids == std::vector<Amount>{100, 0});
  CHECK(s.refunds == 100);
  ReplayStep(policy, ReplayEntry{KeyAt(7, 1, 2), OpKind::kCredit, 8, false}, &s, &ev);
  CHECK(s.balance == 0);
  CHECK_FALSE(s.in_episode);
  CHECK(s.episodes == 1);
  CHECK(s.ops == 7);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].kind == DerivedKind::kOverdraftFee);
  CHECK(ev[1].kind == DerivedKind::kVoid);
  // Without an events vector the state is the same.
  ReplayState quiet(2);
  ReplayStep(policy, ReplayEntry{KeyAt(3, 1, 1), OpKind::kDebit, 9, false}, &quiet, nullptr);
  CHECK(quiet.balance == -17);
}

TEST_CASE("fees saturate instead of overflowing", "[reconcile]") {
  const FeePolicy policy{kMaxOpAmount, 100000};
  ReplayState s(1);
  std::vector<DerivedEvent> ev;
  ReplayStep(policy, ReplayEntry{KeyAt(1, 0, 1), OpKind::kDebit, INT64_MAX, false}, &s, &ev);
  CHECK(s.balance == INT64_MIN);
  CHECK(s.fees[0] > 0);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].amount > 0);
}

namespace {

// A random op set of one account: credits and debits (some with keys from a small pool so
// duplicates are common), transfers, opens; timestamps from a small range so HLC ties are common.
std::vector<Op> RandomOps(std::mt19937_64& rng, RegionId n) {
  std::vector<Op> ops;
  std::vector<Seq> seq(n, 0);
  const int count = 1 + static_cast<int>(rng() % 40);
  std::uniform_int_distribution<Amount> small(1, 100);
  for (int i = 0; i < count; ++i) {
    Op op;
    const RegionId o = static_cast<RegionId>(rng() % n);
    op.dot = Dot{o, ++seq[o]};
    op.hlc = Hlc::Make(kT0 + rng() % 12, rng() % 3);
    op.account = "acct";
    const unsigned k = rng() % 10;
    op.kind = k < 4   ? OpKind::kDebit
              : k < 8 ? OpKind::kCredit
              : k < 9 ? OpKind::kRights
                      : OpKind::kOpen;
    op.amount = op.kind == OpKind::kOpen ? 0 : small(rng) * (rng() % 4 == 0 ? 1000 : 1);
    if (op.kind == OpKind::kRights) op.to = static_cast<RegionId>((o + 1) % n);
    if ((op.kind == OpKind::kDebit || op.kind == OpKind::kCredit) && rng() % 2)
      op.key = "k" + std::to_string(rng() % 6);
    ops.push_back(op);
  }
  return ops;
}

// The same reconciliation written independently of reconcile.cc, for cross-checking.
struct Model {
  Amount balance = 0;
  std::vector<Amount> fees, voids;
  Amount refunds = 0;
  std::uint64_t episodes = 0;
};
Model Replay(const FeePolicy& p, RegionId n, std::vector<Op> ops) {
  std::sort(ops.begin(), ops.end(), [](const Op& a, const Op& b) {
    return std::tie(a.hlc, a.dot.origin, a.dot.seq) < std::tie(b.hlc, b.dot.origin, b.dot.seq);
  });
  Model m;
  m.fees.assign(n, 0);
  m.voids.assign(n, 0);
  std::set<std::string> seen;
  bool below = false;
  for (const Op& op : ops) {
    if (op.kind != OpKind::kCredit && op.kind != OpKind::kDebit) continue;
    if (!op.key.empty() && !seen.insert(op.key).second) {
      const Amount v = op.kind == OpKind::kDebit ? op.amount : -op.amount;
      m.voids[op.dot.origin] += v;
      if (v > 0) m.refunds += v;
      continue;
    }
    if (op.kind == OpKind::kCredit) {
      m.balance += op.amount;
      if (m.balance >= 0) below = false;
    } else {
      const Amount before = m.balance;
      m.balance -= op.amount;
      if (before >= 0 && m.balance < 0) {
        const Amount over = -m.balance;
        const Amount fee = p.flat + (over * static_cast<Amount>(p.bps) + 9999) / 10000;
        m.fees[op.dot.origin] += fee;
        m.balance -= fee;
        ++m.episodes;
        below = true;
      }
    }
  }
  (void)below;
  return m;
}

}  // namespace

TEST_CASE("the same op set in any arrival order, with duplicates, reconciles identically",
          "[reconcile]") {
  for (int c = 0; c < 300; ++c) {
    TALLY_INFO_SEED(c);
    std::mt19937_64 rng(CaseSeed(c));
    const RegionId n = 2 + static_cast<RegionId>(rng() % 6);
    const FeePolicy policy{static_cast<Amount>(rng() % 50),
                           static_cast<std::uint32_t>(rng() % 3000)};
    const std::vector<Op> ops = RandomOps(rng, n);
    const Reconciliation ref = Reconcile(policy, n, ops);

    for (int perm = 0; perm < 30; ++perm) {
      std::vector<Op> arrival = ops;
      const std::size_t dups = rng() % (ops.size() + 1);
      for (std::size_t i = 0; i < dups; ++i) arrival.push_back(ops[rng() % ops.size()]);
      std::shuffle(arrival.begin(), arrival.end(), rng);
      const Reconciliation r = Reconcile(policy, n, arrival);
      REQUIRE(r.state == ref.state);
      REQUIRE(r.events == ref.events);
    }

    // Independent model of the rules.
    const Model m = Replay(policy, n, ops);
    REQUIRE(ref.state.balance == m.balance);
    REQUIRE(ref.state.fees == m.fees);
    REQUIRE(ref.state.voids == m.voids);
    REQUIRE(ref.state.refunds == m.refunds);
    REQUIRE(ref.state.episodes == m.episodes);
    REQUIRE(ref.state.ops == ops.size());

    // Conservation and booking: balance = Σcredits − Σdebits − fees + voids; every derived entry
    // is booked to the origin of the op it concerns; events come in canonical order.
    Amount credits = 0, debits = 0;
    for (const Op& op : ops) {
      if (op.kind == OpKind::kCredit) credits += op.amount;
      if (op.kind == OpKind::kDebit) debits += op.amount;
    }
    REQUIRE(ref.state.balance ==
            credits - debits - ref.state.total_fees() + ref.state.total_voids());
    std::vector<Amount> fees(n, 0), voids(n, 0);
    Amount refunds = 0;
    std::uint64_t fee_events = 0;
    for (std::size_t i = 0; i < ref.events.size(); ++i) {
      const DerivedEvent& e = ref.events[i];
      if (i > 0) REQUIRE(ref.events[i - 1].op < e.op);
      if (e.kind == DerivedKind::kOverdraftFee) {
        REQUIRE(e.op_kind == OpKind::kDebit);
        REQUIRE(e.amount == policy.flat + (e.overdrawn * policy.bps + 9999) / 10000);
        REQUIRE(e.overdrawn > 0);
        REQUIRE(e.overdrawn <= e.op_amount);
        REQUIRE(e.balance_after == -e.overdrawn - e.amount);
        fees[e.op.origin] += e.amount;
        ++fee_events;
      } else {
        REQUIRE(e.amount == (e.op_kind == OpKind::kDebit ? e.op_amount : -e.op_amount));
        voids[e.op.origin] += e.amount;
        if (e.amount > 0) refunds += e.amount;
      }
    }
    REQUIRE(fees == ref.state.fees);
    REQUIRE(voids == ref.state.voids);
    REQUIRE(refunds == ref.state.refunds);
    REQUIRE(fee_events == ref.state.episodes);
  }
}

TEST_CASE("ReplayStep over canonical order equals Reconcile", "[reconcile]") {
  for (int c = 0; c < 100; ++c) {
    TALLY_INFO_SEED(c);
    std::mt19937_64 rng(CaseSeed(c));
    const RegionId n = 2 + static_cast<RegionId>(rng() % 6);
    const FeePolicy policy{static_cast<Amount>(rng() % 50),
                           static_cast<std::uint32_t>(rng() % 3000)};
    std::vector<Op> ops = RandomOps(rng, n);
    const Reconciliation ref = Reconcile(policy, n, ops);
    std::sort(ops.begin(), ops.end(),
              [](const Op& a, const Op& b) { return a.canonical() < b.canonical(); });
    ReplayState s(n);
    std::vector<DerivedEvent> ev;
    std::set<std::string> seen;
    for (const Op& op : ops) {
      const bool voided = !op.key.empty() && !seen.insert(op.key).second;
      ReplayStep(policy, ReplayEntry{op.canonical(), op.kind, op.amount, voided}, &s, &ev);
    }
    REQUIRE(s == ref.state);
    REQUIRE(ev == ref.events);
  }
}
