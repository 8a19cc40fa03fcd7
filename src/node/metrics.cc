#include "node/metrics.h"

#include <fmt/format.h>

namespace tally::node {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(std::string_view name, std::string_view labels, std::string* out) const {
  auto it = std::back_inserter(*out);
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    fmt::format_to(it, "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i],
                   cumulative);
  }
  cumulative += counts_.back();
  fmt::format_to(it, "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  const std::string braces = labels.empty() ? "" : fmt::format("{{{}}}", labels);
  fmt::format_to(it, "{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,     2.5,   5};
}

std::vector<double> SizeBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

Metrics::Metrics()
    : latency_(kRouteCount, Histogram(LatencyBuckets())),
      commit_ops_(SizeBuckets()),
      commit_requests_(SizeBuckets()),
      commit_seconds_(LatencyBuckets()) {}

void Metrics::CountRequest(Route route, int http_status, double seconds) {
  ++requests_[{static_cast<int>(route), http_status}];
  latency_[static_cast<std::size_t>(route)].Observe(seconds);
}

void Metrics::ObserveCommit(std::size_t ops, std::size_t completions, std::size_t bytes,
                            std::uint64_t sync_us) {
  ++commits_;
  commit_bytes_ += bytes;
  commit_ops_.Observe(static_cast<double>(ops));
  commit_requests_.Observe(static_cast<double>(completions));
  commit_seconds_.Observe(static_cast<double>(sync_us) / 1e6);
}

void AppendHelp(std::string_view name, std::string_view type, std::string_view help,
                std::string* out) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void AppendSample(std::string_view name, std::string_view labels, double value, std::string* out) {
  if (labels.empty()) {
    fmt::format_to(std::back_inserter(*out), "{} {}\n", name, value);
  } else {
    fmt::format_to(std::back_inserter(*out), "{}{{{}}} {}\n", name, labels, value);
  }
}

void Metrics::Render(std::string* out) const {
  AppendHelp("tally_http_requests_total", "counter",
             "Client API requests by route and HTTP status.", out);
  for (const auto& [key, n] : requests_) {
    AppendSample("tally_http_requests_total",
                 fmt::format("route=\"{}\",code=\"{}\"", RouteName(static_cast<Route>(key.first)),
                             key.second),
                 static_cast<double>(n), out);
  }
  AppendHelp("tally_http_request_duration_seconds", "histogram",
             "Time from a request's arrival to its answer being ready (durable), by route.", out);
  for (int r = 0; r < kRouteCount; ++r) {
    if (latency_[r].count() == 0) continue;
    latency_[r].Render("tally_http_request_duration_seconds",
                       fmt::format("route=\"{}\"", RouteName(static_cast<Route>(r))), out);
  }
  AppendHelp("tally_store_commits_total", "counter",
             "Synced LevelDB write batches (group commits).", out);
  AppendSample("tally_store_commits_total", "", static_cast<double>(commits_), out);
  AppendHelp("tally_store_bytes_written_total", "counter", "Bytes of synced write batches.", out);
  AppendSample("tally_store_bytes_written_total", "", static_cast<double>(commit_bytes_), out);
  AppendHelp("tally_fsync_batch_ops", "histogram", "Op records per synced write batch.", out);
  commit_ops_.Render("tally_fsync_batch_ops", "", out);
  AppendHelp("tally_fsync_batch_requests", "histogram",
             "Client requests answered by each synced write batch.", out);
  commit_requests_.Render("tally_fsync_batch_requests", "", out);
  AppendHelp("tally_fsync_duration_seconds", "histogram", "Time of each synced LevelDB write.",
             out);
  commit_seconds_.Render("tally_fsync_duration_seconds", "", out);
}

}  // namespace tally::node
