// tallyctl reconcile's verdict as a pure function: agreement needs every node reachable and every
// compared field equal (present everywhere or nowhere).

#include "ctl/agreement.h"

#include <catch2/catch.hpp>

#include "ctl/http_client.h"

using nlohmann::json;
using tally::ctl::CompareAnswers;
using tally::ctl::NodeAnswer;

namespace {

NodeAnswer Answer(const std::string& url, std::int64_t balance, std::int64_t fees, json events) {
  NodeAnswer a;
  a.url = url;
  a.region = url.substr(url.find("//") + 2, 1);  // "a", "b": one region per host here
  a.account = {{"balance", balance},
               {"fees", fees},
               {"voids", 0},
               {"raw_balance", balance + fees},
               {"regions", {{"eu", {{"rights", balance}}}}},
               {"digest", "00ff"},
               // node-local: never compared
               {"frontier", url},
               {"final_balance", balance - 1}};
  // The report renderer's shape (src/report): node-local "view_region", one account.
  a.report = {{"view_region", url},
              {"accounts", json::array({{{"balance", balance}, {"events", events}}})}};
  return a;
}

}  // namespace

TEST_CASE("agreement: identical answers agree, node-local fields ignored", "[node]") {
  json events = json::array({{{"kind", "overdraft_fee"}, {"amount", 11}}});
  auto a = CompareAnswers(
      "x", {Answer("http://a:1", -50, 11, events), Answer("http://b:1", -50, 11, events)});
  INFO(a.summary.dump());
  CHECK(a.agree);
  CHECK(a.differences.empty());
  CHECK(a.summary["nodes"][1]["balance"] == -50);
}

TEST_CASE("agreement: one region asked twice, or alone, is no agreement", "[node]") {
  json events = json::array();
  auto twice = Answer("http://a:1", 5, 0, events);
  auto again = twice;
  again.url = "http://a:2";  // another URL of the same region
  auto a = CompareAnswers("x", {twice, again});
  CHECK_FALSE(a.agree);
  REQUIRE(a.differences.size() == 1);
  CHECK(a.differences[0] ==
        "only 1 distinct region answered (a): agreement needs at least two "
        "regions");
  CHECK_FALSE(CompareAnswers("x", {twice}).agree);
}

TEST_CASE("agreement: any differing field is a disagreement that names it", "[node]") {
  json events = json::array({{{"kind", "void"}, {"amount", 20}}});
  auto base = Answer("http://a:1", 10, 0, events);
  SECTION("balance") {
    auto a = CompareAnswers("x", {base, Answer("http://b:1", 11, 0, events)});
    CHECK_FALSE(a.agree);
    REQUIRE(!a.differences.empty());
    CHECK(a.differences[0].find("balance differs") == 0);
  }
  SECTION("events") {
    auto a = CompareAnswers("x", {base, Answer("http://b:1", 10, 0, json::array())});
    CHECK_FALSE(a.agree);
    CHECK(a.differences.size() == 1);
    CHECK(a.differences[0].find("events differs") == 0);
  }
  SECTION("a field missing at one node") {
    auto other = base;
    other.url = "http://b:1";
    other.region = "b";
    other.account.erase("digest");
    auto a = CompareAnswers("x", {base, other});
    CHECK_FALSE(a.agree);
    CHECK(a.differences[0].find("(missing)") != std::string::npos);
  }
  SECTION("an unreachable node") {
    NodeAnswer down;
    down.url = "http://c:1";
    down.error = "connection refused";
    auto a = CompareAnswers("x", {base, down});
    CHECK_FALSE(a.agree);
    CHECK(a.summary["nodes"][1]["error"] == "connection refused");
  }
  SECTION("no nodes at all") { CHECK_FALSE(CompareAnswers("x", {}).agree); }
}

TEST_CASE("URL parsing names what is wrong", "[node]") {
  tally::ctl::Url u;
  std::string error;
  REQUIRE(tally::ctl::Url::Parse("http://127.0.0.1:8081/", &u, &error));
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == "8081");
  CHECK(u.prefix.empty());
  REQUIRE(tally::ctl::Url::Parse("localhost:9/api", &u, &error));
  CHECK(u.prefix == "/api");
  CHECK_FALSE(tally::ctl::Url::Parse("ftp://x:1", &u, &error));
  CHECK(error.find("scheme") != std::string::npos);
  CHECK_FALSE(tally::ctl::Url::Parse("http://x", &u, &error));
  CHECK_FALSE(tally::ctl::Url::Parse("http://x:port", &u, &error));
  CHECK(error.find("non-numeric") != std::string::npos);
  CHECK_FALSE(tally::ctl::Url::Parse("http://x:70000", &u, &error));
  CHECK_FALSE(tally::ctl::Url::Parse("http://x:0", &u, &error));
}
