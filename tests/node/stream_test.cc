// Requests over GET /v1/stream against a real tallyd (issue 14): a client sends
// {"type":"debit","request_id":…} on the WebSocket and gets {"type":"result"} with the status and
// body HTTP would answer, under the same permissions; another stream of the account sees each
// change once; every bad message gets an error message; and the ways a browser authenticates a
// stream — a subprotocol carrying the token, or a first message — work, while a wrong token, a
// silent socket and a token in the query string are refused.
#include <signal.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

// One stream of node 0, read a message at a time; messages of other types than the one awaited
// are kept in `skipped`.
class Stream {
 public:
  explicit Stream(const Cluster& c) : reader_(UrlOf(c), 5s, tally::ctl::ClientTls{c.ca_file()}) {}

  bool Open(const std::string& target, const tally::ctl::Headers& headers = {}) {
    return reader_.Open(target, headers, &error_);
  }
  // With Authorization: Bearer <token>.
  bool OpenWithToken(const std::string& target, const std::string& token) {
    return Open(target, {{"Authorization", "Bearer " + token}});
  }
  void Send(const json& message) { SendRaw(message.dump()); }
  void SendRaw(const std::string& text, bool binary = false) {
    const bool sent = reader_.Send(text, &error_, binary);
    INFO(error_);
    REQUIRE(sent);
  }
  // The next message, or null after `timeout` or when the stream closed (closed() says which).
  json Next(std::chrono::milliseconds timeout = 5s) {
    std::string text;
    const int got = reader_.Next(timeout, &text, &error_);
    if (got == -1) closed_ = true;
    if (got != 1) return json();
    return json::parse(text);
  }
  // The next message of `type` (and `request_id`, if not empty); the test fails without one
  // within `timeout` of the last message.
  json Await(const std::string& type, const std::string& request_id = "",
             std::chrono::milliseconds timeout = 5s) {
    for (int i = 0; i < 50; ++i) {
      json m = Next(timeout);
      INFO("waiting for a " << type << " " << request_id << ": " << error_);
      REQUIRE(m.is_object());
      if (m["type"] == type && (request_id.empty() || m["request_id"] == request_id)) return m;
      skipped.push_back(std::move(m));
    }
    FAIL("no " << type << " message");
    return json();
  }
  // The result of `request` sent now.
  json Call(const json& request) {
    Send(request);
    return Await("result", request["request_id"].get<std::string>());
  }
  // True once the server closed the stream (within `timeout`); error() says with what code.
  bool WaitClosed(std::chrono::milliseconds timeout = 10s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < end) {
      json m = Next(500ms);
      if (m.is_object()) skipped.push_back(std::move(m));
    }
    return closed_;
  }
  const std::string& error() const { return error_; }
  const std::string& protocol() const { return reader_.protocol(); }

  std::vector<json> skipped;

 private:
  static tally::ctl::Url UrlOf(const Cluster& c) {
    tally::ctl::Url url;
    std::string error;
    REQUIRE(tally::ctl::Url::Parse(c.url(0), &url, &error));
    return url;
  }

  tally::ctl::WsReader reader_;
  std::string error_;
  bool closed_ = false;
};

json Debit(const std::string& request_id, const std::string& key, std::int64_t amount,
           const std::string& account = "shop-1") {
  return json{{"type", "debit"},
              {"request_id", request_id},
              {"idempotency_key", key},
              {"account", account},
              {"amount", amount}};
}

std::int64_t Balance(const json& account_message) {
  INFO(account_message.dump());
  REQUIRE(account_message["type"] == "account");
  return Int(account_message["account"], "balance");
}

// An error message for `request_id` (null when empty) with `code`, whose message contains `says`.
void CheckError(const json& m, const std::string& request_id, const std::string& code,
                const std::string& says) {
  INFO(m.dump());
  CHECK(m["type"] == "error");
  CHECK(m["request_id"] == (request_id.empty() ? json() : json(request_id)));
  CHECK(m["error"]["code"] == code);
  CHECK(m["error"]["message"].get<std::string>().find(says) != std::string::npos);
}

// A stream of shop-1 with the shop token (credit, debit, read on shop-*), after its first
// message, the account's state.
constexpr const char* kShop1 = "/v1/stream?accounts=shop-1";

}  // namespace

TEST_CASE("requests over a stream are answered as over HTTP, under HTTP's permissions",
          "[node][stream]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  // Two requests in flight per stream, and answers held back 100 ms by the group commit, so a
  // third sent at once is past the bound whatever the machine's speed.
  options.extra_toml = "[http]\nmax_pipelined = 2\n\n[storage]\ncommit_delay_us = 100000\n";
  Cluster c("stream", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));  // writes are refused (503) until the regions rejoined
  Api admin = c.api(0);
  REQUIRE(admin.Open("shop-1").status == 201);
  REQUIRE(admin.Open("shop-2").status == 201);
  REQUIRE(admin.Credit("shop-1", 100, "c1").status == 200);

  Stream a(c);
  REQUIRE(a.OpenWithToken(kShop1, kShopToken));
  CHECK(a.protocol().empty());  // no subprotocol offered, none selected
  CHECK(Balance(a.Await("account")) == 100);
  Stream b(c);  // a second session of the account, authenticated by subprotocol
  const bool opened = b.Open(
      kShop1, {{"Sec-WebSocket-Protocol", std::string("tally.v1, tally.bearer.") + kShopToken}});
  INFO(b.error());
  REQUIRE(opened);
  CHECK(b.protocol() == "tally.v1");  // never the one carrying the token
  CHECK(Balance(b.Await("account")) == 100);

  // Debits over the socket: each answered with HTTP's body; the other session sees each change.
  json first;
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "d" + std::to_string(i);
    json r = a.Call(Debit(id, "dk" + std::to_string(i), 10));
    INFO(r.dump());
    CHECK(r["status"] == 200);
    CHECK(Int(r["body"], "balance") == 100 - 10 * i);
    CHECK(r["body"]["op"]["region"] == "eu");
    CHECK_FALSE(r.contains("headers"));
    if (i == 1) first = r;
    CHECK(Balance(b.Await("account")) == 100 - 10 * i);
  }
  // A retry with the same key is the same op: answered as HTTP answers a replay, and no change.
  json replay = a.Call(Debit("d1-again", "dk1", 10));
  INFO(replay.dump());
  CHECK(replay["status"] == 200);
  CHECK(replay["headers"]["Idempotent-Replayed"] == "true");
  CHECK(replay["body"]["op"] == first["body"]["op"]);
  Api shop = c.api(0, kShopToken);
  Reply http_replay = shop.Debit("shop-1", 10, "dk1");
  CHECK(http_replay.header("Idempotent-Replayed") == "true");
  CHECK(replay["body"] == http_replay.body);
  CHECK(b.Next(500ms).is_null());  // each change once: nothing for the replays
  CHECK(b.skipped.empty());

  // The other write routes.
  json t = a.Call({{"type", "transfer"},
                   {"request_id", "t1"},
                   {"idempotency_key", "tk1"},
                   {"from", "shop-1"},
                   {"to", "shop-2"},
                   {"amount", 5}});
  INFO(t.dump());
  CHECK(t["status"] == 200);
  CHECK(Int(t["body"], "payee_balance") == 5);
  CHECK(Balance(b.Await("account")) == 65);
  json h = a.Call({{"type", "hold"},
                   {"request_id", "h1"},
                   {"idempotency_key", "hk1"},
                   {"account", "shop-1"},
                   {"amount", 20}});
  INFO(h.dump());
  REQUIRE(h["status"] == 200);
  const std::string hold = h["body"]["hold"].get<std::string>();
  json got = a.Call({{"type", "get_hold"}, {"request_id", "g1"}, {"hold", hold}});
  CHECK(got["status"] == 200);
  const json http_hold = shop.GetHold(hold).body;
  for (const char* field : {"hold", "account", "amount", "state"})
    CHECK(got["body"][field] == http_hold[field]);
  json cap = a.Call({{"type", "capture"}, {"request_id", "cp1"}, {"hold", hold}, {"amount", 15}});
  INFO(cap.dump());
  CHECK(cap["status"] == 200);
  json read = a.Call({{"type", "get_account"}, {"request_id", "ga1"}, {"account", "shop-1"}});
  CHECK(read["status"] == 200);
  CHECK(Int(read["body"], "balance") == 50);
  const json http_account = shop.Account("shop-1").body;
  for (const char* field : {"id", "balance", "held", "available"})
    CHECK(read["body"][field] == http_account[field]);

  // RBAC as over HTTP: a token that may only read gets HTTP's 403, and so does an account out
  // of the shop token's scope.
  Stream reader(c);
  REQUIRE(reader.OpenWithToken(kShop1, kReaderToken));
  json forbidden = reader.Call(Debit("rd1", "rk1", 1));
  INFO(forbidden.dump());
  CHECK(forbidden["status"] == 403);
  CHECK(forbidden["body"]["error"]["code"] == "permission_denied");
  Api reader_http = c.api(0, kReaderToken);
  CHECK(forbidden["body"] == reader_http.Debit("shop-1", 1, "rk1").body);
  REQUIRE(admin.Open("bank-1").status == 201);
  json outside = a.Call(Debit("o1", "ok1", 1, "bank-1"));
  CHECK(outside["status"] == 403);
  CHECK(outside["body"] == shop.Debit("bank-1", 1, "ok1").body);

  // Bad bodies are refused by the route, with HTTP's status and body.
  json bad_amount = a.Call({{"type", "credit"},
                            {"request_id", "b1"},
                            {"idempotency_key", "bk1"},
                            {"account", "shop-1"},
                            {"amount", "5"}});
  CHECK(bad_amount["status"] == 400);
  CHECK(bad_amount["body"] == shop.Call("POST", "/v1/accounts/shop-1/credits", R"({"amount":"5"})",
                                        {{"Idempotency-Key", "bk1"}})
                                  .body);
  json no_key =
      a.Call({{"type", "debit"}, {"request_id", "b2"}, {"account", "shop-1"}, {"amount", 1}});
  CHECK(no_key["status"] == 400);
  CHECK(no_key["body"] == shop.Call("POST", "/v1/accounts/shop-1/debits", R"({"amount":1})").body);
  json no_hold = a.Call({{"type", "release"}, {"request_id", "b3"}, {"hold", "eu.999999"}});
  CHECK(no_hold["status"] == 404);

  // Bad messages: an error message each, and the stream goes on.
  a.SendRaw("{not json");
  CheckError(a.Await("error"), "", "invalid_argument", "malformed JSON");
  a.Send({{"type", "withdraw"}, {"request_id", "u1"}});
  CheckError(a.Await("error"), "u1", "invalid_argument", "unknown message type 'withdraw'");
  a.Send({{"type", "debit"}, {"account", "shop-1"}, {"amount", 1}});
  CheckError(a.Await("error"), "", "invalid_argument", "field 'request_id' is required");
  a.Send({{"type", "debit"}, {"request_id", 7}, {"account", "shop-1"}});
  CheckError(a.Await("error"), "", "invalid_argument", "request_id must be a string");
  a.Send({{"type", "debit"}, {"request_id", "m1"}, {"amount", 1}});
  CheckError(a.Await("error"), "m1", "invalid_argument", "field 'account' is required");
  a.Send({{"type", "debit"}, {"request_id", "m2"}, {"account", "shop 1"}, {"amount", 1}});
  CheckError(a.Await("error"), "m2", "invalid_argument", "account id");
  a.Send({{"type", "auth"}, {"token", kShopToken}});
  CheckError(a.Await("error"), "", "invalid_argument", "already authenticated");
  a.SendRaw(R"({"type":"debit","request_id":"bin"})", true);
  CheckError(a.Await("error"), "", "invalid_argument", "binary messages are not accepted");

  // At most [http] max_pipelined (2) requests in flight; a request_id at most once among them.
  // Sent back to back, all four are read long before the 100 ms commit delay lets p1 be answered.
  a.Send(Debit("p1", "pk1", 1));
  a.Send(Debit("p1", "pk2", 1));
  a.Send(Debit("p2", "pk3", 1));
  a.Send(Debit("p3", "pk4", 1));
  CheckError(a.Await("error", "p1"), "p1", "invalid_argument",
             "request_id 'p1' is already in flight");
  CheckError(a.Await("error", "p3"), "p3", "resource_exhausted", "[http] max_pipelined");
  CHECK(a.Await("result", "p1")["status"] == 200);
  CHECK(a.Await("result", "p2")["status"] == 200);
  CHECK(a.Call(Debit("p4", "pk5", 1))["status"] == 200);  // room again

  // Over the size bound: closed with 1009, message too big.
  a.SendRaw(json{{"type", "debit"}, {"request_id", "big"}, {"pad", std::string(5000, 'x')}}.dump());
  CHECK(a.WaitClosed());
  CHECK(a.error().find("1009") != std::string::npos);
  // The other stream lives on.
  CHECK(b.Call(Debit("after", "ak1", 1))["status"] == 200);

  // At shutdown a stream takes no more requests, sends the results it owes, then closes (1001).
  b.Send(Debit("last", "lk1", 1));
  std::this_thread::sleep_for(30ms);  // read by now, and held back by the 100 ms commit delay
  ::kill(c.pid(0), SIGTERM);
  CHECK(b.Await("result", "last")["status"] == 200);
  CHECK(b.WaitClosed());
  CHECK(b.error().find("1001") != std::string::npos);
}

TEST_CASE("a stream authenticates by subprotocol or first message, never by query string",
          "[node][stream]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("stream-auth", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api admin = c.api(0);
  REQUIRE(admin.Open("shop-1").status == 201);
  REQUIRE(admin.Open("bank-1").status == 201);
  REQUIRE(admin.Credit("shop-1", 50, "c1").status == 200);

  // One cluster for every case (a SECTION would start it again for each).
  {
    INFO("first message");
    Stream s(c);
    REQUIRE(s.Open(kShop1));         // no credentials: the upgrade is accepted...
    CHECK(s.Next(300ms).is_null());  // ...and nothing is sent before the auth message
    CHECK(s.skipped.empty());
    s.Send({{"type", "auth"}, {"token", kShopToken}, {"request_id", "a1"}});
    CHECK(s.Await("authenticated")["request_id"] == "a1");
    CHECK(Balance(s.Await("account")) == 50);
    json r = s.Call(Debit("d1", "dk1", 5));
    CHECK(r["status"] == 200);
    CHECK(Balance(s.Await("account")) == 45);
  }
  {
    INFO("first message with a wrong token");
    Stream s(c);
    REQUIRE(s.Open(kShop1));
    s.Send({{"type", "auth"}, {"token", "not-a-token"}});
    CheckError(s.Await("error"), "", "unauthenticated", "unknown bearer token");
    CHECK(s.WaitClosed());
    CHECK(s.error().find("1008") != std::string::npos);
  }
  {
    INFO("first message with a token that may not read the stream's accounts");
    Stream s(c);
    REQUIRE(s.Open("/v1/stream?accounts=shop-1,bank-1"));
    s.Send({{"type", "auth"}, {"token", kShopToken}});
    CheckError(s.Await("error"), "", "permission_denied", "'bank-1' is outside the scope");
    CHECK(s.WaitClosed());
    CHECK(s.error().find("1008") != std::string::npos);
  }
  {
    INFO("a first message other than auth");
    const std::int64_t before = Int(admin.Account("shop-1").body, "balance");
    Stream s(c);
    REQUIRE(s.Open(kShop1));
    s.Send(Debit("d2", "dk2", 5));
    CheckError(s.Await("error"), "d2", "unauthenticated", "the first message must be");
    CHECK(s.WaitClosed());
    CHECK(s.error().find("1008") != std::string::npos);
    CHECK(Int(admin.Account("shop-1").body, "balance") == before);  // nothing was debited
  }
  {
    INFO("a bad first message");
    Stream s(c);
    REQUIRE(s.Open(kShop1));
    s.SendRaw("nope");
    CheckError(s.Await("error"), "", "invalid_argument", "malformed JSON");
    CHECK(s.WaitClosed());
  }
  {
    INFO("silence");
    Stream s(c);
    REQUIRE(s.Open(kShop1));
    CheckError(s.Await("error", "", 10s), "", "unauthenticated", "no auth message within 5 s");
    CHECK(s.WaitClosed());
    CHECK(s.error().find("1008") != std::string::npos);
  }
  {
    INFO("subprotocol with a wrong token, or without tally.v1");
    Stream s(c);
    CHECK_FALSE(s.Open(kShop1, {{"Sec-WebSocket-Protocol", "tally.v1, tally.bearer.wrong"}}));
    CHECK(s.error().find("HTTP 401") != std::string::npos);
    Stream t(c);
    CHECK_FALSE(
        t.Open(kShop1, {{"Sec-WebSocket-Protocol", std::string("tally.bearer.") + kShopToken}}));
    CHECK(t.error().find("HTTP 400") != std::string::npos);
    CHECK(t.error().find("needs tally.v1") != std::string::npos);
    Stream u(c);  // the token twice
    CHECK_FALSE(u.Open(
        kShop1, {{"Authorization", std::string("Bearer ") + kShopToken},
                 {"Sec-WebSocket-Protocol", std::string("tally.v1, tally.bearer.") + kShopToken}}));
    CHECK(u.error().find("HTTP 400") != std::string::npos);
    Stream v(c);  // a scope the token lacks is refused at the upgrade, as with the header
    CHECK_FALSE(
        v.Open("/v1/stream?accounts=bank-1",
               {{"Sec-WebSocket-Protocol", std::string("tally.v1, tally.bearer.") + kShopToken}}));
    CHECK(v.error().find("HTTP 403") != std::string::npos);
  }
  {
    INFO("at most 64 streams wait for their auth message");
    std::vector<std::unique_ptr<Stream>> silent;
    for (int i = 0; i < 64; ++i) {
      silent.push_back(std::make_unique<Stream>(c));
      REQUIRE(silent.back()->Open(kShop1));
    }
    Stream one_more(c);
    CHECK_FALSE(one_more.Open(kShop1));
    CHECK(one_more.error().find("HTTP 429") != std::string::npos);
    Stream with_token(c);  // streams that bring their token are not kept out
    REQUIRE(with_token.OpenWithToken(kShop1, kShopToken));
    CHECK(Balance(with_token.Await("account")) > 0);
  }
  {
    INFO("never the query string");
    for (const char* param : {"token", "access_token", "authorization"}) {
      Stream s(c);
      INFO(param);
      CHECK_FALSE(s.Open(std::string(kShop1) + "&" + param + "=" + kShopToken));
      CHECK(s.error().find("HTTP 400") != std::string::npos);
      CHECK(s.error().find("unknown query parameter") != std::string::npos);
    }
  }
}
