// Metrics: the counters and histograms tallyd exports on GET /metrics, in the Prometheus text
// format (version 0.0.4). What they mean is listed in docs/operations.md, "Metrics".
//
// Metrics holds what the HTTP and storage paths record; RenderNodeMetrics renders the rest from a
// NodeSample, the node's counters and gauges as the io thread read them for one scrape.
//
// Not thread-safe: only the io thread records and renders (the storage thread's measurements
// travel back to it with the commit's completion).

#ifndef TALLY_NODE_METRICS_H_
#define TALLY_NODE_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/replica.h"
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

// One peer region's outbound link, as tally_peer_connected and tally_gossip_*_total{peer} show it.
struct LinkSample {
  bool connected = false;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;  // over this link and the peer's connections to our port
  std::uint64_t dropped = 0;
  std::uint64_t connects = 0;
};

// The node's side of a scrape: everything GET /metrics shows besides Metrics' own families.
struct NodeSample {
  const Replica* replica = nullptr;                   // its vectors, stats, frontier, peers
  const std::vector<std::string>* regions = nullptr;  // names, indexed by RegionId
  RegionId self = 0;
  std::uint64_t now_ms = 0;  // monotonic, as the replica is given
  std::uint64_t ops_persisted = 0;
  std::uint64_t store_busy_us = 0;
  std::uint64_t store_idle_us = 0;
  std::size_t pending_requests = 0;
  std::size_t http_connections = 0;
  // tally_http_connections_refused_total, in ClientRefusal order, with their labels.
  std::vector<std::pair<std::string_view, std::uint64_t>> client_refusals;
  std::size_t streams = 0;
  std::vector<std::optional<LinkSample>> links;  // indexed by region; empty for self
  std::uint64_t gossip_refused = 0;              // handshakes refused, both directions
  // tally_peer_connections_refused_total, in PeerRefusal order, with their labels.
  std::vector<std::pair<std::string_view, std::uint64_t>> refusals;
  std::size_t inbound_handshaking = 0;
  std::size_t inbound_verified = 0;
  std::size_t inbound_buffered_bytes = 0;
  std::uint64_t notices_clock_ahead = 0;
  std::uint64_t notices_peer_refused = 0;
  std::uint64_t reloads_ok = 0;            // SIGHUP reloads applied
  std::uint64_t reloads_refused = 0;       // and refused (the running config kept)
  std::uint64_t history_lines_pruned = 0;  // statement lines past history.retention_ms deleted
};

// Appends the replica, storage thread, connection and gossip families.
void RenderNodeMetrics(const NodeSample& sample, std::string* out);

// Helpers for families rendered elsewhere (gossip, replica gauges).
void AppendHelp(std::string_view name, std::string_view type, std::string_view help,
                std::string* out);
void AppendSample(std::string_view name, std::string_view labels, double value, std::string* out);

}  // namespace tally::node

#endif  // TALLY_NODE_METRICS_H_
