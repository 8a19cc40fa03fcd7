// GET /v1/stream against real tallyd processes (issue 14). Events: through a partition and its
// heal, every session of an account sees each op once, then each final line (fees and voids
// inline) once, in canonical order, identical in every region; a stream reopened with ?after= a
// cursor — in the same region or another — is sent exactly the final lines it missed. Requests:
// a client sends
// {"type":"debit","request_id":…} on the WebSocket and gets {"type":"result"} with the status and
// body HTTP would answer, under the same permissions; another stream of the account sees each
// change once; every bad message gets an error message; and the ways a browser authenticates a
// stream — a subprotocol carrying the token, or a first message — work, while a wrong token, a
// silent socket and a token in the query string are refused.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <set>
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
  explicit Stream(const Cluster& c, std::size_t node = 0)
      : reader_(UrlOf(c, node), 5s, tally::ctl::ClientTls{c.ca_file()}) {}

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
  // The next event naming ops (not yet final); final events before it are kept in `skipped`.
  json AwaitOps() {
    // Sent before the result of the request that made it: Call may have skipped it already.
    for (auto it = skipped.begin(); it != skipped.end(); ++it) {
      if ((*it)["type"] == "event" && (*it)["final"] == false) {
        json m = std::move(*it);
        skipped.erase(it);
        return m;
      }
    }
    for (int i = 0; i < 50; ++i) {
      json m = Await("event");
      if (m["final"] == false) return m;
      skipped.push_back(std::move(m));
    }
    FAIL("no event naming ops");
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
  static tally::ctl::Url UrlOf(const Cluster& c, std::size_t node) {
    tally::ctl::Url url;
    std::string error;
    REQUIRE(tally::ctl::Url::Parse(c.url(node), &url, &error));
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

  // Debits over the socket: each answered with HTTP's body; the other session sees each op.
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
    json e = b.AwaitOps();
    REQUIRE(e["ops"].size() == 1);
    CHECK(e["ops"][0]["idempotency_key"] == "dk" + std::to_string(i));
    CHECK(Int(e["accounts"][0], "balance") == 100 - 10 * i);
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
  // Each op once: nothing for the replays (a fold may make earlier ones final meanwhile).
  for (json m = b.Next(500ms); !m.is_null(); m = b.Next(500ms)) {
    INFO(m.dump());
    CHECK((m["type"] == "event" && m["final"] == true));
  }

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
  CHECK(Int(b.AwaitOps()["accounts"][0], "balance") == 65);
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
    CHECK(Int(s.AwaitOps()["accounts"][0], "balance") == 45);
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

namespace {

// Reads `s` until `done` holds of what it has read (every message kept in `got`), or fails after
// 30 s without.
void ReadUntil(Stream& s, std::vector<json>* got, const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    INFO("read so far: " << json(*got).dump());
    REQUIRE(std::chrono::steady_clock::now() < end);
    json m = s.Next(1s);
    if (m.is_object()) got->push_back(std::move(m));
  }
}

// Everything a session was sent, sorted out: the ops of non-final events, the lines of final
// ones, and every cursor in the order sent.
struct Seen {
  std::vector<json> ops, lines;
  std::vector<std::string> cursors;
  explicit Seen(const std::vector<json>& messages) {
    for (const json& m : messages) {
      INFO(m.dump());
      if (m["type"] == "event") {
        for (const json& x : m[m["final"] == true ? "lines" : "ops"])
          (m["final"] == true ? lines : ops).push_back(x);
      }
      if (m.contains("cursor")) cursors.push_back(m["cursor"].get<std::string>());
    }
  }
  std::size_t OpsKeyed(const std::string& key) const {
    return static_cast<std::size_t>(std::count_if(ops.begin(), ops.end(), [&](const json& o) {
      return o.value("idempotency_key", "") == key;
    }));
  }
  bool HasFinal(std::size_t n) const { return lines.size() >= n; }
};

// The lines of `account` at node i after `cursor` (all of them when empty), oldest first.
json LinesAfter(Cluster& c, std::size_t i, const std::string& account, const std::string& cursor) {
  Reply r = c.api(i).Call("GET", "/v1/accounts/" + account + "/history?order=asc&limit=1000" +
                                     (cursor.empty() ? "" : "&cursor=" + cursor));
  INFO(r.raw);
  REQUIRE(r.status == 200);
  json lines = json::array();
  for (json l : r.body["lines"]) {
    if (l["final"] != true) break;
    l["account"] = account;  // stream lines name their account first
    lines.push_back(std::move(l));
  }
  return lines;
}

}  // namespace

TEST_CASE("events name their cause, reach every session once, and resume from a cursor",
          "[node][stream]") {
  ClusterOptions options;
  options.proxied = true;  // partitions
  Cluster c("stream-events", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api eu = c.api(0), us = c.api(1), ap = c.api(2);
  REQUIRE(eu.Open("shop-1").status == 201);
  WaitVisible(c, "shop-1");
  REQUIRE(eu.Credit("shop-1", 1000, "c-eu").status == 200);
  REQUIRE(us.Credit("shop-1", 500, "c-us").status == 200);  // us spends its own rights
  WaitFinal(c, "shop-1");

  // Two sessions of the account in eu (header and subprotocol), one in us; each opens with the
  // account's state and the cursor it may resume from.
  Stream a(c, 0), b(c, 0), u(c, 1);
  REQUIRE(a.OpenWithToken(kShop1, kShopToken));
  REQUIRE(b.Open(
      kShop1, {{"Sec-WebSocket-Protocol", std::string("tally.v1, tally.bearer.") + kShopToken}}));
  REQUIRE(u.OpenWithToken(kShop1, kShopToken));
  const std::string start = b.Await("account")["cursor"].get<std::string>();
  CHECK(start.size() == 41);
  const std::string u_start = u.Await("account")["cursor"].get<std::string>();
  a.Await("account");

  // Cut off: eu spends over its sessions' socket, us over HTTP, and "dup" is used in eu and ap.
  c.CutAll();
  WaitIsolated(c);
  for (int i = 1; i <= 3; ++i) {
    json d = Debit("d" + std::to_string(i), "eu-" + std::to_string(i), 100);
    d["memo"] = "order " + std::to_string(i);
    CHECK(a.Call(d)["status"] == 200);
  }
  REQUIRE(us.Debit("shop-1", 200, "us-1").status == 200);
  REQUIRE(us.Debit("shop-1", 200, "us-2").status == 200);
  REQUIRE(ap.Credit("shop-1", 5, "dup").status == 200);
  REQUIRE(eu.Credit("shop-1", 5, "dup").status == 200);

  // Meanwhile b sees each of eu's ops once, naming it, with the balance after it; u only us's.
  std::vector<json> got_b, got_u;
  ReadUntil(b, &got_b, [&] { return Seen(got_b).OpsKeyed("dup") == 1; });
  {
    Seen seen(got_b);
    for (const char* key : {"eu-1", "eu-2", "eu-3"}) CHECK(seen.OpsKeyed(key) == 1);
    CHECK(seen.OpsKeyed("us-1") == 0);
    for (const json& l : seen.lines) {  // nothing made while cut off can be final
      INFO(l.dump());
      CHECK(l.value("idempotency_key", "").find("eu-") == std::string::npos);
      CHECK(l.value("idempotency_key", "") != "dup");
    }
    json first;
    for (const json& o : seen.ops)
      if (o.value("idempotency_key", "") == "eu-1") first = o;
    CHECK(first["kind"] == "debit");
    CHECK(first["amount"] == 100);
    CHECK(first["region"] == "eu");
    CHECK(first["memo"] == "order 1");
    const json last = got_b.back();
    CHECK(last["final"] == false);
    CHECK(Int(last["accounts"][0], "balance") == 1500 - 300 + 5);
    CHECK(last["accounts"][0]["tentative"] == true);
  }
  ReadUntil(u, &got_u, [&] { return Seen(got_u).OpsKeyed("us-2") == 1; });
  CHECK(Seen(got_u).OpsKeyed("eu-1") == 0);

  // Healed: every session learns the other regions' ops once, then every line as final, once.
  c.HealAll();
  WaitFinal(c, "shop-1");
  const json all = LinesAfter(c, 0, "shop-1", start);
  const json all_us = LinesAfter(c, 1, "shop-1", u_start);
  {
    std::set<std::string> keys;
    for (const json& l : all) keys.insert(l.value("idempotency_key", ""));
    for (const char* key : {"eu-1", "eu-2", "eu-3", "us-1", "us-2", "dup"}) CHECK(keys.count(key));
    REQUIRE(all.size() >= 7);
  }
  ReadUntil(b, &got_b, [&] { return Seen(got_b).lines.size() >= all.size(); });
  ReadUntil(u, &got_u, [&] { return Seen(got_u).lines.size() >= all_us.size(); });
  {
    std::vector<json> more;  // and no line twice (rights moves may still come and go)
    for (json m = b.Next(500ms); m.is_object(); m = b.Next(500ms)) more.push_back(m);
    CHECK(Seen(more).lines.empty());
  }

  Seen sb(got_b), su(got_u);
  for (const char* key : {"eu-1", "eu-2", "eu-3", "us-1", "us-2"}) {
    INFO(key);
    CHECK(sb.OpsKeyed(key) == 1);
    CHECK(su.OpsKeyed(key) == 1);
  }
  CHECK(sb.OpsKeyed("dup") == 2);  // two ops, one key: one is voided below
  // The final lines: each once, in canonical order, as the history route shows them (the same in
  // every region), the void inline.
  CHECK(json(sb.lines) == all);
  CHECK(json(su.lines) == all_us);
  CHECK(std::is_sorted(sb.cursors.begin(), sb.cursors.end()));  // a cursor only moves forward
  CHECK(std::is_sorted(su.cursors.begin(), su.cursors.end()));
  int voided = 0;
  for (const json& l : all) voided += l["voided"] == true ? 1 : 0;
  CHECK(voided == 1);
  json last_final;
  for (const json& m : got_b)
    if (m["type"] == "event" && m["final"] == true) last_final = m;
  CHECK(Int(last_final["accounts"][0], "final_balance") ==
        Int(eu.Account("shop-1").body, "balance"));

  // Resuming: a stream reopened after the cursor it had before the partition is sent exactly the
  // lines it missed (marked replay), then the state; in another region too; and from the middle.
  // (A region whose last fold is behind replays what it folded, and sends the rest as it folds.)
  auto resume = [&](std::size_t node, const std::string& after, std::size_t lines) {
    INFO("resuming in " << c.region(node) << " after " << after);
    Stream r(c, node);
    REQUIRE(r.OpenWithToken(std::string(kShop1) + "&after=" + after, kShopToken));
    std::vector<json> got;
    bool opened = false;
    ReadUntil(r, &got, [&] {
      if (!got.empty() && got.back()["type"] == "account") opened = true;
      return opened && Seen(got).lines.size() >= lines;
    });
    CHECK(Seen(got).ops.empty());
    for (const json& m : got) {
      if (m["type"] == "account") break;
      CHECK(m["replay"] == true);
    }
    return got;
  };
  for (std::size_t node : {0, 2}) CHECK(json(Seen(resume(node, start, all.size())).lines) == all);
  const std::string middle = all[3]["cursor"].get<std::string>();
  std::vector<json> got = resume(1, middle, all.size() - 4);
  CHECK(json(Seen(got).lines) == json(std::vector<json>(all.begin() + 4, all.end())));
  // Resumed at the end: nothing to replay, and the next op arrives once.
  Stream e(c, 0);
  REQUIRE(e.OpenWithToken(std::string(kShop1) + "&after=" + got.back()["cursor"].get<std::string>(),
                          kShopToken));
  CHECK(e.Await("account")["cursor"] >= got.back()["cursor"]);
  CHECK(e.skipped.empty());
  REQUIRE(eu.Debit("shop-1", 1, "late").status == 200);
  CHECK(e.AwaitOps()["ops"][0]["idempotency_key"] == "late");
}
