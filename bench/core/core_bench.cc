// In-memory, single-thread benchmarks of the core (issue 2): local debits decided per second,
// remote ops applied per second, and reconciliation replay per second. Google Benchmark; figures go
// to docs/performance.md. Nothing here is asserted: speed is measured, not tested.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/reconcile.h"
#include "core/replica.h"

namespace tally {
namespace {

constexpr std::uint64_t kStartMs = 1'700'000'000'000;

ReplicaOptions Options(RegionId self) {
  ReplicaOptions o;
  o.cluster_id = "bench";
  o.regions = {"eu", "us", "ap"};
  o.self = self;
  o.rebalance_interval_ms = 0;
  o.heartbeat_interval_ms = 1;
  return o;
}

std::string AccountName(std::size_t i) { return "acct-" + std::to_string(100000 + i); }

// A client's idempotency key: 20 bytes, unique per i (what tallyd receives in a header).
std::string Key(std::uint64_t seed, std::uint64_t i) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string k = "k-0000-0000000000000";
  k[2] = kHex[seed & 15];
  for (int p = 19; p >= 7 && i; --p, i >>= 4) k[p] = kHex[i & 15];
  return k;
}

void OpenFunded(Replica& r, std::size_t accounts, std::uint64_t now) {
  Effects e;
  for (std::size_t i = 0; i < accounts; ++i) {
    AccountConfig c;
    c.id = AccountName(i);
    c.currency = "EUR";
    r.Submit(Command{1, OpenAccount{c}}, now, &e);
    r.Submit(Command{2, Credit{c.id, Amount{1} << 45, ""}}, now, &e);
    e.Clear();
  }
}

// What two live peers that keep up would tell region 0 every millisecond.
void HealthyPeers(Replica& r, std::uint64_t now, Effects* e) {
  for (RegionId p = 1; p <= 2; ++p) {
    Heartbeat hb;
    hb.applied = r.applied();
    hb.entries.push_back(HeartbeatEntry{p, Hlc::Make(now, 0), 0});
    r.OnMessage(p, hb, now, e);
  }
  r.Tick(now, e);
}

// After every 1024th op a healthy cluster: a millisecond passes, the peers heartbeat and ack what
// they have, so the frontier advances and the journal and log are folded and pruned as in
// production.
void EveryKiloOp(Replica& r, std::size_t ops, std::uint64_t* now, Effects* e) {
  if ((ops & 1023) != 0) return;
  ++*now;
  HealthyPeers(r, *now, e);
  e->Clear();
}

// Local debits (or transfers between accounts) with a fresh idempotency key each, against
// `accounts` accounts chosen uniformly (1 = one hot wallet; a transfer's payee is the next account,
// so 2 = one hot pair). Every one is covered by the region's own rights (rule 1), the common case.
void LocalOps(benchmark::State& state, bool transfers) {
  const std::size_t accounts = static_cast<std::size_t>(state.range(0));
  std::uint64_t now = kStartMs;  // the monotonic and the wall clock, alike here
  VariableWallClock wall(&now);
  Replica r(Options(0), wall);
  OpenFunded(r, accounts, kStartMs);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < accounts; ++i) names.push_back(AccountName(i));
  std::mt19937_64 rng(7);
  Effects e;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = rng() % accounts;
    if (transfers) {
      r.Submit(Command{i, Transfer{names[a], names[(a + 1) % accounts], 100, Key(1, i)}}, now, &e);
    } else {
      r.Submit(Command{i, Debit{names[a], 100, Key(1, i)}}, now, &e);
    }
    benchmark::DoNotOptimize(e.completions.back().balance);
    e.Clear();
    EveryKiloOp(r, ++i, &now, &e);
  }
  state.SetItemsProcessed(state.iterations());
}
// Two-phase: a hold with a fresh key, then its capture (two ops, one item), against `accounts`
// accounts; the registry keeps every hold for a key retention after its expiry, as in production.
void BM_LocalHoldCapture(benchmark::State& state) {
  const std::size_t accounts = static_cast<std::size_t>(state.range(0));
  std::uint64_t now = kStartMs;
  VariableWallClock wall(&now);
  Replica r(Options(0), wall);
  OpenFunded(r, accounts, kStartMs);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < accounts; ++i) names.push_back(AccountName(i));
  std::mt19937_64 rng(7);
  Effects e;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = rng() % accounts;
    r.Submit(Command{i, PlaceHold{names[a], 100, Key(1, i), 600000}}, now, &e);
    const Dot hold = e.completions.back().hold;
    r.Submit(Command{i, CaptureHold{hold, 60}}, now, &e);
    benchmark::DoNotOptimize(e.completions.back().balance);
    e.Clear();
    if ((++i & 511) == 0) {
      ++now;
      HealthyPeers(r, now, &e);
      e.Clear();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
// Budget debits (docs/design.md, "Budgets in a hierarchy") against `accounts` children of one
// organisation per 1000 of them, chosen uniformly. With `cap`, each child is a funded cap inside
// its organisation: every debit debits the child and the organisation (two journal entries, two
// counters). Without, each child has no money and asks for a fallback: the organisation pays
// (a debit entry there, a marker in the child).
void BudgetOps(benchmark::State& state, bool cap) {
  const std::size_t accounts = static_cast<std::size_t>(state.range(0));
  const std::size_t orgs = std::max<std::size_t>(1, accounts / 1000);
  std::uint64_t now = kStartMs;
  VariableWallClock wall(&now);
  Replica r(Options(0), wall);
  Effects e;
  for (std::size_t i = 0; i < orgs; ++i) {
    AccountConfig c;
    c.id = "org-" + std::to_string(i);
    c.currency = "EUR";
    r.Submit(Command{1, OpenAccount{c}}, now, &e);
    r.Submit(Command{2, Credit{c.id, Amount{1} << 45, ""}}, now, &e);
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < accounts; ++i) {
    AccountConfig c;
    c.id = AccountName(i);
    c.currency = "EUR";
    c.parent = "org-" + std::to_string(i % orgs);
    c.cap = cap;
    r.Submit(Command{3, OpenAccount{c}}, now, &e);
    if (cap) r.Submit(Command{4, Credit{c.id, Amount{1} << 40, ""}}, now, &e);
    names.push_back(c.id);
  }
  // The credits turn final (spendable by a fallback) once the peers have heard of them.
  for (int t = 0; t < 3; ++t) HealthyPeers(r, ++now, &e);
  e.Clear();
  std::mt19937_64 rng(7);
  std::size_t i = 0;
  for (auto _ : state) {
    Debit d{names[rng() % accounts], 100, Key(1, i)};
    d.fallback = !cap;
    r.Submit(Command{i, std::move(d)}, now, &e);
    benchmark::DoNotOptimize(e.completions.back().balance);
    e.Clear();
    EveryKiloOp(r, ++i, &now, &e);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_LocalCapDebit(benchmark::State& state) { BudgetOps(state, true); }
void BM_LocalFallbackDebit(benchmark::State& state) { BudgetOps(state, false); }
// Every local benchmark runs a fixed 2^20 ops (a second of them at the goal's rate, with its key
// index, log and statement lines growing as they would): an adaptive count would make a faster
// build do more work per run, and the index it probes bigger, than the baseline it is compared
// with. `first` is the hot case's account count; the other run has 100,000.
void LocalRuns(benchmark::internal::Benchmark* b, std::int64_t first) {
  b->Arg(first)->Arg(100000)->Unit(benchmark::kNanosecond)->Iterations(1 << 20);
}
void OneHot(benchmark::internal::Benchmark* b) { LocalRuns(b, 1); }
void HotPair(benchmark::internal::Benchmark* b) { LocalRuns(b, 2); }
BENCHMARK(BM_LocalCapDebit)->Apply(OneHot);
BENCHMARK(BM_LocalFallbackDebit)->Apply(OneHot);

void BM_LocalDebit(benchmark::State& state) { LocalOps(state, false); }
void BM_LocalTransfer(benchmark::State& state) { LocalOps(state, true); }
BENCHMARK(BM_LocalDebit)->Apply(OneHot);
BENCHMARK(BM_LocalTransfer)->Apply(HotPair);
BENCHMARK(BM_LocalHoldCapture)->Apply(OneHot);

// Remote ops applied from gossip batches of 256: region 1's whole stream (opens, credits, then
// debits with keys), recorded from its Effects, applied at a fresh region 0.
void BM_RemoteApply(benchmark::State& state) {
  const std::size_t accounts = static_cast<std::size_t>(state.range(0));
  const std::size_t n = 1 << 20;
  std::uint64_t wall_ms = kStartMs;
  const VariableWallClock wall(&wall_ms);
  std::vector<Op> stream;
  {
    Replica recorder(Options(1), wall);
    Effects e;
    for (std::size_t i = 0; i < accounts; ++i) {
      AccountConfig c;
      c.id = AccountName(i);
      c.currency = "EUR";
      recorder.Submit(Command{1, OpenAccount{c}}, kStartMs, &e);
      recorder.Submit(Command{2, Credit{c.id, Amount{1} << 45, ""}}, kStartMs, &e);
    }
    std::mt19937_64 rng(9);
    for (std::size_t i = 0; i < n; ++i) {
      wall_ms = kStartMs + (i >> 10);
      recorder.Submit(Command{i, Debit{AccountName(rng() % accounts), 100, Key(2, i)}}, wall_ms,
                      &e);
    }
    stream = std::move(e.ops);
  }
  std::vector<OpBatch> batches;
  for (std::size_t i = 0; i < stream.size(); i += 256) {
    OpBatch b;
    b.ops.assign(stream.begin() + i, stream.begin() + std::min(stream.size(), i + 256));
    batches.push_back(std::move(b));
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto target = std::make_unique<Replica>(Options(0), wall);
    Effects e;
    state.ResumeTiming();
    for (const OpBatch& b : batches) {
      target->OnMessage(1, b, kStartMs, &e);
      e.Clear();
    }
    state.PauseTiming();
    target.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(stream.size()));
}
BENCHMARK(BM_RemoteApply)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(3);

// Reconciliation replay: the pure function over an account's op set (sort + replay), with forks.
void BM_Reconcile(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::mt19937_64 rng(11);
  std::vector<Op> ops;
  for (std::size_t i = 0; i < n; ++i) {
    Op op;
    op.dot = Dot{static_cast<RegionId>(i % 3), i / 3 + 1};
    op.hlc = Hlc::Make(kStartMs + i / 3, 0);
    op.account = "acct";
    op.kind = (rng() % 3 == 0) ? OpKind::kCredit : OpKind::kDebit;
    op.amount = 50 + static_cast<Amount>(rng() % 100);
    op.key = "k" + std::to_string(rng() % (n * 9 / 10));  // some keys repeat: voids
    ops.push_back(std::move(op));
  }
  std::shuffle(ops.begin(), ops.end(), rng);
  FeePolicy policy{25, 150};
  for (auto _ : state) {
    Reconciliation r = Reconcile(policy, 3, ops);
    benchmark::DoNotOptimize(r.state.balance);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_Reconcile)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
