// Unit test of node/api.h, the client API's edge as pure functions: routing, request validation,
// the Status -> HTTP table. No tallyd process, no socket; tallyd_api_test.cc drives a real tallyd.
#include "node/api.h"

#include <catch2/catch.hpp>
#include <set>

#include "node/views.h"

using namespace tally;
using namespace tally::node;

namespace {

Status Amount_(std::string_view body, Amount* a) { return ParseAmountBody(body, a); }

std::string AmountError(std::string_view body) {
  Amount a = 0;
  Status s = Amount_(body, &a);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kInvalidArgument);
  return s.message();
}

}  // namespace

TEST_CASE("routes match method and path", "[api]") {
  RouteMatch m;
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts", &m).ok());
  CHECK(m.route == Route::kOpenAccount);
  REQUIRE(MatchRoute(Method::kGet, "/v1/accounts/a-1", &m).ok());
  CHECK(m.route == Route::kGetAccount);
  CHECK(m.account == "a-1");
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts/a%3A1/debits", &m).ok());
  CHECK(m.route == Route::kDebit);
  CHECK(m.account == "a:1");
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts/a/credits", &m).ok());
  CHECK(m.route == Route::kCredit);
  REQUIRE(MatchRoute(Method::kPost, "/v1/transfers", &m).ok());
  CHECK(m.route == Route::kTransfer);
  CHECK(m.account.empty());
  CHECK(MatchRoute(Method::kGet, "/v1/transfers", &m).code() == Code::kFailedPrecondition);
  CHECK(MatchRoute(Method::kPost, "/v1/transfers?x=1", &m).code() == Code::kInvalidArgument);
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts/a/rights", &m).ok());
  CHECK(m.route == Route::kRights);
  // The path before 0.2, kept as an alias for one version.
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts/a/transfers", &m).ok());
  CHECK(m.route == Route::kRights);
  REQUIRE(MatchRoute(Method::kGet, "/v1/accounts/a/report?format=html", &m).ok());
  CHECK(m.route == Route::kReport);
  CHECK(m.html);
  REQUIRE(MatchRoute(Method::kGet, "/v1/accounts/a/report", &m).ok());
  CHECK_FALSE(m.html);
  REQUIRE(MatchRoute(Method::kGet, "/v1/cluster", &m).ok());
  CHECK(m.route == Route::kCluster);
  REQUIRE(MatchRoute(Method::kGet, "/v1/stream?accounts=a,b,a", &m).ok());
  CHECK(m.route == Route::kStream);
  CHECK(m.accounts == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(m.stream_after);
  const CanonicalKey resume{Hlc{0x0123456789abcdefULL}, 2, 42};
  REQUIRE(MatchRoute(Method::kGet, "/v1/stream?after=" + HistoryCursor(resume) + "&accounts=a", &m)
              .ok());
  CHECK(m.accounts == std::vector<std::string>{"a"});
  REQUIRE(m.stream_after);
  CHECK(*m.stream_after == resume);
  m = RouteMatch{};
  Status bad = MatchRoute(Method::kGet, "/v1/stream?accounts=a&after=x1", &m);
  CHECK(bad.code() == Code::kInvalidArgument);
  CHECK(bad.message().find("after: cursor 'x1'") != std::string::npos);
  CHECK(MatchRoute(Method::kGet, "/v1/stream?accounts=a&after=", &m).code() ==
        Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/stream?after=" + HistoryCursor(resume), &m).code() ==
        Code::kInvalidArgument);  // no accounts
  REQUIRE(MatchRoute(Method::kGet, "/healthz", &m).ok());
  CHECK(m.route == Route::kHealth);
  REQUIRE(MatchRoute(Method::kGet, "/metrics", &m).ok());
  CHECK(m.route == Route::kMetrics);
  REQUIRE(MatchRoute(Method::kGet, "/readyz", &m).ok());
  CHECK(m.route == Route::kReady);
  CHECK(RouteName(Route::kReady) == "readyz");
  CHECK(MatchRoute(Method::kPost, "/readyz", &m).code() == Code::kFailedPrecondition);
  CHECK(MatchRoute(Method::kGet, "/readyz?x=1", &m).code() == Code::kInvalidArgument);
  // The operator page: GET only, no query (its state rides in the fragment, never sent).
  REQUIRE(MatchRoute(Method::kGet, "/ui", &m).ok());
  CHECK(m.route == Route::kOperatorPage);
  CHECK(RouteName(Route::kOperatorPage) == "operator_page");
  CHECK(AllowedMethods(Route::kOperatorPage) == "GET");
  CHECK(MatchRoute(Method::kPost, "/ui", &m).code() == Code::kFailedPrecondition);
  CHECK(MatchRoute(Method::kGet, "/ui?token=x", &m).code() == Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/ui/x", &m).code() == Code::kNotFound);
}

// Each route has its own label (metrics, the audit log): 0.2.0 shipped kTransfer labelled
// "unknown" and kUnknown with an empty label, the name table one entry short.
TEST_CASE("every route has a distinct, non-empty name", "[api]") {
  std::set<std::string_view> names;
  for (int i = 0; i < kRouteCount; ++i) {
    const std::string_view name = RouteName(static_cast<Route>(i));
    INFO("route " << i);
    CHECK_FALSE(name.empty());
    CHECK(names.insert(name).second);
  }
  CHECK(RouteName(Route::kTransfer) == "transfer");
  CHECK(RouteName(Route::kListAccounts) == "list_accounts");
  CHECK(RouteName(Route::kHistory) == "history");
  CHECK(RouteName(Route::kOperatorPage) == "operator_page");
  CHECK(RouteName(Route::kUnknown) == "unknown");
  CHECK(static_cast<int>(Route::kUnknown) == kRouteCount - 1);
}

TEST_CASE("hold routes and ids", "[api]") {
  RouteMatch m;
  REQUIRE(MatchRoute(Method::kPost, "/v1/accounts/alice/holds", &m).ok());
  CHECK(m.route == Route::kHold);
  CHECK(m.account == "alice");
  REQUIRE(MatchRoute(Method::kGet, "/v1/holds/eu.42", &m).ok());
  CHECK(m.route == Route::kGetHold);
  CHECK(m.hold == "eu.42");
  REQUIRE(MatchRoute(Method::kPost, "/v1/holds/eu.42/capture", &m).ok());
  CHECK(m.route == Route::kCapture);
  REQUIRE(MatchRoute(Method::kPost, "/v1/holds/eu.42/release", &m).ok());
  CHECK(m.route == Route::kRelease);
  CHECK(MatchRoute(Method::kGet, "/v1/holds/eu.42/release", &m).code() ==
        Code::kFailedPrecondition);
  CHECK(MatchRoute(Method::kPost, "/v1/holds/eu.42/void", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kGet, "/v1/holds/", &m).code() == Code::kInvalidArgument);

  const std::vector<std::string> regions = {"eu", "us-east", "ap"};
  Dot d;
  REQUIRE(ParseHoldId("us-east.7", regions, &d).ok());
  CHECK(d == Dot{1, 7});
  CHECK(HoldId(Dot{2, 99}, regions) == "ap.99");
  REQUIRE(ParseHoldId(HoldId(Dot{0, 18446744073709551615ull}, regions), regions, &d).ok());
  CHECK(d == Dot{0, 18446744073709551615ull});
  for (const char* bad : {"", "eu", "eu.", ".7", "eu.0", "eu.07", "eu.-1", "eu.1x", "mars.1",
                          "eu.18446744073709551616", "eu.1.2"}) {
    INFO(bad);
    CHECK(ParseHoldId(bad, regions, &d).code() == Code::kInvalidArgument);
  }

  Amount amount = 0;
  std::uint64_t expires = 0;
  REQUIRE(ParseHoldBody(R"({"amount":5})", &amount, &expires).ok());
  CHECK(amount == 5);
  CHECK(expires == kDefaultHoldExpiryMs);
  REQUIRE(ParseHoldBody(R"({"amount":5,"expires_in_ms":1})", &amount, &expires).ok());
  CHECK(expires == 1);
  CHECK(ParseHoldBody(R"({"amount":5,"expires_in_ms":0})", &amount, &expires).code() ==
        Code::kInvalidArgument);
  CHECK(ParseHoldBody(R"({"expires_in_ms":10})", &amount, &expires).code() ==
        Code::kInvalidArgument);
  CHECK(ParseHoldBody(R"({"amount":5,"x":1})", &amount, &expires).code() == Code::kInvalidArgument);
  REQUIRE(ParseCaptureBody("", &amount).ok());
  CHECK(amount == 0);
  REQUIRE(ParseCaptureBody("{}", &amount).ok());
  CHECK(amount == 0);
  REQUIRE(ParseCaptureBody(R"({"amount":9})", &amount).ok());
  CHECK(amount == 9);
  CHECK(ParseCaptureBody(R"({"amount":0})", &amount).code() == Code::kInvalidArgument);
  CHECK(ParseCaptureBody("[1]", &amount).code() == Code::kInvalidArgument);
  CHECK(ParseReleaseBody(" ").ok());
  CHECK(ParseReleaseBody("{}").ok());
  CHECK(ParseReleaseBody(R"({"amount":1})").code() == Code::kInvalidArgument);
}

TEST_CASE("bad targets are refused with the reason", "[api]") {
  RouteMatch m;
  CHECK(MatchRoute(Method::kGet, "/v2/accounts", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/a/b/c", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/a/refunds", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kGet, "/", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kGet, "relative", &m).code() == Code::kInvalidArgument);
  // Wrong method on a known path: the route is still reported (for the Allow header).
  Status s = MatchRoute(Method::kGet, "/v1/accounts/a/debits", &m);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(m.route == Route::kDebit);
  CHECK(MatchRoute(Method::kOther, "/healthz", &m).code() == Code::kFailedPrecondition);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/bad%20id", &m).code() == Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/bad%2", &m).code() == Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/bad%zz", &m).code() == Code::kInvalidArgument);
  std::string long_id(65, 'a');
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/" + long_id, &m).code() == Code::kInvalidArgument);
  s = MatchRoute(Method::kGet, "/v1/accounts/a?x=1", &m);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("unknown query parameter 'x'"));
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/a/report?format=pdf", &m).code() ==
        Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/accounts/a/report?format=html&format=json", &m).code() ==
        Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/stream", &m).code() == Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kGet, "/v1/stream?accounts=a,,b", &m).code() == Code::kInvalidArgument);
  std::string many = "/v1/stream?accounts=";
  for (int i = 0; i <= static_cast<int>(kMaxStreamAccounts); ++i)
    many += "a" + std::to_string(i) + ",";
  many.pop_back();
  CHECK(MatchRoute(Method::kGet, many, &m).code() == Code::kInvalidArgument);
}

TEST_CASE("amount bodies: integers in range, nothing else", "[api]") {
  Amount a = 0;
  REQUIRE(ParseAmountBody(R"({"amount": 125})", &a).ok());
  CHECK(a == 125);
  REQUIRE(ParseAmountBody(R"({"amount": 1125899906842624})", &a).ok());  // kMaxOpAmount
  CHECK(a == kMaxOpAmount);
  CHECK_THAT(AmountError(R"({"amount": 1125899906842625})"),
             Catch::Contains("amount is out of range"));
  CHECK_THAT(AmountError(R"({"amount": 0})"), Catch::Contains("amount is out of range"));
  CHECK_THAT(AmountError(R"({"amount": -5})"), Catch::Contains("amount is out of range"));
  CHECK_THAT(AmountError(R"({"amount": 1.5})"), Catch::Contains("amount must be an integer"));
  CHECK_THAT(AmountError(R"({"amount": 1e3})"), Catch::Contains("amount must be an integer"));
  CHECK_THAT(AmountError(R"({"amount": 100000000000000000000000})"),
             Catch::Contains("beyond 64 bits"));
  CHECK_THAT(AmountError(R"({"amount": "5"})"), Catch::Contains("got a string"));
  CHECK_THAT(AmountError(R"({"amount": null})"), Catch::Contains("got null"));
  CHECK_THAT(AmountError(R"({"amount": true})"), Catch::Contains("got a boolean"));
  CHECK_THAT(AmountError(R"({})"), Catch::Contains("field 'amount' is required"));
  CHECK_THAT(AmountError(R"({"amount": 5, "memo": "x"})"), Catch::Contains("unknown field 'memo'"));
  CHECK_THAT(AmountError(R"({"amount": 5, "amount": 6})"),
             Catch::Contains("'amount' appears twice"));
  CHECK_THAT(AmountError(R"({"amount": 5)"), Catch::Contains("malformed JSON"));
  CHECK_THAT(AmountError(R"([5])"), Catch::Contains("must be a JSON object, got an array"));
  CHECK_THAT(AmountError(""), Catch::Contains("request body is empty"));
  CHECK_THAT(AmountError("\xff\xfe"), Catch::Contains("malformed JSON"));
}

TEST_CASE("the fast path for {\"amount\":N} agrees with the full parser", "[api]") {
  Amount a = 0;
  REQUIRE(ParseAmountBody(" {\n\t\"amount\" :  7 }\r\n", &a).ok());
  CHECK(a == 7);
  REQUIRE(ParseAmountBody(R"({"amount":9007199254740993})", &a).code() == Code::kInvalidArgument);
  CHECK(ParseAmountBody(R"({"amount":9999999999999999})", &a).code() == Code::kInvalidArgument);
  CHECK_THAT(AmountError(R"({"amount":01})"), Catch::Contains("malformed JSON"));
  CHECK_THAT(AmountError(R"({"amount":1,})"), Catch::Contains("malformed JSON"));
  CHECK_THAT(AmountError(R"({"amount":1}x)"), Catch::Contains("malformed JSON"));
  CHECK_THAT(AmountError(R"({"amount":1}{})"), Catch::Contains("malformed JSON"));
  CHECK_THAT(AmountError(R"({"amount":1.0})"), Catch::Contains("must be an integer"));
  CHECK_THAT(AmountError(R"({"amount":1e2})"), Catch::Contains("must be an integer"));
  CHECK_THAT(AmountError(R"({"Amount":1})"), Catch::Contains("unknown field 'Amount'"));
}

TEST_CASE("open-account bodies: defaults, bounds and nested fee", "[api]") {
  AccountDefaults d{"EUR", 100, FeePolicy{5, 10}};
  AccountConfig c;
  REQUIRE(ParseOpenAccountBody(R"({"id":"a1"})", d, &c).ok());
  CHECK(c.id == "a1");
  CHECK(c.currency == "EUR");
  CHECK(c.overdraft_limit == 100);
  CHECK(c.fee == FeePolicy{5, 10});
  CHECK(c.lines.empty());
  REQUIRE(ParseOpenAccountBody(
              R"({"id":"a1","currency":"USD","overdraft_limit":0,"fee":{"bps":7}})", d, &c)
              .ok());
  CHECK(c.currency == "USD");
  CHECK(c.overdraft_limit == 0);
  CHECK(c.fee == FeePolicy{5, 7});

  auto error = [&](std::string_view body) {
    Status s = ParseOpenAccountBody(body, d, &c);
    REQUIRE(s.code() == Code::kInvalidArgument);
    return s.message();
  };
  CHECK_THAT(error(R"({"currency":"EUR"})"), Catch::Contains("field 'id' is required"));
  CHECK_THAT(error(R"({"id":7})"), Catch::Contains("id must be a string"));
  CHECK_THAT(error(R"({"id":"a b"})"), Catch::Contains("id: account id may contain only"));
  CHECK_THAT(error(R"({"id":"a","currency":"euro"})"), Catch::Contains("currency:"));
  CHECK_THAT(error(R"({"id":"a","overdraft_limit":-1})"),
             Catch::Contains("overdraft_limit is out of range"));
  CHECK_THAT(error(R"({"id":"a","fee":5})"), Catch::Contains("fee must be an object"));
  CHECK_THAT(error(R"({"id":"a","fee":{"bps":10001}})"),
             Catch::Contains("fee.bps is out of range"));
  CHECK_THAT(error(R"({"id":"a","fee":{"flat":1,"pct":2}})"),
             Catch::Contains("unknown field 'fee.pct'"));
  CHECK_THAT(error(R"({"id":"a","fee":{"flat":1,"flat":2}})"),
             Catch::Contains("'flat' appears twice"));
  CHECK_THAT(error(R"({"id":"a","lines":[1]})"), Catch::Contains("unknown field 'lines'"));
  CHECK_THAT(error(R"({"id":"a","parent":["org"]})"),
             Catch::Contains("parent must be an account id, got an array"));
  CHECK_THAT(error(R"({"id":"a","parent":""})"), Catch::Contains("parent: "));
  CHECK_THAT(error(R"({"id":"a","parent":"org","cap":1})"),
             Catch::Contains("cap must be true or false"));
}

TEST_CASE("open-account bodies name a parent budget, and whether it is a cap", "[api]") {
  AccountDefaults d;
  AccountConfig c;
  REQUIRE(ParseOpenAccountBody(R"({"id":"user-7","parent":"team","cap":true})", d, &c).ok());
  CHECK(c.parent == "team");
  CHECK(c.cap);
  REQUIRE(ParseOpenAccountBody(R"({"id":"user-7","parent":"team"})", d, &c).ok());
  CHECK_FALSE(c.cap);
  // A cap without a parent is the replica's to refuse (one rule, core/validate.cc).
  REQUIRE(ParseOpenAccountBody(R"({"id":"org","cap":false})", d, &c).ok());
  CHECK(c.parent.empty());
}

TEST_CASE("debit bodies may ask for a fallback, credit bodies may not", "[api]") {
  Amount a = 0;
  bool fallback = true;
  REQUIRE(ParseDebitBody(R"({"amount":40})", &a, &fallback).ok());
  CHECK(a == 40);
  CHECK_FALSE(fallback);
  REQUIRE(ParseDebitBody(R"({"fallback":true,"amount":41})", &a, &fallback).ok());
  CHECK(a == 41);
  CHECK(fallback);
  REQUIRE(ParseDebitBody(R"({"amount":42,"fallback":false})", &a, &fallback).ok());
  CHECK_FALSE(fallback);
  CHECK_THAT(ParseDebitBody(R"({"amount":42,"fallback":"yes"})", &a, &fallback).message(),
             Catch::Contains("fallback must be true or false, got a string"));
  CHECK_THAT(ParseDebitBody(R"({"fallback":true})", &a, &fallback).message(),
             Catch::Contains("field 'amount' is required"));
  CHECK_THAT(ParseAmountBody(R"({"amount":42,"fallback":true})", &a).message(),
             Catch::Contains("unknown field 'fallback' (expected: amount)"));
}

TEST_CASE("rights bodies name a known other region", "[api]") {
  const std::vector<std::string> regions{"eu", "us", "ap"};
  RegionId to = 0;
  Amount a = 0;
  REQUIRE(ParseRightsBody(R"({"to":"ap","amount":40})", regions, 0, &to, &a).ok());
  CHECK(to == 2);
  CHECK(a == 40);
  Status s = ParseRightsBody(R"({"to":"mars","amount":40})", regions, 0, &to, &a);
  CHECK_THAT(s.message(), Catch::Contains("unknown region 'mars' (regions: eu, us, ap)"));
  s = ParseRightsBody(R"({"to":"eu","amount":40})", regions, 0, &to, &a);
  CHECK_THAT(s.message(), Catch::Contains("is this region"));
  CHECK(ParseRightsBody(R"({"to":1,"amount":40})", regions, 0, &to, &a).code() ==
        Code::kInvalidArgument);
  CHECK(ParseRightsBody(R"({"to":"us"})", regions, 0, &to, &a).code() == Code::kInvalidArgument);
  CHECK(ParseRightsBody(R"({"to":"us","amount":0})", regions, 0, &to, &a).code() ==
        Code::kInvalidArgument);
}

TEST_CASE("transfer bodies name two different valid accounts and an amount", "[api]") {
  Transfer t;
  REQUIRE(ParseTransferBody(R"({"from":"alice","to":"shop-7","amount":500})", &t).ok());
  CHECK(t.from == "alice");
  CHECK(t.to == "shop-7");
  CHECK(t.amount == 500);
  CHECK(t.key.empty());  // the Idempotency-Key header's, set by ParseWriteCommand
  auto error = [](std::string_view body) {
    Transfer out;
    const Status s = ParseTransferBody(body, &out);
    CHECK(s.code() == Code::kInvalidArgument);
    return s.message();
  };
  CHECK_THAT(error(R"({"to":"b","amount":5})"), Catch::Contains("field 'from' is required"));
  CHECK_THAT(error(R"({"from":"a","amount":5})"), Catch::Contains("field 'to' is required"));
  CHECK_THAT(error(R"({"from":"a","to":"b"})"), Catch::Contains("field 'amount' is required"));
  CHECK_THAT(error(R"({"from":"a","to":"a","amount":5})"),
             Catch::Contains("from and to are the same account 'a'"));
  CHECK_THAT(error(R"({"from":7,"to":"b","amount":5})"),
             Catch::Contains("from must be an account"));
  CHECK_THAT(error(R"({"from":"a b","to":"b","amount":5})"), Catch::Contains("from: "));
  CHECK_THAT(error(R"({"from":"a","to":"b","amount":0})"), Catch::Contains("amount"));
  CHECK_THAT(error(R"({"from":"a","to":"b","amount":-3})"), Catch::Contains("amount"));
  CHECK_THAT(error(R"({"from":"a","to":"b","amount":1125899906842625})"),
             Catch::Contains("amount"));
  CHECK_THAT(error(R"({"from":"a","to":"b","amount":1.5})"), Catch::Contains("amount"));
  CHECK_THAT(error(R"({"from":"a","to":"b","amount":5,"note":"x"})"),
             Catch::Contains("unknown field 'note'"));
  CHECK_THAT(error(R"([1])"), Catch::Contains("object"));
  // Through the route: the key is required, as on debits.
  CommandBody body;
  WriteRequest no_key{R"({"from":"a","to":"b","amount":5})", false, ""};
  CHECK_THAT(ParseWriteCommand(Route::kTransfer, "", no_key, {}, {"eu"}, 0, &body).message(),
             Catch::Contains("Idempotency-Key header is required"));
  WriteRequest keyed{R"({"from":"a","to":"b","amount":5})", true, "order-9"};
  REQUIRE(ParseWriteCommand(Route::kTransfer, "", keyed, {}, {"eu"}, 0, &body).ok());
  CHECK(std::get<Transfer>(body).key == "order-9");
}

TEST_CASE("idempotency key header", "[api]") {
  CHECK(ValidateIdempotencyKeyHeader("order-17", true).ok());
  CHECK_THAT(ValidateIdempotencyKeyHeader("", false).message(),
             Catch::Contains("header is required"));
  CHECK(ValidateIdempotencyKeyHeader("", true).code() == Code::kInvalidArgument);
  CHECK(ValidateIdempotencyKeyHeader("has space", true).code() == Code::kInvalidArgument);
  CHECK(ValidateIdempotencyKeyHeader(std::string(256, 'k'), true).code() == Code::kInvalidArgument);
}

TEST_CASE("one table maps Status codes to HTTP statuses", "[api]") {
  CHECK(HttpStatusFor(Code::kOk) == 200);
  CHECK(HttpStatusFor(Code::kInvalidArgument) == 400);
  CHECK(HttpStatusFor(Code::kUnauthenticated) == 401);
  CHECK(HttpStatusFor(Code::kInsufficientFunds) == 402);
  CHECK(HttpStatusFor(Code::kPermissionDenied) == 403);
  CHECK(HttpStatusFor(Code::kNotFound) == 404);
  CHECK(HttpStatusFor(Code::kAlreadyExists) == 409);
  CHECK(HttpStatusFor(Code::kConflict) == 409);
  CHECK(HttpStatusFor(Code::kIdempotencyKeyReused) == 422);
  CHECK(HttpStatusFor(Code::kResourceExhausted) == 429);
  CHECK(HttpStatusFor(Code::kUnavailable) == 503);
  CHECK(HttpStatusFor(Code::kCorruption) == 500);
}

TEST_CASE("error bodies carry the code name and an escaped message", "[api]") {
  CHECK(ErrorJson(Status::NotFound("no account \"x\"\n")) ==
        R"({"error":{"code":"not_found","message":"no account \"x\"\n"}})");
  CommandResult r;
  r.status = Status::InsufficientFunds("short");
  r.requested = 50;
  r.rights = 20;
  r.tentative_credit = 5;
  r.overdraft_line = 10;
  CHECK(
      InsufficientFundsJson(r, {"eu", "us", "ap"}) ==
      R"({"error":{"code":"insufficient_funds","message":"short","requested":50,"rights":20,"tentative_credit":5,"overdraft_line":10}})");
  // The account's open not final yet: the line it will have, and whose confirmation it waits for.
  r.overdraft_line = 0;
  r.line_not_yet_usable = 100;
  r.line_waits_for = {1, 2};
  CHECK(
      InsufficientFundsJson(r, {"eu", "us", "ap"}) ==
      R"({"error":{"code":"insufficient_funds","message":"short","requested":50,"rights":20,"tentative_credit":5,"overdraft_line":0,"line_not_yet_usable":100,"line_waits_for":["us","ap"]}})");
  std::string out;
  AppendJsonString(std::string("a\x01") + "\\", &out);
  CHECK(out == R"("a\u0001\\")");
}

TEST_CASE("op results render region names and flags", "[api]") {
  CommandResult r;
  r.op = Dot{1, 42};
  r.balance = -5;
  r.overdraft = true;
  std::string out;
  AppendOpResultJson(r, {"eu", "us"}, false, &out);
  CHECK(out ==
        R"({"op":{"region":"us","seq":42},"balance":-5,"overdraft":true,"replicated":false})");
  r.replicated = true;
  out.clear();
  AppendOpResultJson(r, {"eu", "us"}, false, &out);
  CHECK(out ==
        R"({"op":{"region":"us","seq":42},"balance":-5,"overdraft":true,"replicated":true})");
  r.payee_balance = 77;
  out.clear();
  AppendOpResultJson(r, {"eu", "us"}, true, &out);
  CHECK(out == R"({"op":{"region":"us","seq":42},"balance":-5,"overdraft":true,)"
               R"("replicated":true,"payee_balance":77})");
  CHECK(report::HtmlEscape("<a href='x'>&\"</a>") ==
        "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

TEST_CASE("the account report is one account rendered by src/report, regions by name",
          "[api][report]") {
  AccountView v;
  v.config.id = "acct-1";
  v.config.currency = "EUR";
  v.config.overdraft_limit = 600;
  v.balance = -253;
  v.raw_balance = -200;
  v.fees = 53;
  v.episodes = 1;
  v.regions = {RegionView{300, 0, 300, 0, 0}, RegionView{-553, 0, 300, 53, 0}};
  ForkReport f;
  f.event.kind = DerivedKind::kOverdraftFee;
  f.event.op = CanonicalKey{Hlc::Make(1'700'000'003'300ULL, 2), 1, 7};
  f.event.op_amount = 500;
  f.event.amount = 53;
  f.event.overdrawn = 200;
  f.event.balance_after = -253;
  f.final = true;
  Op op;
  op.dot = Dot{1, 7};
  op.hlc = f.event.op.hlc;
  op.kind = OpKind::kDebit;
  op.account = "acct-1";
  op.amount = 500;
  op.key = "k1";
  op.overdraft = true;
  f.ops.push_back(op);

  const report::RunReport r = AccountReport("eu", v, {f}, {f.event}, {"eu", "us"});
  const auto j = nlohmann::json::parse(report::RenderJson(r));
  CHECK(j["view_region"] == "eu");
  CHECK(j["regions"] == nlohmann::json::array({"eu", "us"}));
  REQUIRE(j["accounts"].size() == 1);
  const auto& a = j["accounts"][0];
  CHECK(a["config"]["id"] == "acct-1");
  CHECK(a["balance"] == -253);
  CHECK(a["regions"][1]["region"] == "us");
  CHECK(a["regions"][1]["fees"] == 53);
  REQUIRE(a["events"].size() == 1);
  CHECK(a["events"][0]["op"] ==
        nlohmann::json{{"region", "us"}, {"seq", 7}, {"hlc", op.hlc.ToString()}});
  REQUIRE(a["forks"].size() == 1);
  CHECK(a["forks"][0]["final"] == true);
  CHECK(a["forks"][0]["resolution"] == a["events"][0]);
  CHECK(
      a["forks"][0]["explanation"] ==
      "debit us:7 of 500 opened an overdraft episode, 200 below zero: fee 53, balance after -253");
  CHECK(a["forks"][0]["ops"][0]["region"] == "us");
  CHECK(a["forks"][0]["ops"][0]["key"] == "k1");
  CHECK(a["ops"].is_null());               // tallyd does not count them
  CHECK(a["rights_movements"].is_null());  // nor keep a ledger of transfers

  const std::string html = report::RenderHtml(r);
  CHECK(html.find("As region <b>eu</b> sees it") != std::string::npos);
  CHECK(html.find("Rights by region") != std::string::npos);
  CHECK(html.find("Derived events (1)") != std::string::npos);
  CHECK(html.find("us:7") != std::string::npos);
  CHECK(html.find("all invariants held") == std::string::npos);  // not a simulator run
}

TEST_CASE("backup: POST /v1/admin/backup with an absolute dir, nothing else", "[api][backup]") {
  RouteMatch m;
  REQUIRE(MatchRoute(Method::kPost, "/v1/admin/backup", &m).ok());
  CHECK(m.route == Route::kBackup);
  CHECK(RouteName(Route::kBackup) == "backup");
  Status get = MatchRoute(Method::kGet, "/v1/admin/backup", &m);
  CHECK(get.code() == Code::kFailedPrecondition);  // 405
  CHECK(m.route == Route::kBackup);
  CHECK(MatchRoute(Method::kPost, "/v1/admin/backup?x=1", &m).code() == Code::kInvalidArgument);
  CHECK(MatchRoute(Method::kPost, "/v1/admin", &m).code() == Code::kNotFound);
  CHECK(MatchRoute(Method::kPost, "/v1/admin/restore", &m).code() == Code::kNotFound);

  std::string dir;
  REQUIRE(ParseBackupBody(R"({"dir": "/var/backups/tally/eu-1"})", &dir).ok());
  CHECK(dir == "/var/backups/tally/eu-1");

  auto refused = [](std::string_view body) {
    std::string d = "unchanged";
    Status s = ParseBackupBody(body, &d);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(d == "unchanged");
    return s.message();
  };
  CHECK_THAT(refused(R"({"dir": "backups/eu"})"), Catch::Contains("absolute path"));
  CHECK_THAT(refused(R"({"dir": "./eu"})"), Catch::Contains("absolute path"));
  CHECK_THAT(refused(R"({"dir": ""})"), Catch::Contains("empty"));
  CHECK_THAT(refused(R"({})"), Catch::Contains("'dir' is required"));
  CHECK_THAT(refused(R"({"dir": 7})"), Catch::Contains("must be a string"));
  CHECK_THAT(refused(R"({"dir": "/a", "to": "/b"})"), Catch::Contains("unknown field 'to'"));
  CHECK_THAT(refused(R"({"dir": "/a", "dir": "/b"})"), Catch::Contains("appears twice"));
  CHECK_THAT(refused("/abs/path"), Catch::Contains("malformed JSON"));
  CHECK_THAT(refused(""), Catch::Contains("empty"));
  CHECK_THAT(refused(R"({"dir": "/a\u0000b"})"), Catch::Contains("NUL"));
  CHECK_THAT(refused("{\"dir\": \"/" + std::string(kMaxBackupDirBytes, 'a') + "\"}"),
             Catch::Contains("at most"));
}

TEST_CASE("a write request becomes the replica's command, key before body", "[api]") {
  const std::vector<std::string> regions{"eu", "us"};
  const AccountDefaults defaults;
  CommandBody body;

  REQUIRE(ParseWriteCommand(Route::kDebit, "a1", WriteRequest{R"({"amount":5})", true, "k-1"},
                            defaults, regions, 0, &body)
              .ok());
  const Debit* debit = std::get_if<Debit>(&body);
  REQUIRE(debit);
  CHECK(debit->account == "a1");
  CHECK(debit->amount == 5);
  CHECK(debit->key == "k-1");

  // A credit needs its key, and a missing key is what the answer names, whatever the body.
  Status s = ParseWriteCommand(Route::kCredit, "a1", WriteRequest{"not json", false, {}}, defaults,
                               regions, 0, &body);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("Idempotency-Key"));

  // A transfer's key is optional.
  REQUIRE(ParseWriteCommand(Route::kRights, "a1",
                            WriteRequest{R"({"to":"us","amount":7})", false, {}}, defaults, regions,
                            0, &body)
              .ok());
  const TransferRights* t = std::get_if<TransferRights>(&body);
  REQUIRE(t);
  CHECK(t->to == 1);
  CHECK(t->amount == 7);
  CHECK(t->key.empty());

  // An open names its account in the body.
  REQUIRE(ParseWriteCommand(Route::kOpenAccount, "", WriteRequest{R"({"id":"b2"})", false, {}},
                            defaults, regions, 0, &body)
              .ok());
  REQUIRE(std::get_if<OpenAccount>(&body));
  CHECK(std::get<OpenAccount>(body).config.id == "b2");

  CHECK_FALSE(
      ParseWriteCommand(Route::kGetAccount, "a1", WriteRequest{}, defaults, regions, 0, &body)
          .ok());
}

// ---- memo and metadata (issue 14) -------------------------------------------------------------

namespace {

// Each write route that takes a note, with the body it needs besides the note.
struct NoteRoute {
  Route route;
  std::string base;  // the body's fields without the note, e.g. "\"amount\":5"
};
const std::vector<NoteRoute> kNoteRoutes = {
    {Route::kCredit, R"("amount":5)"},
    {Route::kDebit, R"("amount":5,"fallback":true)"},
    {Route::kTransfer, R"("from":"a1","to":"b2","amount":5)"},
    {Route::kHold, R"("amount":5,"expires_in_ms":1000)"},
};

Status ParseNoteBody(Route route, const std::string& body, CommandBody* out) {
  return ParseWriteCommand(route, "a1", WriteRequest{body, true, "k-1"}, AccountDefaults{},
                           {"eu", "us"}, 0, out);
}

// The note the command carries, whatever its kind.
std::pair<std::string, Metadata> NoteOf(const CommandBody& body) {
  return std::visit(
      [](const auto& c) -> std::pair<std::string, Metadata> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, Credit> || std::is_same_v<T, Debit> ||
                      std::is_same_v<T, Transfer> || std::is_same_v<T, PlaceHold>) {
          return {c.memo, c.metadata};
        } else {
          return {};
        }
      },
      body);
}

}  // namespace

TEST_CASE("credits, debits, transfers and holds take a memo and metadata", "[api][note]") {
  for (const NoteRoute& nr : kNoteRoutes) {
    INFO("route " << RouteName(nr.route));
    CommandBody body;
    // Metadata keeps the body's order (not sorted), values may be empty, text may be any UTF-8.
    REQUIRE(
        ParseNoteBody(
            nr.route,
            "{" + nr.base +
                R"(,"memo":"caf\u00e9 \"Z\" \ud83d\ude00","metadata":{"z":"1","a":"","\u20ac":"euro"}})",
            &body)
            .ok());
    const auto [memo, metadata] = NoteOf(body);
    CHECK(memo == "caf\u00e9 \"Z\" \U0001F600");
    CHECK(metadata == Metadata{{"z", "1"}, {"a", ""}, {"\u20ac", "euro"}});
    // Neither is required; an empty memo or metadata object is no note.
    REQUIRE(ParseNoteBody(nr.route, "{" + nr.base + R"(,"memo":"","metadata":{}})", &body).ok());
    CHECK(NoteOf(body) == std::pair<std::string, Metadata>{});
    REQUIRE(ParseNoteBody(nr.route, "{" + nr.base + "}", &body).ok());
    CHECK(NoteOf(body) == std::pair<std::string, Metadata>{});
    // At the bounds: 140 bytes of memo; 16 pairs of 1024 bytes in all.
    std::string full = R"("metadata":{)";
    for (int i = 0; i < 16; ++i)
      full +=
          (i ? "," : "") + ("\"k" + std::to_string(i + 10) + "\":\"" + std::string(61, 'v')) + "\"";
    full += "}";
    REQUIRE(ParseNoteBody(
                nr.route,
                "{" + nr.base + R"(,"memo":")" + std::string(140, 'm') + "\"," + full + "}", &body)
                .ok());
    CHECK(NoteOf(body).first.size() == 140);
    CHECK(NoteOf(body).second.size() == 16);
  }
}

TEST_CASE("every bad memo and metadata is refused with the field and the bound", "[api][note]") {
  std::string many = R"("metadata":{)";
  for (int i = 0; i < 17; ++i) many += (i ? "," : "") + ("\"k" + std::to_string(i) + "\":\"v\"");
  many += "}";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"("memo":")" + std::string(141, 'm') + "\"", "memo is 141 bytes; at most 140"},
      // 47 three-byte characters: 141 bytes, though only 47 characters.
      {R"("memo":")" +
           [] {
             std::string s;
             for (int i = 0; i < 47; ++i) s += "\u20ac";
             return s;
           }() +
           "\"",
       "memo is 141 bytes; at most 140"},
      {R"("memo":7)", "memo must be a string, got an integer"},
      {R"("memo":null)", "memo must be a string, got null"},
      {R"("memo":["a"])", "memo must be a string, got an array"},
      {R"("memo":{"a":"b"})", "memo must be a string, got an object"},
      {R"("memo":"line\nbreak")", "memo has a control character at byte 4"},
      {R"("memo":"nul\u0000")", "memo has a control character at byte 3"},
      {R"("memo":"\u0085")", "memo has a control character at byte 0"},
      {R"("metadata":"order=7")", "metadata must be an object of string values, got a string"},
      {R"("metadata":[["a","b"]])", "metadata must be an object of string values, got an array"},
      {R"("metadata":null)", "metadata must be an object of string values, got null"},
      {R"("metadata":{"n":7})", "metadata value of 'n' must be a string, got an integer"},
      {R"("metadata":{"n":true})", "metadata value of 'n' must be a string, got a boolean"},
      {R"("metadata":{"n":null})", "metadata value of 'n' must be a string, got null"},
      {R"("metadata":{"n":{"deep":"x"}})", "metadata value of 'n' must be a string, got an object"},
      {R"("metadata":{"n":1.5})", "metadata value of 'n' must be a string, got a fraction"},
      {many, "metadata has 17 pairs; at most 16"},
      {R"("metadata":{"a":")" + std::string(600, 'v') + R"(","b":")" + std::string(423, 'v') +
           "\"}",
       "metadata is 1025 bytes (keys and values); at most 1024"},
      {R"("metadata":{"a":"1","a":"2"})", "field 'a' appears twice"},
      {R"("metadata":{"":"1"})", "metadata has an empty key"},
      {R"("metadata":{"k\tk":"1"})", "metadata key 'k\tk' has a control character at byte 1"},
      {R"("metadata":{"k":"1\r"})", "metadata value of 'k' has a control character at byte 1"},
      {R"("memos":"x")", "unknown field 'memos'"},
      {R"("meta":{"a":"b"})", "unknown field 'meta'"},
  };
  for (const NoteRoute& nr : kNoteRoutes) {
    for (const auto& [field, says] : bad) {
      const std::string body = "{" + nr.base + "," + field + "}";
      INFO("route " << RouteName(nr.route) << " body " << body.substr(0, 200));
      CommandBody out;
      const Status s = ParseNoteBody(nr.route, body, &out);
      CHECK(s.code() == Code::kInvalidArgument);
      CHECK_THAT(s.message(), Catch::Contains(says));
    }
  }
  // Invalid UTF-8 never gets past the JSON parser.
  CommandBody out;
  CHECK(ParseNoteBody(Route::kCredit, "{\"amount\":5,\"memo\":\"\xc0\xaf\"}", &out).code() ==
        Code::kInvalidArgument);
  // The parsers that take no note refuse one as an unknown field; rights moves and resolutions
  // carry none.
  Amount a = 0;
  CHECK_THAT(ParseAmountBody(R"({"amount":5,"memo":"x"})", &a).message(),
             Catch::Contains("unknown field 'memo' (expected: amount)"));
  CHECK_THAT(ParseCaptureBody(R"({"memo":"x"})", &a).message(),
             Catch::Contains("unknown field 'memo'"));
  CHECK_THAT(ParseReleaseBody(R"({"metadata":{}})").message(),
             Catch::Contains("unknown field 'metadata'"));
  RegionId to = 0;
  CHECK_THAT(
      ParseRightsBody(R"({"to":"us","amount":5,"memo":"x"})", {"eu", "us"}, 0, &to, &a).message(),
      Catch::Contains("unknown field 'memo'"));
}

TEST_CASE("answers echo the op's memo and metadata, escaped, in order", "[api][note]") {
  CommandResult r;
  r.op = Dot{0, 3};
  r.balance = 10;
  r.memo = "a \"b\" \\ \u00e9";
  r.metadata = {{"z", "1"}, {"a", "<x>"}};
  std::string out;
  AppendOpResultJson(r, {"eu"}, false, &out);
  CHECK(out == R"({"op":{"region":"eu","seq":3},"balance":10,"overdraft":false,"replicated":false,)"
               R"("memo":"a \"b\" \\ )"
               "\u00e9"
               R"(","metadata":{"z":"1","a":"<x>"}})");
  const nlohmann::json parsed = nlohmann::json::parse(out);
  CHECK(parsed["memo"] == r.memo);
  r.memo.clear();
  out.clear();
  AppendOpResultJson(r, {"eu"}, false, &out);
  CHECK_THAT(out, !Catch::Contains("memo"));
  CHECK_THAT(out, Catch::EndsWith(R"("metadata":{"z":"1","a":"<x>"}})"));
}

TEST_CASE("the Durability header: local, replicated, or the default", "[api]") {
  bool replicated = false;
  REQUIRE(ParseDurabilityHeader("", false, true, &replicated).ok());
  CHECK(replicated);
  REQUIRE(ParseDurabilityHeader("local", true, true, &replicated).ok());
  CHECK_FALSE(replicated);
  REQUIRE(ParseDurabilityHeader("replicated", true, false, &replicated).ok());
  CHECK(replicated);
  CHECK(ParseDurabilityHeader("quorum", true, false, &replicated).code() == Code::kInvalidArgument);
}
