#include "node/relayed_responder.h"

#include <string>
#include <utility>

#include "node/http_session.h"

namespace tally::node {

RelayedResponder::RelayedResponder(ApiHost* node, asio::io_context* session_io,
                                   std::weak_ptr<HttpSession> session)
    : Responder(node), node_(node), session_io_(session_io), session_(std::move(session)) {}

void RelayedResponder::Handle(std::uint64_t slot, Route route, SteadyTime start, AuditFacts facts,
                              RouteMatch match, http::request<http::string_body>& req) {
  pending_[slot] = Pending{route, start, std::move(facts)};
  node_->HandleRequest(shared_from_this(), slot, route, std::move(match), req);
}

AuditFacts* RelayedResponder::audit(std::uint64_t slot) {
  auto it = pending_.find(slot);
  return it == pending_.end() ? nullptr : &it->second.audit;
}

void RelayedResponder::DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                                 std::string_view body, std::string_view extra_headers) {
  auto it = pending_.find(slot);
  if (it == pending_.end()) return;  // answered already
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (closed()) return;
  node_->Answered(p.route, status, p.start, body, p.audit);
  asio::post(*session_io_,
             [session = session_, slot, status, content_type = std::string(content_type),
              body = std::string(body), extra = std::string(extra_headers)] {
               if (auto s = session.lock())
                 s->RespondCounted(slot, status, content_type, body, extra);
             });
}

}  // namespace tally::node
