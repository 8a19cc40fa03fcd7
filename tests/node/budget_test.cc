// Budgets in a hierarchy against real tallyd processes: caps that hold in three cut-off regions (no
// level of org -> team spent beyond what it had there), a fallback retried in two cut-off regions
// that takes the money once, the token's scope on what a fallback may take, and every bad request
// with its error.
#include <catch2/catch.hpp>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

Reply OpenChild(Api& api, const std::string& id, const std::string& parent, bool cap,
                const std::string& currency = "EUR") {
  json body{{"id", id}, {"currency", currency}, {"parent", parent}};
  if (cap) body["cap"] = true;
  return api.Call("POST", "/v1/accounts", body.dump());
}

Reply FallbackDebit(Api& api, const std::string& id, std::int64_t amount, const std::string& key) {
  return api.Call("POST", "/v1/accounts/" + id + "/debits",
                  json{{"amount", amount}, {"fallback", true}}.dump(), {{"Idempotency-Key", key}});
}

json Payers(const Reply& r) { return r.body.value("payers", json::array()); }

}  // namespace

TEST_CASE("budgets in three cut-off regions: caps hold, a retried fallback pays once", "[node]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("budget", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  // org <- team (a cap inside org) <- user-7 (a budget of its own that may fall back).
  Api admin = c.api(0);
  REQUIRE(admin.Open("org").status == 201);
  WaitVisible(c, "org");
  Reply team = OpenChild(admin, "team", "org", true);
  INFO(team.raw);
  REQUIRE(team.status == 201);
  CHECK(team.body["parent"] == "org");
  CHECK(team.body["cap"] == true);
  WaitVisible(c, "team");
  REQUIRE(OpenChild(admin, "user-7", "team", false).status == 201);
  WaitVisible(c, "user-7");
  const std::pair<const char*, std::int64_t> deposits[] = {
      {"org", 300}, {"team", 60}, {"user-7", 10}};
  for (const auto& [id, amount] : deposits) {
    for (std::size_t i = 0; i < c.size(); ++i)
      REQUIRE(c.api(i).Credit(id, amount, std::string("dep-") + id + "-" + c.region(i)).status ==
              200);
    REQUIRE(c.WaitAgree(id, 10s).agree);
    WaitFinal(c, id);
  }

  c.CutAll();
  WaitIsolated(c);
  // Each region spends 50 of the team's cap: the team's and the org's money, in one op each.
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply r = c.api(i).Debit("team", 50, "team-" + c.region(i));
    INFO(r.raw);
    REQUIRE(r.status == 200);
    CHECK(r.body["source"] == "team");
    CHECK(Payers(r) == json::array({"team", "org"}));
  }
  // The team has 10 left at eu: 20 more is refused at once, naming the level that fell short,
  // though the org has 250 there.
  Reply over = c.api(0).Debit("team", 20, "team-over");
  INFO(over.raw);
  CHECK(over.status == 402);
  CHECK(ErrorMessage(over).find("account 'team' has spendable rights 10") != std::string::npos);

  // user-7 has 10 and the team 10 at eu: the org pays. The client retries at us, cut off.
  Api eu = c.api(0), us = c.api(1), third = c.api(2);
  Reply at_eu = FallbackDebit(eu, "user-7", 40, "order-9");
  INFO(at_eu.raw);
  REQUIRE(at_eu.status == 200);
  CHECK(at_eu.body["source"] == "org");
  CHECK(Payers(at_eu) == json::array({"org"}));
  Reply replay = FallbackDebit(eu, "user-7", 40, "order-9");
  CHECK(replay.header("Idempotent-Replayed") == "true");
  CHECK(replay.body["op"] == at_eu.body["op"]);
  CHECK(replay.body["source"] == "org");
  Reply at_us = FallbackDebit(us, "user-7", 40, "order-9");
  INFO(at_us.raw);
  REQUIRE(at_us.status == 200);
  CHECK(at_us.body["op"]["region"] == "us");
  CHECK(at_us.body["source"] == "org");
  // A fallback user-7 covers itself is paid by user-7, and says so.
  Reply own = FallbackDebit(third, "user-7", 5, "coffee");
  INFO(own.raw);
  REQUIRE(own.status == 200);
  CHECK(own.body["source"] == "user-7");

  c.HealAll();
  for (const char* id : {"org", "team", "user-7"}) {
    auto after = c.WaitAgree(id, 20s);
    INFO(id << ": " << Differences(after));
    REQUIRE(after.agree);
  }
  Reply org = c.api(2).Account("org"), t = c.api(2).Account("team"), u = c.api(2).Account("user-7");
  CHECK(Int(org.body, "balance") == 900 - 150 - 40);  // the retry's 40 came back
  CHECK(Int(org.body, "voids") == 40);
  CHECK(Int(t.body, "balance") == 180 - 150);
  CHECK(Int(u.body, "balance") == 30 - 5);
  // The report explains the voided retry in words, with the budget that paid it.
  std::string why;
  for (const char* id : {"user-7", "org"}) {
    Reply report = c.api(0).Report(id);
    REQUIRE(report.status == 200);
    for (const auto& f : report.body["accounts"][0]["forks"]) why = f["explanation"];
  }
  INFO(why);
  CHECK(why.find("from user-7, paid by org, repeats an idempotency key used by ") !=
        std::string::npos);
  CHECK(why.find("voided in every account it debited (+40 here)") != std::string::npos);
}

TEST_CASE("budget requests: the token's scope bounds a fallback, bad ones get clear errors",
          "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("budget-bad", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));  // writes are refused (503) until the regions rejoined
  Api api = c.api(0);
  REQUIRE(api.Open("org").status == 201);
  REQUIRE(OpenChild(api, "shop-team", "org", false).status == 201);
  REQUIRE(OpenChild(api, "shop-7", "shop-team", false).status == 201);
  REQUIRE(OpenChild(api, "shop-cap", "org", true).status == 201);
  REQUIRE(api.Credit("org", 100, "d1").status == 200);
  REQUIRE(api.Credit("shop-cap", 40, "d2").status == 200);
  WaitFinal(c, "org");
  WaitFinal(c, "shop-cap");
  auto error = [&](const Reply& r, int status, const std::string& code, const std::string& says) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK(ErrorMessage(r).find(says) != std::string::npos);
  };

  // The shop token (shop-*) may not reach the org through a fallback: none of what it may debit
  // covers 50, so it is a plain debit of shop-7, refused.
  Api shop = c.api(0, kShopToken);
  error(FallbackDebit(shop, "shop-7", 50, "s1"), 402, "insufficient_funds", "debit of 50");
  Reply by_admin = FallbackDebit(api, "shop-7", 50, "a1");
  INFO(by_admin.raw);
  REQUIRE(by_admin.status == 200);
  CHECK(by_admin.body["source"] == "org");
  // A cap debit needs the scope of the account named only: the cap is the org's own limit on it.
  Reply capped = shop.Debit("shop-cap", 30, "s2");
  INFO(capped.raw);
  REQUIRE(capped.status == 200);
  CHECK(Payers(capped) == json::array({"shop-cap", "org"}));
  CHECK(Int(api.Account("org").body, "balance") == 100 - 50 - 30);
  CHECK(Int(api.Account("shop-cap").body, "balance") == 40 - 30);
  CHECK(Int(api.Account("shop-7").body, "balance") == 0);

  // Bad opens.
  error(OpenChild(api, "x1", "nobody", false), 404, "not_found", "parent account 'nobody'");
  error(OpenChild(api, "x2", "x2", false), 400, "invalid_argument", "x2");
  error(api.Call("POST", "/v1/accounts", R"({"id":"x3","cap":true})"), 400, "invalid_argument",
        "a cap account needs a parent");
  error(api.Call("POST", "/v1/accounts", R"({"id":"x4","parent":7})"), 400, "invalid_argument",
        "parent must be an account id");
  error(api.Call("POST", "/v1/accounts", R"({"id":"x5","parent":"org","cap":"yes"})"), 400,
        "invalid_argument", "cap must be true or false");
  error(api.Call("POST", "/v1/accounts", R"({"id":"x6","parent":"bad id!"})"), 400,
        "invalid_argument", "parent:");
  error(OpenChild(api, "x7", "org", false, "USD"), 400, "invalid_argument", "is in EUR, not USD");
  REQUIRE(OpenChild(api, "shop-d4", "shop-7", false).status == 201);  // org is level 1
  error(OpenChild(api, "shop-d5", "shop-d4", false), 400, "invalid_argument",
        "deeper than 4 levels");
  error(OpenChild(api, "shop-7", "org", false), 409, "already_exists", "different config");
  // Bad debits.
  error(api.Call("POST", "/v1/accounts/shop-7/debits", R"({"amount":5,"fallback":"yes"})",
                 {{"Idempotency-Key", "b1"}}),
        400, "invalid_argument", "fallback must be true or false");
  error(api.Call("POST", "/v1/accounts/shop-7/credits", R"({"amount":5,"fallback":true})",
                 {{"Idempotency-Key", "b2"}}),
        400, "invalid_argument", "unknown field 'fallback'");
  // A key is one request whatever the fallback flag says (the op carries the account and amount,
  // not the flag): the retry is answered with what the first did.
  Reply again = api.Debit("shop-7", 50, "a1");
  INFO(again.raw);
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(again.body["op"] == by_admin.body["op"]);
  CHECK(Int(api.Account("org").body, "balance") == 100 - 50 - 30);
}
