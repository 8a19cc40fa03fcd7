// The report library on its own: JSON that parses back, a self-contained HTML page that escapes
// what it is given, leaves out empty sections, and a clear error for a directory it cannot write.

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
  REQUIRE(html.find("2023-11-14 22:13:23.300 +2") != std::string::npos);  // HLC as UTC time
  REQUIRE(html.find("Clock skew") == std::string::npos);  // no clock samples: no section
  RunReport bare;
  bare.title = "empty";
  const std::string empty = RenderHtml(bare);
  REQUIRE(empty.find("<svg") == std::string::npos);
  REQUIRE(empty.find("</html>") != std::string::npos);
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
