// The audit log and request ids on a real tallyd (issue 12). Before, nothing recorded who moved
// money or who was refused. Now every answer to a money route and every refused request is one
// JSON line in <data_dir>/audit.jsonl (by default): time, request id, token name (never the
// token), route, account, amount, idempotency key, status and result. X-Request-Id is taken from
// the client when usable, made up otherwise, and echoed in the answer.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

std::vector<json> AuditLines(const Cluster& c, std::size_t i, std::string* raw) {
  std::ifstream f(c.data_dir(i) / "audit.jsonl");
  std::stringstream ss;
  ss << f.rdbuf();
  *raw = ss.str();
  std::vector<json> lines;
  std::stringstream in(*raw);
  for (std::string line; std::getline(in, line);)
    lines.push_back(json::parse(line, nullptr, false));
  return lines;
}

json ById(const std::vector<json>& lines, const std::string& id) {
  for (const json& l : lines)
    if (l.is_object() && l.value("request_id", "") == id) return l;
  return json();
}

}  // namespace

TEST_CASE("money movements and refusals are audited with request ids, tokens by name only",
          "[node][audit]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("audit", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));  // a region alone answers writes 503 until a peer answers it
  Api admin = c.api(0), shop = c.api(0, kShopToken), nobody = c.api(0, "");
  REQUIRE(admin.Open("shop-a").status == 201);
  REQUIRE(admin.Open("private").status == 201);

  const Reply credited = admin.Call("POST", "/v1/accounts/shop-a/credits", R"({"amount":500})",
                                    {{"Idempotency-Key", "order-77"}, {"X-Request-Id", "req-1"}});
  REQUIRE(credited.status == 200);
  CHECK(credited.header("X-Request-Id") == "req-1");
  const Reply forbidden = shop.Call("POST", "/v1/accounts/private/debits", R"({"amount":3})",
                                    {{"Idempotency-Key", "steal"}, {"X-Request-Id", "req-2"}});
  CHECK(forbidden.status == 403);
  const Reply anonymous = nobody.CallNoAuth("POST", "/v1/accounts/shop-a/debits", R"({"amount":1})",
                                            {{"X-Request-Id", "req-3"}});
  CHECK(anonymous.status == 401);
  const Reply bad_amount = admin.Call("POST", "/v1/accounts/shop-a/debits", R"({"amount":1.5})",
                                      {{"Idempotency-Key", "k"}, {"X-Request-Id", "req-4"}});
  CHECK(bad_amount.status == 400);
  const Reply read = admin.Call("GET", "/v1/accounts/shop-a", "", {{"X-Request-Id", "req-5"}});
  CHECK(read.status == 200);
  CHECK(read.header("X-Request-Id") == "req-5");
  // An id a client cannot be trusted with (spaces, quotes) is replaced by one of the node's.
  const Reply made_up = admin.Call("POST", "/v1/accounts/shop-a/credits", R"({"amount":1})",
                                   {{"Idempotency-Key", "k2"}, {"X-Request-Id", "a \"b\""}});
  REQUIRE(made_up.status == 200);
  const std::string node_id = made_up.header("X-Request-Id");
  CHECK(node_id.rfind("eu-", 0) == 0);

  std::string raw;
  std::vector<json> lines;
  REQUIRE(WaitUntil(
      [&] {
        lines = AuditLines(c, 0, &raw);
        return !ById(lines, node_id).is_null();
      },
      5s));
  INFO(raw);
  for (const json& l : lines) CHECK(l.is_object());
  const json credit = ById(lines, "req-1");
  CHECK(credit.value("token", "") == "admin");
  CHECK(credit.value("route", "") == "credit");
  CHECK(credit.value("account", "") == "shop-a");
  CHECK(credit.value("amount", 0) == 500);
  CHECK(credit.value("idempotency_key", "") == "order-77");
  CHECK(credit.value("status", 0) == 200);
  CHECK(credit.value("result", "") == "ok");
  CHECK(credit.value("region", "") == "eu");
  CHECK(credit.value("remote", "").rfind("127.0.0.1:", 0) == 0);
  const json steal = ById(lines, "req-2");
  CHECK(steal.value("token", "") == "shop");
  CHECK(steal.value("status", 0) == 403);
  CHECK(steal.value("result", "") == "permission_denied");
  CHECK(steal.value("account", "") == "private");
  const json anon = ById(lines, "req-3");
  CHECK(anon.contains("token"));
  CHECK(anon["token"].is_null());
  CHECK(anon.value("result", "") == "unauthenticated");
  CHECK(ById(lines, "req-4").value("result", "") == "invalid_argument");
  CHECK(ById(lines, "req-5").is_null());  // a successful read is not audited
  CHECK(ById(lines, node_id).value("amount", 0) == 1);
  CHECK(raw.find(kAdminToken) == std::string::npos);
  CHECK(raw.find(kShopToken) == std::string::npos);

  struct stat st {};
  REQUIRE(::stat((c.data_dir(0) / "audit.jsonl").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}
