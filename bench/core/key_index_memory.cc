// Memory of the idempotency index under a steady keyed load (issue 9, item 3): one region, a new
// key per op at a fixed rate of virtual time, retention R. Prints, every R of virtual time, the
// keys held, the index bytes (ReplicaStats::idempotency_index_bytes) and bytes per key, and the
// process RSS. Measured, never asserted. Usage: tally-bench-keys [ops_per_s] [retention_s]
// [windows]

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/replica.h"

namespace {

long RssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tally;
  const std::uint64_t per_s = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  const std::uint64_t retention_s = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10;
  const std::uint64_t windows = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 5;
  ReplicaOptions o;
  o.cluster_id = "bench";
  o.regions = {"eu"};
  o.idempotency_retention_ms = retention_s * 1000;
  std::uint64_t now = 1'700'000'000'000;  // the monotonic and the wall clock, alike here
  VariableWallClock wall(&now);
  Replica r(o, wall);
  Effects e;
  AccountConfig c;
  c.id = "acct";
  c.currency = "EUR";
  r.Submit(Command{1, OpenAccount{c}}, now, &e);
  std::printf("ops/s %llu, retention %llu s\n", static_cast<unsigned long long>(per_s),
              static_cast<unsigned long long>(retention_s));
  std::printf("%8s %10s %12s %10s %10s\n", "t (s)", "keys", "index B", "B/key", "RSS KB");
  std::uint64_t id = 1;
  const std::uint64_t per_ms = per_s / 1000;
  for (std::uint64_t ms = 1; ms <= windows * retention_s * 1000; ++ms) {
    now += 1;
    for (std::uint64_t i = 0; i < per_ms; ++i) {
      e.Clear();
      r.Submit(Command{++id, Credit{"acct", 1, "k" + std::to_string(id)}}, now, &e);
    }
    e.Clear();
    r.Tick(now, &e);
    if (ms % (retention_s * 1000) == 0) {
      const ReplicaStats& st = r.stats();
      std::printf("%8llu %10llu %12llu %10.1f %10ld\n", static_cast<unsigned long long>(ms / 1000),
                  static_cast<unsigned long long>(st.idempotency_keys),
                  static_cast<unsigned long long>(st.idempotency_index_bytes),
                  static_cast<double>(st.idempotency_index_bytes) /
                      static_cast<double>(st.idempotency_keys ? st.idempotency_keys : 1),
                  RssKb());
    }
  }
  return 0;
}
