// The report library on its own: JSON that parses back, a self-contained HTML page that escapes
// what it is given, leaves out empty sections, and a clear error for a directory it cannot write.
// The page says what a reader needs to reconcile by hand: the fee policy in words, amounts with
// their currency, HLC times as UTC dates, a legend, negative figures in their own colour, and for
// every fork which op survived and which was voided.

#include "report/report.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tally::report {
namespace {

RunReport OneAccount() {
  RunReport r;
  r.title = "account <acct-1> & co";
  r.producer = "test";
  r.result = "ok";
  r.regions = {"r0", "r1"};
  r.end_ms = 10'000;
  r.heal_ms = 8'000;
  r.converged_ms = 8'300;
  r.timeline.push_back(TimelineSpan{1000, 4000, "network", "partition", "r0 ⟂ r1"});
  r.timeline.push_back(TimelineSpan{2000, 2500, "r1", "crash", "r1 down"});
  AccountOutcome a;
  a.config.id = "acct-1";
  a.config.currency = "EUR";
  a.config.overdraft_limit = 60;
  a.config.lines = {30, 30};
  a.balance = -16;
  a.raw_balance = -20;
  a.fees = 6;
  a.voids = 10;
  a.regions = {RegionOutcome{"r0", -26, 30, 6, 0}, RegionOutcome{"r1", 10, 30, 0, 10}};
  ForkReport f;
  f.event.kind = DerivedKind::kOverdraftFee;
  f.event.op = CanonicalKey{Hlc::Make(1'700'000'003'300ULL, 2), 0, 7};
  f.event.op_amount = 60;
  f.event.amount = 6;
  f.event.overdrawn = 10;
  f.event.balance_after = -16;
  f.final = true;
  a.forks.push_back(f);
  a.balance_by_region = {
      Series{"r0's view", {{0, 0, false}, {5000, 40, true}, {9000, -16, false}}},
      Series{"r1's view", {{0, 0, false}, {5000, 90, true}, {9000, -16, false}}}};
  r.accounts.push_back(a);
  r.chart_account = "acct-1";
  return r;
}

TEST_CASE("RenderJson round-trips through a JSON parser", "[sim][report]") {
  RunReport r = OneAccount();
  auto j = nlohmann::json::parse(RenderJson(r));
  REQUIRE(j["title"] == r.title);
  REQUIRE(j["accounts"].size() == 1);
  REQUIRE(j["accounts"][0]["balance"] == -16);
  REQUIRE(j["accounts"][0]["forks"][0]["resolution"]["kind"] == "overdraft_fee");
  REQUIRE(j["accounts"][0]["forks"][0]["resolution"]["amount"] == 6);
  REQUIRE(j["timeline"].size() == 2);
  REQUIRE(RenderJson(r) == RenderJson(OneAccount()));
}

TEST_CASE("RenderHtml is self-contained, escaped, and shows what it has", "[sim][report]") {
  const std::string html = RenderHtml(OneAccount());
  REQUIRE(html.find("account &lt;acct-1&gt; &amp; co") != std::string::npos);
  REQUIRE(html.find("<acct-1>") == std::string::npos);
  REQUIRE(html.find("<svg") != std::string::npos);
  REQUIRE(html.find("http") == std::string::npos);
  REQUIRE(html.find("Balance as each region sees it") != std::string::npos);
  REQUIRE(html.find("2023-11-14T22:13:23.300Z") != std::string::npos);  // HLC as UTC time
  REQUIRE(html.find("Clock skew") == std::string::npos);  // no clock samples: no section
  RunReport bare;
  bare.title = "empty";
  const std::string empty = RenderHtml(bare);
  REQUIRE(empty.find("<svg") == std::string::npos);
  REQUIRE(empty.find("</html>") != std::string::npos);
}

// A void of a debit whose idempotency key "k<1>" was used first by eu:4: us:9 is voided.
ForkReport VoidFork() {
  Op kept;
  kept.dot = Dot{0, 4};
  kept.hlc = Hlc::Make(1'700'000'001'000ULL, 0);
  kept.kind = OpKind::kDebit;
  kept.account = "acct-1";
  kept.amount = 200;
  kept.key = "k<1>";
  Op voided = kept;
  voided.dot = Dot{1, 9};
  voided.hlc = Hlc::Make(1'700'000'002'000ULL, 0);
  ForkReport f;
  f.event.kind = DerivedKind::kVoid;
  f.event.op = voided.canonical();
  f.event.op_kind = OpKind::kDebit;
  f.event.op_amount = 200;
  f.event.amount = 200;
  f.event.balance_after = 184;
  f.ops = {voided, kept};  // the replica lists the voided op first
  return f;
}

std::size_t Count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST_CASE("the page states the account's fee policy in words", "[sim][report]") {
  RunReport r = OneAccount();
  r.accounts[0].config.fee = FeePolicy{25, 150};
  const std::string html = RenderHtml(r);
  INFO(html);
  CHECK(html.find("Fee policy: <b class='feepolicy'>overdraft fee 25 EUR + 1.50% (150 bps) of the "
                  "amount below zero (rounded up), once per episode, charged to the debit that "
                  "takes the balance below zero</b>") != std::string::npos);
  CHECK(FeePolicyText(FeePolicy{}, "EUR") == "no overdraft fee");
  CHECK(
      FeePolicyText(FeePolicy{25, 0}, "EUR").starts_with("overdraft fee 25 EUR, once per episode"));
  CHECK(FeePolicyText(FeePolicy{0, 5}, "USD").starts_with("overdraft fee 0.05% (5 bps) of the"));
  const auto j = nlohmann::json::parse(RenderJson(r));
  CHECK(j["accounts"][0]["fee_policy"] == FeePolicyText(FeePolicy{25, 150}, "EUR"));
  CHECK(j["accounts"][0]["config"]["fee"]["bps"] == 150);  // the numbers stay as they were
}

TEST_CASE("amounts are shown with the account's currency, in minor units", "[sim][report]") {
  RunReport r = OneAccount();
  r.accounts[0].config.currency = "JPY";
  const std::string html = RenderHtml(r);
  CHECK(MoneyText(1250, "EUR") == "1250 EUR");
  CHECK(MoneyText(-9'223'372'036'854'775'807LL - 1, "EUR") == "-9223372036854775808 EUR");
  CHECK(html.find(">-16 JPY</span>") != std::string::npos);  // the balance
  CHECK(html.find(">-26 JPY</span>") != std::string::npos);  // r0's rights
  CHECK(html.find("<td>60 JPY</td>") != std::string::npos);  // the fork's debit
  CHECK(html.find("overdraft limit 60 JPY") != std::string::npos);
  CHECK(html.find("JPY (minor units)") != std::string::npos);  // the balance chart's axis
  CHECK(html.find("minor units of the account's currency") != std::string::npos);  // the legend
  CHECK(html.find("<td>60</td>") == std::string::npos);  // no bare amount left
}

TEST_CASE("HLC times are shown as ISO 8601 UTC dates, the raw HLC on hover", "[sim][report]") {
  CHECK(UtcTime(0) == "1970-01-01T00:00:00.000Z");
  CHECK(UtcTime(1'796'411'403'123ULL) == "2026-12-04T19:10:03.123Z");
  CHECK(UtcTime(1'709'251'199'999ULL) == "2024-02-29T23:59:59.999Z");  // a leap day
  CHECK(UtcTime(951'868'800'000ULL) == "2000-03-01T00:00:00.000Z");    // after 400-year leap day
  CHECK(UtcTime(Hlc::kMaxWallMs) == "10889-08-02T05:31:50.655Z");      // the HLC's last ms
  RunReport r = OneAccount();
  r.accounts[0].frontier = Hlc::Make(1'796'411'403'123ULL, 7);
  const std::string html = RenderHtml(r);
  CHECK(html.find("Stable frontier <time datetime='2026-12-04T19:10:03.123Z' title='HLC "
                  "1796411403123.7'>2026-12-04T19:10:03.123Z</time>") != std::string::npos);
  CHECK(html.find("title='HLC 1700000003300.2'>2023-11-14T22:13:23.300Z</time>") !=
        std::string::npos);                                   // the fork's op
  CHECK(html.find("1796411403123.7<") == std::string::npos);  // the raw HLC is no longer shown
  CHECK(RenderHtml(r) == html);                               // a pure function of the report
  const auto j = nlohmann::json::parse(RenderJson(r));
  CHECK(j["accounts"][0]["frontier"] == "1796411403123.7");  // kept as it was
  CHECK(j["accounts"][0]["frontier_utc"] == "2026-12-04T19:10:03.123Z");
}

TEST_CASE("the page has a legend for its colours and marks", "[sim][report]") {
  const std::string html = RenderHtml(OneAccount());
  const auto at = html.find("<h2>Legend</h2><div class='legend' id='legend'>");
  REQUIRE(at != std::string::npos);
  const std::string legend = html.substr(at, html.find("</div>", at) - at);
  for (const char* mark : {"<b class='final'>final</b>", "<b class='tent tm'>tentative</b>",
                           "<b class='neg'>negative</b>", "<span class='fee'>overdraft fee</span>",
                           "<span class='void'>void</span>", "✓ kept", "✗ voided", "dashed"}) {
    INFO(mark);
    CHECK(legend.find(mark) != std::string::npos);
  }
  RunReport bare;
  CHECK(RenderHtml(bare).find("Legend") == std::string::npos);  // nothing to explain
}

TEST_CASE("a negative balance is drawn in the negative colour, never the final one",
          "[sim][report]") {
  RunReport r = OneAccount();  // balance -16, final
  const std::string html = RenderHtml(r);
  CHECK(html.find("Balance <b><span class='amt neg'>-16 EUR</span></b>") != std::string::npos);
  CHECK(html.find("<span class='amt final'>-") == std::string::npos);
  CHECK(html.find("<span class='amt neg'>-26 EUR</span>") != std::string::npos);   // r0's rights
  CHECK(html.find("<span class='amt final'>10 EUR</span>") != std::string::npos);  // r1's, final
  CHECK(html.find("class='bar neg'") != std::string::npos);                        // r0's bar
  CHECK(html.find("class='bar final'") != std::string::npos);                      // r1's bar
  CHECK(html.find("class='halo'") != std::string::npos);  // the balance line below zero
  // The two colours differ, and region lines use neither.
  CHECK(html.find(".final{color:#2e7d32}") != std::string::npos);
  CHECK(html.find(".neg{color:#c62828") != std::string::npos);
  CHECK(html.find("stroke='#2e7d32'") == std::string::npos);
  CHECK(html.find("stroke='#c62828'") == std::string::npos);
  // Tentative and negative: still red, in italics.
  r.accounts[0].tentative = true;
  CHECK(RenderHtml(r).find("<span class='amt neg tm'>-16 EUR</span>") != std::string::npos);
}

TEST_CASE("every fork names the op that survived and the op that was voided", "[sim][report]") {
  RunReport r = OneAccount();
  r.accounts[0].forks.push_back(VoidFork());
  const std::string html = RenderHtml(r);
  INFO(html);
  CHECK(html.find("<span class='keep'>✓ kept</span> r0:4 debit 200 EUR [k&lt;1&gt;] (earlier in "
                  "canonical order); <span class='void'>✗ voided</span> r1:9 debit 200 EUR "
                  "[k&lt;1&gt;]") != std::string::npos);
  CHECK(html.find("[k<1>]") == std::string::npos);  // the key is escaped
  // The overdraft episode voided nothing: its spends stand and one carries the fee.
  CHECK(html.find("<span class='keep'>✓ kept</span> every spend; none voided. <span "
                  "class='fee'>fee 6 EUR</span> charged to r0:7") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderJson(r));
  const auto& fork = j["accounts"][0]["forks"][1];
  CHECK(fork["survivor"] ==
        nlohmann::json{{"region", "r0"}, {"seq", 4}, {"hlc", "1700000001000.0"}});
  CHECK(fork["voided"] == nlohmann::json{{"region", "r1"}, {"seq", 9}, {"hlc", "1700000002000.0"}});
  CHECK(!j["accounts"][0]["forks"][0].contains("survivor"));  // a fee voids nothing
  // A final void read back from a checkpoint has no ops: the voided op is still named.
  r.accounts[0].forks[1].ops.clear();
  const std::string bare = RenderHtml(r);
  CHECK(bare.find("✓ kept</span> the canonically earlier use of the key (not held here); <span "
                  "class='void'>✗ voided</span> r1:9 debit 200 EUR") != std::string::npos);
  CHECK(nlohmann::json::parse(RenderJson(r))["accounts"][0]["forks"][1]["survivor"].is_null());
  CHECK(Count(html, "✓ kept</span>") == 2 + 1);  // two forks, and the legend
}

TEST_CASE("WriteReport writes both files, or says why it cannot", "[sim][report]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "tally-report-test";
  fs::remove_all(dir);
  REQUIRE(WriteReport(OneAccount(), (dir / "out").string()).ok());
  REQUIRE(fs::file_size(dir / "out" / "report.json") > 100);
  REQUIRE(fs::file_size(dir / "out" / "report.html") > 100);
  // A path under a regular file cannot be a directory.
  std::ofstream(dir / "file") << "x";
  Status s = WriteReport(OneAccount(), (dir / "file" / "sub").string());
  REQUIRE(s.code() == Code::kIOError);
  REQUIRE(s.message().find("file") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tally::report
