// GET /v1/accounts against a real tallyd: pages in id order with an opaque cursor that stays right
// while accounts are opened between pages, a prefix, the token's scope, every bad query with its
// error (tallyctl's `account list`: tallyctl_test.cc).
#include <catch2/catch.hpp>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

std::vector<std::string> Ids(const Reply& r) {
  std::vector<std::string> ids;
  for (const auto& a : r.body["accounts"]) ids.push_back(a["id"].get<std::string>());
  return ids;
}

}  // namespace

TEST_CASE("accounts are listed by id, a page at a time, within the token's scope", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("list", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));  // writes are refused (503) until the regions rejoined
  Api api = c.api(0);
  for (const char* id : {"a-3", "a-1", "a-5", "shop-2", "shop-1", "b-1"})
    REQUIRE(api.Open(id).status == 201);
  REQUIRE(api.Credit("a-1", 70, "k1").status == 200);
  REQUIRE(api.Call("POST", "/v1/accounts", R"({"id":"a-4","parent":"a-1"})").status == 201);

  Reply first = api.Call("GET", "/v1/accounts?prefix=a-&limit=2");
  INFO(first.raw);
  REQUIRE(first.status == 200);
  CHECK(Ids(first) == std::vector<std::string>{"a-1", "a-3"});
  CHECK(Int(first.body["accounts"][0], "balance") == 70);
  CHECK(Int(first.body["accounts"][0], "available") == 70);
  CHECK(first.body["accounts"][0]["currency"] == "EUR");
  REQUIRE(first.body["next_cursor"].is_string());
  // Opened between two pages, before the cursor: the next page neither repeats nor skips.
  REQUIRE(api.Open("a-2").status == 201);
  Reply second = api.Call("GET", "/v1/accounts?prefix=a-&limit=2&cursor=" +
                                     first.body["next_cursor"].get<std::string>());
  INFO(second.raw);
  REQUIRE(second.status == 200);
  CHECK(Ids(second) == std::vector<std::string>{"a-4", "a-5"});
  CHECK(second.body["accounts"][0]["parent"] == "a-1");
  CHECK(second.body["next_cursor"].is_null());
  Reply all = api.Call("GET", "/v1/accounts");
  CHECK(Ids(all) ==
        std::vector<std::string>{"a-1", "a-2", "a-3", "a-4", "a-5", "b-1", "shop-1", "shop-2"});
  // The shop token (shop-*) sees its accounts only, whatever the prefix.
  Api shop = c.api(0, kShopToken);
  CHECK(Ids(shop.Call("GET", "/v1/accounts")) == std::vector<std::string>{"shop-1", "shop-2"});
  CHECK(Ids(shop.Call("GET", "/v1/accounts?prefix=a-")).empty());

  auto error = [&](const Reply& r, int status, const std::string& says) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(ErrorMessage(r).find(says) != std::string::npos);
  };
  error(api.Call("GET", "/v1/accounts?limit=0"), 400, "limit must be an integer in 1..1000");
  error(api.Call("GET", "/v1/accounts?limit=1001"), 400, "limit must be an integer in 1..1000");
  error(api.Call("GET", "/v1/accounts?limit=ten"), 400, "got 'ten'");
  error(api.Call("GET", "/v1/accounts?cursor=zz"), 400, "is not one this API gave");
  error(api.Call("GET", "/v1/accounts?cursor=c2"), 400, "is not one this API gave");
  error(api.Call("GET", "/v1/accounts?prefix=bad%20id"), 400, "prefix:");
  error(api.Call("GET", "/v1/accounts?sort=id"), 400, "unknown query parameter 'sort'");
  error(api.Call("GET", "/v1/accounts?limit=1&limit=2"), 400, "given twice");
  error(c.api(0, "").Call("GET", "/v1/accounts"), 401, "");
  Reply del = api.Call("DELETE", "/v1/accounts");
  error(del, 405, "not allowed");
  CHECK(del.header("Allow") == "GET, POST");
}
