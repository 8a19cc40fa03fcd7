// NodeImpl's reload on SIGHUP: tokens, roles and certificates change without a restart, so a
// revoked token is refused from the next request and a renewed certificate serves the next
// connection. The whole new config must load — a file that does not parse, a token of an unknown
// role, a certificate that does not name this region — or none of it is applied: the running
// config stays and the refusal is logged and counted. Everything else in the file (addresses,
// regions, timings, folders) is read at start only; a reload that changes it says so in the log.

#include <fmt/format.h>

#include <vector>

#include "node/api_stream.h"
#include "node/log.h"
#include "node/node_impl.h"
#include "node/peer_tls.h"
#include "node/sd_notify.h"
#include "node/stream_messages.h"

namespace tally::node {

namespace {

// The settings a reload does not apply, named as in the file, where `next` differs from `running`.
std::vector<std::string> StartOnlyChanges(const NodeConfig& running, const NodeConfig& next) {
  std::vector<std::string> changed;
  auto note = [&](bool differs, const char* name) {
    if (differs) changed.emplace_back(name);
  };
  note(running.cluster_id != next.cluster_id, "cluster_id");
  note(running.region != next.region, "region");
  note(running.data_dir != next.data_dir, "data_dir");
  note(running.listen_client.ToString() != next.listen_client.ToString(), "listen.client");
  note(running.listen_peer.ToString() != next.listen_peer.ToString(), "listen.peer");
  bool regions = running.regions.size() != next.regions.size();
  for (std::size_t i = 0; !regions && i < running.regions.size(); ++i)
    regions = running.regions[i].name != next.regions[i].name ||
              running.regions[i].peer.ToString() != next.regions[i].peer.ToString();
  note(regions, "regions");
  note(running.insecure_loopback != next.insecure_loopback, "gossip.insecure_loopback");
  note(running.http_insecure_loopback != next.http_insecure_loopback, "http.insecure_loopback");
  note(running.tick_interval_ms != next.tick_interval_ms ||
           running.send_queue_bytes != next.send_queue_bytes ||
           running.reconnect_min_ms != next.reconnect_min_ms ||
           running.reconnect_max_ms != next.reconnect_max_ms ||
           running.handshake_timeout_ms != next.handshake_timeout_ms ||
           running.max_handshakes != next.max_handshakes ||
           running.max_handshakes_per_address != next.max_handshakes_per_address ||
           running.receive_buffer_bytes != next.receive_buffer_bytes,
       "[gossip]");
  note(running.max_body_bytes != next.max_body_bytes ||
           running.max_connections != next.max_connections ||
           running.max_pipelined != next.max_pipelined ||
           running.idle_timeout_ms != next.idle_timeout_ms || running.io_threads != next.io_threads,
       "[http]");
  return changed;
}

}  // namespace

Status NodeImpl::MakeTlsContexts(const NodeConfig& config, std::shared_ptr<ssl::context>* peer,
                                 std::shared_ptr<ssl::context>* api) {
  peer->reset();
  api->reset();
  if (!config.insecure_loopback) {
    if (Status s = MakePeerTlsContext(config.tls, config.cluster_id, config.region, peer); !s.ok())
      return s;
  }
  if (!config.http_insecure_loopback) {
    if (Status s = MakeApiTlsContext(config.tls, api); !s.ok()) return s;
  }
  return Status::OK();
}

void NodeImpl::WaitForReload() {
  reload_signal_.async_wait([this](const beast::error_code& ec, int) {
    if (ec || stopping_) return;
    Reload();
    WaitForReload();
  });
}

void NodeImpl::Reload() {
  SdNotify("RELOADING=1");
  struct Ready {  // whatever the outcome, systemd hears the reload is over
    ~Ready() { SdNotify("READY=1"); }
  } ready;
  NodeConfig next;
  Status s = reload_ ? reload_(&next) : Status::FailedPrecondition("no config file to reload");
  std::shared_ptr<ssl::context> peer_tls, api_tls;
  if (s.ok()) {
    // The new certificates, made for the node as it runs: its cluster, region and insecure flags
    // are start-only, so a file that changes them must not turn TLS off (or on) mid-run.
    NodeConfig running = config_;
    running.tls = next.tls;
    s = MakeTlsContexts(running, &peer_tls, &api_tls);
  }
  if (!s.ok()) {
    ++reloads_refused_;
    Log(LogLevel::kError, "SIGHUP: reload refused, the running config stays: {}", s.message());
    return;
  }
  const std::vector<std::string> later = StartOnlyChanges(config_, next);
  if (!later.empty())
    Log(LogLevel::kWarn, "SIGHUP: {} changed in the config; they take effect at the next restart",
        fmt::join(later, ", "));
  // Sessions re-check their cached token against the new ones before their next request.
  config_.roles = std::move(next.roles);
  config_.tokens = std::move(next.tokens);
  config_.tls = std::move(next.tls);
  authorizer_ = config_.MakeAuthorizer();
  ++auth_generation_;
  // A stream is a standing read: one whose token was revoked, or lost the right to read one of its
  // accounts, ends now rather than at its next reconnect.
  // Whichever way it authenticated (header, subprotocol, first message), authorization() holds its
  // token as a header would.
  const std::size_t cut = streams_->CloseUnless([this](const WsSession& ws) {
    const Principal* who = nullptr;
    return authorizer_.Authenticate(ws.authorization(), &who).ok() &&
           AuthorizeStream(*who, ws.accounts()).ok();
  });
  if (cut > 0)
    Log(LogLevel::kInfo, "SIGHUP: closed {} streams whose token no longer allows them", cut);
  peer_tls_ = std::move(peer_tls);
  api_tls_ = std::move(api_tls);
  ++reloads_ok_;
  Log(LogLevel::kInfo, "SIGHUP: reloaded {} tokens, {} roles{}", config_.tokens.size(),
      config_.roles.size(),
      peer_tls_ || api_tls_ ? " and the certificates (new connections use them)" : "");
}

}  // namespace tally::node
