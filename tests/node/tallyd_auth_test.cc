// Bearer tokens, roles and account scopes: deny by default, 401 vs 403, globs.
#include <catch2/catch.hpp>

#include "node/auth.h"

using namespace tally;
using namespace tally::node;

TEST_CASE("glob patterns over account ids", "[auth]") {
  CHECK(GlobMatch("*", ""));
  CHECK(GlobMatch("*", "anything"));
  CHECK(GlobMatch("shop-*", "shop-1"));
  CHECK(GlobMatch("shop-*", "shop-"));
  CHECK_FALSE(GlobMatch("shop-*", "shop"));
  CHECK_FALSE(GlobMatch("shop-*", "xshop-1"));
  CHECK(GlobMatch("user:??", "user:ab"));
  CHECK_FALSE(GlobMatch("user:??", "user:abc"));
  CHECK(GlobMatch("a*b*c", "aXXbYYc"));
  CHECK_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  CHECK(GlobMatch("exact", "exact"));
  CHECK_FALSE(GlobMatch("exact", "exac"));
  CHECK_FALSE(GlobMatch("", "a"));
}

TEST_CASE("sha256 hex matches the standard test vectors", "[auth]") {
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(IsSha256Hex(Sha256Hex("x")));
  CHECK_FALSE(IsSha256Hex("ABCD"));
}

TEST_CASE("authentication: 401 for missing, malformed and unknown tokens", "[auth]") {
  Principal teller;
  teller.name = "app";
  teller.role = "teller";
  teller.permissions = PermissionBit(Permission::kDebit) | PermissionBit(Permission::kRead);
  teller.account_patterns = {"shop-*"};
  Authorizer auth({{Sha256Hex("secret-token"), teller}});

  const Principal* who = nullptr;
  REQUIRE(auth.Authenticate("Bearer secret-token", &who).ok());
  CHECK(who->name == "app");
  CHECK(auth.Authenticate("bearer secret-token", &who).ok());  // the scheme is case-insensitive
  CHECK(auth.Authenticate("", &who).code() == Code::kUnauthenticated);
  CHECK(auth.Authenticate("Bearer", &who).code() == Code::kUnauthenticated);
  CHECK(auth.Authenticate("Bearer ", &who).code() == Code::kUnauthenticated);
  CHECK(auth.Authenticate("Basic c2VjcmV0", &who).code() == Code::kUnauthenticated);
  CHECK(auth.Authenticate("Bearer secret-tokenX", &who).code() == Code::kUnauthenticated);
  CHECK(auth.Authenticate("Bearersecret-token", &who).code() == Code::kUnauthenticated);

  Authorizer nobody;  // no tokens configured: everything is refused
  CHECK(nobody.Authenticate("Bearer secret-token", &who).code() == Code::kUnauthenticated);
}

TEST_CASE("authorization: 403 without the permission or outside the scope", "[auth]") {
  Principal p;
  p.name = "app";
  p.role = "teller";
  p.permissions = PermissionBit(Permission::kDebit);
  p.account_patterns = {"shop-*"};
  CHECK(Authorizer::Authorize(p, Permission::kDebit, "shop-1").ok());
  Status s = Authorizer::Authorize(p, Permission::kCredit, "shop-1");
  CHECK(s.code() == Code::kPermissionDenied);
  CHECK_THAT(s.message(), Catch::Contains("lacks permission 'credit'"));
  s = Authorizer::Authorize(p, Permission::kDebit, "bank-1");
  CHECK(s.code() == Code::kPermissionDenied);
  CHECK_THAT(s.message(), Catch::Contains("outside the scope"));
  // A route without an account only needs the permission.
  CHECK(Authorizer::Authorize(p, Permission::kDebit, "").ok());
  CHECK(Authorizer::Authorize(p, Permission::kCluster, "").code() == Code::kPermissionDenied);

  Principal unscoped = p;
  unscoped.account_patterns.clear();
  CHECK(Authorizer::Authorize(unscoped, Permission::kDebit, "shop-1").code() ==
        Code::kPermissionDenied);
}

TEST_CASE("permission names round-trip", "[auth]") {
  for (int i = 0; i < kPermissionCount; ++i) {
    Permission p;
    REQUIRE(ParsePermission(PermissionName(static_cast<Permission>(i)), &p));
    CHECK(p == static_cast<Permission>(i));
  }
  Permission p;
  CHECK_FALSE(ParsePermission("admin", &p));
  // "transfer" was the spelling of "rights" before 0.2: it still grants rights moves, and only
  // those (moving money between accounts takes debit and credit).
  REQUIRE(ParsePermission("transfer", &p));
  CHECK(p == Permission::kRights);
  CHECK(PermissionName(Permission::kRights) == "rights");
}
