#include "node/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "codec/codec.h"
#include "core/ids.h"
#include "core/validate.h"

namespace tally::node {

namespace {

std::string_view TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// Reads one TOML table, remembering which keys were read so CheckNoUnknown can refuse the rest.
// Every error names the field by its full path ("regions[1].peer").
class Fields {
 public:
  Fields(const toml::table* table, std::string path) : table_(table), path_(std::move(path)) {}

  std::string Name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  Status Error(std::string_view key, std::string_view problem) const {
    return Status::InvalidArgument(Name(key) + ": " + std::string(problem));
  }

  // Null when absent (and then `required` makes it an error).
  Status Get(std::string_view key, bool required, const toml::node** out) {
    seen_.insert(std::string(key));
    *out = table_ ? table_->get(key) : nullptr;
    if (!*out && required) return Error(key, "is required");
    return Status::OK();
  }

  Status String(std::string_view key, bool required, std::string* out) {
    const toml::node* n;
    if (Status s = Get(key, required, &n); !s.ok() || !n) return s;
    if (!n->is_string()) return Error(key, "must be a string, got " + std::string(TypeName(*n)));
    *out = n->as_string()->get();
    return Status::OK();
  }

  Status Int(std::string_view key, bool required, std::int64_t lo, std::int64_t hi,
             std::int64_t* out) {
    const toml::node* n;
    if (Status s = Get(key, required, &n); !s.ok() || !n) return s;
    if (!n->is_integer()) return Error(key, "must be an integer, got " + std::string(TypeName(*n)));
    std::int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      return Error(key, "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                            std::to_string(v));
    *out = v;
    return Status::OK();
  }

  Status Bool(std::string_view key, bool* out) {
    const toml::node* n;
    if (Status s = Get(key, false, &n); !s.ok() || !n) return s;
    if (!n->is_boolean())
      return Error(key, "must be true or false, got " + std::string(TypeName(*n)));
    *out = n->as_boolean()->get();
    return Status::OK();
  }

  template <typename T>
  Status Unsigned(std::string_view key, std::int64_t lo, std::int64_t hi, T* out) {
    std::int64_t v = static_cast<std::int64_t>(*out);
    if (Status s = Int(key, false, lo, hi, &v); !s.ok()) return s;
    *out = static_cast<T>(v);
    return Status::OK();
  }

  Status StringArray(std::string_view key, bool required, std::vector<std::string>* out) {
    const toml::node* n;
    if (Status s = Get(key, required, &n); !s.ok() || !n) return s;
    if (!n->is_array())
      return Error(key, "must be an array of strings, got " + std::string(TypeName(*n)));
    out->clear();
    std::size_t i = 0;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string())
        return Error(std::string(key) + "[" + std::to_string(i) + "]",
                     "must be a string, got " + std::string(TypeName(e)));
      out->push_back(e.as_string()->get());
      ++i;
    }
    return Status::OK();
  }

  // Optional sub-table; *out is null when absent.
  Status Table(std::string_view key, const toml::table** out) {
    const toml::node* n;
    if (Status s = Get(key, false, &n); !s.ok()) return s;
    *out = nullptr;
    if (!n) return Status::OK();
    if (!n->is_table()) return Error(key, "must be a table, got " + std::string(TypeName(*n)));
    *out = n->as_table();
    return Status::OK();
  }

  Status CheckNoUnknown() const {
    if (!table_) return Status::OK();
    for (auto&& [k, v] : *table_) {
      if (!seen_.count(std::string(k.str())))
        return Status::InvalidArgument(Name(k.str()) + ": unknown key");
    }
    return Status::OK();
  }

 private:
  const toml::table* table_;
  std::string path_;
  std::set<std::string> seen_;
};

bool IsConfigName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  }
  return true;
}

// Every sub-parser below returns the error with the field path already in the message; the top
// level prefixes "config <file>: ".

Status ParseRegions(const toml::table& root, NodeConfig* c) {
  const toml::node* n = root.get("regions");
  if (!n) return Status::InvalidArgument("regions: is required (one [[regions]] table per region)");
  if (!n->is_array_of_tables())
    return Status::InvalidArgument("regions: must be an array of tables ([[regions]])");
  const toml::array& arr = *n->as_array();
  if (arr.empty() || arr.size() > kMaxRegions)
    return Status::InvalidArgument("regions: must have 1.." + std::to_string(kMaxRegions) +
                                   " entries, got " + std::to_string(arr.size()));
  std::vector<std::optional<RegionConfig>> by_id(arr.size());
  std::set<std::string> names;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    Fields f(arr[i].as_table(), "regions[" + std::to_string(i) + "]");
    RegionConfig r;
    std::int64_t id = 0;
    // Ids are 0..n-1 for n regions, each used once: the RegionId is an index everywhere.
    if (Status s = f.Int("id", true, 0, static_cast<std::int64_t>(arr.size()) - 1, &id); !s.ok())
      return s;
    r.id = static_cast<RegionId>(id);
    if (Status s = f.String("name", true, &r.name); !s.ok()) return s;
    if (Status s = ValidateRegionName(r.name); !s.ok()) return f.Error("name", s.message());
    std::string peer;
    if (Status s = f.String("peer", true, &peer); !s.ok()) return s;
    if (Status s = ParseEndpoint(peer, true, &r.peer); !s.ok()) return f.Error("peer", s.message());
    if (Status s = f.CheckNoUnknown(); !s.ok()) return s;
    if (by_id[r.id]) return f.Error("id", "region id " + std::to_string(r.id) + " is used twice");
    if (!names.insert(r.name).second)
      return f.Error("name", "region name '" + r.name + "' is used twice");
    by_id[r.id] = std::move(r);
  }
  c->regions.clear();
  for (auto& r : by_id) c->regions.push_back(std::move(*r));  // ids are 0..n-1, each once
  return Status::OK();
}

Status ParseRoles(const toml::table* roles, NodeConfig* c) {
  c->roles.clear();
  if (!roles) return Status::OK();
  for (auto&& [k, v] : *roles) {
    std::string name(k.str());
    std::string path = "roles." + name;
    if (!IsConfigName(name))
      return Status::InvalidArgument(path + ": role names are 1..64 of [A-Za-z0-9_.-]");
    if (!v.is_table())
      return Status::InvalidArgument(path + ": must be a table ([roles." + name + "])");
    Fields f(v.as_table(), path);
    std::vector<std::string> perms;
    if (Status s = f.StringArray("permissions", true, &perms); !s.ok()) return s;
    PermissionSet set = 0;
    for (std::size_t i = 0; i < perms.size(); ++i) {
      Permission p;
      if (!ParsePermission(perms[i], &p))
        return Status::InvalidArgument(
            path + ".permissions[" + std::to_string(i) + "]: unknown permission '" + perms[i] +
            "' (known: open_accounts, credit, debit, transfer, read, read_reports, cluster)");
      set |= PermissionBit(p);
    }
    if (Status s = f.CheckNoUnknown(); !s.ok()) return s;
    c->roles[name] = set;
  }
  return Status::OK();
}

Status ParseTokens(const toml::table& root, NodeConfig* c) {
  c->tokens.clear();
  const toml::node* n = root.get("tokens");
  if (!n) return Status::OK();  // no tokens: every authenticated route is refused
  if (!n->is_array_of_tables())
    return Status::InvalidArgument("tokens: must be an array of tables ([[tokens]])");
  std::set<std::string> names, hashes;
  const toml::array& arr = *n->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    Fields f(arr[i].as_table(), "tokens[" + std::to_string(i) + "]");
    TokenConfig t;
    if (Status s = f.String("name", true, &t.name); !s.ok()) return s;
    if (!IsConfigName(t.name)) return f.Error("name", "must be 1..64 of [A-Za-z0-9_.-]");
    if (!names.insert(t.name).second)
      return f.Error("name", "token name '" + t.name + "' is used twice");
    if (Status s = f.String("sha256", true, &t.sha256); !s.ok()) return s;
    if (!IsSha256Hex(t.sha256))
      return f.Error("sha256",
                     "must be the lower-case hex SHA-256 of the token (64 hex digits; "
                     "printf %s \"$TOKEN\" | sha256sum)");
    if (!hashes.insert(t.sha256).second)
      return f.Error("sha256", "the same token hash is configured twice");
    if (Status s = f.String("role", true, &t.role); !s.ok()) return s;
    if (!c->roles.count(t.role))
      return f.Error("role", "unknown role '" + t.role + "' (define it as [roles." + t.role + "])");
    if (Status s = f.StringArray("accounts", false, &t.accounts); !s.ok()) return s;
    for (std::size_t j = 0; j < t.accounts.size(); ++j) {
      const std::string& p = t.accounts[j];
      bool ok = !p.empty() && p.size() <= 128;
      for (char ch : p) {
        bool id_char = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
                       ch == '-' || ch == '*' || ch == '?';
        ok = ok && id_char;
      }
      if (!ok)
        return f.Error("accounts[" + std::to_string(j) + "]",
                       "must be a glob of account-id characters, '*' and '?' (1..128 bytes)");
    }
    if (Status s = f.CheckNoUnknown(); !s.ok()) return s;
    c->tokens.push_back(std::move(t));
  }
  return Status::OK();
}

constexpr std::int64_t kHour = 3600 * 1000;

Status ParseRoot(const toml::table& root, NodeConfig* c) {
  Fields top(&root, "");
  if (Status s = top.String("cluster_id", true, &c->cluster_id); !s.ok()) return s;
  if (Status s = ValidateClusterId(c->cluster_id); !s.ok())
    return top.Error("cluster_id", s.message());
  if (Status s = top.String("region", true, &c->region); !s.ok()) return s;
  if (Status s = top.String("data_dir", true, &c->data_dir); !s.ok()) return s;
  if (c->data_dir.empty()) return top.Error("data_dir", "is empty");

  const toml::node* ignored;
  top.Get("regions", false, &ignored);
  if (Status s = ParseRegions(root, c); !s.ok()) return s;

  const toml::table* t;
  if (Status s = top.Table("listen", &t); !s.ok()) return s;
  if (!t) return Status::InvalidArgument("listen: is required ([listen] with client and peer)");
  {
    Fields f(t, "listen");
    std::string client, peer;
    if (Status s = f.String("client", true, &client); !s.ok()) return s;
    if (Status s = ParseEndpoint(client, false, &c->listen_client); !s.ok())
      return f.Error("client", s.message());
    if (Status s = f.String("peer", true, &peer); !s.ok()) return s;
    if (Status s = ParseEndpoint(peer, false, &c->listen_peer); !s.ok())
      return f.Error("peer", s.message());
    if (Status s = f.CheckNoUnknown(); !s.ok()) return s;
  }

  ReplicaOptions& r = c->replica;
  if (Status s = top.Table("gossip", &t); !s.ok()) return s;
  {
    Fields f(t, "gossip");
    Status s;
    if (!(s = f.Unsigned("tick_interval_ms", 1, 1000, &c->tick_interval_ms)).ok()) return s;
    if (!(s = f.Unsigned("heartbeat_interval_ms", 1, kHour, &r.heartbeat_interval_ms)).ok())
      return s;
    if (!(s = f.Unsigned("peer_timeout_ms", 1, kHour, &r.peer_timeout_ms)).ok()) return s;
    if (!(s = f.Unsigned("resend_after_ms", 1, kHour, &r.resend_after_ms)).ok()) return s;
    if (!(s = f.Unsigned("relay_delay_ms", 0, kHour, &r.relay_delay_ms)).ok()) return s;
    if (!(s = f.Unsigned("max_batch_ops", 1, 65536, &r.max_batch_ops)).ok()) return s;
    if (!(s = f.Unsigned("max_inflight_ops", 1, 1 << 24, &r.max_inflight_ops)).ok()) return s;
    if (!(s = f.Unsigned("send_queue_bytes", 64 * 1024, std::int64_t{1} << 32,
                         &c->send_queue_bytes))
             .ok())
      return s;
    if (!(s = f.Unsigned("reconnect_min_ms", 1, kHour, &c->reconnect_min_ms)).ok()) return s;
    if (!(s = f.Unsigned("reconnect_max_ms", 1, kHour, &c->reconnect_max_ms)).ok()) return s;
    if (!(s = f.Unsigned("handshake_timeout_ms", 100, kHour, &c->handshake_timeout_ms)).ok())
      return s;
    if (!(s = f.Unsigned("max_handshakes", 1, 65536, &c->max_handshakes)).ok()) return s;
    if (!(s = f.Unsigned("max_handshakes_per_address", 1, 65536, &c->max_handshakes_per_address))
             .ok())
      return s;
    // At least one whole frame: a peer's largest message (a snapshot) must always fit.
    constexpr auto kOneFrame =
        static_cast<std::int64_t>(codec::kFrameHeaderBytes + codec::kMaxFrameBytes);
    if (!(s = f.Unsigned("receive_buffer_bytes", kOneFrame, std::int64_t{1} << 32,
                         &c->receive_buffer_bytes))
             .ok())
      return s;
    if (r.max_inflight_ops < r.max_batch_ops)
      return f.Error("max_inflight_ops", "must be >= gossip.max_batch_ops");
    if (c->reconnect_max_ms < c->reconnect_min_ms)
      return f.Error("reconnect_max_ms", "must be >= gossip.reconnect_min_ms");
    if (c->max_handshakes_per_address > c->max_handshakes) {
      if (t && t->contains("max_handshakes_per_address"))
        return f.Error("max_handshakes_per_address", "must be <= gossip.max_handshakes");
      c->max_handshakes_per_address = c->max_handshakes;  // the default, under a smaller total
    }
    if (!(s = f.Bool("insecure_loopback", &c->insecure_loopback)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("audit", &t); !s.ok()) return s;
  {
    Fields f(t, "audit");
    Status s;
    if (!(s = f.String("path", false, &c->audit_path)).ok()) return s;
    if (t && t->contains("path") && c->audit_path.empty()) return f.Error("path", "is empty");
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("tls", &t); !s.ok()) return s;
  if (t) {
    Fields f(t, "tls");
    Status s;
    if (!(s = f.String("ca_file", true, &c->tls.ca_file)).ok()) return s;
    if (!(s = f.String("cert_file", true, &c->tls.cert_file)).ok()) return s;
    if (!(s = f.String("key_file", true, &c->tls.key_file)).ok()) return s;
    if (!(s = f.String("api_cert_file", false, &c->tls.api_cert_file)).ok()) return s;
    if (!(s = f.String("api_key_file", false, &c->tls.api_key_file)).ok()) return s;
    for (const char* key : {"ca_file", "cert_file", "key_file", "api_cert_file", "api_key_file"}) {
      const toml::node* n = t->get(key);
      if (n && n->as_string()->get().empty()) return f.Error(key, "is empty");
    }
    if (c->tls.api_cert_file.empty() != c->tls.api_key_file.empty())
      return f.Error(
          c->tls.api_cert_file.empty() ? "api_cert_file" : "api_key_file",
          "is required with tls." +
              std::string(c->tls.api_cert_file.empty() ? "api_key_file" : "api_cert_file"));
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("clock", &t); !s.ok()) return s;
  {
    Fields f(t, "clock");
    Status s;
    if (!(s = f.Unsigned("max_offset_ms", 1, kHour, &r.max_clock_offset_ms)).ok()) return s;
    if (!(s = f.Unsigned("hlc_lease_ms", 1, kHour, &r.hlc_lease_ms)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("rights", &t); !s.ok()) return s;
  {
    Fields f(t, "rights");
    Status s;
    if (!(s = f.Unsigned("wait_ms", 0, kHour, &r.rights_wait_ms)).ok()) return s;
    if (!(s = f.Unsigned("finality_wait_ms", 0, kHour, &r.finality_wait_ms)).ok()) return s;
    if (!(s = f.Unsigned("rebalance_interval_ms", 1, kHour, &r.rebalance_interval_ms)).ok())
      return s;
    if (!(s = f.Unsigned("max_pending_debits", 1, 1 << 24, &r.max_pending_debits)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("rejoin", &t); !s.ok()) return s;
  {
    Fields f(t, "rejoin");
    Status s;
    if (!(s = f.Bool("required", &r.rejoin_on_start)).ok()) return s;
    if (!(s = f.Unsigned("wait_ms", 0, 7 * 24 * kHour, &r.rejoin_wait_ms)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("durability", &t); !s.ok()) return s;
  {
    Fields f(t, "durability");
    Status s;
    std::string mode = "local";
    if (!(s = f.String("default", false, &mode)).ok()) return s;
    if (mode != "local" && mode != "replicated")
      return f.Error("default", "must be \"local\" or \"replicated\", got \"" + mode + "\"");
    c->replicated_by_default = mode == "replicated";
    if (c->replicated_by_default && c->regions.size() < 2)
      return f.Error("default", "\"replicated\" needs at least two regions");
    if (!(s = f.Unsigned("wait_ms", 1, kHour, &r.replicated_wait_ms)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("idempotency", &t); !s.ok()) return s;
  {
    // Decides voids, so every region of the cluster must run with the same value (Hello carries
    // it; a peer with another is refused). docs/operations.md, "Idempotency key retention".
    Fields f(t, "idempotency");
    Status s;
    if (!(s = f.Unsigned("retention_ms", 1, 366 * 24 * kHour, &r.idempotency_retention_ms)).ok())
      return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("storage", &t); !s.ok()) return s;
  {
    Fields f(t, "storage");
    Status s;
    if (!(s = f.Unsigned("checkpoint_interval_ms", 1, kHour, &r.checkpoint_interval_ms)).ok())
      return s;
    if (!(s = f.Unsigned("commit_delay_us", 0, 100000, &c->commit_delay_us)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("history", &t); !s.ok()) return s;
  {
    // Statements (docs/operations.md, "GET /v1/accounts/{id}/history"): whether final lines are
    // kept, and how long.
    Fields f(t, "history");
    Status s;
    if (!(s = f.Bool("enabled", &r.keep_statements)).ok()) return s;
    if (!(s = f.Unsigned("retention_ms", 0, 100 * 366 * 24 * kHour, &c->history_retention_ms)).ok())
      return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("accounts", &t); !s.ok()) return s;
  {
    Fields f(t, "accounts");
    Status s;
    if (!(s = f.String("currency", false, &c->default_currency)).ok()) return s;
    if (Status v = ValidateCurrency(c->default_currency); !v.ok())
      return f.Error("currency", v.message());
    if (!(s = f.Int("overdraft_limit", false, 0, kMaxOpAmount, &c->default_overdraft_limit)).ok())
      return s;
    if (!(s = f.Int("fee_flat", false, 0, kMaxOpAmount, &c->default_fee.flat)).ok()) return s;
    if (!(s = f.Unsigned("fee_bps", 0, kMaxFeeBps, &c->default_fee.bps)).ok()) return s;
    if (!(s = f.Unsigned("max_events", 1, 1 << 20, &r.max_events_per_account)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }
  if (Status s = top.Table("http", &t); !s.ok()) return s;
  {
    Fields f(t, "http");
    Status s;
    if (!(s = f.Unsigned("max_body_bytes", 256, 16 << 20, &c->max_body_bytes)).ok()) return s;
    if (!(s = f.Unsigned("max_batch_bytes", 256, 16 << 20, &c->max_batch_bytes)).ok()) return s;
    if (!(s = f.Unsigned("max_connections", 1, 1 << 20, &c->max_connections)).ok()) return s;
    if (!(s = f.Unsigned("max_pipelined", 1, 1024, &c->max_pipelined)).ok()) return s;
    if (!(s = f.Unsigned("idle_timeout_ms", 100, 24 * kHour, &c->idle_timeout_ms)).ok()) return s;
    if (!(s = f.Unsigned("io_threads", 1, kMaxIoThreads, &c->io_threads)).ok()) return s;
    if (!(s = f.Bool("insecure_loopback", &c->http_insecure_loopback)).ok()) return s;
    if (!(s = f.CheckNoUnknown()).ok()) return s;
  }

  if (Status s = top.Table("roles", &t); !s.ok()) return s;
  if (Status s = ParseRoles(t, c); !s.ok()) return s;
  top.Get("tokens", false, &ignored);
  if (Status s = ParseTokens(root, c); !s.ok()) return s;
  return top.CheckNoUnknown();
}

bool IsLoopback(const Endpoint& e) {
  if (e.host == "localhost" || e.host == "::1") return true;
  in_addr a4;
  return inet_pton(AF_INET, e.host.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

// Gossip is mutual TLS unless the operator said, for a cluster on one machine, that it need not be.
Status CheckGossipSecurity(const NodeConfig& c) {
  if (c.insecure_loopback) {
    if (!IsLoopback(c.listen_peer))
      return Status::InvalidArgument("gossip.insecure_loopback: listen.peer " +
                                     c.listen_peer.ToString() +
                                     " is not a loopback address; plain TCP gossip is for a "
                                     "cluster on one machine only (configure [tls])");
    for (const RegionConfig& r : c.regions) {
      if (!IsLoopback(r.peer))
        return Status::InvalidArgument(
            "gossip.insecure_loopback: region " + r.name + "'s peer address " + r.peer.ToString() +
            " is not a loopback address; plain TCP gossip is for a cluster on one machine only "
            "(configure [tls])");
    }
    return Status::OK();
  }
  if (!c.tls.configured())
    return Status::InvalidArgument(
        "tls: gossip between regions is mutual TLS: set [tls] ca_file, cert_file and key_file "
        "(scripts/make-certs makes a throwaway set), or gossip.insecure_loopback = true for a "
        "cluster on one machine");
  return Status::OK();
}

// The client API is HTTPS unless the operator said, for clients on the same machine, it need not
// be.
Status CheckClientSecurity(const NodeConfig& c) {
  if (c.http_insecure_loopback) {
    if (!IsLoopback(c.listen_client))
      return Status::InvalidArgument("http.insecure_loopback: listen.client " +
                                     c.listen_client.ToString() +
                                     " is not a loopback address; plain HTTP is for clients on "
                                     "the same machine only (configure [tls])");
    return Status::OK();
  }
  if (!c.tls.configured())
    return Status::InvalidArgument(
        "tls: the client API is HTTPS: set [tls] ca_file, cert_file and key_file, or "
        "http.insecure_loopback = true for clients on the same machine");
  return Status::OK();
}

// Fills what depends on region/cluster (also after overrides) and runs the replica's own checks.
Status Derive(NodeConfig* c) {
  bool found = false;
  for (const RegionConfig& r : c->regions) {
    if (r.name == c->region) {
      c->self = r.id;
      found = true;
    }
  }
  if (!found) {
    std::string known;
    for (const RegionConfig& r : c->regions) known += (known.empty() ? "" : ", ") + r.name;
    return Status::InvalidArgument("region: '" + c->region + "' is not in [[regions]] (" + known +
                                   ")");
  }
  c->replica.cluster_id = c->cluster_id;
  c->replica.regions.clear();
  for (const RegionConfig& r : c->regions) c->replica.regions.push_back(r.name);
  c->replica.self = c->self;
  if (Status s = c->replica.Validate(); !s.ok())
    return Status::InvalidArgument("replica options: " + s.message());
  if (Status s = CheckGossipSecurity(*c); !s.ok()) return s;
  return CheckClientSecurity(*c);
}

}  // namespace

std::size_t DefaultIoThreads() {
  const std::size_t cores = std::thread::hardware_concurrency();  // 0: unknown
  return std::clamp<std::size_t>(cores, 1, kDefaultIoThreadsMax);
}

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Status ParseEndpoint(std::string_view text, bool allow_names, Endpoint* out) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Status::InvalidArgument("expected \"[v6-address]:port\", got \"" + std::string(text) +
                                     "\"");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return Status::InvalidArgument("\"" + std::string(host) + "\" is not an IPv6 address");
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return Status::InvalidArgument("expected \"host:port\", got \"" + std::string(text) + "\"");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return Status::InvalidArgument("IPv6 addresses go in brackets: \"[::1]:port\"");
    in_addr a4;
    bool is_ip = inet_pton(AF_INET, std::string(host).c_str(), &a4) == 1;
    if (!is_ip) {
      bool name_ok = allow_names && host.size() <= 253;
      for (char c : host) {
        name_ok = name_ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '.');
      }
      if (!name_ok)
        return Status::InvalidArgument(
            "\"" + std::string(host) + "\" is not " +
            (allow_names ? "an IP address or host name"
                         : "an IP address (listen on an address, e.g. 127.0.0.1)"));
    }
  }
  if (port.empty() || port.size() > 5)
    return Status::InvalidArgument("port must be 1..65535, got \"" + std::string(port) + "\"");
  std::uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return Status::InvalidArgument("port must be 1..65535, got \"" + std::string(port) + "\"");
    p = p * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535)
    return Status::InvalidArgument("port must be 1..65535, got \"" + std::string(port) + "\"");
  out->host = std::string(host);
  out->port = static_cast<std::uint16_t>(p);
  return Status::OK();
}

Authorizer NodeConfig::MakeAuthorizer() const {
  std::map<std::string, Principal> by_hash;
  for (const TokenConfig& t : tokens) {
    Principal p;
    p.name = t.name;
    p.role = t.role;
    auto it = roles.find(t.role);
    p.permissions = it == roles.end() ? 0 : it->second;
    p.account_patterns = t.accounts;
    by_hash[t.sha256] = std::move(p);
  }
  return Authorizer(std::move(by_hash));
}

Status ParseConfig(std::string_view toml_text, std::string_view source, NodeConfig* out) {
  const std::string prefix = "config " + std::string(source) + ": ";
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    // toml++ reports syntax errors by exception; this is the library edge where it becomes a
    // Status.
    std::ostringstream where;
    where << "line " << e.source().begin.line << ", column " << e.source().begin.column;
    return Status::InvalidArgument(prefix + where.str() + ": " + std::string(e.description()));
  }
  NodeConfig c;
  if (Status s = ParseRoot(root, &c); !s.ok()) return Status::InvalidArgument(prefix + s.message());
  if (Status s = Derive(&c); !s.ok()) return Status::InvalidArgument(prefix + s.message());
  *out = std::move(c);
  return Status::OK();
}

Status LoadConfigFile(const std::string& path, NodeConfig* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("config " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument("config " + path + ": read failed");
  if (Status s = ParseConfig(text.str(), path, out); !s.ok()) return s;
  // Certificate and audit paths are relative to the config file, wherever tallyd was started
  // from.
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  for (std::string* file : {&out->tls.ca_file, &out->tls.cert_file, &out->tls.key_file,
                            &out->tls.api_cert_file, &out->tls.api_key_file, &out->audit_path}) {
    if (!file->empty() && *file != "-" && std::filesystem::path(*file).is_relative())
      *file = (folder / *file).lexically_normal().string();
  }
  return Status::OK();
}

Status ApplyOverrides(const ConfigOverrides& o, NodeConfig* c) {
  NodeConfig next = *c;
  if (o.data_dir) {
    if (o.data_dir->empty()) return Status::InvalidArgument("--data-dir: is empty");
    next.data_dir = *o.data_dir;
  }
  if (o.listen_client) {
    if (Status s = ParseEndpoint(*o.listen_client, false, &next.listen_client); !s.ok())
      return Status::InvalidArgument("--listen-client: " + s.message());
  }
  if (o.listen_peer) {
    if (Status s = ParseEndpoint(*o.listen_peer, false, &next.listen_peer); !s.ok())
      return Status::InvalidArgument("--listen-peer: " + s.message());
  }
  if (o.region) next.region = *o.region;
  if (Status s = Derive(&next); !s.ok()) {
    if (o.region && s.message().rfind("region:", 0) == 0)
      return Status::InvalidArgument("--region" + s.message().substr(6));
    return s;
  }
  *c = std::move(next);
  return Status::OK();
}

}  // namespace tally::node
