#include "node/session_relay.h"

#include <cstdlib>
#include <utility>

#include "node/http_session.h"
#include "node/log.h"

namespace tally::node {

SessionRelay::SessionRelay(ApiHost* node, ClientPool* pool, std::size_t thread)
    : node_(node), pool_(pool), thread_(thread) {}

void SessionRelay::Attach(const std::shared_ptr<HttpSession>& session) {
  session_ = session;
  responder_ = std::make_shared<RelayedResponder>(node_, &pool_->context(thread_), session);
}

void SessionRelay::NoteClientRefusal(ClientRefusal reason, std::string_view remote,
                                     std::string_view why) {
  asio::post(node_->io(),
             [node = node_, reason, remote = std::string(remote), why = std::string(why)] {
               node->NoteClientRefusal(reason, remote, why);
             });
}

Status SessionRelay::Authenticate(std::string_view, const Principal**) const {
  return Status::Internal("SessionRelay::Authenticate: authenticate on the io thread");
}

void SessionRelay::HandleRequest(const std::shared_ptr<Responder>&, std::uint64_t slot, Route route,
                                 RouteMatch match, http::request<http::string_body>& req) {
  auto session = session_.lock();
  if (!session) return;
  const AuditFacts* facts = session->audit(slot);
  asio::post(node_->io(), [r = responder_, slot, route, start = session->started(slot),
                           facts = facts ? *facts : AuditFacts{}, match = std::move(match),
                           req = std::move(req)]() mutable {
    r->Handle(slot, route, start, std::move(facts), std::move(match), req);
  });
}

void SessionRelay::OpenStream(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                              RouteMatch match, http::request<http::string_body>& req) {
  std::shared_ptr<HttpSession> moved = session->HandOver(node_);
  if (!moved) {
    session->Respond(slot, 400, kJson,
                     ErrorJson(Status::InvalidArgument(
                         "a WebSocket upgrade must not be pipelined behind other requests")));
    return;
  }
  asio::post(node_->io(), [node = node_, moved = std::move(moved), slot, match = std::move(match),
                           req = std::move(req)]() mutable {
    node->Adopt(moved);
    node->OpenStream(moved, slot, std::move(match), req);
    moved->Resume();
  });
}

void SessionRelay::Answered(Route route, int http_status, SteadyTime start, std::string_view body,
                            const AuditFacts& facts) {
  asio::post(node_->io(), [node = node_, route, http_status, start, body = std::string(body),
                           facts]() { node->Answered(route, http_status, start, body, facts); });
}

void SessionRelay::SessionClosed(std::uint64_t id) {
  if (responder_) responder_->MarkClosed();
  pool_->Forget(thread_, id);
}

namespace {

// A broken invariant, not an operating error: WebSockets never live on a pool thread.
[[noreturn]] void NotOnPoolThread(std::string_view call) {
  Log(LogLevel::kError, "SessionRelay::{} called: only the io thread serves it", call);
  std::abort();
}

}  // namespace

void SessionRelay::Subscribe(const std::shared_ptr<WsSession>&) { NotOnPoolThread("Subscribe"); }
void SessionRelay::Unsubscribe(std::uint64_t) { NotOnPoolThread("Unsubscribe"); }
void SessionRelay::Adopt(const std::shared_ptr<HttpSession>&) { NotOnPoolThread("Adopt"); }

}  // namespace tally::node
