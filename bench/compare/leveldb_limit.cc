// tally-compare-leveldb: the raw rate of synced LevelDB write batches on this machine, the
// physical limit for a durable local decision.
//
// A durable decision costs at least one synced write of what it decided; a server that answers
// only after its sync can therefore never beat "synced batches per second × decisions per batch".
// With C clients each waiting for its answer, a batch holds at most C decisions, so the figure at
// batch size C bounds any such server driven by C clients on this disk. tally is compared with it
// by bench/compare/run.
//
// Each decision writes what tallyd's store writes for a debit: an op record (13-byte key, ~48-byte
// value) and an idempotency record (~40-byte key, ~24-byte value), with tallyd's LevelDB options
// (paranoid checks, 16 MiB write buffer). One thread, one batch in flight, `sync = true`.
//
//   tally-compare-leveldb --dir DIR --seconds S --batch 1,8,64
//
// For each batch size, prints one JSON line:
//   {"batch":64,"batches":…,"decisions_per_s":…,"syncs_per_s":…,"p50_ms":…,"p99_ms":…}
// where p50/p99 are the latencies of one synced batch write. DIR is emptied before each size.
// Exit 0 ok, 1 a LevelDB error, 2 bad arguments.

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxBatch = 100000;
constexpr double kMaxSeconds = 3600;

struct Args {
  std::string dir;
  double seconds = 5;
  std::vector<int> batches;
};

bool ParseBatches(const std::string& list, std::vector<int>* out) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(pos, comma - pos);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > kMaxBatch) return false;
    out->push_back(static_cast<int>(v));
    pos = comma + 1;
  }
  return !out->empty();
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "tally-compare-leveldb: %s\n"
               "usage: tally-compare-leveldb --dir DIR [--seconds S] [--batch N[,N...]]\n",
               why);
  return 2;
}

// Big-endian so op keys sort by sequence, as tallyd's do.
void AppendFixed64(std::string* s, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) s->push_back(static_cast<char>(v >> shift));
}

// One decision's records, varied per sequence number so no two batches are alike.
void AddDecision(leveldb::WriteBatch* wb, std::uint64_t seq) {
  std::string op_key = "O";
  op_key.push_back('\0');
  op_key.append(3, '\0');
  AppendFixed64(&op_key, seq);
  std::string op_value(48, '\0');
  for (std::size_t i = 0; i < op_value.size(); ++i)
    op_value[i] = static_cast<char>((seq * 131 + i * 7) & 0xff);
  char key_record[64];
  std::snprintf(key_record, sizeof key_record, "Kacct-%06llu\x01idem-%020llu",
                static_cast<unsigned long long>(seq % 100000),
                static_cast<unsigned long long>(seq));
  std::string key_value(24, '\0');
  for (std::size_t i = 0; i < 8; ++i) key_value[i] = static_cast<char>(seq >> (8 * i));
  wb->Put(op_key, op_value);
  wb->Put(key_record, key_value);
}

double Percentile(std::vector<double>* sorted_ms, double q) {
  if (sorted_ms->empty()) return 0;
  std::size_t i = static_cast<std::size_t>(q * static_cast<double>(sorted_ms->size() - 1) + 0.5);
  return (*sorted_ms)[std::min(i, sorted_ms->size() - 1)];
}

int RunOne(const Args& args, int batch) {
  std::error_code ec;
  std::filesystem::remove_all(args.dir, ec);
  if (ec) {
    std::fprintf(stderr, "tally-compare-leveldb: cannot empty %s: %s\n", args.dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  leveldb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.write_buffer_size = 16 << 20;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, args.dir, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "tally-compare-leveldb: open %s: %s\n", args.dir.c_str(),
                 s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<leveldb::DB> db(raw);
  leveldb::WriteOptions wo;
  wo.sync = true;

  std::vector<double> latencies_ms;
  std::uint64_t seq = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(args.seconds));
  auto now = start;
  while (now < deadline) {
    leveldb::WriteBatch wb;
    for (int i = 0; i < batch; ++i) AddDecision(&wb, ++seq);
    const auto t0 = Clock::now();
    s = db->Write(wo, &wb);
    now = Clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "tally-compare-leveldb: write: %s\n", s.ToString().c_str());
      return 1;
    }
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - t0).count());
  }
  const double elapsed_s = std::chrono::duration<double>(now - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double batches = static_cast<double>(latencies_ms.size());
  std::printf(
      "{\"batch\":%d,\"batches\":%.0f,\"seconds\":%.3f,\"decisions_per_s\":%.1f,"
      "\"syncs_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      batch, batches, elapsed_s, batches * batch / elapsed_s, batches / elapsed_s,
      Percentile(&latencies_ms, 0.50), Percentile(&latencies_ms, 0.99));
  std::fflush(stdout);
  db.reset();
  std::filesystem::remove_all(args.dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--dir") {
      args.dir = v;
    } else if (a == "--seconds") {
      char* end = nullptr;
      args.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(args.seconds > 0) || args.seconds > kMaxSeconds)
        return Usage("--seconds must be a number in (0, 3600]");
    } else if (a == "--batch") {
      if (!ParseBatches(v, &args.batches))
        return Usage("--batch must be a list of integers in 1..100000");
    } else {
      return Usage(("unknown option " + a).c_str());
    }
  }
  if (args.dir.empty()) return Usage("--dir is required");
  if (args.batches.empty()) args.batches = {1, 64};
  for (int batch : args.batches) {
    const int rc = RunOne(args, batch);
    if (rc != 0) return rc;
  }
  return 0;
}
