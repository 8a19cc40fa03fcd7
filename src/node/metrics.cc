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

void RenderNodeMetrics(const NodeSample& s, std::string* out_ptr) {
  std::string& out = *out_ptr;
  const Replica& replica = *s.replica;
  const std::vector<std::string>& names = *s.regions;
  const std::uint64_t now = s.now_ms;
  const RegionId n = static_cast<RegionId>(names.size());
  auto peer_label = [&](RegionId r) { return fmt::format("peer=\"{}\"", names[r]); };
  // One metric with a sample per outbound gossip link (peers without one have none).
  auto per_link = [&](const char* name, const char* type, const char* help, auto value) {
    AppendHelp(name, type, help, &out);
    for (RegionId r = 0; r < n; ++r)
      if (r < s.links.size() && s.links[r])
        AppendSample(name, peer_label(r), static_cast<double>(value(*s.links[r])), &out);
  };

  AppendHelp("tally_ops_persisted_total", "counter", "Op records made durable (local and remote).",
             &out);
  AppendSample("tally_ops_persisted_total", "", static_cast<double>(s.ops_persisted), &out);
  AppendHelp("tally_ops_applied", "gauge", "Ops applied per origin region (the version vector).",
             &out);
  const VersionVector& applied = replica.applied();
  for (RegionId r = 0; r < n; ++r)
    AppendSample("tally_ops_applied", fmt::format("origin=\"{}\"", names[r]),
                 static_cast<double>(applied.get(r)), &out);

  const ReplicaStats& st = replica.stats();
  const std::pair<std::string_view, std::uint64_t> stats[] = {
      {"commands", st.commands},
      {"accepted", st.accepted},
      {"rejected", st.rejected},
      {"overdraft_debits", st.overdraft_debits},
      {"replays", st.replays},
      {"rights_requests_sent", st.rights_requests_sent},
      {"rights_granted", st.rights_granted},
      {"rebalance_transfers", st.rebalance_transfers},
      {"remote_ops_applied", st.remote_ops_applied},
      {"duplicate_ops", st.duplicate_ops},
      {"ops_sent", st.ops_sent},
      {"messages_sent", st.messages_sent},
      {"snapshots_sent", st.snapshots_sent},
      {"clock_ahead_reports", st.clock_ahead_reports},
      {"lost_history_ops", st.lost_history_ops},
      {"idempotency_keys_expired", st.idempotency_keys_expired},
  };
  for (const auto& [name, value] : stats) {
    const std::string metric = fmt::format("tally_replica_{}_total", name);
    AppendHelp(metric, "counter", "Replica statistic (core ReplicaStats).", &out);
    AppendSample(metric, "", static_cast<double>(value), &out);
  }
  AppendHelp("tally_replica_buffered_ops", "gauge",
             "Remote ops held back waiting for a gap to fill.", &out);
  AppendSample("tally_replica_buffered_ops", "", static_cast<double>(st.buffered_ops), &out);
  AppendHelp("tally_idempotency_keys", "gauge",
             "Idempotency keys held (inside their retention window, or not yet swept).", &out);
  AppendSample("tally_idempotency_keys", "", static_cast<double>(st.idempotency_keys), &out);
  AppendHelp("tally_idempotency_index_bytes", "gauge", "Memory the idempotency index holds.", &out);
  AppendSample("tally_idempotency_index_bytes", "", static_cast<double>(st.idempotency_index_bytes),
               &out);
  AppendHelp("tally_accounts", "gauge", "Accounts held.", &out);
  AppendSample("tally_accounts", "", static_cast<double>(replica.AccountIds().size()), &out);
  const Hlc frontier = replica.frontier();
  // Against our HLC, not the wall clock: a region whose wall clock is behind its peers' has a
  // frontier (their timestamps) ahead of it, and the lag would go negative.
  const Hlc hlc_now = replica.clock();
  AppendHelp("tally_frontier_lag_seconds", "gauge",
             "How far the stable frontier (final prefix) trails this region's HLC.", &out);
  AppendSample(
      "tally_frontier_lag_seconds", "",
      frontier.is_zero() || hlc_now < frontier
          ? 0.0
          : (static_cast<double>(hlc_now.wall_ms()) - static_cast<double>(frontier.wall_ms())) /
                1000.0,
      &out);
  AppendHelp("tally_store_busy_seconds_total", "counter",
             "Time the storage thread spent writing (encoding and the synced LevelDB write).",
             &out);
  AppendSample("tally_store_busy_seconds_total", "", static_cast<double>(s.store_busy_us) / 1e6,
               &out);
  AppendHelp("tally_store_idle_seconds_total", "counter",
             "Time the storage thread waited with nothing to write. Near zero under load: the disk "
             "is the bottleneck.",
             &out);
  AppendSample("tally_store_idle_seconds_total", "", static_cast<double>(s.store_idle_us) / 1e6,
               &out);
  AppendHelp("tally_pending_requests", "gauge", "Commands submitted and not yet answered.", &out);
  AppendSample("tally_pending_requests", "", static_cast<double>(s.pending_requests), &out);
  AppendHelp("tally_http_connections", "gauge", "Open client connections (streams excluded).",
             &out);
  AppendSample("tally_http_connections", "", static_cast<double>(s.http_connections), &out);
  AppendHelp("tally_config_reloads_total", "counter",
             "SIGHUP reloads of tokens, roles and certificates: applied, or refused (the running "
             "config kept).",
             &out);
  AppendSample("tally_config_reloads_total", "result=\"ok\"", static_cast<double>(s.reloads_ok),
               &out);
  AppendSample("tally_config_reloads_total", "result=\"refused\"",
               static_cast<double>(s.reloads_refused), &out);
  AppendHelp("tally_history_lines_pruned_total", "counter",
             "Statement lines deleted from the history store past history.retention_ms.", &out);
  AppendSample("tally_history_lines_pruned_total", "", static_cast<double>(s.history_lines_pruned),
               &out);
  AppendHelp("tally_http_connections_refused_total", "counter",
             "Client connections closed before their first request, by reason (tls_handshake, "
             "plain_http on the HTTPS port, handshake_timeout).",
             &out);
  for (const auto& [reason, count] : s.client_refusals)
    AppendSample("tally_http_connections_refused_total", fmt::format("reason=\"{}\"", reason),
                 static_cast<double>(count), &out);
  AppendHelp("tally_streams", "gauge", "Open WebSocket streams.", &out);
  AppendSample("tally_streams", "", static_cast<double>(s.streams), &out);

  std::vector<PeerView> peers = replica.Peers(now);
  per_link("tally_peer_connected", "gauge", "1 when our outbound gossip link to the peer is up.",
           [](const LinkSample& l) { return l.connected ? 1 : 0; });
  AppendHelp("tally_peer_reachable", "gauge",
             "1 when the replica heard the peer within peer_timeout_ms.", &out);
  for (const PeerView& p : peers)
    if (p.region != s.self && p.region < n)
      AppendSample("tally_peer_reachable", peer_label(p.region), p.reachable ? 1 : 0, &out);
  AppendHelp("tally_peer_ops_behind", "gauge",
             "Ops we hold that the peer has not acknowledged (peer lag).", &out);
  for (const PeerView& p : peers)
    if (p.region != s.self && p.region < n)
      AppendSample("tally_peer_ops_behind", peer_label(p.region), static_cast<double>(p.ops_behind),
                   &out);
  AppendHelp("tally_peer_clock_offset_seconds", "gauge",
             "Peer wall clock minus ours, at its last heartbeat.", &out);
  for (const PeerView& p : peers)
    if (p.region != s.self && p.region < n)
      AppendSample("tally_peer_clock_offset_seconds", peer_label(p.region),
                   static_cast<double>(p.clock_offset_ms) / 1000.0, &out);
  AppendHelp("tally_peer_last_heard_seconds", "gauge", "Seconds since the peer was last heard.",
             &out);
  for (const PeerView& p : peers)
    if (p.region != s.self && p.region < n && p.last_heard_ms)
      AppendSample("tally_peer_last_heard_seconds", peer_label(p.region),
                   (static_cast<double>(now) - static_cast<double>(p.last_heard_ms)) / 1000.0,
                   &out);

  per_link("tally_gossip_bytes_sent_total", "counter", "Gossip bytes written to the peer.",
           [](const LinkSample& l) { return l.bytes_sent; });
  per_link("tally_gossip_bytes_received_total", "counter", "Gossip bytes read from the peer.",
           [](const LinkSample& l) { return l.bytes_received; });
  per_link("tally_gossip_messages_dropped_total", "counter",
           "Messages to the peer dropped (link down, handshake pending or send queue full); the "
           "replica re-sends what is not acknowledged.",
           [](const LinkSample& l) { return l.dropped; });
  per_link("tally_gossip_connects_total", "counter", "Outbound gossip connections established.",
           [](const LinkSample& l) { return l.connects; });
  AppendHelp(
      "tally_gossip_refused_total", "counter",
      "Peer connections refused at the handshake (TLS, certificate, wrong cluster, region or "
      "protocol), both directions.",
      &out);
  AppendSample("tally_gossip_refused_total", "", static_cast<double>(s.gossip_refused), &out);
  AppendHelp("tally_peer_connections_refused_total", "counter",
             "Connections to the peer port this region closed, by reason (handshake deadline, "
             "bounds on connections awaiting their Hello, receive budget, bad handshake or frame, "
             "TLS handshake, missing, untrusted or expired certificate, certificate region).",
             &out);
  for (const auto& [reason, count] : s.refusals)
    AppendSample("tally_peer_connections_refused_total", fmt::format("reason=\"{}\"", reason),
                 static_cast<double>(count), &out);
  AppendHelp("tally_peer_inbound_connections", "gauge",
             "Open connections to the peer port: state=\"handshake\" (Hello not yet accepted) or "
             "\"verified\" (a region's).",
             &out);
  AppendSample("tally_peer_inbound_connections", "state=\"handshake\"",
               static_cast<double>(s.inbound_handshaking), &out);
  AppendSample("tally_peer_inbound_connections", "state=\"verified\"",
               static_cast<double>(s.inbound_verified), &out);
  AppendHelp("tally_peer_receive_buffered_bytes", "gauge",
             "Bytes of partly received frames held across connections to the peer port (at most "
             "gossip.receive_buffer_bytes).",
             &out);
  AppendSample("tally_peer_receive_buffered_bytes", "",
               static_cast<double>(s.inbound_buffered_bytes), &out);
  AppendHelp("tally_notices_total", "counter", "Replica notices by kind.", &out);
  AppendSample("tally_notices_total", "kind=\"clock_ahead\"",
               static_cast<double>(s.notices_clock_ahead), &out);
  AppendSample("tally_notices_total", "kind=\"peer_refused\"",
               static_cast<double>(s.notices_peer_refused), &out);
}

}  // namespace tally::node
