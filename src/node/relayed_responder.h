// RelayedResponder: the io-thread half of a client connection served on a client pool thread
// (client_pool.h) — the Responder the node answers, in place of the HttpSession it cannot touch
// from the io thread. Its SessionRelay hands it each request (Handle); the node's answer is
// counted and audited here, on the io thread, as HttpSession would (ApiHost::Answered), and the
// bytes go to the session's own thread (HttpSession::RespondCounted), which writes them in order.
//
// The durability rule is unchanged: the node calls Respond only once the gate lets the answer out
// (after the sync); this only moves where the bytes are written.
//
// Threading: io thread only, but closed() and MarkClosed, which the session's thread calls when the
// connection closes (an atomic flag). Owned by shared_ptr: its SessionRelay and the node's commands
// and deferred answers hold it; it holds the session only weakly.

#ifndef TALLY_NODE_RELAYED_RESPONDER_H_
#define TALLY_NODE_RELAYED_RESPONDER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "node/api.h"
#include "node/api_host.h"
#include "node/audit_log.h"
#include "node/net.h"
#include "node/responder.h"

namespace tally::node {

class HttpSession;

class RelayedResponder : public Responder, public std::enable_shared_from_this<RelayedResponder> {
 public:
  // `node` answers on its io(); `session_io` is the session's thread's io_context.
  RelayedResponder(ApiHost* node, asio::io_context* session_io, std::weak_ptr<HttpSession> session);

  // A request the session read (its slot, route, when it was read and its audit facts so far):
  // handed to the node.
  void Handle(std::uint64_t slot, Route route, SteadyTime start, AuditFacts facts, RouteMatch match,
              http::request<http::string_body>& req);
  // The connection closed (any thread): answers still owed are dropped.
  void MarkClosed() { closed_.store(true, std::memory_order_release); }

  bool closed() const override { return closed_.load(std::memory_order_acquire); }
  AuditFacts* audit(std::uint64_t slot) override;

 private:
  struct Pending {
    Route route = Route::kUnknown;
    SteadyTime start;
    AuditFacts audit;
  };
  void DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                 std::string_view body, std::string_view extra_headers) override;

  ApiHost* const node_;
  asio::io_context* const session_io_;
  const std::weak_ptr<HttpSession> session_;
  std::atomic<bool> closed_{false};
  std::unordered_map<std::uint64_t, Pending> pending_;  // by slot; looked up only, never iterated
};

}  // namespace tally::node

#endif  // TALLY_NODE_RELAYED_RESPONDER_H_
