// ApiHost: what a client connection (HttpSession, WsSession) may ask of the node it serves — the
// whole of it. Sessions own their socket and the HTTP framing; everything that reads or changes
// the replica goes through these calls, as NuRaft keeps Asio behind its small rpc_client. NodeImpl
// implements it; a test could serve sessions from a fake.
//
// Threading: every call is made on the io thread, from a session's completion handler.

#ifndef TALLY_NODE_API_HOST_H_
#define TALLY_NODE_API_HOST_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/status.h"
#include "node/api.h"
#include "node/auth.h"
#include "node/config.h"
#include "node/net.h"

namespace tally::node {

class HttpSession;
class WsSession;

class ApiHost {
 public:
  virtual ~ApiHost() = default;

  // The [client] limits a session applies (max_pipelined, max_body_bytes, idle_timeout_ms).
  virtual const NodeConfig& config() const = 0;
  // True once shutdown began: answers carry "Connection: close".
  virtual bool stopping() const = 0;
  // Checks an Authorization header (the session caches the answer per connection).
  virtual Status Authenticate(std::string_view header, const Principal** out) const = 0;

  // A routed request; the host answers `slot` through session->Respond (now or after a sync) or
  // hands the connection over with session->Upgrade.
  virtual void HandleRequest(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                             Route route, RouteMatch match,
                             http::request<http::string_body>& req) = 0;
  // An answer left (for the request metrics): its route, HTTP status and when it was read.
  virtual void CountRequest(Route route, int http_status, SteadyTime start) = 0;
  // The session `id` closed (or became a stream): the host forgets it.
  virtual void SessionClosed(std::uint64_t id) = 0;

  // A stream's WebSocket handshake is done: it gets its accounts' state now and on every durable
  // change. Unsubscribe when it closes (may be called from inside a Send the host made).
  virtual void Subscribe(const std::shared_ptr<WsSession>& ws) = 0;
  virtual void Unsubscribe(std::uint64_t id) = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_API_HOST_H_
