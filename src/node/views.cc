#include "node/views.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "node/api.h"

namespace tally::node {

namespace {

using nlohmann::json;

std::string RegionName(const RegionNames& regions, RegionId r) {
  return r < regions.size() ? regions[r] : "r" + std::to_string(r);
}

json WaitFor(const std::vector<RegionId>& wait_for, const RegionNames& regions) {
  json names = json::array();
  for (RegionId r : wait_for) names.push_back(RegionName(regions, r));
  return names;
}

// `,"memo":"…","metadata":{"k":"v",…}`, each only when set; the pairs in their order.
void AppendNoteJson(const std::string& memo, const Metadata& metadata, std::string* out) {
  if (!memo.empty()) {
    out->append(",\"memo\":");
    AppendJsonString(memo, out);
  }
  if (metadata.empty()) return;
  out->append(",\"metadata\":{");
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(metadata[i].first, out);
    out->push_back(':');
    AppendJsonString(metadata[i].second, out);
  }
  out->push_back('}');
}

}  // namespace

json AccountJson(const AccountView& v, const RegionNames& regions) {
  json per_region = json::object();
  for (RegionId r = 0; r < v.regions.size(); ++r) {
    const RegionView& rv = v.regions[r];
    per_region[RegionName(regions, r)] = json{{"rights", rv.rights},
                                              {"tentative_credit", rv.tentative_credit},
                                              {"overdraft_line", rv.overdraft_line},
                                              {"fees", rv.fees},
                                              {"voids", rv.voids},
                                              {"reserved", rv.reserved}};
  }
  json j{{"id", v.config.id},
         {"currency", v.config.currency},
         {"balance", v.balance},
         {"held", v.held},
         {"available", v.available},
         {"tentative", v.tentative},
         {"stale", v.stale},
         {"final_balance", v.final_balance},
         {"raw_balance", v.raw_balance},
         {"overdraft_limit", v.config.overdraft_limit},
         {"fee", {{"flat", v.config.fee.flat}, {"bps", v.config.fee.bps}}},
         {"fees", v.fees},
         {"voids", v.voids},
         {"episodes", v.episodes},
         {"regions", std::move(per_region)},
         {"frontier", v.frontier.ToString()},
         {"lines_usable", v.lines_usable},
         {"lines_wait_for", WaitFor(v.lines_wait_for, regions)},
         {"digest", fmt::format("{:016x}", v.digest)}};
  if (!v.config.parent.empty()) {
    j["parent"] = v.config.parent;
    j["cap"] = v.config.cap;
  }
  return j;
}

void AppendOpResultJson(const CommandResult& r, const RegionNames& regions, bool transfer,
                        std::string* out) {
  // The hot path (every credit and debit): formatted directly, no JSON tree. Region names are
  // [a-z0-9-], so they need no escaping.
  fmt::format_to(std::back_inserter(*out),
                 "{{\"op\":{{\"region\":\"{}\",\"seq\":{}}},\"balance\":{},\"overdraft\":{},"
                 "\"replicated\":{}",
                 RegionName(regions, r.op.origin), r.op.seq, r.balance,
                 r.overdraft ? "true" : "false", r.replicated ? "true" : "false");
  if (r.replayed) out->append(",\"replayed\":true");  // as the Idempotent-Replayed header says
  if (r.voided) {
    // A replay of our own op that a canonically earlier use of the key in another region voided.
    fmt::format_to(std::back_inserter(*out),
                   ",\"voided\":true,\"voided_by\":{{\"region\":\"{}\",\"seq\":{}}}",
                   RegionName(regions, r.voided_by.origin), r.voided_by.seq);
  }
  // A transfer taken now also says what the payee holds after it (a replay does not know).
  if (transfer && !r.replayed)
    fmt::format_to(std::back_inserter(*out), ",\"payee_balance\":{}", r.payee_balance);
  if (!r.payers.empty()) {
    // A budget debit (or a fallback): who paid first, and every account the op debited.
    out->append(",\"source\":");
    AppendJsonString(r.payers.front(), out);
    out->append(",\"payers\":[");
    for (std::size_t i = 0; i < r.payers.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(r.payers[i], out);
    }
    out->push_back(']');
  }
  if (r.hold.seq != 0) {
    fmt::format_to(std::back_inserter(*out), ",\"hold\":\"{}\",\"held\":{}",
                   HoldId(r.hold, regions), r.held);
    if (r.expires_ms != 0)
      fmt::format_to(std::back_inserter(*out), ",\"expires_ms\":{}", r.expires_ms);
    if (r.captured != 0) fmt::format_to(std::back_inserter(*out), ",\"captured\":{}", r.captured);
  }
  AppendNoteJson(r.memo, r.metadata, out);
  out->push_back('}');
}

json HoldJson(const HoldView& v, const RegionNames& regions) {
  json j{{"hold", HoldId(v.hold, regions)},
         {"account", v.account},
         {"amount", v.amount},
         {"placed_at", v.hlc.ToString()},
         {"expires_ms", v.expires_ms},
         {"state", HoldStateName(v.state)},
         {"captured", v.captured},
         {"final", v.final}};
  if (v.resolved_by.seq != 0)
    j["resolved_by"] = {{"region", RegionName(regions, v.resolved_by.origin)},
                        {"seq", v.resolved_by.seq}};
  return j;
}

report::RunReport AccountReport(std::string_view region, const AccountView& account,
                                std::vector<ForkReport> forks, std::vector<DerivedEvent> events,
                                const RegionNames& regions) {
  report::RunReport r;
  r.title = "tally report: account " + account.config.id + ", as region " + std::string(region) +
            " sees it";
  r.producer = "tallyd, region " + std::string(region);
  r.view_region = std::string(region);
  r.regions = regions;
  report::AccountOutcome a = report::AccountFromView(account, regions);
  a.forks = std::move(forks);
  a.events = std::move(events);
  r.chart_account = a.config.id;
  r.accounts.push_back(std::move(a));
  return r;
}

}  // namespace tally::node

namespace tally::node {

std::string ListAccountsJson(Replica* replica, const RouteMatch& m,
                             const std::function<bool(const std::string&)>& in_scope) {
  // Every open id, sorted (the replica keeps them unordered): O(accounts) a page, an operator's
  // listing rather than a hot path.
  const std::vector<std::string> ids = replica->AccountIds();
  const std::string& from = m.after.empty() || m.after < m.prefix ? m.prefix : m.after;
  auto it = std::lower_bound(ids.begin(), ids.end(), from);
  if (it != ids.end() && !m.after.empty() && *it == m.after) ++it;
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json next = nullptr;
  for (; it != ids.end() && it->starts_with(m.prefix); ++it) {
    if (!in_scope(*it)) continue;
    if (list.size() == m.limit) {
      next = ListCursor(list.back()["id"].get<std::string>());
      break;
    }
    AccountView v;
    if (!replica->GetAccount(*it, &v).ok()) continue;
    nlohmann::json a{{"id", v.config.id},        {"currency", v.config.currency},
                     {"balance", v.balance},     {"held", v.held},
                     {"available", v.available}, {"tentative", v.tentative}};
    if (!v.config.parent.empty()) {
      a["parent"] = v.config.parent;
      a["cap"] = v.config.cap;
    }
    list.push_back(std::move(a));
  }
  return nlohmann::json{{"accounts", std::move(list)}, {"next_cursor", std::move(next)}}.dump();
}

Status AccountBody(Replica* replica, std::string_view id, const RegionNames& regions,
                   std::string* out) {
  AccountView view;
  if (Status s = replica->GetAccount(id, &view); !s.ok()) return s;
  *out = AccountJson(view, regions).dump();
  return Status::OK();
}

Status ReportBody(Replica* replica, std::string_view region, std::string_view id, bool html,
                  const RegionNames& regions, std::string* out, std::string* content_type) {
  AccountView view;
  if (Status s = replica->GetAccount(id, &view); !s.ok()) return s;
  std::vector<ForkReport> forks;
  if (Status s = replica->Forks(id, &forks); !s.ok()) return s;
  std::vector<DerivedEvent> events;
  if (Status s = replica->DerivedEvents(id, &events); !s.ok()) return s;
  const report::RunReport r =
      AccountReport(region, view, std::move(forks), std::move(events), regions);
  if (html) {
    *out = report::RenderHtml(r);
    *content_type = "text/html; charset=utf-8";
  } else {
    *out = report::RenderJson(r);
    *content_type = "application/json";
  }
  return Status::OK();
}

std::string ClusterJson(const Replica& replica, const NodeConfig& config, std::uint64_t now,
                        const std::vector<PeerConnections>& connections) {
  const RegionNames& names = config.replica.regions;
  const RegionId n = static_cast<RegionId>(names.size());
  auto vector_json = [&](const VersionVector& v) {
    nlohmann::json j = nlohmann::json::object();
    for (RegionId r = 0; r < n; ++r) j[names[r]] = v.get(r);
    return j;
  };
  nlohmann::json regions = nlohmann::json::array();
  for (const RegionConfig& r : config.regions)
    regions.push_back({{"id", r.id}, {"name", r.name}, {"peer", r.peer.ToString()}});
  nlohmann::json peers = nlohmann::json::array();
  for (const PeerView& p : replica.Peers(now)) {
    if (p.region == config.self || p.region >= n) continue;
    const PeerConnections c =
        p.region < connections.size() ? connections[p.region] : PeerConnections{};
    peers.push_back({{"region", names[p.region]},
                     {"connected", c.connected},
                     {"inbound_connections", c.inbound},
                     {"reachable", p.reachable},
                     {"ops_behind", p.ops_behind},
                     {"last_heard_ms", p.last_heard_ms},
                     {"last_heard_ago_ms",
                      p.last_heard_ms ? static_cast<std::int64_t>(now - p.last_heard_ms) : -1},
                     {"clock_offset_ms", p.clock_offset_ms},
                     {"rtt_ms", p.rtt_ms},
                     {"acked", vector_json(p.acked)}});
  }
  nlohmann::json j{{"cluster_id", config.cluster_id},
                   {"region", config.region},
                   {"region_id", config.self},
                   {"rejoining", replica.rejoining()},
                   {"epoch", fmt::format("{:016x}", replica.epoch())},
                   {"regions", std::move(regions)},
                   {"applied", vector_json(replica.applied())},
                   {"log_floor", vector_json(replica.log_floor())},
                   {"frontier", replica.frontier().ToString()},
                   {"clock", replica.clock().ToString()},
                   {"accounts", replica.AccountIds().size()},
                   {"peers", std::move(peers)}};
  return j.dump();
}

std::string BackupJson(std::string_view region, const std::string& dir, const BackupStats& st,
                       const RegionNames& regions) {
  nlohmann::json newest = nlohmann::json::object();
  for (RegionId r = 0; r < regions.size(); ++r) newest[regions[r]] = st.newest.get(r);
  return nlohmann::json{{"region", region},
                        {"dir", dir},
                        {"keys", st.keys},
                        {"ops", st.ops},
                        {"bytes", st.bytes},
                        {"batches", st.batches},
                        {"elapsed_ms", st.elapsed_us / 1000},
                        {"newest", std::move(newest)}}
      .dump();
}

}  // namespace tally::node
