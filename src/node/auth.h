// Auth: who may do what on which accounts, for tallyd's client API.
//
// A caller presents `Authorization: Bearer <token>`. tallyd never stores tokens, only the
// lower-case hex SHA-256 of each (the config holds those), so a leaked config leaks no credential.
// A token maps to a Principal: a role's permissions plus account-id glob patterns (its scope).
// Everything is denied unless a permission and, for account routes, a pattern grant it.
//
// Authenticate answers Unauthenticated (HTTP 401) for a missing, malformed or unknown token;
// Authorize answers PermissionDenied (403) for a missing permission or an account out of scope.
// An Authorizer is immutable after construction: any thread may call its const methods.

#ifndef TALLY_NODE_AUTH_H_
#define TALLY_NODE_AUTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally::node {

enum class Permission : std::uint8_t {
  kOpenAccounts = 0,  // POST /v1/accounts
  kCredit,            // POST /v1/accounts/{id}/credits
  kDebit,             // POST /v1/accounts/{id}/debits
  kRights,            // POST /v1/accounts/{id}/rights (moves this region's rights)
  kRead,              // GET /v1/accounts/{id}, GET /v1/stream
  kReadReports,       // GET /v1/accounts/{id}/report
  kCluster,           // GET /v1/cluster
  kBackup,            // POST /v1/admin/backup (writes a copy of the store where the caller says)
};
inline constexpr int kPermissionCount = 8;

using PermissionSet = std::uint32_t;
inline constexpr PermissionSet PermissionBit(Permission p) {
  return PermissionSet{1} << static_cast<int>(p);
}

// The config spelling: "open_accounts", "credit", "debit", "rights", "read", "read_reports",
// "cluster", "backup"; "transfer", the old spelling of "rights", is accepted for one version.
// ParsePermission returns false for anything else.
std::string_view PermissionName(Permission p);
bool ParsePermission(std::string_view name, Permission* out);

// Shell-style glob over account ids: `*` matches any run of characters (empty included), `?` any
// one character, everything else itself. No character classes: account ids cannot hold `[`.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// True when `s` is 64 lower-case hex digits, the form the config stores token hashes in.
bool IsSha256Hex(std::string_view s);

struct Principal {
  std::string name;  // the token's name in the config, for logs; never the token
  std::string role;
  PermissionSet permissions = 0;
  std::vector<std::string> account_patterns;

  bool Has(Permission p) const { return (permissions & PermissionBit(p)) != 0; }
  bool CoversAccount(std::string_view account) const;
};

class Authorizer {
 public:
  Authorizer() = default;
  // `by_hash`: token SHA-256 hex -> principal.
  explicit Authorizer(std::map<std::string, Principal> by_hash) : by_hash_(std::move(by_hash)) {}

  // `authorization` is the raw header value ("" when absent). On success *out points into this
  // Authorizer (valid as long as it lives).
  Status Authenticate(std::string_view authorization, const Principal** out) const;

  // `account` empty: a route that names no account (then only the permission counts).
  static Status Authorize(const Principal& who, Permission p, std::string_view account);

  std::size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, Principal> by_hash_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_AUTH_H_
