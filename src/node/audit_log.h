// AuditLog: who moved money, and who was refused — one JSON object per line, apart from the
// operator log (docs/operations.md, "Audit log"). A line is written for every answer to a money
// route (open, credit, debit, transfer), whatever its result, and for every refused request on
// any route:
//
//   {"time":"2026-12-03T14:00:00.123Z","region":"eu","request_id":"eu-5f2c1a-17",
//    "token":"shop","remote":"10.0.0.7:51234","route":"credit","account":"shop-1","amount":500,
//    "idempotency_key":"order-77","status":200,"result":"ok"}
//
// The token's configured name, never the token. Lines are buffered and written out by Flush (the
// node calls it every tick and at shutdown), not synced: the ledger itself is the store; this
// says who asked for what.
//
// Threading: io thread only.

#ifndef TALLY_NODE_AUDIT_LOG_H_
#define TALLY_NODE_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/api.h"

namespace tally::node {

// What an audit line keeps of a client's idempotency key or account id (both are bounded by the
// API's own validation when valid; an invalid one is still audited, cut short).
inline constexpr std::size_t kMaxAuditedKeyBytes = 256;

// What a request's audit line says besides its answer; filled as the request is read and served.
struct AuditFacts {
  std::string request_id;       // X-Request-Id as sent (if valid) or made up by the node
  std::string token;            // the name of the token that authenticated it; "" if none did
  std::string remote;           // "ip:port" of the client
  std::string account;          // the account it names, if any (a transfer's payer)
  std::string payee;            // a transfer's payee
  std::int64_t amount = 0;      // 0: none (not a money route, or refused before it was read)
  std::string idempotency_key;  // the Idempotency-Key header, if any
};

class AuditLog {
 public:
  AuditLog() = default;
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends to `path` (created 0600 if missing); "-": standard error. IOError naming the path.
  Status Open(const std::string& path, std::string region);

  // Whether an answer of `http_status` to `route` gets a line.
  static bool Audited(Route route, int http_status);
  // Records the answer; `body` is the answer's body (an error's code is taken from it).
  void Answered(Route route, int http_status, std::string_view body, const AuditFacts& facts);
  void Flush();
  std::uint64_t lines() const { return lines_; }

 private:
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::string region_;
  std::uint64_t lines_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_AUDIT_LOG_H_
