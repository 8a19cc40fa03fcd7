#include "node/responder.h"

#include "node/api_host.h"

namespace tally::node {

Status Responder::Authenticate(std::string_view header, const Principal** out) {
  if (cached_principal_ && header == cached_auth_ &&
      cached_generation_ == auth_host_->auth_generation()) {
    *out = cached_principal_;
    return Status::OK();
  }
  Status s = auth_host_->Authenticate(header, out);
  if (s.ok()) {
    cached_auth_ = std::string(header);
    cached_principal_ = *out;
    cached_generation_ = auth_host_->auth_generation();
  }
  return s;
}

http::request<http::string_body> RequestFor(StreamMessage* m, const std::string& authorization,
                                            const std::string* default_durability) {
  http::request<http::string_body> req{
      m->method == Method::kGet ? http::verb::get : http::verb::post, m->target, 11};
  req.set(http::field::authorization, authorization);
  if (m->has_key) req.set("Idempotency-Key", m->key);
  if (m->has_durability) {
    req.set("Durability", m->durability);
  } else if (default_durability) {
    req.set("Durability", *default_durability);
  }
  req.body() = std::move(m->body);
  return req;
}

AuditFacts AuditOf(const StreamMessage& m, std::string request_id, std::string remote) {
  AuditFacts facts;
  facts.request_id = std::move(request_id);
  facts.remote = std::move(remote);
  facts.idempotency_key = m.key.substr(0, kMaxAuditedKeyBytes);
  facts.account = m.match.account.substr(0, kMaxAuditedKeyBytes);
  return facts;
}

}  // namespace tally::node
