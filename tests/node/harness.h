// Harness for the node tests: real tallyd processes on 127.0.0.1 with free ports and temporary
// data folders, optionally with a NetProxy on every gossip path so a test can cut and heal links.
//
// Everything started here is stopped by a destructor (SIGTERM, then SIGKILL after a grace period),
// so a failing REQUIRE never leaves a process behind; children also get PR_SET_PDEATHSIG so they
// die with the test binary if it crashes. Set TALLY_KEEP_TEST_DIRS=1 to keep data folders and logs.
//
// Not thread-safe, except Api: one Api per thread.

#ifndef TALLY_TESTS_NODE_HARNESS_H_
#define TALLY_TESTS_NODE_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ctl/agreement.h"
#include "ctl/http_client.h"
#include "ctl/netproxy.h"
#include "temp_dir.h"

namespace tally::test {

using nlohmann::json;
using namespace std::chrono_literals;

// A port on 127.0.0.1 reserved for this test process until it exits (the kernel's choice for
// port 0, held by a bound socket that never listens), so only a tallyd told to use it binds it.
std::uint16_t FreePort();

// SHA-256 of `text`, lower-case hex: how tallyd's config stores tokens.
std::string Sha256Hex(const std::string& text);

// Polls `done` every `every` until it returns true or `timeout` passes; returns the last result.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds every = 50ms);

// The value of the unlabelled sample `name` in a Prometheus text page; -1 when it is absent.
double MetricSample(const std::string& page, std::string_view name);

// Runs scripts/make-certs with `args` (docs/operations.md, "Certificates") and waits for it; its
// output goes to `log`. Throws std::runtime_error with that output when it fails.
void MakeCerts(const std::vector<std::string>& args, const std::filesystem::path& log);

// A child process whose stdout and stderr go to `log`.
class Process {
 public:
  Process() = default;
  ~Process() { Stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // `env`: "NAME=value" entries added to the child's environment.
  bool Start(const std::string& program, const std::vector<std::string>& args,
             const std::filesystem::path& log, std::string* error,
             const std::vector<std::string>& env = {});
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as waitpid reports it, or
  // -1 if the process was not running.
  int Stop(std::chrono::milliseconds grace = 10s);
  void Kill9();
  bool running();  // reaps it if it exited
  // The exit code if it exited by itself (checked without blocking), else nullopt.
  std::optional<int> ExitCode();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Status and parsed body of one API call. `status` is 0 when the server could not be reached.
struct Reply {
  int status = 0;
  json body;  // null unless the body is JSON
  std::string raw;
  ctl::Headers headers;
  std::string transport_error;
  std::string error_code() const;                   // body.error.code or ""
  std::string header(std::string_view name) const;  // the first such header (any case), or ""
};

// A keep-alive client for one node with a bearer token. One per thread.
class Api {
 public:
  // `ca_file`: the CA that signed the server's certificate, for an https URL.
  Api(const std::string& url, std::string token, std::chrono::milliseconds timeout = 10s,
      const std::string& ca_file = "");
  Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
             ctl::Headers headers = {});
  // Without the Authorization header.
  Reply CallNoAuth(const std::string& method, const std::string& target,
                   const std::string& body = "", const ctl::Headers& headers = {});
  Reply Raw(const std::string& bytes);

  Reply Open(const std::string& id, std::int64_t overdraft_limit = 0, std::int64_t fee_flat = 0,
             std::int64_t fee_bps = 0, const std::string& currency = "EUR");
  Reply Credit(const std::string& id, std::int64_t amount, const std::string& key);
  Reply Debit(const std::string& id, std::int64_t amount, const std::string& key);
  // Moves money from account `from` to account `to` (POST /v1/transfers).
  Reply Transfer(const std::string& from, const std::string& to, std::int64_t amount,
                 const std::string& key);
  // Holds (POST /v1/accounts/{id}/holds, /v1/holds/{hold}/capture|release, GET /v1/holds/{hold}).
  // `amount` 0 on a capture sends no amount: the whole hold.
  Reply Hold(const std::string& id, std::int64_t amount, const std::string& key,
             std::int64_t expires_in_ms = 600000);
  Reply Capture(const std::string& hold, std::int64_t amount = 0);
  Reply Release(const std::string& hold);
  Reply GetHold(const std::string& hold);
  // Moves rights from this region to region `to`; sends an Idempotency-Key header unless `key`
  // is empty.
  Reply Rights(const std::string& id, const std::string& to, std::int64_t amount,
               const std::string& key = "");
  Reply Account(const std::string& id);
  Reply Report(const std::string& id);
  Reply Cluster();

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string token_;
  ctl::HttpClient client_;
};

struct ClusterOptions {
  std::vector<std::string> regions = {"eu", "us", "ap"};
  std::string cluster_id = "test-cluster";
  bool proxied = false;     // gossip through a NetProxy (links named "eu-us", sorted pair)
  std::string extra_toml;   // appended to every config (e.g. "[http]\nmax_body_bytes = 1024\n")
  std::string gossip_toml;  // added to every config's [gossip] table (e.g. "max_handshakes = 8\n")
  // tallyd's own defaults for heartbeats, peer timeout, re-sends and the rights wait, instead of
  // the harness's fast ones (for tests that measure what a production config does).
  bool default_timings = false;
  // Per node (by index; missing: none): "NAME=value" entries added to its environment.
  std::vector<std::vector<std::string>> env;
  // Gossip over mutual TLS and the client API over HTTPS, with a CA and certificates made in
  // pki_dir() (scripts/make-certs). False: plain TCP gossip and plain HTTP (both
  // insecure_loopback), for tests that speak the gossip protocol to a node themselves. The
  // harness writes an [http] table then: extra_toml must not open another.
  bool tls = true;
};

// Tokens every cluster accepts (plaintext here, hashes in the configs).
inline constexpr const char* kAdminToken = "test-admin-token";    // every permission, "*"
inline constexpr const char* kReaderToken = "test-reader-token";  // read only, "*"
inline constexpr const char* kShopToken = "test-shop-token";      // credit/debit/read, "shop-*"

class Cluster {
 public:
  Cluster(const std::string& tag, ClusterOptions options);
  ~Cluster();  // stops every node, then the proxy
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  const std::string& region(std::size_t i) const { return options_.regions[i]; }

  // Starts node i (or every node) and waits for /healthz. False with *error (log tail included).
  bool Start(std::size_t i, std::string* error);
  bool StartAll(std::string* error);
  int Stop(std::size_t i);
  void Kill9(std::size_t i);
  bool Running(std::size_t i);
  pid_t pid(std::size_t i) const { return nodes_[i].process->pid(); }  // -1 when not started

  // True once every running node reports every other node connected and reachable.
  bool WaitConnected(std::chrono::milliseconds timeout);

  std::string url(std::size_t i) const;
  std::uint16_t peer_port(std::size_t i) const { return nodes_[i].peer_port; }
  Api api(std::size_t i, const std::string& token = kAdminToken,
          std::chrono::milliseconds timeout = 10s) const {
    return Api(url(i), token, timeout, ca_file());
  }
  // The CA of the nodes' HTTPS certificates ("" without TLS).
  std::string ca_file() const;
  // tallyctl's arguments to talk to node i: --url, and --cacert over HTTPS.
  std::vector<std::string> CtlArgs(std::size_t i) const;
  std::filesystem::path log_path(std::size_t i) const;
  // Node i's data folder (its data_dir): under the cluster's temp dir, "<region>/data".
  std::filesystem::path data_dir(std::size_t i) const;
  std::string ReadLog(std::size_t i) const;
  const std::filesystem::path& dir() const { return dir_.path(); }
  // The cluster's CA and certificates (ca.pem, <region>.pem, <region>.key) when options.tls.
  std::filesystem::path pki_dir() const { return dir_.path() / "pki"; }

  // Writes a config for a node that is not part of this cluster (for refused-peer tests).
  std::filesystem::path WriteConfig(const std::string& name, const std::string& toml) const;
  std::string ConfigText(std::size_t i) const;

  // Proxy control (proxied clusters): links are named by the sorted pair, "eu-us".
  std::string LinkName(std::size_t a, std::size_t b) const;
  void Cut(std::size_t a, std::size_t b);
  void Heal(std::size_t a, std::size_t b);
  void CutAll();
  void HealAll();
  void DelayAll(std::chrono::milliseconds one_way);  // every link, both ways
  // The proxy's view of every link, for failure messages.
  std::string ProxyState() const;

  // Asks every node (or only `nodes`, when not empty) about `account`; agreement is as tallyctl
  // reconcile decides it.
  ctl::Agreement Compare(const std::string& account, const std::vector<std::size_t>& nodes = {});
  // Waits until every node (or every one of `nodes`) agrees about `account`; returns the last
  // comparison.
  ctl::Agreement WaitAgree(const std::string& account, std::chrono::milliseconds timeout,
                           const std::vector<std::size_t>& nodes = {});

 private:
  struct Node {
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::vector<std::uint16_t> dial_port;  // per region: where this node dials it
    std::unique_ptr<Process> process;
  };
  ClusterOptions options_;
  TempDir dir_;
  std::vector<Node> nodes_;
  std::unique_ptr<ctl::NetProxy> proxy_;
};

// The common config text for one region (tokens, roles, fast gossip timings); `gossip` is added
// to its [gossip] table. `pki`: the folder of scripts/make-certs' files for gossip over TLS and
// HTTPS; empty: plain TCP gossip and plain HTTP (insecure_loopback).
std::string RegionToml(const std::string& cluster_id, const std::vector<std::string>& regions,
                       std::size_t self, const std::filesystem::path& data_dir,
                       std::uint16_t client_port, std::uint16_t peer_port,
                       const std::vector<std::uint16_t>& dial_ports, const std::string& gossip = "",
                       bool default_timings = false, const std::filesystem::path& pki = {});

}  // namespace tally::test

#endif  // TALLY_TESTS_NODE_HARNESS_H_
