// POST /v1/batch against a real tallyd (issue 15): many ops in one request, each with its own
// idempotency key, permissions and result, decided in order in one group commit; a failed op
// fails alone; a retried batch replays each op; bounds on ops and bytes with clear errors.
#include <catch2/catch.hpp>
#include <string>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

json DebitOp(const std::string& key, std::int64_t amount, const std::string& account = "shop-1") {
  return {{"type", "debit"}, {"account", account}, {"idempotency_key", key}, {"amount", amount}};
}

}  // namespace

TEST_CASE("a batch decides each op on its own, in order, in one group commit", "[node][batch]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.extra_toml = "[http]\nmax_body_bytes = 1024\nmax_batch_bytes = 65536\n";
  Cluster c("batch", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api admin = c.api(0);
  REQUIRE(admin.Open("shop-1").status == 201);
  REQUIRE(admin.Open("shop-2").status == 201);
  REQUIRE(admin.Open("bank-1").status == 201);
  REQUIRE(admin.Credit("shop-1", 1000, "c1").status == 200);

  // A stream of shop-1 sees the batch's ops in one event: one group commit.
  tally::ctl::Url url;
  std::string error;
  REQUIRE(tally::ctl::Url::Parse(c.url(0), &url, &error));
  tally::ctl::WsReader stream(url, 5s, tally::ctl::ClientTls{c.ca_file()});
  REQUIRE(stream.Open("/v1/stream?accounts=shop-1",
                      {{"Authorization", std::string("Bearer ") + kShopToken}}, &error));
  std::string message;
  REQUIRE(stream.Next(5s, &message, &error) == 1);  // the state

  Api shop = c.api(0, kShopToken);
  json ops =
      json::array({DebitOp("b1", 100), DebitOp("b2", 200),
                   json{{"type", "transfer"},
                        {"request_id", "t"},
                        {"idempotency_key", "b3"},
                        {"from", "shop-1"},
                        {"to", "shop-2"},
                        {"amount", 50}},
                   DebitOp("b4", 5, "bank-1"),             // out of the token's scope: 403
                   json{{"type", "withdraw"}},             // not a request: 400
                   DebitOp("b5", 1, "shop-1") /* fine */,  // after the failures
                   json{{"type", "debit"}, {"account", "shop-1"}, {"amount", 1}}});  // no key
  const std::string body = json{{"ops", ops}}.dump();
  Reply r = shop.Call("POST", "/v1/batch", body);
  INFO(r.raw);
  REQUIRE(r.status == 200);
  const json& results = r.body["results"];
  REQUIRE(results.size() == ops.size());
  CHECK(results[0]["status"] == 200);
  CHECK(Int(results[0]["body"], "balance") == 900);  // in order: each sees the one before
  CHECK(Int(results[1]["body"], "balance") == 700);
  CHECK(results[2]["request_id"] == "t");
  CHECK(Int(results[2]["body"], "balance") == 650);
  CHECK(Int(results[2]["body"], "payee_balance") == 50);
  CHECK(results[3]["status"] == 403);
  CHECK(results[3]["body"]["error"]["code"] == "permission_denied");
  CHECK(results[4]["status"] == 400);
  CHECK(results[4]["body"]["error"]["message"].get<std::string>().find("ops[4]: unknown message "
                                                                       "type 'withdraw'") !=
        std::string::npos);
  CHECK(results[5]["status"] == 200);
  CHECK(Int(results[5]["body"], "balance") == 649);
  CHECK(results[6]["status"] == 400);  // the route's own refusal, as over HTTP
  CHECK(results[6]["body"] ==
        shop.Call("POST", "/v1/accounts/shop-1/debits", R"({"amount":1})").body);
  CHECK(results[0]["request_id"].is_null());
  CHECK(Int(shop.Account("shop-1").body, "balance") == 649);

  REQUIRE(stream.Next(5s, &message, &error) == 1);
  json event = json::parse(message);
  INFO(event.dump());
  CHECK(event["type"] == "event");
  CHECK(event["ops"].size() == 4);  // b1, b2, the transfer and b5: one group commit

  // The same batch again: each op replays (the same answer, marked), nothing moves twice.
  Reply again = shop.Call("POST", "/v1/batch", body);
  INFO(again.raw);
  REQUIRE(again.status == 200);
  for (int i : {0, 1, 2, 5}) {
    CHECK(again.body["results"][i]["headers"]["Idempotent-Replayed"] == "true");
    CHECK(again.body["results"][i]["body"]["op"] == results[i]["body"]["op"]);
  }
  CHECK(Int(shop.Account("shop-1").body, "balance") == 649);

  // Bounds and refusals of the batch as a whole.
  CHECK(shop.Call("POST", "/v1/batch", R"({"ops":[]})").status == 400);
  Reply keyed = shop.Call("POST", "/v1/batch", body, {{"Idempotency-Key", "whole"}});
  CHECK(keyed.status == 400);
  CHECK(keyed.raw.find("each op carries its own idempotency_key") != std::string::npos);
  CHECK(shop.Call("GET", "/v1/batch").status == 405);
  CHECK(c.api(0, "no-such-token").Call("POST", "/v1/batch", body).status == 401);
  // Bytes: a batch may be larger than any other body ([http] max_batch_bytes), up to its bound.
  json big = json::array();
  for (int i = 0; i < 20; ++i) big.push_back(DebitOp("big-" + std::to_string(i), 1));
  const std::string big_body = json{{"ops", big}}.dump();
  REQUIRE(big_body.size() > 1024);
  Reply fits = shop.Call("POST", "/v1/batch", big_body);
  CHECK(fits.status == 200);
  Reply too_big = shop.Call("POST", "/v1/accounts/shop-1/debits",
                            json{{"amount", 1}, {"memo", std::string(1100, 'x')}}.dump(),
                            {{"Idempotency-Key", "x"}});
  CHECK(too_big.status == 413);
  CHECK(too_big.raw.find("[http] max_body_bytes") != std::string::npos);
  Reply over = shop.Call("POST", "/v1/batch", std::string(70000, ' '));
  INFO(over.raw << " / " << over.transport_error);
  CHECK(over.status == 413);
  CHECK(over.raw.find("max_batch_bytes") != std::string::npos);
  // Over the stream, a batch is one request message; its result's body is the batch's answer.
  REQUIRE(stream.Send(json{{"type", "batch"},
                           {"request_id", "wb"},
                           {"ops", json::array({DebitOp("ws-1", 1), DebitOp("ws-2", 2)})}}
                          .dump(),
                      &error));
  json result;
  for (int i = 0; i < 50 && result.is_null(); ++i) {
    REQUIRE(stream.Next(5s, &message, &error) == 1);
    json m = json::parse(message);
    if (m["type"] == "result" && m["request_id"] == "wb") result = m;
  }
  INFO(result.dump());
  REQUIRE(result.is_object());
  CHECK(result["status"] == 200);
  REQUIRE(result["body"]["results"].size() == 2);
  CHECK(result["body"]["results"][1]["status"] == 200);
  CHECK(Int(result["body"]["results"][1]["body"], "balance") ==
        Int(result["body"]["results"][0]["body"], "balance") - 2);

  // Each op is counted as its route.
  Reply metrics = c.api(0).Call("GET", "/metrics");
  CHECK(metrics.raw.find("route=\"batch\"") != std::string::npos);
}
