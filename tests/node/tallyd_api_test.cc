// End to end: every bad input of the client API over real HTTP against a real tallyd process: each
// is refused with the documented status and error code, the server keeps serving, and nothing
// refused reaches the store.
// The same rules as pure functions are unit-tested in api_test.cc.

#include <catch2/catch.hpp>

#include "harness.h"

using namespace tally::test;

namespace {

struct BadRequest {
  const char* name;
  std::string method;
  std::string target;
  std::string body;
  tally::ctl::Headers headers;  // Authorization (admin) is added unless `token` says otherwise
  int status;
  std::string code;
  const char* token = kAdminToken;  // nullptr: no Authorization header
};

const tally::ctl::Headers kKey = {{"Idempotency-Key", "k-bad-input"}};

std::vector<BadRequest> BadRequests() {
  const std::string debit = "/v1/accounts/acct-1/debits";
  const std::string credit = "/v1/accounts/acct-1/credits";
  const std::string open = "/v1/accounts";
  const std::string long_id(65, 'a');
  const std::string pad(70 * 1024, 'x');
  return {
      // Malformed JSON and wrong shapes.
      {"truncated JSON", "POST", credit, "{\"amount\":", kKey, 400, "invalid_argument"},
      {"not JSON", "POST", credit, "amount=5", kKey, 400, "invalid_argument"},
      {"array body", "POST", credit, "[5]", kKey, 400, "invalid_argument"},
      {"empty body", "POST", credit, "", kKey, 400, "invalid_argument"},
      {"trailing garbage", "POST", credit, "{\"amount\":5}x", kKey, 400, "invalid_argument"},
      // Wrong types.
      {"amount as string", "POST", credit, "{\"amount\":\"5\"}", kKey, 400, "invalid_argument"},
      {"amount as bool", "POST", credit, "{\"amount\":true}", kKey, 400, "invalid_argument"},
      {"amount null", "POST", credit, "{\"amount\":null}", kKey, 400, "invalid_argument"},
      {"overdraft limit as string",
       "POST",
       open,
       R"({"id":"new-1","overdraft_limit":"5"})",
       {},
       400,
       "invalid_argument"},
      {"fee not an object", "POST", open, R"({"id":"new-1","fee":5})", {}, 400, "invalid_argument"},
      {"id as number", "POST", open, R"({"id":7})", {}, 400, "invalid_argument"},
      // Unknown and duplicate fields.
      {"unknown field", "POST", credit, "{\"amount\":5,\"note\":\"x\"}", kKey, 400,
       "invalid_argument"},
      // A note past its bounds or of the wrong type (memo and metadata, issue 14).
      {"memo of 141 bytes", "POST", debit,
       R"({"amount":5,"memo":")" + std::string(141, 'm') + "\"}", kKey, 400, "invalid_argument"},
      {"memo as number", "POST", credit, R"({"amount":5,"memo":5})", kKey, 400, "invalid_argument"},
      {"metadata value as number", "POST", credit, R"({"amount":5,"metadata":{"a":1}})", kKey, 400,
       "invalid_argument"},
      {"duplicate metadata key", "POST", credit, R"({"amount":5,"metadata":{"a":"1","a":"2"}})",
       kKey, 400, "invalid_argument"},
      {"unknown fee field",
       "POST",
       open,
       R"({"id":"new-1","fee":{"flat":1,"pct":2}})",
       {},
       400,
       "invalid_argument"},
      {"duplicate field", "POST", credit, "{\"amount\":5,\"amount\":6}", kKey, 400,
       "invalid_argument"},
      {"missing amount", "POST", credit, "{}", kKey, 400, "invalid_argument"},
      {"missing id", "POST", open, R"({"currency":"EUR"})", {}, 400, "invalid_argument"},
      // Amounts: non-integer, negative, zero, out of range, overflowing.
      {"fractional amount", "POST", debit, "{\"amount\":1.5}", kKey, 400, "invalid_argument"},
      {"exponent amount", "POST", debit, "{\"amount\":1e3}", kKey, 400, "invalid_argument"},
      {"negative amount", "POST", debit, "{\"amount\":-5}", kKey, 400, "invalid_argument"},
      {"zero amount", "POST", debit, "{\"amount\":0}", kKey, 400, "invalid_argument"},
      {"amount above 2^50", "POST", credit, "{\"amount\":1125899906842625}", kKey, 400,
       "invalid_argument"},
      {"amount above int64", "POST", credit, "{\"amount\":9223372036854775808}", kKey, 400,
       "invalid_argument"},
      {"amount far above int64", "POST", credit, "{\"amount\":123456789012345678901234567890}",
       kKey, 400, "invalid_argument"},
      {"negative overdraft limit",
       "POST",
       open,
       R"({"id":"new-1","overdraft_limit":-1})",
       {},
       400,
       "invalid_argument"},
      {"fee bps above 10000",
       "POST",
       open,
       R"({"id":"new-1","fee":{"flat":0,"bps":10001}})",
       {},
       400,
       "invalid_argument"},
      {"bad currency",
       "POST",
       open,
       R"({"id":"new-1","currency":"euro"})",
       {},
       400,
       "invalid_argument"},
      // Oversized body: 413, the status a client library knows to mean "smaller".
      {"oversized body", "POST", credit, "{\"amount\":5,\"pad\":\"" + pad + "\"}", kKey, 413,
       "invalid_argument"},
      // Bad ids.
      {"id with a space (body)", "POST", open, R"({"id":"bad id"})", {}, 400, "invalid_argument"},
      {"id too long (body)",
       "POST",
       open,
       R"({"id":")" + long_id + "\"}",
       {},
       400,
       "invalid_argument"},
      {"id with a space (path)", "GET", "/v1/accounts/bad%20id", "", {}, 400, "invalid_argument"},
      {"id too long (path)", "GET", "/v1/accounts/" + long_id, "", {}, 400, "invalid_argument"},
      {"bad percent-encoding", "GET", "/v1/accounts/ab%zz", "", {}, 400, "invalid_argument"},
      {"bad account in stream list",
       "GET",
       "/v1/stream?accounts=ok,bad%20id",
       "",
       {},
       400,
       "invalid_argument"},
      {"bad stream cursor",
       "GET",
       "/v1/stream?accounts=ok&after=h12",
       "",
       {},
       400,
       "invalid_argument"},
      // Unknown things.
      {"unknown account", "GET", "/v1/accounts/nobody", "", {}, 404, "not_found"},
      {"debit of an unknown account", "POST", "/v1/accounts/nobody/debits", "{\"amount\":5}", kKey,
       404, "not_found"},
      {"unknown route", "GET", "/v1/nothing", "", {}, 404, "not_found"},
      {"wrong method", "DELETE", "/v1/accounts/acct-1", "", {}, 405, ""},
      {"transfer to an unknown region",
       "POST",
       "/v1/accounts/acct-1/transfers",
       R"({"to":"mars","amount":5})",
       {},
       400,
       "invalid_argument"},
      {"transfer to itself",
       "POST",
       "/v1/accounts/acct-1/transfers",
       R"({"to":"eu","amount":5})",
       {},
       400,
       "invalid_argument"},
      {"unknown report format",
       "GET",
       "/v1/accounts/acct-1/report?format=pdf",
       "",
       {},
       400,
       "invalid_argument"},
      // Idempotency keys.
      {"missing key", "POST", credit, "{\"amount\":5}", {}, 400, "invalid_argument"},
      {"key with a space",
       "POST",
       credit,
       "{\"amount\":5}",
       {{"Idempotency-Key", "a b"}},
       400,
       "invalid_argument"},
      {"key too long",
       "POST",
       credit,
       "{\"amount\":5}",
       {{"Idempotency-Key", std::string(256, 'k')}},
       400,
       "invalid_argument"},
      {"key reused with another amount",
       "POST",
       credit,
       "{\"amount\":6}",
       {{"Idempotency-Key", "k-valid"}},
       422,
       "idempotency_key_reused"},
      // Authentication and authorization.
      {"no token", "GET", "/v1/accounts/acct-1", "", {}, 401, "unauthenticated", nullptr},
      {"no token on a debit", "POST", debit, "{\"amount\":5}", kKey, 401, "unauthenticated",
       nullptr},
      {"unknown token",
       "GET",
       "/v1/accounts/acct-1",
       "",
       {},
       401,
       "unauthenticated",
       "not-a-token"},
      {"not a bearer token",
       "GET",
       "/v1/accounts/acct-1",
       "",
       {{"Authorization", "Basic YWRtaW46YWRtaW4="}},
       401,
       "unauthenticated",
       nullptr},
      {"reader may not debit", "POST", debit, "{\"amount\":5}", kKey, 403, "permission_denied",
       kReaderToken},
      {"reader may not open",
       "POST",
       open,
       R"({"id":"new-1"})",
       {},
       403,
       "permission_denied",
       kReaderToken},
      {"reader may not read reports",
       "GET",
       "/v1/accounts/acct-1/report",
       "",
       {},
       403,
       "permission_denied",
       kReaderToken},
      {"reader may not read the cluster",
       "GET",
       "/v1/cluster",
       "",
       {},
       403,
       "permission_denied",
       kReaderToken},
      {"shop token outside its scope", "POST", credit, "{\"amount\":5}", kKey, 403,
       "permission_denied", kShopToken},
  };
}

}  // namespace

TEST_CASE("every bad input over real HTTP is refused and reaches nothing", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};  // a second region so transfers have somewhere valid to go
  Cluster c("badinput", options);
  std::string error;
  bool started = c.StartAll(&error);
  INFO(error);
  REQUIRE(started);
  REQUIRE(c.WaitConnected(10s));  // a starting region refuses writes until its peer has answered
  Api admin = c.api(0);
  REQUIRE(admin.Open("acct-1").status == 201);
  REQUIRE(admin.Open("shop-1").status == 201);
  Reply valid = admin.Credit("acct-1", 5, "k-valid");
  REQUIRE(valid.status == 200);

  for (const BadRequest& b : BadRequests()) {
    Api api = c.api(0, b.token ? b.token : "");
    Reply r = b.token ? api.Call(b.method, b.target, b.body, b.headers)
                      : api.CallNoAuth(b.method, b.target, b.body, b.headers);
    INFO(b.name << ": " << b.method << " " << b.target.substr(0, 120) << " -> " << r.status << " "
                << r.raw.substr(0, 300) << r.transport_error);
    CHECK(r.status == b.status);
    if (!b.code.empty()) CHECK(r.error_code() == b.code);
    if (r.status >= 400 && r.status != 405) {
      // Errors are {"error":{"code","message"}} with a message naming the problem.
      REQUIRE(r.body.is_object());
      CHECK(r.body["error"]["message"].is_string());
      CHECK_FALSE(r.body["error"]["message"].get<std::string>().empty());
    }
  }

  {  // Malformed HTTP itself is refused and the server keeps serving.
    Reply garbage = admin.Raw("THIS IS NOT HTTP\r\n\r\n");
    INFO(garbage.raw << garbage.transport_error);
    CHECK((garbage.status == 400 || garbage.status == 0));
    Reply lying = admin.Raw(
        "POST /v1/accounts/acct-1/credits HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer " +
        std::string(kAdminToken) + "\r\nIdempotency-Key: k-lie\r\nContent-Length: abc\r\n\r\n{}");
    CHECK((lying.status == 400 || lying.status == 0));
    const std::string auth = "Authorization: Bearer " + std::string(kAdminToken) + "\r\n";
    // A declared body far past the limit is refused at once, without waiting for the bytes.
    Reply huge = admin.Raw("POST /v1/accounts/acct-1/credits HTTP/1.1\r\nHost: x\r\n" + auth +
                           "Idempotency-Key: k-huge\r\nContent-Length: 10000000\r\n\r\n{}");
    INFO(huge.raw << huge.transport_error);
    CHECK(huge.status == 413);
    CHECK(huge.raw.find("exceeds") != std::string::npos);
    // Oversized headers.
    Reply big_header = admin.Raw("GET /v1/accounts/acct-1 HTTP/1.1\r\nHost: x\r\n" + auth +
                                 "X-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    INFO(big_header.raw << big_header.transport_error);
    CHECK(big_header.status == 400);
    // A chunked body with broken JSON inside is still malformed JSON.
    Reply chunked = admin.Raw("POST /v1/accounts/acct-1/credits HTTP/1.1\r\nHost: x\r\n" + auth +
                              "Idempotency-Key: k-chunk\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\n{\"amo\r\n0\r\n\r\n");
    INFO(chunked.raw << chunked.transport_error);
    CHECK(chunked.status == 400);
  }

  // Positive controls: the same routes work with good input, so the refusals above were about the
  // input and nothing else.
  CHECK(admin.CallNoAuth("GET", "/healthz").status == 200);
  Reply ready = admin.CallNoAuth("GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body["status"] == "ready");
  Reply metrics = admin.CallNoAuth("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.raw.find("tally_build_info{version=") != std::string::npos);
  CHECK(MetricSample(metrics.raw, "process_open_fds") > 0);
  CHECK(MetricSample(metrics.raw, "process_resident_memory_bytes") > 0);
  // Requests were synced, so the storage thread has been both busy and idle.
  CHECK(MetricSample(metrics.raw, "tally_store_commits_total") > 0);
  CHECK(MetricSample(metrics.raw, "tally_store_busy_seconds_total") > 0);
  CHECK(MetricSample(metrics.raw, "tally_store_idle_seconds_total") > 0);
  CHECK(c.api(0, kShopToken).Credit("shop-1", 5, "k-shop").status == 200);
  CHECK(c.api(0, kReaderToken).Account("acct-1").status == 200);
  Reply replay = admin.Credit("acct-1", 5, "k-valid");
  CHECK(replay.status == 200);
  CHECK(replay.body["op"] == valid.body["op"]);

  // Nothing refused reached the store: one credit of 5, no account "new-1" or "nobody".
  Reply acct = admin.Account("acct-1");
  REQUIRE(acct.status == 200);
  CHECK(acct.body["balance"] == 5);
  CHECK(admin.Account("new-1").status == 404);
  CHECK(admin.Account("nobody").status == 404);
  CHECK(c.Running(0));
}
