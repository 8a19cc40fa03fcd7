// SessionRelay: the ApiHost of an HttpSession served on a client pool thread (client_pool.h) — it
// carries what the session asks of the node to the io thread, where the replica is, and leaves the
// session's thread free to read, parse and write. A request goes to the io thread with a copy of
// its audit facts, to the connection's RelayedResponder, which the node answers; answers the
// session gives itself (a malformed request, 405, 413) are counted on the io thread too. A GET
// /v1/stream moves the connection to the io thread (HttpSession::HandOver), where WebSockets are
// served.
//
// Threading: called on the session's thread, which owns it; what the node must do runs on
// node->io() by asio::post. config(), stopping() and NewRequestId() are the node's own, safe from
// any thread (api_host.h). api_tls() is called once, as the io thread makes the session.

#ifndef TALLY_NODE_SESSION_RELAY_H_
#define TALLY_NODE_SESSION_RELAY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "node/api_host.h"
#include "node/client_pool.h"
#include "node/relayed_responder.h"

namespace tally::node {

class SessionRelay final : public ApiHost {
 public:
  // `node` outlives every session; `pool` runs the session on its thread `thread`.
  SessionRelay(ApiHost* node, ClientPool* pool, std::size_t thread);
  SessionRelay(const SessionRelay&) = delete;
  SessionRelay& operator=(const SessionRelay&) = delete;

  // The session this relays for; once, before it starts.
  void Attach(const std::shared_ptr<HttpSession>& session);

  const NodeConfig& config() const override { return node_->config(); }
  bool stopping() const override { return node_->stopping(); }
  asio::io_context& io() override { return node_->io(); }
  std::shared_ptr<ssl::context> api_tls() override { return node_->api_tls(); }
  std::uint64_t auth_generation() const override { return node_->auth_generation(); }
  void NoteClientRefusal(ClientRefusal reason, std::string_view remote,
                         std::string_view why) override;
  // Not called: the node authenticates the RelayedResponder, on the io thread.
  Status Authenticate(std::string_view header, const Principal** out) const override;
  void HandleRequest(const std::shared_ptr<Responder>& session, std::uint64_t slot, Route route,
                     RouteMatch match, http::request<http::string_body>& req) override;
  void OpenStream(const std::shared_ptr<HttpSession>& session, std::uint64_t slot, RouteMatch match,
                  http::request<http::string_body>& req) override;
  void Answered(Route route, int http_status, SteadyTime start, std::string_view body,
                const AuditFacts& facts) override;
  std::string NewRequestId() override { return node_->NewRequestId(); }
  void SessionClosed(std::uint64_t id) override;
  // Not called: WebSockets and adoption are the io thread's.
  void Subscribe(const std::shared_ptr<WsSession>& ws) override;
  void Unsubscribe(std::uint64_t id) override;
  void Adopt(const std::shared_ptr<HttpSession>& session) override;

 private:
  ApiHost* const node_;
  ClientPool* const pool_;
  const std::size_t thread_;
  std::weak_ptr<HttpSession> session_;
  std::shared_ptr<RelayedResponder> responder_;  // its io-thread half
};

}  // namespace tally::node

#endif  // TALLY_NODE_SESSION_RELAY_H_
