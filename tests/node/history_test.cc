// GET /v1/accounts/{id}/history against real tallyd processes: a statement driven through a
// partition and its heal (each region shows its own ops at once as tentative lines; after the heal
// every region shows the same final lines, fees and voids inline, the running balance adding up to
// the account's balance), pages by cursor in both directions that neither repeat nor skip, the
// balance as of a time, a restart that keeps the history, the token's scope and every bad query
// with its error.
#include <catch2/catch.hpp>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

// Every line of `account` at node i, oldest first, `page` lines a request.
json AllLines(Cluster& c, std::size_t i, const std::string& account, int page) {
  json lines = json::array();
  std::string cursor;
  for (int pages = 0; pages < 1000; ++pages) {
    Reply r = c.api(i).Call("GET", "/v1/accounts/" + account +
                                       "/history?order=asc&limit=" + std::to_string(page) +
                                       (cursor.empty() ? "" : "&cursor=" + cursor));
    INFO(r.raw);
    REQUIRE(r.status == 200);
    for (const auto& l : r.body["lines"]) lines.push_back(l);
    if (!r.body["next_cursor"].is_string()) break;
    cursor = r.body["next_cursor"].get<std::string>();
  }
  return lines;
}

// The lines' own arithmetic: each balance is the one before plus the op's change unless voided,
// less its fee. Returns the last balance.
std::int64_t RunningBalance(const json& lines) {
  std::int64_t balance = 0;
  for (const auto& l : lines) {
    INFO(l.dump());
    balance += (l["voided"].get<bool>() ? 0 : Int(l, "change")) - Int(l, "fee");
    CHECK(Int(l, "balance_after") == balance);
  }
  return balance;
}

}  // namespace

TEST_CASE("a statement through a partition and heal: the same final history in every region",
          "[node]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("history", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  REQUIRE(c.api(0).Open("alice", 300, 10).status == 201);
  REQUIRE(c.api(0).Open("shop-1").status == 201);
  WaitVisible(c, "alice");
  WaitVisible(c, "shop-1");
  for (std::size_t i = 0; i < c.size(); ++i)
    REQUIRE(c.api(i).Credit("alice", 100, "dep-" + c.region(i)).status == 200);
  REQUIRE(c.WaitAgree("alice", 10s).agree);
  WaitFinal(c, "alice");

  c.CutAll();
  WaitIsolated(c);
  REQUIRE(c.api(0).Debit("alice", 150, "d-eu").status == 200);
  REQUIRE(c.api(1).Debit("alice", 150, "d-us").status == 200);
  REQUIRE(c.api(1).Transfer("alice", "shop-1", 30, "t-us").status == 200);
  REQUIRE(c.api(2).Credit("alice", 5, "dup").status == 200);
  REQUIRE(c.api(0).Credit("alice", 5, "dup").status == 200);  // the same key in two regions

  // Cut off, a region shows its own ops at once, newest first, as tentative lines.
  Reply cut = c.api(0).Call("GET", "/v1/accounts/alice/history?limit=2");
  INFO(cut.raw);
  REQUIRE(cut.status == 200);
  REQUIRE(cut.body["lines"].size() == 2);
  CHECK(cut.body["lines"][0]["idempotency_key"] == "dup");
  CHECK(cut.body["lines"][0]["final"] == false);
  CHECK(cut.body["lines"][1]["idempotency_key"] == "d-eu");
  CHECK(Int(cut.body["lines"][1], "change") == -150);
  CHECK(cut.body["lines"][1]["region"] == "eu");
  CHECK(cut.body["currency"] == "EUR");
  REQUIRE(cut.body["next_cursor"].is_string());

  c.HealAll();
  REQUIRE(c.WaitAgree("alice", 20s).agree);
  REQUIRE(c.WaitAgree("shop-1", 20s).agree);
  WaitFinal(c, "alice");
  WaitFinal(c, "shop-1");

  const json first = AllLines(c, 0, "alice", 1000);
  INFO(first.dump(1));
  REQUIRE(first.size() == 9);  // open, 3 deposits, 2 debits, a transfer, 2 uses of "dup"
  for (std::size_t i = 0; i < c.size(); ++i) {
    INFO("region " << c.region(i));
    CHECK(AllLines(c, i, "alice", 2) == first);  // and pages of two add up to the whole
    Reply account = c.api(i).Account("alice");
    CHECK(RunningBalance(first) == Int(account.body, "balance"));
  }
  int crossings = 0, voided = 0;
  for (const auto& l : first) {
    CHECK(l["final"] == true);
    CHECK(l["time"].get<std::string>().back() == 'Z');
    if (l["overdraft_crossing"] == true) {
      ++crossings;
      CHECK(Int(l, "fee") == 10);
    }
    if (l["voided"] == true) {
      ++voided;
      CHECK(l["idempotency_key"] == "dup");
      CHECK(Int(l, "void") == -5);
    }
    if (l.value("idempotency_key", "") == "t-us") {
      CHECK(l["kind"] == "transfer");
      CHECK(l["counterparty"] == "shop-1");
      CHECK(Int(l, "change") == -30);
    }
  }
  CHECK(crossings == 1);
  CHECK(voided == 1);
  const json shop = AllLines(c, 2, "shop-1", 1000);
  REQUIRE(shop.size() == 2);  // open, the transfer in
  CHECK(shop[1]["counterparty"] == "alice");
  CHECK(Int(shop[1], "balance_after") == 30);

  // Newest first is the same statement backwards.
  Reply desc = c.api(1).Call("GET", "/v1/accounts/alice/history?limit=1000");
  REQUIRE(desc.status == 200);
  json reversed = desc.body["lines"];
  std::reverse(reversed.begin(), reversed.end());
  CHECK(reversed == first);

  // The final balance at the time of a line is that line's (or a later one's in its ms).
  const json& mid = first[4];
  const std::string t = mid["time"].get<std::string>();
  std::int64_t expected = 0;
  for (const auto& l : first) {
    if (l["time"].get<std::string>() <= t) expected = Int(l, "balance_after");
  }
  Reply as_of = c.api(2).Call("GET", "/v1/accounts/alice/history?as_of=" + t);
  INFO(as_of.raw);
  REQUIRE(as_of.status == 200);
  CHECK(Int(as_of.body, "balance") == expected);
  CHECK(as_of.body["as_of"] == t);
  Reply before = c.api(2).Call("GET", "/v1/accounts/alice/history?as_of=2001-01-01T00:00:00Z");
  CHECK(before.status == 404);
  Reply future = c.api(2).Call("GET", "/v1/accounts/alice/history?as_of=2999-01-01T00:00:00Z");
  CHECK(future.status == 409);
  CHECK(ErrorMessage(future).find("stable frontier") != std::string::npos);

  // A restart reads none of the history back into memory, and loses none of it.
  REQUIRE(c.Stop(1) == 0);
  std::string error;
  REQUIRE(c.Start(1, &error));
  REQUIRE(c.WaitConnected(10s));
  WaitFinal(c, "alice");  // its frontier starts from the stored one: the newest ops are tentative
  CHECK(AllLines(c, 1, "alice", 3) == first);
}

TEST_CASE("bad history queries get clear errors, and the token's scope holds", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("history-bad", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api api = c.api(0);
  REQUIRE(api.Open("alice").status == 201);
  REQUIRE(api.Open("shop-1").status == 201);
  REQUIRE(api.Credit("alice", 5, "k1").status == 200);
  // A note travels with its op onto the statement, metadata in the order it was sent.
  Reply noted = api.Call("POST", "/v1/accounts/alice/credits",
                         R"({"amount":3,"memo":"rent, Dec","metadata":{"z":"1","a":"2"}})",
                         {{"Idempotency-Key", "k2"}});
  INFO(noted.raw);
  REQUIRE(noted.status == 200);
  Reply top = api.Call("GET", "/v1/accounts/alice/history?limit=1");
  INFO(top.raw);
  REQUIRE(top.status == 200);
  CHECK(top.body["lines"][0]["memo"] == "rent, Dec");
  CHECK(top.raw.find(R"("metadata":{"z":"1","a":"2"})") != std::string::npos);
  auto error = [&](const Reply& r, int status, const std::string& says) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(ErrorMessage(r).find(says) != std::string::npos);
  };
  const std::string h = "/v1/accounts/alice/history";
  error(api.Call("GET", h + "?limit=0"), 400, "limit must be an integer in 1..1000");
  error(api.Call("GET", h + "?limit=1001"), 400, "limit must be an integer in 1..1000");
  error(api.Call("GET", h + "?cursor=zz"), 400, "is not one this API gave");
  error(api.Call("GET", h + "?cursor=c616c696365"), 400, "is not one this API gave");  // a list's
  error(api.Call("GET", h + "?order=sideways"), 400, "order must be asc");
  error(api.Call("GET", h + "?as_of=yesterday"), 400, "as_of:");
  error(api.Call("GET", h + "?as_of=1000&limit=5"), 400, "takes no limit");
  error(api.Call("GET", h + "?page=2"), 400, "unknown query parameter 'page'");
  error(api.Call("GET", "/v1/accounts/nobody/history"), 404, "no account 'nobody'");
  error(api.Call("POST", h), 405, "not allowed");
  error(c.api(0, kShopToken).Call("GET", h), 403, "");
  error(c.api(0, "").Call("GET", h), 401, "");
  Reply reader = c.api(0, kReaderToken).Call("GET", h);
  INFO(reader.raw);
  CHECK(reader.status == 200);
  CHECK(reader.body["lines"].size() == 3);
  Reply shop = c.api(0, kShopToken).Call("GET", "/v1/accounts/shop-1/history");
  CHECK(shop.status == 200);
}
