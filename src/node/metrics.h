// Metrics: the counters and histograms tallyd exports on GET /metrics, in the Prometheus text
// format (version 0.0.4). What they mean is listed in docs/operations.md, "Metrics".
//
// Not thread-safe: only the io thread records and renders (the storage thread's measurements
// travel back to it with the commit's completion).

#ifndef TALLY_NODE_METRICS_H_
#define TALLY_NODE_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/api.h"

namespace tally::node {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  // Appends name_bucket{labels,le=...}, name_sum and name_count lines. `labels` is "" or
  // `a="b",c="d"`.
  void Render(std::string_view name, std::string_view labels, std::string* out) const;
  std::uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Bucket bounds in seconds for request latencies: 100 µs .. 5 s.
std::vector<double> LatencyBuckets();
// Bucket bounds for batch sizes (ops or requests per synced write): 1 .. 16384.
std::vector<double> SizeBuckets();

class Metrics {
 public:
  Metrics();

  void CountRequest(Route route, int http_status, double seconds);
  void ObserveCommit(std::size_t ops, std::size_t completions, std::size_t bytes,
                     std::uint64_t sync_us);

  // Appends the HTTP and storage families.
  void Render(std::string* out) const;

 private:
  std::map<std::pair<int, int>, std::uint64_t> requests_;  // (route, status) -> count
  std::vector<Histogram> latency_;                         // per route
  Histogram commit_ops_;
  Histogram commit_requests_;
  Histogram commit_seconds_;
  std::uint64_t commits_ = 0;
  std::uint64_t commit_bytes_ = 0;
};

// Helpers for families rendered elsewhere (gossip, replica gauges).
void AppendHelp(std::string_view name, std::string_view type, std::string_view help,
                std::string* out);
void AppendSample(std::string_view name, std::string_view labels, double value, std::string* out);

}  // namespace tally::node

#endif  // TALLY_NODE_METRICS_H_
