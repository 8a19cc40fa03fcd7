// tally-bench-wire: size and speed of the gossip encoding of op batches.
//
// A batch is what a region pushes to a peer: 256 debit ops of one origin with consecutive seqs,
// 12-byte account ids, 20-byte idempotency keys, HLCs a few ms apart and amounts of 1 000 to
// 100 000 minor units. Reported per variant:
//   bytes_per_op      envelope bytes / ops (the budget is 64, idempotency key included)
//   items_per_second  ops encoded (or decoded) per second, validation included
// Variants: every op on a different account (the worst case for size), and 32 hot accounts
// (ids repeat, so the batch refers back to them); debits with a client's note (issue 14), to show
// what a note costs (and that an op without one costs what it did). Seeded: the same figures run
// to run.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace {

using tally::Amount;
using tally::Hlc;
using tally::Message;
using tally::Op;
using tally::OpBatch;
using tally::OpKind;

constexpr std::size_t kBatchOps = 256;
constexpr std::uint64_t kSeed = 20261121;

std::string Digits(std::mt19937_64& rng, std::size_t n, std::string_view alphabet) {
  std::string s(n, ' ');
  for (char& c : s) c = alphabet[rng() % alphabet.size()];
  return s;
}

// `accounts` distinct account ids; 0 means every op gets its own. Debits, or with `transfers`
// transfers between accounts whose payee is another account of the pool.
// With `holds` 1, holds instead (a 10-minute expiry); 2, captures of holds of any region; 3, budget
// debits of a cap and its parent (two payers, the first the account named). With `note` 1, every op
// carries a 24-byte memo; 2, that memo and two metadata pairs (30 bytes of keys and values).
OpBatch DebitBatch(std::size_t accounts, bool transfers = false, int holds = 0, int note = 0) {
  std::mt19937_64 rng(kSeed);
  std::vector<std::string> pool;
  const std::size_t pool_size = accounts == 0 ? kBatchOps : accounts;
  for (std::size_t i = 0; i < pool_size; ++i)
    pool.push_back("acct-" + Digits(rng, 7, "0123456789"));
  OpBatch batch;
  std::uint64_t wall_ms = 1'763'700'000'000;  // November 2025
  for (std::size_t i = 0; i < kBatchOps; ++i) {
    Op op;
    op.dot = {2, 1'000'000 + i};
    wall_ms += 1 + rng() % 5;
    op.hlc = Hlc::Make(wall_ms, rng() % 4 == 0 ? 1 : 0);
    op.kind = transfers ? OpKind::kTransfer : OpKind::kDebit;
    const std::size_t payer = accounts == 0 ? i : rng() % pool.size();
    op.account = pool[payer];
    if (transfers) op.to_account = pool[(payer + 1 + rng() % (pool.size() - 1)) % pool.size()];
    op.amount = static_cast<Amount>(1000 + rng() % 99'001);
    op.key = "ord-" + Digits(rng, 16, "0123456789abcdef");  // 20 bytes
    if (holds == 1) {
      op.kind = OpKind::kHold;
      op.expires_ms = wall_ms + 600'000;
    } else if (holds == 2) {
      op.kind = OpKind::kCapture;
      op.hold = tally::Dot{static_cast<tally::RegionId>(rng() % 3), 900'000 + rng() % 100'000};
      op.held = op.amount + static_cast<Amount>(rng() % 1000);
      op.key = tally::HoldKey(op.hold);
    } else if (holds == 3) {
      op.kind = OpKind::kBudgetDebit;
      op.payers = {op.account, pool[(payer + 1) % pool.size()]};
    }
    if (note >= 1) op.memo = "invoice " + Digits(rng, 16, "0123456789");  // 24 bytes
    if (note >= 2)
      op.metadata = {{"order", "o-" + Digits(rng, 8, "0123456789")},
                     {"channel", "web" + Digits(rng, 2, "0123456789")}};
    batch.ops.push_back(std::move(op));
  }
  return batch;
}

void Encode(benchmark::State& state, std::size_t accounts, bool transfers = false, int holds = 0,
            int note = 0) {
  const Message m = DebitBatch(accounts, transfers, holds, note);
  std::string bytes;
  for (auto _ : state) {
    tally::Status s = tally::codec::EncodeMessage(m, &bytes);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatchOps));
  state.counters["bytes_per_op"] = static_cast<double>(bytes.size()) / kBatchOps;
  state.counters["batch_bytes"] = static_cast<double>(bytes.size());
}

void Decode(benchmark::State& state, std::size_t accounts, bool transfers = false) {
  std::string bytes;
  if (!tally::codec::EncodeMessage(DebitBatch(accounts, transfers), &bytes).ok()) {
    state.SkipWithError("encode failed");
    return;
  }
  Message m;
  for (auto _ : state) {
    tally::Status s = tally::codec::DecodeMessage(bytes, &m);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(&m);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatchOps));
  state.counters["bytes_per_op"] = static_cast<double>(bytes.size()) / kBatchOps;
}

// For comparison: the self-contained storage record of one of those ops (not batched).
void StoredOp(benchmark::State& state) {
  const OpBatch batch = DebitBatch(0);
  std::size_t bytes = 0, i = 0;
  for (auto _ : state) {
    std::string r = tally::codec::EncodeOp(batch.ops[i++ % kBatchOps]);
    bytes = r.size();
    benchmark::DoNotOptimize(r.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["bytes_per_op"] = static_cast<double>(bytes);
}

BENCHMARK_CAPTURE(Encode, debits_distinct_accounts, 0);
BENCHMARK_CAPTURE(Encode, debits_32_hot_accounts, 32);
BENCHMARK_CAPTURE(Decode, debits_distinct_accounts, 0);
BENCHMARK_CAPTURE(Decode, debits_32_hot_accounts, 32);
BENCHMARK_CAPTURE(Encode, transfers_distinct_accounts, 0, true);
BENCHMARK_CAPTURE(Encode, transfers_32_hot_accounts, 32, true);
BENCHMARK_CAPTURE(Decode, transfers_32_hot_accounts, 32, true);
BENCHMARK_CAPTURE(Encode, holds_32_hot_accounts, 32, false, 1);
BENCHMARK_CAPTURE(Encode, captures_32_hot_accounts, 32, false, 2);
BENCHMARK_CAPTURE(Encode, budget_debits_32_hot_accounts, 32, false, 3);
BENCHMARK_CAPTURE(Encode, debits_memo_32_hot_accounts, 32, false, 0, 1);
BENCHMARK_CAPTURE(Encode, debits_memo_metadata_32_hot_accounts, 32, false, 0, 2);
BENCHMARK(StoredOp);

}  // namespace

BENCHMARK_MAIN();
