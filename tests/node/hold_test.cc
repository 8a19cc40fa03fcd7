// Two-phase holds against real tallyd processes: a hold captured in one cut-off region and
// released in another (the canonically first wins everywhere, the other is a fork in the report,
// and the hold's region never spends what it reserved meanwhile); a hold left to expire; every bad
// request with its error; the token's scope on the hold's account.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

std::string HoldOf(const Reply& r) {
  INFO(r.raw);
  REQUIRE(r.body.contains("hold"));
  return r.body["hold"].get<std::string>();
}

}  // namespace

TEST_CASE("a hold captured in one cut-off region and released in another is resolved once",
          "[node]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("hold", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  const std::string id = "alice";
  REQUIRE(c.api(0).Open(id).status == 201);
  WaitVisible(c, id);
  for (std::size_t i = 0; i < c.size(); ++i)
    REQUIRE(c.api(i).Credit(id, 300, "dep-" + c.region(i)).status == 200);
  REQUIRE(c.WaitAgree(id, 10s).agree);
  WaitFinal(c, id);

  Reply placed = c.api(0).Hold(id, 300, "auth-1");
  INFO(placed.raw);
  REQUIRE(placed.status == 200);
  const std::string hold = HoldOf(placed);
  CHECK(hold.rfind("eu.", 0) == 0);
  CHECK(Int(placed.body, "held") == 300);
  CHECK(Int(placed.body, "balance") == 900);
  Reply again = c.api(0).Hold(id, 300, "auth-1");
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(HoldOf(again) == hold);
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (c.api(i).GetHold(hold).status != 200 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    Reply v = c.api(i).GetHold(hold);
    INFO(v.raw);
    REQUIRE(v.status == 200);
    CHECK(v.body["state"] == "open");
    CHECK(v.body["account"] == id);
    Reply a = c.api(i).Account(id);
    CHECK(Int(a.body, "held") == 300);
    CHECK(Int(a.body, "available") == 600);
  }

  c.CutAll();
  WaitIsolated(c);
  Reply cap = c.api(1).Capture(hold, 250);
  INFO(cap.raw);
  REQUIRE(cap.status == 200);
  CHECK(Int(cap.body, "captured") == 250);
  CHECK(Int(cap.body, "balance") == 650);
  std::this_thread::sleep_for(20ms);  // the release comes later in canonical order too
  Reply rel = c.api(2).Release(hold);
  INFO(rel.raw);
  REQUIRE(rel.status == 200);
  // eu holds the reserve: its 300 of rights are all held, nothing is spendable there.
  Reply spend = c.api(0).Debit(id, 1, "spend-1");
  CHECK(spend.status == 402);

  c.HealAll();
  auto after = c.WaitAgree(id, 20s);
  INFO(Differences(after));
  REQUIRE(after.agree);
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply v = c.api(i).GetHold(hold);
    INFO(v.raw);
    REQUIRE(v.status == 200);
    CHECK(v.body["state"] == "captured");
    CHECK(Int(v.body, "captured") == 250);
    CHECK(v.body["resolved_by"]["region"] == "us");
    Reply a = c.api(i).Account(id);
    CHECK(Int(a.body, "balance") == 650);
    CHECK(Int(a.body, "held") == 0);
  }
  // A retry of the capture anywhere is its replay; the release that lost is refused now.
  Reply retry = c.api(2).Capture(hold, 250);
  CHECK(retry.status == 200);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  // ap's own release, retried there, is answered as what it became: voided by the capture.
  Reply again_at_ap = c.api(2).Release(hold);
  INFO(again_at_ap.raw);
  CHECK(again_at_ap.status == 200);
  CHECK(again_at_ap.body.value("voided", false));
  CHECK(again_at_ap.body["voided_by"]["region"] == "us");
  Reply late = c.api(0).Release(hold);
  CHECK(late.status == 409);
  CHECK(ErrorMessage(late).find("already resolved by capture of 250") != std::string::npos);
  // The report explains the release that lost.
  Reply report = c.api(0).Report(id);
  REQUIRE(report.status == 200);
  bool found = false;
  for (const auto& f : report.body["accounts"][0]["forks"]) {
    const std::string why = f["explanation"].get<std::string>();
    if (why.find("release ") != 0) continue;
    found = true;
    INFO(why);
    CHECK(why.find(" of hold " + hold + " lost to") != std::string::npos);
    CHECK(why.find(" lost to capture us:") != std::string::npos);
    CHECK(why.find(" for 250, earlier in canonical order") != std::string::npos);
  }
  CHECK(found);
}

TEST_CASE("a hold nobody resolves is released by its region after it expires", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("hold-expiry", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api api = c.api(1);
  REQUIRE(api.Open("alice").status == 201);
  REQUIRE(api.Credit("alice", 100, "d1").status == 200);
  Reply placed = api.Hold("alice", 70, "auth", 1500);
  REQUIRE(placed.status == 200);
  const std::string hold = HoldOf(placed);
  CHECK(Int(api.Account("alice").body, "available") == 30);
  CHECK(api.Debit("alice", 31, "d2").status == 402);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  Reply v;
  do {
    std::this_thread::sleep_for(100ms);
    v = c.api(0).GetHold(hold);
  } while ((v.status != 200 || v.body["state"] != "expired") &&
           std::chrono::steady_clock::now() < deadline);
  INFO(v.raw);
  CHECK(v.body["state"] == "expired");
  CHECK(v.body["resolved_by"]["region"] == "us");
  Reply cap = c.api(0).Capture(hold, 10);
  CHECK(cap.status == 409);
  CHECK(ErrorMessage(cap).find("already resolved by expiry") != std::string::npos);
  REQUIRE(c.WaitAgree("alice", 10s).agree);
  CHECK(Int(api.Account("alice").body, "available") == 100);
  CHECK(Int(api.Account("alice").body, "held") == 0);
}

TEST_CASE("bad holds, captures and releases get clear errors and move nothing", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("hold-bad", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));  // writes are refused (503) until the regions rejoined
  Api api = c.api(0);
  REQUIRE(api.Open("alice").status == 201);
  REQUIRE(api.Open("shop-1").status == 201);
  REQUIRE(api.Credit("alice", 100, "d1").status == 200);
  REQUIRE(api.Credit("shop-1", 100, "d2").status == 200);
  auto error = [&](const Reply& r, int status, const std::string& code, const std::string& says) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK(ErrorMessage(r).find(says) != std::string::npos);
  };
  error(api.Hold("nobody", 5, "k1"), 404, "not_found", "no account 'nobody'");
  error(api.Hold("alice", 0, "k2"), 400, "invalid_argument", "amount");
  error(api.Hold("alice", 5, "k3", 0), 400, "invalid_argument", "expires_in_ms");
  error(api.Hold("alice", 5, "k4", 25LL * 3600 * 1000), 400, "invalid_argument", "expiry");
  error(api.Hold("alice", 101, "k5"), 402, "insufficient_funds", "hold of 101");
  error(api.Call("POST", "/v1/accounts/alice/holds", R"({"amount":5})"), 400, "invalid_argument",
        "Idempotency-Key");
  error(api.Call("POST", "/v1/accounts/alice/holds", R"({"amount":5,"ttl":3})",
                 {{"Idempotency-Key", "k6"}}),
        400, "invalid_argument", "ttl");
  error(api.Debit("alice", 5, "~hold:0:1"), 400, "invalid_argument", "reserved");
  error(api.GetHold("nonsense"), 400, "invalid_argument", "<region>.<seq>");
  error(api.GetHold("mars.3"), 400, "invalid_argument", "<region>.<seq>");
  error(api.GetHold("eu.0"), 400, "invalid_argument", "<region>.<seq>");
  error(api.GetHold("eu.999"), 404, "not_found", "no hold eu.999");
  error(api.Capture("eu.999", 5), 404, "not_found", "no hold eu.999");

  Reply placed = api.Hold("alice", 60, "auth");
  REQUIRE(placed.status == 200);
  const std::string hold = HoldOf(placed);
  error(api.Capture(hold, 61), 400, "invalid_argument", "above the 60 held");
  error(api.Call("POST", "/v1/holds/" + hold + "/capture", R"({"amount":-1})"), 400,
        "invalid_argument", "amount");
  error(api.Call("POST", "/v1/holds/" + hold + "/release", R"({"amount":1})"), 400,
        "invalid_argument", "amount");
  Reply get = api.Call("GET", "/v1/holds/" + hold + "/capture");
  error(get, 405, "invalid_argument", "method GET is not allowed");
  CHECK(get.header("Allow") == "POST");
  error(api.Debit("alice", 41, "d3"), 402, "insufficient_funds", "debit of 41");
  // The shop token (credit, debit, read on shop-*) does not see alice's hold at all.
  Api shop = c.api(0, kShopToken);
  error(shop.GetHold(hold), 404, "not_found", "no hold");
  error(shop.Capture(hold, 1), 404, "not_found", "no hold");
  Reply shop_hold = shop.Hold("shop-1", 10, "sh1");
  REQUIRE(shop_hold.status == 200);
  CHECK(shop.Capture(HoldOf(shop_hold)).status == 200);  // no amount: the whole hold
  error(c.api(0, kReaderToken).Release(hold), 403, "permission_denied", "debit");

  REQUIRE(api.Release(hold).status == 200);
  CHECK(api.Release(hold).header("Idempotent-Replayed") == "true");
  error(api.Capture(hold, 10), 409, "failed_precondition", "already resolved by release");
  CHECK(Int(api.Account("alice").body, "balance") == 100);
  CHECK(Int(api.Account("alice").body, "available") == 100);
  CHECK(Int(api.Account("shop-1").body, "balance") == 90);
}
