#include "node/auth.h"

#include <openssl/evp.h>

#include <array>
#include <boost/beast/core/string.hpp>

namespace tally::node {

namespace {

constexpr std::array<std::string_view, kPermissionCount> kPermissionNames = {
    "open_accounts", "credit", "debit", "rights", "read", "read_reports", "cluster", "backup",
};

}  // namespace

std::string_view PermissionName(Permission p) {
  return kPermissionNames[static_cast<std::size_t>(p)];
}

bool ParsePermission(std::string_view name, Permission* out) {
  if (name == "transfer") name = "rights";  // its spelling before 0.2; accepted for one version
  for (int i = 0; i < kPermissionCount; ++i) {
    if (kPermissionNames[i] == name) {
      *out = static_cast<Permission>(i);
      return true;
    }
  }
  return false;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point (the last `*`): linear in practice, and no
  // recursion a hostile pattern could blow up.
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure inside OpenSSL; an all-zero digest then matches
  // no configured token, so the failure denies rather than grants.
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) len = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool Principal::CoversAccount(std::string_view account) const {
  for (const std::string& pattern : account_patterns) {
    if (GlobMatch(pattern, account)) return true;
  }
  return false;
}

Status Authorizer::Authenticate(std::string_view authorization, const Principal** out) const {
  if (authorization.empty())
    return Status::Unauthenticated("missing Authorization header (expected \"Bearer <token>\")");
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !boost::beast::iequals(boost::beast::string_view(authorization.data(), kScheme.size()),
                             boost::beast::string_view(kScheme.data(), kScheme.size())) ||
      authorization[kScheme.size()] != ' ')
    return Status::Unauthenticated("Authorization header must be \"Bearer <token>\"");
  std::string_view token = authorization.substr(kScheme.size() + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return Status::Unauthenticated("empty bearer token");
  auto it = by_hash_.find(Sha256Hex(token));
  if (it == by_hash_.end()) return Status::Unauthenticated("unknown bearer token");
  *out = &it->second;
  return Status::OK();
}

Status Authorizer::Authorize(const Principal& who, Permission p, std::string_view account) {
  if (!who.Has(p))
    return Status::PermissionDenied("token '" + who.name + "' (role '" + who.role +
                                    "') lacks permission '" + std::string(PermissionName(p)) + "'");
  if (!account.empty() && !who.CoversAccount(account))
    return Status::PermissionDenied("account '" + std::string(account) +
                                    "' is outside the scope of token '" + who.name + "'");
  return Status::OK();
}

}  // namespace tally::node
