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

}  // namespace tally::node
