// Responder: a client connection as the request handler sees it — where ApiHost::HandleRequest
// sends the answer to each request it was handed, and how the connection's token is checked.
// HttpSession answers in HTTP/1.1; WsSession answers a request sent as a stream message with a
// result message. Either way the handler's code — parsing, permissions, the answer's status and
// body, the wait for the sync that makes it durable — is the same, written once.
//
// An answer may come long after its request (after the group commit syncs, after rights arrive);
// the session numbers each request with a slot and the answer names it.
//
// Threading: io thread only.

#ifndef TALLY_NODE_RESPONDER_H_
#define TALLY_NODE_RESPONDER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/audit_log.h"
#include "node/auth.h"
#include "node/net.h"
#include "node/stream_messages.h"

namespace tally::node {

class ApiHost;

class Responder {
 public:
  // `host` (which outlives this) checks tokens and says when they were reloaded.
  explicit Responder(const ApiHost* host) : auth_host_(host) {}
  virtual ~Responder() = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Fills answer `slot` (from the request handler or later, after a sync); ignored once closed or
  // already answered. `extra_headers`: "Name: value\r\n" lines the answer has besides its body.
  void Respond(std::uint64_t slot, int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {}) {
    DoRespond(slot, status, content_type, body, extra_headers);
  }
  // What the audit line of answer `slot` will say (the host adds the token and amount); null once
  // answered.
  virtual AuditFacts* audit(std::uint64_t slot) = 0;
  // True once no answer can reach the client any more.
  virtual bool closed() const = 0;

  // Authentication is cached per connection: clients send the same token on every request. A
  // reload of the tokens (ApiHost::auth_generation) makes the cache stale.
  Status Authenticate(std::string_view header, const Principal** out);

 private:
  virtual void DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                         std::string_view body, std::string_view extra_headers) = 0;

  const ApiHost* const auth_host_;
  std::string cached_auth_;
  const Principal* cached_principal_ = nullptr;  // into the host's tokens of cached_generation_
  std::uint64_t cached_generation_ = 0;
};

// The HTTP request a request message stands for (a stream's, or an op of a batch), authorized by
// `authorization`; its Durability header is the message's own, else `default_durability` (null:
// none). Takes m's body.
http::request<http::string_body> RequestFor(StreamMessage* m, const std::string& authorization,
                                            const std::string* default_durability = nullptr);
// What the audit line of such a request says before the handler adds to it: its id, where it
// came from, its key and account (cut to kMaxAuditedKeyBytes).
AuditFacts AuditOf(const StreamMessage& m, std::string request_id, std::string remote);

}  // namespace tally::node

#endif  // TALLY_NODE_RESPONDER_H_
