// NodeConfig: everything one tallyd process is told at start, read from a TOML file (format in
// docs/operations.md, example in src/node/example-region.toml) and a few command-line overrides.
//
// Parsing is strict: a missing required key, a value of the wrong type or out of range, and any
// key the format does not define (a typo must not be silently ignored) are refused with
// InvalidArgument whose message names the field ("config: gossip.tick_interval_ms: must be in
// 1..1000, got 0"). tallyd prints it and exits with status 2.
//
// A NodeConfig is a plain value, filled once and then only read.

#ifndef TALLY_NODE_CONFIG_H_
#define TALLY_NODE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "core/status.h"
#include "core/types.h"
#include "node/auth.h"

namespace tally::node {

// "host:port"; host an IPv4 literal, "[v6]" literal or (for peers only) a DNS name.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string ToString() const;
};

// Parses "127.0.0.1:8081", "[::1]:8081" or (when `allow_names`) "node-a.internal:9081".
Status ParseEndpoint(std::string_view text, bool allow_names, Endpoint* out);

struct RegionConfig {
  RegionId id = 0;
  std::string name;
  Endpoint peer;  // where the other regions dial this one
};

// [tls]: the files of the cluster's mutual TLS between regions (node/peer_tls.h,
// docs/operations.md "Certificates"). Relative paths are taken from the config file's folder.
struct TlsFiles {
  std::string ca_file;    // the cluster CA: the only issuer a peer's certificate may come from
  std::string cert_file;  // this region's certificate (chain), naming tally://<cluster>/<region>
  std::string key_file;   // its private key
  // The client API's certificate and key (HTTPS), when not the region's own (e.g. from a public
  // CA); both or neither.
  std::string api_cert_file;
  std::string api_key_file;
  bool configured() const { return !ca_file.empty(); }
};

struct TokenConfig {
  std::string name;
  std::string sha256;  // lower-case hex SHA-256 of the bearer token
  std::string role;
  std::vector<std::string> accounts;  // glob patterns; empty: no account in scope
};

// [http] io_threads: 1..kMaxIoThreads; by default DefaultIoThreads().
inline constexpr std::size_t kMaxIoThreads = 64;
// One client thread per core, at most kDefaultIoThreadsMax; 1 (the io thread serves the
// connections itself) on one core. On two cores, two client threads beside the io thread served
// 1.26x (plain HTTP) and 1.45x (HTTPS) the debits of one thread (docs/performance.md, "Request
// path: io threads"). Past 8 the replica's one thread is the bound long before parsing is.
inline constexpr std::size_t kDefaultIoThreadsMax = 8;
std::size_t DefaultIoThreads();

struct NodeConfig {
  std::string cluster_id;
  std::string region;  // this node's region name
  RegionId self = 0;
  std::vector<RegionConfig> regions;  // indexed by id
  std::string data_dir;
  Endpoint listen_client;
  Endpoint listen_peer;

  // [gossip] — the node's own knobs; the replica's are in `replica` below.
  std::uint64_t tick_interval_ms = 5;
  std::size_t send_queue_bytes = std::size_t{16} << 20;  // per peer, then messages are dropped
  std::uint64_t reconnect_min_ms = 100;
  std::uint64_t reconnect_max_ms = 5000;
  // The peer port (inbound gossip connections). Anyone who can reach it may connect, so what a
  // connection may hold before its Hello is accepted is bounded, and kept apart from the real
  // regions' connections (docs/operations.md, "Gossip").
  std::uint64_t handshake_timeout_ms = 5000;   // connect to accepted Hello, else closed
  std::size_t max_handshakes = 32;             // connections whose Hello is not yet accepted
  std::size_t max_handshakes_per_address = 4;  // of those, from one remote IP address
  std::size_t receive_buffer_bytes = std::size_t{64} << 20;  // partial frames, all connections
  // Gossip in plain TCP, without [tls]: allowed only when every peer address (ours and the
  // regions') is a loopback one, for a cluster on one machine.
  bool insecure_loopback = false;

  // [tls]
  TlsFiles tls;

  // [audit] path: the audit log (audit_log.h); empty: <data_dir>/audit.jsonl; "-": stderr.
  std::string audit_path;

  // [storage]
  std::uint64_t commit_delay_us = 0;  // wait this long before starting a write (gathers more)

  // [history] enabled goes to replica.keep_statements. Statement lines older than this (their
  // op's wall time) are pruned; 0 keeps them forever.
  std::uint64_t history_retention_ms = 0;

  // [http]
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_batch_bytes = 1024 * 1024;  // the body of POST /v1/batch
  std::size_t max_connections = 1024;
  std::size_t max_pipelined = 16;         // requests read ahead on one connection before answering
  std::uint64_t idle_timeout_ms = 60000;  // also the deadline of a client's TLS handshake
  // Threads that read, parse, TLS-handshake and write client connections. 1: the io thread does it
  // along with the replica (one thread for everything); N > 1: N threads of their own
  // (client_pool.h), the replica still on the io thread. DefaultIoThreads() unless set.
  std::size_t io_threads = DefaultIoThreads();
  // Plain HTTP for the client API, without [tls]: allowed only on a loopback listen.client.
  bool http_insecure_loopback = false;

  // [durability] default: "replicated" answers writes only once another region holds the op
  // (a request's `Durability` header overrides it); wait_ms goes to replica.replicated_wait_ms.
  bool replicated_by_default = false;

  // [accounts]: defaults for fields a POST /v1/accounts leaves out.
  std::string default_currency = "EUR";
  Amount default_overdraft_limit = 0;
  FeePolicy default_fee;

  std::map<std::string, PermissionSet> roles;
  std::vector<TokenConfig> tokens;

  // cluster_id, regions and self are filled from the fields above; timing and bounds from
  // [gossip], [clock], [rights] and [accounts].
  ReplicaOptions replica;

  // The Authorizer the tokens and roles describe.
  Authorizer MakeAuthorizer() const;
};

// `source` names the file in messages.
Status ParseConfig(std::string_view toml_text, std::string_view source, NodeConfig* out);
Status LoadConfigFile(const std::string& path, NodeConfig* out);

struct ConfigOverrides {
  std::optional<std::string> data_dir;
  std::optional<std::string> listen_client;
  std::optional<std::string> listen_peer;
  std::optional<std::string> region;  // a region name from [[regions]]
};

// Applies command-line overrides and re-derives what depends on them; errors name the flag.
Status ApplyOverrides(const ConfigOverrides& overrides, NodeConfig* config);

}  // namespace tally::node

#endif  // TALLY_NODE_CONFIG_H_
