// Unit test of node/stream_messages.h: what a /v1/stream client may send and how an upgrade
// authenticates, as pure functions — every refusal of a message, the request each message type
// stands for, and the result and error messages. No tallyd; stream_test.cc drives a real one.
#include "node/stream_messages.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

using namespace tally;
using namespace tally::node;
using nlohmann::json;

namespace {

// The refusal of `text`, which must be InvalidArgument.
std::string Refusal(std::string_view text, std::string* request_id = nullptr) {
  StreamMessage m;
  const Status s = ParseStreamMessage(text, &m);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kInvalidArgument);
  if (request_id) *request_id = m.request_id;
  return s.message();
}

StreamMessage Parsed(std::string_view text) {
  StreamMessage m;
  const Status s = ParseStreamMessage(text, &m);
  INFO(text << ": " << s.ToString());
  REQUIRE(s.ok());
  return m;
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("stream request messages stand for the HTTP request of their route", "[stream]") {
  StreamMessage m =
      Parsed(R"({"type":"debit","request_id":"r-1","idempotency_key":"k1","account":"shop-1",)"
             R"("amount":5,"fallback":true})");
  CHECK(m.kind == StreamMessageKind::kRequest);
  CHECK(m.request_id == "r-1");
  CHECK(m.method == Method::kPost);
  CHECK(m.target == "/v1/accounts/shop-1/debits");
  CHECK(m.match.route == Route::kDebit);
  CHECK(m.match.account == "shop-1");
  CHECK(m.has_key);
  CHECK(m.key == "k1");
  CHECK_FALSE(m.has_durability);
  // The body is what HTTP would carry, and the route's own parser reads it.
  CHECK(json::parse(m.body) == json{{"amount", 5}, {"fallback", true}});
  Amount amount = 0;
  bool fallback = false;
  REQUIRE(ParseDebitBody(m.body, &amount, &fallback).ok());
  CHECK(amount == 5);
  CHECK(fallback);

  m = Parsed(R"({"type":"transfer","request_id":"r2","idempotency_key":"k","from":"a","to":"b",)"
             R"("amount":7,"durability":"replicated"})");
  CHECK(m.match.route == Route::kTransfer);
  CHECK(m.target == "/v1/transfers");
  CHECK(m.has_durability);
  CHECK(m.durability == "replicated");
  Transfer t;
  REQUIRE(ParseTransferBody(m.body, &t).ok());
  CHECK(t.from == "a");
  CHECK(t.to == "b");

  m = Parsed(R"({"type":"capture","request_id":"r3","hold":"eu.42"})");
  CHECK(m.match.route == Route::kCapture);
  CHECK(m.match.hold == "eu.42");
  CHECK(m.body == "{}");  // the whole hold
  REQUIRE(ParseCaptureBody(m.body, &amount).ok());
  CHECK(amount == 0);

  // A batch over the stream: its ops are the body of POST /v1/batch.
  m = Parsed(R"({"type":"batch","request_id":"b1","ops":[{"type":"debit","account":"a"}]})");
  CHECK(m.match.route == Route::kBatch);
  CHECK(m.target == "/v1/batch");
  CHECK(json::parse(m.body) == json{{"ops", json::array({{{"type", "debit"}, {"account", "a"}}})}});

  m = Parsed(R"({"type":"get_account","request_id":"r4","account":"a:1"})");
  CHECK(m.method == Method::kGet);
  CHECK(m.match.route == Route::kGetAccount);
  CHECK(m.target == "/v1/accounts/a%3A1");  // encoded for MatchRoute, which decodes it
  CHECK(m.match.account == "a:1");
  CHECK(m.body.empty());

  // Every type is its route's name, and the message of each type is matched to that route.
  for (Route r : StreamRequestRoutes()) {
    const std::string type(RouteName(r));
    json msg{{"type", type}, {"request_id", "x"}};
    if (r == Route::kGetHold || r == Route::kCapture || r == Route::kRelease) {
      msg["hold"] = "eu.1";
    } else if (r != Route::kOpenAccount && r != Route::kTransfer) {
      msg["account"] = "acc";
    }
    INFO(type);
    CHECK(Parsed(msg.dump()).match.route == r);
  }
}

TEST_CASE("stream auth messages", "[stream]") {
  StreamMessage m = Parsed(R"({"type":"auth","token":"s3cret"})");
  CHECK(m.kind == StreamMessageKind::kAuth);
  CHECK(m.token == "s3cret");
  CHECK(m.request_id.empty());
  CHECK(Parsed(R"({"type":"auth","token":"t","request_id":"a1"})").request_id == "a1");
  CHECK(Refusal(R"({"type":"auth"})") == "field 'token' is required in an auth message");
  CHECK(Refusal(R"({"type":"auth","token":5})") == "token must be a string, got an integer");
  CHECK(Refusal(R"({"type":"auth","token":"t","scope":"*"})") ==
        "unknown field 'scope' in a 'auth' message (expected: type, token, request_id)");
}

TEST_CASE("bad stream messages are refused, naming the problem", "[stream]") {
  std::string id;
  CHECK(Contains(Refusal("{not json", &id), "malformed JSON"));
  CHECK(id.empty());
  CHECK(Refusal("") == "message is empty; expected a JSON object");
  CHECK(Refusal("[1,2]") == "message must be a JSON object, got an array");
  CHECK(Refusal(R"({"type":"debit","type":"credit","request_id":"r"})") ==
        "field 'type' appears twice");

  CHECK(Contains(Refusal(R"({"request_id":"r9"})", &id), "field 'type' is required"));
  CHECK(id == "r9");  // read before the refusal, so that the error can name it
  CHECK(Contains(Refusal(R"({"type":7,"request_id":"r"})"), "type must be a string"));
  const std::string unknown = Refusal(R"({"type":"withdraw","request_id":"r10"})", &id);
  CHECK(unknown.starts_with("unknown message type 'withdraw' (expected: auth, "));
  CHECK(Contains(unknown, "debit"));
  CHECK(id == "r10");
  CHECK(Refusal(R"({"type":"stream","request_id":"r"})").starts_with("unknown message type"));
  CHECK(Refusal(R"({"type":"backup","request_id":"r"})").starts_with("unknown message type"));

  CHECK(Contains(Refusal(R"({"type":"debit","account":"a","amount":1})", &id),
                 "field 'request_id' is required"));
  CHECK(id.empty());
  CHECK(Contains(Refusal(R"({"type":"debit","request_id":12,"account":"a"})", &id),
                 "request_id must be a string of 1..128 characters"));
  CHECK(id.empty());
  CHECK(Contains(Refusal(R"({"type":"debit","request_id":"a b","account":"a"})"), "got 'a b'"));
  CHECK(Contains(Refusal(R"({"type":"debit","request_id":""})"), "request_id must be"));
  CHECK(Contains(Refusal(json{{"type", "debit"}, {"request_id", std::string(129, 'r')}}.dump()),
                 "request_id must be"));

  CHECK(Refusal(R"({"type":"debit","request_id":"r","amount":1})", &id) ==
        "field 'account' is required in a 'debit' message (an account id)");
  CHECK(id == "r");
  CHECK(Refusal(R"({"type":"release","request_id":"r"})") ==
        "field 'hold' is required in a 'release' message (a hold id, <region>.<seq>)");
  CHECK(Refusal(R"({"type":"credit","request_id":"r","account":["a"]})") ==
        "account must be a string, got an array");
  // An address MatchRoute refuses, as it refuses it in a path.
  CHECK(Refusal(R"({"type":"credit","request_id":"r","account":"a/b"})") ==
        Refusal(R"({"type":"credit","request_id":"r","account":"a b"})"));
  RouteMatch match;
  CHECK(Refusal(R"({"type":"credit","request_id":"r","account":"a b"})") ==
        MatchRoute(Method::kPost, "/v1/accounts/a%20b/credits", &match).message());
  CHECK(Refusal(R"({"type":"credit","request_id":"r","account":""})") ==
        MatchRoute(Method::kPost, "/v1/accounts//credits", &match).message());
  CHECK(Contains(
      Refusal(
          json{{"type", "get_hold"}, {"request_id", "r"}, {"hold", std::string(65, '1')}}.dump()),
      "hold id must be"));

  CHECK(Refusal(R"({"type":"get_account","request_id":"r","account":"a","amount":1})") ==
        "unknown field 'amount' in a 'get_account' message (expected: type, request_id, "
        "account)");
  CHECK(Refusal(R"({"type":"debit","request_id":"r","account":"a","idempotency_key":1})") ==
        "idempotency_key must be a string, got an integer");
  CHECK(Refusal(R"({"type":"debit","request_id":"r","account":"a","durability":true})") ==
        "durability must be a string, got a boolean");
}

TEST_CASE("the body of a request message is refused by its route's parser, as over HTTP",
          "[stream]") {
  // A field the route does not take stays in the body, and the route's parser names it.
  StreamMessage m =
      Parsed(R"({"type":"credit","request_id":"r","idempotency_key":"k","account":"a","amout":5})");
  Amount amount = 0;
  const Status s = ParseAmountBody(m.body, &amount);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message() == ParseAmountBody(R"({"amout":5})", &amount).message());
  m = Parsed(R"({"type":"credit","request_id":"r","account":"a","amount":"5"})");
  CHECK(ParseAmountBody(m.body, &amount).message() ==
        ParseAmountBody(R"({"amount":"5"})", &amount).message());
}

TEST_CASE("an upgrade authenticates by header, by subprotocol or not at all", "[stream]") {
  StreamAuth a;
  REQUIRE(ParseStreamAuth("Bearer t1", "", &a).ok());
  CHECK(a.authorization == "Bearer t1");
  CHECK_FALSE(a.select_protocol);

  REQUIRE(ParseStreamAuth("", "tally.v1, tally.bearer.t2", &a).ok());
  CHECK(a.authorization == "Bearer t2");
  CHECK(a.select_protocol);
  REQUIRE(ParseStreamAuth("", " tally.bearer.t3 ,chat,tally.v1,", &a).ok());
  CHECK(a.authorization == "Bearer t3");
  CHECK(a.select_protocol);

  // No credentials: the first message brings them.
  REQUIRE(ParseStreamAuth("", "", &a).ok());
  CHECK(a.authorization.empty());
  REQUIRE(ParseStreamAuth("", "tally.v1", &a).ok());
  CHECK(a.authorization.empty());
  CHECK(a.select_protocol);
  REQUIRE(ParseStreamAuth("Bearer t1", "tally.v1", &a).ok());
  CHECK(a.authorization == "Bearer t1");

  CHECK(ParseStreamAuth("", "tally.bearer.t", &a).message() ==
        "a tally.bearer.<token> subprotocol needs tally.v1 offered with it "
        "(Sec-WebSocket-Protocol: tally.v1, tally.bearer.<token>)");
  CHECK(ParseStreamAuth("", "tally.v1, tally.bearer.a, tally.bearer.b", &a).code() ==
        Code::kInvalidArgument);
  CHECK(ParseStreamAuth("Bearer t", "tally.v1, tally.bearer.t", &a).message() ==
        "a token in both the Authorization header and a subprotocol: send it once");
  // An empty token is left to the authorizer, which refuses it as it refuses an empty header.
  REQUIRE(ParseStreamAuth("", "tally.v1, tally.bearer.", &a).ok());
  CHECK(a.authorization == "Bearer ");
}

TEST_CASE("a stream needs read permission on every account", "[stream]") {
  Principal shop;
  shop.name = "shop";
  shop.role = "teller";
  shop.permissions = PermissionBit(Permission::kRead) | PermissionBit(Permission::kDebit);
  shop.account_patterns = {"shop-*"};
  CHECK(AuthorizeStream(shop, {"shop-1", "shop-2"}).ok());
  const Status out = AuthorizeStream(shop, {"shop-1", "bank-1"});
  CHECK(out.code() == Code::kPermissionDenied);
  CHECK(Contains(out.message(), "'bank-1' is outside the scope"));
  Principal writer = shop;
  writer.permissions = PermissionBit(Permission::kDebit);
  CHECK(AuthorizeStream(writer, {"shop-1"}).code() == Code::kPermissionDenied);
}

TEST_CASE("result and error messages", "[stream]") {
  json r = json::parse(StreamResultJson("r1", 200, "application/json", R"({"balance":5})", ""));
  CHECK(
      r ==
      json{{"type", "result"}, {"request_id", "r1"}, {"status", 200}, {"body", {{"balance", 5}}}});
  r = json::parse(StreamResultJson("r2", 200, "application/json", R"({"op":1})",
                                   "Idempotent-Replayed: true\r\n"));
  CHECK(r["headers"] == json{{"Idempotent-Replayed", "true"}});
  r = json::parse(StreamResultJson("r3", 200, "text/plain", "a \"b\"\n", "A: 1\r\nB:2\r\n"));
  CHECK(r["body"] == "a \"b\"\n");
  CHECK(r["headers"] == json{{"A", "1"}, {"B", "2"}});

  json e = json::parse(StreamErrorJson("", Status::InvalidArgument("unknown message type 'x'")));
  CHECK(e ==
        json{{"type", "error"},
             {"request_id", nullptr},
             {"error", {{"code", "invalid_argument"}, {"message", "unknown message type 'x'"}}}});
  e = json::parse(StreamErrorJson("q\"1", Status::ResourceExhausted("too many")));
  CHECK(e["request_id"] == "q\"1");
  CHECK(e["error"]["code"] == "resource_exhausted");
  CHECK(json::parse(StreamAuthenticatedJson("")) ==
        json{{"type", "authenticated"}, {"request_id", nullptr}});
  CHECK(json::parse(StreamAuthenticatedJson("a1"))["request_id"] == "a1");
}
