// Disk bytes per statement line (issue 14: "a bound on disk documented and measured"): writes N
// final lines through Store::Write — the path tallyd's folds take — in folds of 1,000, compacts
// the LevelDB fully, and reports (bytes on disk − an empty store's) / N for a few kinds of line.
// Measured, never asserted; docs/operations.md ("Statements: disk") quotes the figures.
// Usage: tally-bench-history [lines] [dir]

#include <leveldb/db.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/persist_batch.h"
#include "node/store.h"

namespace {

namespace fs = std::filesystem;
using namespace tally;

struct Shape {
  const char* name;
  int lines_per_account;  // how the lines spread over accounts
  std::size_t memo_bytes;
  bool transfer;  // a counterparty on every line
};

std::uintmax_t DirBytes(const fs::path& dir) {
  std::uintmax_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// Compacts the whole key range, so what is measured is what the data costs once LevelDB has
// merged it, not its log and level-0 files.
void Compact(const fs::path& dir) {
  leveldb::Options o;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir.string(), &db);
  if (!s.ok()) {
    std::fprintf(stderr, "reopen: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  db->CompactRange(nullptr, nullptr);
  delete db;
}

std::uintmax_t StoreBytes(const fs::path& dir, std::size_t n, const Shape& shape) {
  fs::remove_all(dir);
  std::unique_ptr<node::Store> store;
  const node::StoreIdentity id{"bench", "eu", {"eu", "us", "ap"}};
  if (Status s = node::Store::Open(dir.string(), id, &store); !s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  std::uint64_t seq = 0, rng = 88172645463325252ull;
  Amount balance = 1'000'000'000;
  for (std::size_t done = 0; done < n;) {
    PersistBatch batch;
    Fold fold;
    for (int i = 0; i < 1000 && done < n; ++i, ++done) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      StatementLine l;
      l.account = "acct-" + std::to_string(100000 + done / shape.lines_per_account);
      l.key = CanonicalKey{Hlc::Make(1'796'454'000'000 + done, 0), RegionId(rng % 3), ++seq};
      l.kind = shape.transfer ? OpKind::kTransfer : OpKind::kDebit;
      l.amount = Amount(rng % 100'000) + 1;
      l.change = -l.amount;
      balance -= l.amount;
      l.balance_after = balance;
      l.final = true;
      l.idempotency_key = "order-" + std::to_string(rng % 10'000'000'000ull);  // 16 bytes
      if (shape.transfer) l.counterparty = "acct-" + std::to_string(100000 + rng % 100000);
      // Letters drawn at random: a memo a compressor cannot shrink to nothing.
      for (std::size_t b = 0; b < shape.memo_bytes; ++b)
        l.memo.push_back(char('a' + (rng >> (b % 56)) % 26));
      fold.lines.push_back(std::move(l));
    }
    fold.frontier = Hlc::Make(1'796'454'000'000 + done, 0);
    batch.folds.push_back(std::move(fold));
    const PersistBatch* one[] = {&batch};
    node::WriteStats stats;
    if (Status s = store->Write(one, &stats); !s.ok()) {
      std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  store.reset();
  Compact(dir);
  return DirBytes(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const fs::path dir =
      argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "tally-bench-history";
  const Shape empty{"empty", 1, 0, false};
  const std::uintmax_t base = StoreBytes(dir, 0, empty);
  std::printf("%-44s %12s %10s\n", "lines", "disk bytes", "bytes/line");
  const Shape shapes[] = {
      {"debits, 1,000 lines per account", 1000, 0, false},
      {"debits, 1 line per account", 1, 0, false},
      {"debits with a 24-byte memo, 1,000 per account", 1000, 24, false},
      {"transfers, 1,000 lines per account", 1000, 0, true},
  };
  for (const Shape& s : shapes) {
    const std::uintmax_t bytes = StoreBytes(dir, n, s) - base;
    std::printf("%-44s %12ju %10.1f\n", s.name, bytes, double(bytes) / double(n));
  }
  fs::remove_all(dir);
  return 0;
}
