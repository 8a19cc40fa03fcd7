// Memo and metadata (issue 14) against real tallyd processes: a credit, debit, transfer and hold
// answered with their note; a retry with another note replayed with the original one; bad notes
// refused with 400; the note carried by gossip to the other region and shown in both regions'
// reports (JSON, and escaped in HTML); tallyctl's --memo and --meta.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;
using ordered_json = nlohmann::ordered_json;

namespace {

Reply Post(Api& api, const std::string& target, const json& body, const std::string& key) {
  return api.Call("POST", target, body.dump(), {{"Idempotency-Key", key}});
}

}  // namespace

TEST_CASE("a note is answered, replicated and reported, and bad notes are refused", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("note", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api eu = c.api(0), us = c.api(1);
  // alice may overdraw (500 a region) with a fee, so a debit past zero makes a fork that the
  // report explains with its op.
  REQUIRE(eu.Open("alice", 1000, 7).status == 201);
  REQUIRE(eu.Open("shop").status == 201);
  WaitVisible(c, "alice");
  WaitVisible(c, "shop");
  WaitFinal(c, "alice");

  // nlohmann's ordered_json keeps "z" before "a", as a client may send them.
  const ordered_json meta = {{"z-order", "o-77"}, {"a", "<b>&amp;</b>"}};
  const std::string memo = "rent <b>May</b> & \"June\" \u00e9";
  Reply debit = eu.Call("POST", "/v1/accounts/alice/debits",
                        ordered_json{{"amount", 100}, {"memo", memo}, {"metadata", meta}}.dump(),
                        {{"Idempotency-Key", "d-1"}});
  INFO(debit.raw);
  REQUIRE(debit.status == 200);
  CHECK(debit.body["memo"] == memo);
  // The answer keeps the client's order of the pairs.
  CHECK(debit.raw.find(R"("metadata":{"z-order":"o-77","a":"<b>&amp;</b>"})") != std::string::npos);

  // A retry with another note is the same request: the original op and note are the answer.
  Reply retry = Post(eu, "/v1/accounts/alice/debits", {{"amount", 100}, {"memo", "other"}}, "d-1");
  INFO(retry.raw);
  REQUIRE(retry.status == 200);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  CHECK(retry.body["op"] == debit.body["op"]);
  CHECK(retry.body["memo"] == memo);

  // Each kind that takes a note answers with it.
  Reply credit = Post(us, "/v1/accounts/shop/credits", {{"amount", 5}, {"memo", "tip"}}, "c-1");
  REQUIRE(credit.status == 200);
  CHECK(credit.body["memo"] == "tip");
  CHECK_FALSE(credit.body.contains("metadata"));
  Reply transfer =
      Post(us, "/v1/transfers",
           {{"from", "alice"}, {"to", "shop"}, {"amount", 5}, {"metadata", {{"k", "v"}}}}, "t-1");
  INFO(transfer.raw);
  REQUIRE(transfer.status == 200);
  CHECK(transfer.body["metadata"] == json{{"k", "v"}});
  CHECK_FALSE(transfer.body.contains("memo"));
  Reply hold = Post(eu, "/v1/accounts/alice/holds", {{"amount", 10}, {"memo", "deposit"}}, "h-1");
  INFO(hold.raw);
  REQUIRE(hold.status == 200);
  CHECK(hold.body["memo"] == "deposit");
  // No note: no field (the answer is as it was).
  Reply plain = eu.Credit("alice", 1, "c-2");
  REQUIRE(plain.status == 200);
  CHECK_FALSE(plain.body.contains("memo"));
  CHECK_FALSE(plain.body.contains("metadata"));

  // Bad notes: 400, the field and the bound named, nothing applied.
  const std::vector<std::pair<json, std::string>> bad = {
      {{{"amount", 1}, {"memo", std::string(141, 'm')}}, "memo is 141 bytes; at most 140"},
      {{{"amount", 1}, {"memo", 7}}, "memo must be a string"},
      {{{"amount", 1}, {"metadata", {{"n", 7}}}}, "metadata value of 'n' must be a string"},
      {{{"amount", 1}, {"metadata", json::array()}}, "metadata must be an object"},
  };
  for (const auto& [body, says] : bad) {
    Reply r = Post(eu, "/v1/accounts/alice/credits", body, "bad-note");
    INFO(body.dump() << " -> " << r.raw);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_argument");
    CHECK_THAT(ErrorMessage(r), Catch::Contains(says));
  }
  Reply many = eu.Call("POST", "/v1/accounts/alice/credits",
                       R"({"amount":1,"metadata":{"a":"1","b":"2","a":"3"}})",
                       {{"Idempotency-Key", "bad-note"}});
  CHECK(many.status == 400);
  CHECK_THAT(ErrorMessage(many), Catch::Contains("field 'a' appears twice"));

  // Gossip carried the debit's note to us: both regions' reports show it with the fee's fork.
  REQUIRE(c.WaitAgree("alice", 20s).agree);
  for (std::size_t i = 0; i < c.size(); ++i) {
    INFO("region " << c.region(i));
    Reply report = c.api(i).Report("alice");
    REQUIRE(report.status == 200);
    const json& forks = report.body["accounts"][0]["forks"];
    REQUIRE(forks.size() == 1);
    // The fee's fork lists the episode's spends: the debit (with its note) and the transfer.
    json op;
    for (const json& o : forks[0]["ops"])
      if (o["region"] == "eu" && o["seq"] == debit.body["op"]["seq"]) op = o;
    INFO(forks.dump());
    REQUIRE(op.is_object());
    CHECK(op["memo"] == memo);
    CHECK(op["metadata"] == json{{"z-order", "o-77"}, {"a", "<b>&amp;</b>"}});
    Reply html = c.api(i).Call("GET", "/v1/accounts/alice/report?format=html");
    REQUIRE(html.status == 200);
    CHECK_THAT(html.raw, Catch::Contains("rent &lt;b&gt;May&lt;/b&gt; &amp; &quot;June&quot;"));
    CHECK_THAT(html.raw, !Catch::Contains("rent <b>May</b>"));
  }
}

TEST_CASE("tallyctl sends --memo and --meta with credits, debits, transfers and holds", "[node]") {
  ::unsetenv("TALLY_TOKEN");
  ClusterOptions options;
  options.regions = {"eu"};
  Cluster c("note-ctl", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.api(0).Open("alice", 100).status == 201);
  REQUIRE(c.api(0).Open("shop").status == 201);
  WaitFinal(c, "alice");  // its line usable
  std::vector<std::string> base = c.CtlArgs(0);
  base.insert(base.end(), {"--token", kAdminToken, "--json"});
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), base.begin(), base.end());
    return RunCtl(c.dir(), args);
  };
  CtlRun credit = ctl({"account", "credit", "alice", "50", "--memo", "from ctl", "--meta", "z=1",
                       "--meta", "a=x=y"});
  INFO(credit.out);
  REQUIRE(credit.exit_code == 0);
  json answer = LastJson(credit.out);
  CHECK(answer["memo"] == "from ctl");
  CHECK(answer["metadata"] == json{{"z", "1"}, {"a", "x=y"}});  // split at the first '='
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"account", "debit", "alice", "5", "--memo", "m"},
                                             {"transfer", "alice", "shop", "5", "--memo", "m"},
                                             {"hold", "alice", "5", "--memo", "m"}}) {
    CtlRun r = ctl(args);
    INFO(args[0] << ": " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(LastJson(r.out)["memo"] == "m");
  }
  // A --meta that is no pair, or a key given twice: usage errors, nothing sent.
  CtlRun no_pair = ctl({"account", "credit", "alice", "5", "--meta", "novalue"});
  CHECK(no_pair.exit_code == 2);
  CtlRun twice = ctl({"account", "credit", "alice", "5", "--meta", "a=1", "--meta", "a=2"});
  CHECK(twice.exit_code == 2);
  CHECK_THAT(twice.out, Catch::Contains("--meta a is given twice"));
  // The server's bound: refused (exit 4), its message shown.
  CtlRun long_memo = ctl({"account", "credit", "alice", "5", "--memo", std::string(141, 'm')});
  CHECK(long_memo.exit_code == 4);
  CHECK_THAT(long_memo.out, Catch::Contains("memo is 141 bytes; at most 140"));
}
