// ApiHost: what a client connection (HttpSession, WsSession) may ask of the node it serves — the
// whole of it. Sessions own their socket and the HTTP or WebSocket framing; everything that reads
// or changes the replica goes through these calls, as NuRaft keeps Asio behind its small
// rpc_client. NodeImpl implements it; a test could serve sessions from a fake.
//
// Threading: every call is made on the io thread (the one that drives the replica), from a
// session's completion handler — except from a session on a client pool thread (io_threads > 1,
// client_pool.h): that one's host is its SessionRelay, which makes the calls below on the io
// thread for it. NodeImpl may assume the io thread, and, called from elsewhere, answers only
// config(), stopping(), NewRequestId() and io(), which are safe from any thread.

#ifndef TALLY_NODE_API_HOST_H_
#define TALLY_NODE_API_HOST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/api.h"
#include "node/audit_log.h"
#include "node/auth.h"
#include "node/config.h"
#include "node/net.h"
#include "node/peer_tls.h"

namespace tally::node {

class HttpSession;
class Responder;
class WsSession;

// Why we closed a client connection before its first request
// (tally_http_connections_refused_total{reason}).
enum class ClientRefusal {
  kTlsHandshake,      // the TLS handshake failed
  kPlainHttp,         // plain HTTP to the HTTPS port (answered 400 in plain text, then closed)
  kHandshakeTimeout,  // no finished TLS handshake within http.idle_timeout_ms
};
inline constexpr std::size_t kClientRefusalKinds = 3;
std::string_view ClientRefusalName(ClientRefusal reason);  // the metric's label

class ApiHost {
 public:
  virtual ~ApiHost() = default;

  // The [http] limits a session applies (max_pipelined, max_body_bytes, idle_timeout_ms). Those are
  // start-only (a reload changes tokens, roles and certificates), so any thread may read them.
  virtual const NodeConfig& config() const = 0;
  // True once shutdown began: answers carry "Connection: close". Any thread.
  virtual bool stopping() const = 0;
  // The io thread's io_context: what touches the replica runs there.
  virtual asio::io_context& io() = 0;
  // The client API's TLS context (api_stream.h); null for plain HTTP (http.insecure_loopback).
  virtual std::shared_ptr<ssl::context> api_tls() = 0;
  // Changes when the tokens are reloaded (SIGHUP): a session's cached authentication is stale.
  virtual std::uint64_t auth_generation() const = 0;
  // Counts (and, rate limited, logs) a client connection closed before its first request.
  virtual void NoteClientRefusal(ClientRefusal reason, std::string_view remote,
                                 std::string_view why) = 0;
  // Checks an Authorization header (Responder caches the answer per connection).
  virtual Status Authenticate(std::string_view header, const Principal** out) const = 0;

  // A routed request, from HTTP or a stream's request message (then a request made from it,
  // stream_messages.h); the host answers `slot` through session->Respond, now or after a sync.
  // Not GET /v1/stream, which is OpenStream's.
  virtual void HandleRequest(const std::shared_ptr<Responder>& session, std::uint64_t slot,
                             Route route, RouteMatch match,
                             http::request<http::string_body>& req) = 0;
  // GET /v1/stream: the host checks the credentials the upgrade carries, if any, and hands the
  // connection over with session->Upgrade, or answers `slot` with the refusal.
  virtual void OpenStream(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                          RouteMatch match, http::request<http::string_body>& req) = 0;
  // An answer left: its route, HTTP status, when the request was read, the body and what the
  // audit log says of it (the request metrics and the audit line, audit_log.h).
  virtual void Answered(Route route, int http_status, SteadyTime start, std::string_view body,
                        const AuditFacts& facts) = 0;
  // A request id for a request that did not send a usable X-Request-Id. Any thread.
  virtual std::string NewRequestId() = 0;
  // The session `id` closed (or became a stream): the host forgets it.
  virtual void SessionClosed(std::uint64_t id) = 0;
  // A session moved from a client pool thread onto the io thread (a GET /v1/stream, whose
  // WebSocket is served there): the host keeps it among its own, as if it had accepted it.
  virtual void Adopt(const std::shared_ptr<HttpSession>& session) = 0;

  // A stream's WebSocket handshake is done. Authenticated (ws->open()), it gets its accounts' state
  // now and on every durable change. Not yet (its first message must authenticate it), it is only
  // counted among the streams and closed at shutdown, and subscribes again once authenticated.
  // Unsubscribe when it closes (may be called from inside a Send the host made).
  virtual void Subscribe(const std::shared_ptr<WsSession>& ws) = 0;
  virtual void Unsubscribe(std::uint64_t id) = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_API_HOST_H_
