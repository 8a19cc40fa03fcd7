// tallyctl as scripts use it, against real tallyd processes: each subcommand works and the exit
// codes are the documented ones (0 ok, 1 "no", 2 usage, 3 unreachable, 4 refused, 5 server error).

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

// tallyctl runs in one folder, also in the background (Begin, then Finish).
class Ctl {
 public:
  explicit Ctl(const std::filesystem::path& dir) : dir_(dir) {}

  // Starts tallyctl in the background; Finish collects it.
  std::unique_ptr<Process> Begin(const std::vector<std::string>& args, std::filesystem::path* log) {
    *log = dir_ / ("tallyctl-" + std::to_string(++runs_) + ".out");
    auto p = std::make_unique<Process>();
    std::string error;
    if (!p->Start(TALLYCTL_PATH, args, *log, &error)) FAIL(error);
    return p;
  }
  CtlRun Finish(Process& p, const std::filesystem::path& log) {
    CtlRun r;
    WaitUntil([&] { return !p.running(); }, 60s, 10ms);
    r.exit_code = p.ExitCode().value_or(-1);
    r.out = Slurp(log);
    return r;
  }
  CtlRun Run(const std::vector<std::string>& args) {
    std::filesystem::path log;
    auto p = Begin(args, &log);
    return Finish(*p, log);
  }

 private:
  std::filesystem::path dir_;
  int runs_ = 0;
};

}  // namespace

TEST_CASE("tallyctl subcommands and exit codes against a real cluster", "[node]") {
  ::unsetenv("TALLY_TOKEN");
  ::unsetenv("TALLY_URL");
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.proxied = true;
  Cluster c("tallyctl", options);
  std::string error;
  bool started = c.StartAll(&error);
  INFO(error);
  REQUIRE(started);
  REQUIRE(c.WaitConnected(10s));
  Ctl ctl(c.dir());
  auto with = [](std::vector<std::string> base, std::initializer_list<std::string> more) {
    base.insert(base.end(), more);
    return base;
  };
  const std::vector<std::string> eu = with(c.CtlArgs(0), {"--token", kAdminToken});

  CtlRun r = ctl.Run(with(eu, {"account", "open", "t-1", "--currency", "EUR", "--overdraft-limit",
                               "100", "--fee-flat", "5", "--fee-bps", "10"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("opened") != std::string::npos);

  r = ctl.Run(with(eu, {"account", "open", "t-1", "--currency", "USD"}));
  INFO(r.out);
  CHECK(r.exit_code == 4);  // exists with another config: 409

  r = ctl.Run(with(eu, {"--json", "account", "credit", "t-1", "50", "--idempotency-key", "k1"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  json credit = LastJson(r.out);
  CHECK(credit["balance"] == 50);
  CHECK(credit["idempotency_key"] == "k1");
  CHECK(credit["op"]["region"] == "eu");

  r = ctl.Run(with(eu, {"account", "credit", "t-1", "5"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("idempotency key: tallyctl-") != std::string::npos);

  r = ctl.Run(with(eu, {"account", "debit", "t-1", "100000"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("insufficient_funds") != std::string::npos);

  r = ctl.Run(with(eu, {"account", "credit", "t-1", "6", "--idempotency-key", "k1"}));
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("idempotency_key_reused") != std::string::npos);
  // The same request again: the stored answer, and tallyctl says so.
  r = ctl.Run(with(eu, {"account", "credit", "t-1", "50", "--idempotency-key", "k1"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("balance 50 (replayed: the stored answer") != std::string::npos);
  r = ctl.Run(with(eu, {"--json", "account", "credit", "t-1", "50", "--idempotency-key", "k1"}));
  CHECK(LastJson(r.out)["replayed"] == true);

  r = ctl.Run(with(eu, {"account", "show", "nobody"}));
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("not_found") != std::string::npos);

  r = ctl.Run(with(eu, {"account", "debit", "t-1", "1.5"}));
  CHECK(r.exit_code == 2);
  r = ctl.Run(with(eu, {"account", "frobnicate"}));
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown subcommand 'frobnicate' of 'account' (expected one of: open,") !=
        std::string::npos);
  r = ctl.Run(with(eu, {"frobnicate"}));
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown subcommand 'frobnicate' (expected one of: account,") !=
        std::string::npos);
  // Past int64: refused, not clamped to its largest value and sent.
  r = ctl.Run(with(eu, {"account", "debit", "t-1", "99999999999999999999"}));
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("is too large") != std::string::npos);
  r = ctl.Run(with(eu, {"account", "debit", "t-1", "9223372036854775807"}));
  CHECK(r.exit_code == 4);  // the server's bound: 2^50
  CHECK(r.out.find("amount is out of range") != std::string::npos);
  r = ctl.Run({"--url", "ftp://x:1", "health"});
  CHECK(r.exit_code == 2);

  r = ctl.Run(with(c.CtlArgs(0), {"account", "show", "t-1"}));  // no token
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("unauthenticated") != std::string::npos);

  r = ctl.Run({"--url", "http://127.0.0.1:" + std::to_string(FreePort()), "--token", kAdminToken,
               "account", "show", "t-1"});
  CHECK(r.exit_code == 3);

  r = ctl.Run(with(eu, {"--json", "account", "show", "t-1"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(LastJson(r.out)["balance"] == 55);
  r = ctl.Run(with(eu, {"account", "show", "t-1"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("balance:       55") != std::string::npos);

  // Money between accounts: the top-level "transfer" (the rights move is "account rights").
  r = ctl.Run(with(eu, {"account", "open", "t-2", "--currency", "EUR"}));
  REQUIRE(r.exit_code == 0);
  r = ctl.Run(with(eu, {"transfer", "t-1", "t-2", "15", "--idempotency-key", "tr-1"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("transferred 15 from t-1 to t-2") != std::string::npos);
  CHECK(r.out.find("balance 40, payee's 15") != std::string::npos);
  r = ctl.Run(with(eu, {"--json", "transfer", "t-1", "t-2", "15", "--idempotency-key", "tr-1"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(LastJson(r.out)["balance"] == 40);  // the original answer: a retry moves nothing
  r = ctl.Run(with(eu, {"transfer", "t-1", "t-2", "100000"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("insufficient_funds") != std::string::npos);
  r = ctl.Run(with(eu, {"transfer", "t-1", "nobody", "1"}));
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("not_found") != std::string::npos);
  r = ctl.Run(with(eu, {"transfer", "t-1", "t-1", "1"}));
  CHECK(r.exit_code == 4);
  r = ctl.Run(with(eu, {"transfer", "t-1", "t-2"}));
  CHECK(r.exit_code == 2);
  r = ctl.Run(with(eu, {"transfer", "t-1", "t-2", "5"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("idempotency key: tallyctl-") != std::string::npos);

  // Listing: a page, and the command for the next one.
  r = ctl.Run(with(eu, {"account", "list", "--prefix", "t-", "--limit", "1"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("t-1                      EUR  balance ") != std::string::npos);
  CHECK(r.out.find("more: tallyctl account list --prefix t- --limit 1 --cursor c") !=
        std::string::npos);
  CHECK(ctl.Run(with(eu, {"account", "list", "--limit", "0"})).exit_code == 2);

  // Budgets: a cap inside t-2, and a fallback to it that names who paid.
  r = ctl.Run(
      with(eu, {"account", "open", "t-3", "--currency", "EUR", "--parent", "t-2", "--cap"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("a cap inside t-2") != std::string::npos);
  CHECK(ctl.Run(with(eu, {"account", "open", "t-4", "--currency", "EUR", "--cap"})).exit_code == 2);
  r = ctl.Run(with(eu, {"account", "open", "t-4", "--currency", "EUR", "--parent", "t-2"}));
  REQUIRE(r.exit_code == 0);
  WaitFinal(c, "t-2");  // the transfers to it are spendable once final
  r = ctl.Run(with(eu, {"account", "debit", "t-4", "5", "--fallback"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("debited 5 from t-4 as op eu:") != std::string::npos);
  CHECK(r.out.find("; paid by t-2\n") != std::string::npos);
  r = ctl.Run(with(eu, {"account", "debit", "t-3", "1"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);  // the cap has nothing of its own
  CHECK(r.out.find("account 't-3' has spendable rights 0") != std::string::npos);
  r = ctl.Run(with(eu, {"account", "open", "t-5", "--currency", "EUR", "--parent", "nobody"}));
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("parent account 'nobody'") != std::string::npos);

  // Holds: place, look up, capture part of it; a release after the capture is refused.
  r = ctl.Run(with(eu, {"--get", "hold", "hold", "t-1", "10", "--idempotency-key", "h-1"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::string hold = r.out.substr(0, r.out.find_last_not_of("\n") + 1);
  CHECK(hold.rfind("eu.", 0) == 0);
  r = ctl.Run(with(eu, {"hold-status", hold}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("open") != std::string::npos);
  r = ctl.Run(with(eu, {"capture", hold, "11"}));
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("above the 10 held") != std::string::npos);
  r = ctl.Run(with(eu, {"capture", hold, "4"}));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("captured hold " + hold + ": 4; balance 31") != std::string::npos);
  r = ctl.Run(with(eu, {"release", hold}));
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("already resolved by capture of 4") != std::string::npos);
  CHECK(ctl.Run(with(eu, {"hold", "t-1", "0"})).exit_code == 2);
  CHECK(ctl.Run(with(eu, {"hold-status", "nonsense"})).exit_code == 4);

  ::setenv("TALLY_URL", c.url(1).c_str(), 1);
  ::setenv("TALLY_TOKEN", kAdminToken, 1);
  ::setenv("TALLY_CACERT", c.ca_file().c_str(), 1);
  r = ctl.Run({"--json", "cluster", "status"});
  ::unsetenv("TALLY_URL");
  ::unsetenv("TALLY_TOKEN");
  ::unsetenv("TALLY_CACERT");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(LastJson(r.out)["region"] == "us");

  const auto json_report = c.dir() / "t-1.json";
  const auto html_report = c.dir() / "t-1.html";
  CHECK(ctl.Run(with(eu, {"report", "t-1", "--out", json_report.string()})).exit_code == 0);
  const json report = json::parse(Slurp(json_report), nullptr, false);
  INFO(report.dump());
  CHECK(report.value("view_region", "") == "eu");
  REQUIRE(report.contains("accounts"));
  REQUIRE(report["accounts"].size() == 1);
  CHECK(report["accounts"][0]["config"]["id"] == "t-1");
  CHECK(report["accounts"][0]["balance"] == 31);  // 55, less the transfers of 15 and 5, capture 4
  CHECK(report["accounts"][0]["events"].is_array());
  CHECK(ctl.Run(with(eu, {"report", "t-1", "--html", "--out", html_report.string()})).exit_code ==
        0);
  CHECK(Slurp(html_report).find("<html") != std::string::npos);
  r = ctl.Run(with(eu, {"report", "t-1"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("reconciliation report for t-1 (EUR), as region eu sees it") !=
        std::string::npos);
  CHECK(r.out.find("balance 31") != std::string::npos);

  const std::string nodes = c.url(0) + "," + c.url(1);
  r = ctl.Run(with(eu, {"reconcile", "--nodes", nodes, "--account", "t-1", "--wait-s", "10"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("AGREE") != std::string::npos);

  // --get prints one field, bare, for shell variables.
  r = ctl.Run(with(eu, {"--get", "regions.us.overdraft_line", "account", "show", "t-1"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "50\n");  // a limit of 100 split over two regions
  r = ctl.Run(with(eu, {"--get", "/currency", "account", "show", "t-1"}));
  CHECK(r.out == "EUR\n");
  r = ctl.Run(with(eu, {"--get", "no.such.field", "account", "show", "t-1"}));
  CHECK(r.exit_code == 2);
  r = ctl.Run(with(eu, {"cluster", "status", "--wait-connected", "10"}));
  CHECK(r.exit_code == 0);

  // Partitioned, the regions disagree (exit 1) until the link heals.
  c.Cut(0, 1);
  r = ctl.Run(with(eu, {"cluster", "status", "--wait-disconnected", "10"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  r = ctl.Run(with(eu, {"cluster", "status", "--wait-connected", "0.5"}));
  CHECK(r.exit_code == 1);
  REQUIRE(c.api(0).Credit("t-1", 7, "during-cut").status == 200);
  r = ctl.Run(with(eu, {"--json", "reconcile", "--nodes", nodes, "--account", "t-1"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(LastJson(r.out)["agree"] == false);
  c.Heal(0, 1);
  r = ctl.Run(with(eu, {"reconcile", "--nodes", nodes, "--account", "t-1", "--wait-s", "15"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);

  r = ctl.Run(
      with(eu, {"reconcile", "--nodes",
                c.url(0) + ",http://127.0.0.1:" + std::to_string(FreePort()), "--account", "t-1"}));
  CHECK(r.exit_code == 3);
  // One region asked twice agrees with itself: that is no agreement.
  r = ctl.Run(with(eu, {"reconcile", "--nodes", c.url(0) + "," + c.url(0), "--account", "t-1"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("only 1 distinct region answered (eu): agreement needs at least two regions") !=
        std::string::npos);
  // The nodes from TALLY_NODES, as `scripts/cluster env` sets it.
  ::setenv("TALLY_NODES", nodes.c_str(), 1);
  r = ctl.Run(with(eu, {"reconcile", "--account", "t-1", "--wait-s", "15"}));
  ::unsetenv("TALLY_NODES");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("AGREE") != std::string::npos);

  // watch: the current state, then each change, arrive as one JSON line each.
  std::filesystem::path watch_log;
  auto watcher =
      ctl.Begin(with(eu, {"--json", "watch", "t-1", "--count", "2", "--for-s", "20"}), &watch_log);
  // The subscription is in place once the upgrade is done; give it a moment, then keep crediting
  // until the watcher has seen something (robust to a slow start).
  int n = 0;
  WaitUntil(
      [&] {
        c.api(0).Credit("t-1", 1, "watch-" + std::to_string(n++));
        return !watcher->running();
      },
      15s, 200ms);
  r = ctl.Finish(*watcher, watch_log);
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(LastJson(r.out)["type"] == "event");  // the state first, then a credit
  CHECK(LastJson(r.out)["accounts"][0]["id"] == "t-1");
  {
    bool credit = false;  // an event names the credit as its cause (as an op, or a final line)
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      json m = json::parse(line, nullptr, false);
      if (!m.is_object() || m["type"] != "event") continue;
      for (const json& o : m[m["final"] == true ? "lines" : "ops"]) credit |= o["kind"] == "credit";
    }
    CHECK(credit);
  }
  // Resumed after the cursor it was shown, as a person reads it: the lines turned final since
  // (if any), then the state.
  const std::string cursor = LastJson(r.out)["cursor"].get<std::string>();
  r = ctl.Run(with(eu, {"watch", "t-1", "--after", cursor, "--for-s", "3"}));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("t-1: balance ") != std::string::npos);
  r = ctl.Run(with(eu, {"watch", "t-1", "--after", "h12", "--for-s", "5"}));
  CHECK(r.exit_code == 4);  // 400
  CHECK(r.out.find("cursor 'h12'") != std::string::npos);

  r = ctl.Run(with(c.CtlArgs(1), {"health"}));
  CHECK(r.exit_code == 0);
  r = ctl.Run(with(c.CtlArgs(1), {"metrics"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("tally_") != std::string::npos);
}
