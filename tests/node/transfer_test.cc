// POST /v1/transfers against real tallyd processes: money between accounts through a partition
// (one transfer retried in two cut-off regions moves money once, on both sides; the payee cannot
// spend a transfer that may still be voided), every bad request with its error, the token's scope
// on both accounts, and the rights move's old path kept as an alias.
#include <catch2/catch.hpp>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

TEST_CASE("a transfer retried in two cut-off regions moves money once, on both sides", "[node]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("transfer", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  const std::string payer = "alice", payee = "shop-1";
  REQUIRE(c.api(0).Open(payer).status == 201);
  REQUIRE(c.api(0).Open(payee).status == 201);
  WaitVisible(c, payer);
  WaitVisible(c, payee);
  for (std::size_t i = 0; i < c.size(); ++i)
    REQUIRE(c.api(i).Credit(payer, 300, "dep-" + c.region(i)).status == 200);
  REQUIRE(c.WaitAgree(payer, 10s).agree);
  WaitFinal(c, payer);

  c.CutAll();
  WaitIsolated(c);
  // The client's retry of one transfer reaches eu and then us, which cannot know of it.
  Reply at_eu = c.api(0).Transfer(payer, payee, 200, "order-1");
  INFO(at_eu.raw);
  REQUIRE(at_eu.status == 200);
  CHECK(Int(at_eu.body, "balance") == 700);
  CHECK(Int(at_eu.body, "payee_balance") == 200);
  Reply replay = c.api(0).Transfer(payer, payee, 200, "order-1");
  REQUIRE(replay.status == 200);
  CHECK(replay.body["op"] == at_eu.body["op"]);
  CHECK(replay.header("Idempotent-Replayed") == "true");
  Reply at_us = c.api(1).Transfer(payer, payee, 200, "order-1");
  INFO(at_us.raw);
  REQUIRE(at_us.status == 200);
  CHECK(at_us.body["op"]["region"] == "us");
  // Until it is final the payee's credit may be voided: not spendable beyond the payee's line.
  Reply spend = c.api(1).Debit(payee, 200, "spend-it");
  INFO(spend.raw);
  CHECK(spend.status == 402);
  CHECK(ErrorMessage(spend).find("not yet final") != std::string::npos);
  // Past rights and line: refused, nothing moves.
  Reply too_much = c.api(2).Transfer(payer, payee, 301, "order-2");
  CHECK(too_much.status == 402);
  CHECK(too_much.error_code() == "insufficient_funds");

  c.HealAll();
  for (const std::string& account : {payer, payee}) {
    auto after = c.WaitAgree(account, 20s);
    INFO(account << ": " << Differences(after));
    REQUIRE(after.agree);
  }
  Reply a = c.api(2).Account(payer), b = c.api(2).Account(payee);
  CHECK(Int(a.body, "balance") == 700);
  CHECK(Int(b.body, "balance") == 200);
  CHECK(Int(a.body, "voids") == 200);   // the later one refunded to alice...
  CHECK(Int(b.body, "voids") == -200);  // ...and clawed back from shop-1
  CHECK(Int(a.body, "balance") + Int(b.body, "balance") == 900);
  Reply report = c.api(0).Report(payee);
  REQUIRE(report.status == 200);
  int voids = 0;
  for (const auto& e : report.body["accounts"][0]["events"]) {
    if (e["kind"] != "void") continue;
    ++voids;
    CHECK(Int(e, "amount") == -200);
    CHECK(e["op_kind"] == "credit");
  }
  CHECK(voids == 1);
  // The report says what happened in words: which transfer lost its key to which.
  const json& forks = report.body["accounts"][0]["forks"];
  REQUIRE(forks.size() == 1);
  const std::string why = forks[0]["explanation"].get<std::string>();
  INFO(why);
  CHECK(why.find("transfer ") == 0);
  CHECK(why.find(" of 200 from alice to shop-1 repeats an idempotency key used by ") !=
        std::string::npos);
  CHECK(why.find("voided in both accounts (-200 here)") != std::string::npos);
}

TEST_CASE("bad transfers get clear errors and move nothing", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("transfer-bad", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));  // writes are refused (503) until the regions rejoined
  Api api = c.api(0);
  REQUIRE(api.Open("alice").status == 201);
  REQUIRE(api.Open("shop-1").status == 201);
  REQUIRE(api.Open("shop-2").status == 201);
  REQUIRE(api.Open("shop-usd", 0, 0, 0, "USD").status == 201);
  REQUIRE(api.Credit("alice", 100, "d1").status == 200);
  REQUIRE(api.Credit("shop-1", 100, "d2").status == 200);
  auto error = [&](const Reply& r, int status, const std::string& code, const std::string& says) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK(ErrorMessage(r).find(says) != std::string::npos);
  };
  error(api.Transfer("nobody", "shop-1", 5, "k1"), 404, "not_found", "no account 'nobody'");
  error(api.Transfer("alice", "nobody", 5, "k2"), 404, "not_found", "no account 'nobody'");
  error(api.Transfer("alice", "alice", 5, "k3"), 400, "invalid_argument", "same account");
  error(api.Transfer("shop-1", "shop-usd", 5, "k4"), 400, "invalid_argument", "currencies differ");
  error(api.Transfer("alice", "shop-1", 0, "k5"), 400, "invalid_argument", "amount");
  error(api.Transfer("alice", "shop-1", 101, "k6"), 402, "insufficient_funds", "transfer of 101");
  error(api.Call("POST", "/v1/transfers", R"({"from":"alice","to":"shop-1","amount":5})"), 400,
        "invalid_argument", "Idempotency-Key");
  error(api.Call("POST", "/v1/transfers", R"({"from":"alice","amount":5})",
                 {{"Idempotency-Key", "k7"}}),
        400, "invalid_argument", "field 'to' is required");
  Reply get = api.Call("GET", "/v1/transfers");
  error(get, 405, "invalid_argument", "method GET is not allowed on /v1/transfers");
  CHECK(get.header("Allow") == "POST");
  REQUIRE(api.Transfer("alice", "shop-1", 40, "k8").status == 200);
  error(api.Transfer("alice", "shop-2", 40, "k8"), 422, "idempotency_key_reused", "k8");
  CHECK(Int(api.Account("alice").body, "balance") == 60);
  CHECK(Int(api.Account("shop-1").body, "balance") == 140);
  CHECK(Int(api.Account("shop-2").body, "balance") == 0);

  // The shop token (credit, debit, read on shop-*): between its own accounts only.
  Api shop = c.api(0, kShopToken);
  CHECK(shop.Transfer("shop-1", "shop-2", 10, "s1").status == 200);
  error(shop.Transfer("shop-1", "alice", 10, "s2"), 403, "permission_denied", "alice");
  error(shop.Transfer("alice", "shop-1", 10, "s3"), 403, "permission_denied", "alice");
  error(c.api(0, kReaderToken).Transfer("shop-1", "shop-2", 1, "s4"), 403, "permission_denied",
        "debit");
  // The rights move keeps its old path for one version, and is not a transfer between accounts.
  Reply old = api.Call("POST", "/v1/accounts/alice/transfers", R"({"to":"us","amount":10})");
  INFO(old.raw);
  CHECK(old.status == 200);
  CHECK(Int(api.Account("alice").body, "balance") == 60);
}
