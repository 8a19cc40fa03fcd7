// Backup and restore on real tallyd processes (issue 9: money and data stay safe when disks are
// lost or restored). `tallyctl backup` copies a region's store while it serves; that copy, put
// back in place of the region's data folder, must be a safe restore: the region rejoins (refusing
// writes with 503 until its peers have given back everything the copy lacks, by ops or by
// snapshot), then every region agrees, every op acknowledged before the stop is still there under
// the dot its client was told, and no seq is issued twice. And bad requests are refused clearly
// while the region keeps serving.

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kEu = 0, kUs = 1, kAp = 2;

// One acknowledged credit or debit: what its client was told.
struct Acked {
  bool credit = true;
  std::string key;
  std::int64_t amount = 0;
  json op;  // {"region", "seq"}
};

// A credit or debit at `api`; requires it to be acknowledged.
Acked RequireOp(Api& api, bool credit, const std::string& account, std::int64_t amount,
                const std::string& key) {
  Reply r = credit ? api.Credit(account, amount, key) : api.Debit(account, amount, key);
  INFO((credit ? "credit " : "debit ")
       << key << " at " << api.url() << ": " << r.status << " " << r.raw << r.transport_error);
  REQUIRE(r.status == 200);
  REQUIRE(Field(r.body, "op").is_object());
  return Acked{credit, key, amount, r.body["op"]};
}

std::int64_t Sum(const std::vector<Acked>& acked) {
  std::int64_t total = 0;
  for (const Acked& a : acked) total += a.credit ? a.amount : -a.amount;
  return total;
}

// The highest seq of `region` among `acked`.
std::uint64_t MaxSeq(const std::vector<Acked>& acked, const std::string& region) {
  std::uint64_t m = 0;
  for (const Acked& a : acked)
    if (a.op.at("region") == region) m = std::max(m, SeqOf(a.op));
  return m;
}

// Every acknowledged op, retried at node i with its key, kind and amount, replays the very op its
// client was told (same region, same seq): it is there, and no other op took its seq.
void CheckReplays(Cluster& c, std::size_t i, const std::string& account,
                  const std::vector<Acked>& acked) {
  Api api = c.api(i);
  std::size_t wrong = 0;
  for (const Acked& a : acked) {
    Reply r = a.credit ? api.Credit(account, a.amount, a.key) : api.Debit(account, a.amount, a.key);
    if (r.status != 200 || Field(r.body, "op") != a.op ||
        r.header("Idempotent-Replayed") != "true") {
      if (++wrong <= 5)
        UNSCOPED_INFO("key " << a.key << " acked as " << a.op.dump() << ", retry at " << c.region(i)
                             << " answered " << r.status << " " << r.raw);
    }
  }
  INFO(wrong << " of " << acked.size() << " retries at " << c.region(i)
             << " did not replay their op");
  CHECK(wrong == 0);
}

std::vector<std::string> CtlArgs(Cluster& c, std::size_t i, std::initializer_list<std::string> more,
                                 const std::string& token = kAdminToken) {
  std::vector<std::string> args = c.CtlArgs(i);
  if (!token.empty()) args.insert(args.end(), {"--token", token});
  args.insert(args.end(), more);
  return args;
}

// Credits and debits at one region from a thread of its own until stopped; keeps what was
// acknowledged, in order.
class Writer {
 public:
  Writer(Cluster& c, std::size_t node, std::string account)
      : url_(c.url(node)), ca_file_(c.ca_file()), account_(std::move(account)) {}
  ~Writer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::size_t acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  std::vector<Acked> Taken() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  void Loop() {
    Api api(url_, kAdminToken, 10s, ca_file_);
    for (int n = 0; !stop_.load() && n < 100000; ++n) {
      // Credits of 3, debits of 1: the balance only grows, so no debit is ever short of rights
      // or takes an overdraft (no fee: the expected balance is the plain sum).
      const bool credit = n % 2 == 0;
      const std::string key = "writer-" + std::to_string(n);
      Reply r = credit ? api.Credit(account_, 3, key) : api.Debit(account_, 1, key);
      std::lock_guard<std::mutex> lock(mu_);
      if (r.status == 200 && Field(r.body, "op").is_object()) {
        acked_.push_back(Acked{credit, key, credit ? 3 : 1, r.body["op"]});
      } else {
        failures_.push_back(key + ": " + std::to_string(r.status) + " " + r.raw +
                            r.transport_error);
        return;
      }
    }
  }

  const std::string url_;
  const std::string ca_file_;
  const std::string account_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Acked> acked_;           // guarded by mu_
  std::vector<std::string> failures_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace

// The scenario of issue 9: a backup taken while the region serves, more acknowledged work after
// it, the region's disk lost, the backup put back. By the time of the restore the peers have
// pruned what the backup lacks (final, checkpointed, held by all), so the region gets it back as
// a snapshot, then rejoins.
TEST_CASE(
    "a region restored from a backup taken while it served rejoins, and no acknowledged op is lost "
    "and no seq is reused",
    "[node][backup]") {
  ::unsetenv("TALLY_TOKEN");
  ::unsetenv("TALLY_URL");
  ClusterOptions options;
  options.proxied = true;  // to start the restored region cut off and see it refuse writes
  Cluster c("backup-restore", options);  // default checkpoint interval: peers prune
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "backup-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  WaitVisible(c, acct);
  std::vector<Acked> acked;
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 5; ++k)
      acked.push_back(
          RequireOp(api, true, acct, 100, "fund-" + c.region(i) + "-" + std::to_string(k)));
  }
  WaitFinal(c, acct);  // credits spendable beyond the overdraft line (none here) once final
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 3; ++k)
      acked.push_back(
          RequireOp(api, false, acct, 10, "spend-" + c.region(i) + "-" + std::to_string(k)));
  }

  // The backup of us, taken by tallyctl while a client keeps writing to us.
  Writer writer(c, kUs, acct);
  writer.Start();
  REQUIRE(WaitUntil([&] { return writer.acked() >= 20; }, 20s, 10ms));
  const std::uint64_t us_acked_before_backup = MaxSeq(writer.Taken(), "us");
  const fs::path backup = c.dir() / "backups" / "us-1";
  const CtlRun run =
      RunCtl(c.dir(), CtlArgs(c, kUs, {"--json", "backup", "--to", backup.string()}));
  const std::size_t acked_at_backup_end = writer.acked();
  INFO("tallyctl backup: exit " << run.exit_code << "\n" << run.out);
  REQUIRE(run.exit_code == 0);
  const json report = LastJson(run.out);
  REQUIRE(report.is_object());
  CHECK(report.value("region", "") == "us");
  CHECK(report.value("dir", "") == backup.string());
  CHECK(report.value("keys", 0) > 0);
  CHECK(report.value("ops", -1) >= 0);
  const std::uint64_t us_in_backup = report.at("newest").at("us").get<std::uint64_t>();
  // Everything us acknowledged before the backup began is in it.
  CHECK(us_in_backup >= us_acked_before_backup);
  CHECK(fs::exists(backup / "CURRENT"));  // a LevelDB directory

  // More acknowledged work at us after the backup, and at the other regions.
  REQUIRE(WaitUntil([&] { return writer.acked() >= acked_at_backup_end + 30; }, 30s, 10ms));
  writer.Stop();
  {
    const auto failures = writer.failures();
    for (const auto& f : failures) UNSCOPED_INFO("writer: " << f);
    REQUIRE(failures.empty());
  }
  const std::vector<Acked> written = writer.Taken();
  acked.insert(acked.end(), written.begin(), written.end());
  for (std::size_t i : {kEu, kAp}) {
    Api api = c.api(i);
    for (int k = 0; k < 3; ++k)
      acked.push_back(
          RequireOp(api, true, acct, 7, "later-" + c.region(i) + "-" + std::to_string(k)));
  }
  const std::uint64_t us_acked_max = MaxSeq(acked, "us");
  REQUIRE(us_acked_max > us_in_backup);  // the backup lacks acknowledged ops of us

  // Every region holds everything; then long enough for every region to checkpoint and prune it.
  {
    auto agreement = c.WaitAgree(acct, 20s);
    INFO(Differences(agreement));
    REQUIRE(agreement.agree);
  }
  WaitFinal(c, acct);
  std::this_thread::sleep_for(3500ms);

  // us loses its disk; the operator puts the backup in place of its data folder.
  REQUIRE(c.Stop(kUs) == 0);
  const std::uint64_t us_had = AppliedAt(c, kEu, "us");
  REQUIRE(us_had >= us_acked_max);
  fs::remove_all(c.data_dir(kUs));
  fs::copy(backup, c.data_dir(kUs), fs::copy_options::recursive);

  // Started cut off from its peers: it runs on the backup and refuses writes, since it cannot
  // know what it lacks.
  c.Cut(kUs, kEu);
  c.Cut(kUs, kAp);
  REQUIRE_START(c, kUs);
  Api us = c.api(kUs);
  {
    const json view = ClusterView(c, kUs);
    INFO("us on its backup: " << view.dump());
    CHECK(view.at("rejoining") == true);
    CHECK(view.at("applied").at("us").get<std::uint64_t>() == us_in_backup);
  }
  for (int round = 0; round < 3; ++round) {
    const Reply r = us.Credit(acct, 5, "after-restore-0");
    INFO("a credit at us on its backup: " << r.status << " " << r.raw << r.transport_error);
    CHECK(RefusedRejoining(r));
    std::this_thread::sleep_for(200ms);
  }
  CHECK(AppliedAt(c, kUs, "us") == us_in_backup);  // nothing originated

  // Healed: us gets back what the backup lacks, rejoins, and serves above every seq it issued.
  c.Heal(kUs, kEu);
  c.Heal(kUs, kAp);
  Api retry = c.api(kUs, kAdminToken, 5s);
  Reply last;
  std::vector<std::string> unexpected;
  const bool served = WaitUntil(
      [&] {
        last = retry.Credit(acct, 5, "after-restore-0");
        if (last.status == 200) return true;
        if (!RefusedRejoining(last) && unexpected.size() < 5)
          unexpected.push_back(std::to_string(last.status) + " " + last.raw + last.transport_error);
        return false;
      },
      30s, 20ms);
  for (const auto& u : unexpected) UNSCOPED_INFO("unexpected answer while rejoining: " << u);
  CHECK(unexpected.empty());
  if (!served) {
    std::string log = c.ReadLog(kUs);
    if (log.size() > 3000) log = log.substr(log.size() - 3000);
    FAIL("us never served a write after the restore; last answer "
         << last.status << " " << last.raw << last.transport_error
         << "\nus /v1/cluster: " << c.api(kUs).Cluster().raw << "\nlog tail:\n"
         << log);
  }
  REQUIRE(Field(last.body, "op").is_object());
  const Acked first{true, "after-restore-0", 5, last.body["op"]};
  INFO("first op us acknowledged after the restore: "
       << first.op.dump() << "; highest acknowledged before: " << us_acked_max
       << "; highest the peers held: " << us_had);
  CHECK(first.op.at("region") == "us");
  CHECK(SeqOf(first.op) > us_had);  // no seq issued twice
  CHECK(ClusterView(c, kUs).at("rejoining") == false);
  // What the peers had pruned came back as a snapshot: the case the backup made hard.
  CHECK_THAT(c.ReadLog(kUs), Catch::Contains("snapshot from region"));
  acked.push_back(first);
  for (int k = 1; k < 5; ++k) {
    Acked a = RequireOp(us, k % 2 == 1, acct, 2, "after-restore-" + std::to_string(k));
    CHECK(SeqOf(a.op) > SeqOf(acked.back().op));
    acked.push_back(a);
  }

  // Every region agrees on every balance and op, and holds every acknowledged op as told.
  auto agreement = c.WaitAgree(acct, 20s);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  for (const auto& node : agreement.summary["nodes"]) {
    INFO("balance at " << node["region"].get<std::string>());
    CHECK(node["balance"].get<std::int64_t>() == Sum(acked));
  }
  // (us may also have originated rebalancing transfers, which no client was told of: its applied
  // seq is at least its last acknowledged one, and the same everywhere.)
  const std::uint64_t us_now = AppliedAt(c, kUs, "us");
  CHECK(us_now >= SeqOf(acked.back().op));
  for (std::size_t i = 0; i < c.size(); ++i) {
    CheckReplays(c, i, acct, acked);
    CHECK(AppliedAt(c, i, "us") == us_now);
  }
}

// Refusals: nothing is copied, the answer says why, and the region keeps serving.
TEST_CASE("backup refuses bad requests clearly and the region keeps serving", "[node][backup]") {
  ::unsetenv("TALLY_TOKEN");
  ::unsetenv("TALLY_URL");
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("backup-refusals", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  const std::string acct = "refusal-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  Api eu = c.api(kEu);
  std::vector<Acked> acked;
  int next_key = 0;
  // The region serves a write and answers its health check.
  auto still_serving = [&](const std::string& after) {
    INFO("after " << after);
    acked.push_back(RequireOp(eu, true, acct, 1, "serving-" + std::to_string(next_key++)));
    CHECK(eu.CallNoAuth("GET", "/healthz").status == 200);
  };
  auto post = [&](const std::string& body) { return eu.Call("POST", "/v1/admin/backup", body); };
  auto check_refused = [](const Reply& r, int status, const std::string& code,
                          const std::string& says) {
    INFO(r.status << " " << r.raw << r.transport_error);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK_THAT(ErrorMessage(r), Catch::Contains(says));
  };

  // Into a directory that holds anything: 409, and the directory is left as it was.
  const fs::path full = c.dir() / "not-empty";
  fs::create_directories(full);
  std::ofstream(full / "keep.txt") << "an operator's file";
  {
    const CtlRun r = RunCtl(c.dir(), CtlArgs(c, kEu, {"backup", "--to", full.string()}));
    INFO(r.out);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("failed_precondition"));
    CHECK_THAT(r.out, Catch::Contains("not empty"));
    CHECK(Slurp(full / "keep.txt") == "an operator's file");
    CHECK(std::distance(fs::directory_iterator(full), fs::directory_iterator()) == 1);
  }
  still_serving("a backup into a non-empty directory");

  // Relative paths (resolved against tallyd's working directory, which the caller cannot see),
  // an empty dir, malformed bodies: 400.
  check_refused(post(R"({"dir": "backups/eu"})"), 400, "invalid_argument", "absolute path");
  {
    const CtlRun r = RunCtl(c.dir(), CtlArgs(c, kEu, {"backup", "--to", "relative/dir"}));
    INFO(r.out);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("HTTP 400 invalid_argument"));
    CHECK_THAT(r.out, Catch::Contains("absolute path"));
  }
  check_refused(post(R"({"dir": ""})"), 400, "invalid_argument", "empty");
  check_refused(post("/tmp/x"), 400, "invalid_argument", "malformed JSON");
  check_refused(post(""), 400, "invalid_argument", "empty");
  check_refused(post(R"({"dir": 1})"), 400, "invalid_argument", "must be a string");
  check_refused(post(R"({"path": "/tmp/x"})"), 400, "invalid_argument", "unknown field");
  // Into the live data folder, or a folder inside it: 400.
  check_refused(post(json{{"dir", c.data_dir(kEu).string()}}.dump()), 400, "invalid_argument",
                "data directory");
  check_refused(post(json{{"dir", (c.data_dir(kEu) / "copy").string()}}.dump()), 400,
                "invalid_argument", "data directory");
  CHECK_FALSE(fs::exists(c.data_dir(kEu) / "copy"));
  {
    const Reply r = eu.Call("GET", "/v1/admin/backup");
    INFO(r.raw);
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "POST");
  }
  still_serving("malformed backup requests");

  // Without credentials: 401; with a token whose role lacks 'backup': 403. Nothing is written.
  const fs::path target = c.dir() / "unauthorised";
  const std::string body = json{{"dir", target.string()}}.dump();
  {
    const Reply r = eu.CallNoAuth("POST", "/v1/admin/backup", body);
    INFO(r.raw);
    CHECK(r.status == 401);
    CHECK(r.error_code() == "unauthenticated");
    CHECK(r.header("WWW-Authenticate") == "Bearer");
  }
  {
    const CtlRun r = RunCtl(c.dir(), CtlArgs(c, kEu, {"backup", "--to", target.string()}, ""));
    INFO(r.out);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("HTTP 401 unauthenticated"));
  }
  for (const char* token : {kReaderToken, kShopToken}) {
    const Reply r = c.api(kEu, token).Call("POST", "/v1/admin/backup", body);
    INFO(token << ": " << r.raw);
    CHECK(r.status == 403);
    CHECK(r.error_code() == "permission_denied");
    CHECK_THAT(ErrorMessage(r), Catch::Contains("lacks permission 'backup'"));
  }
  CHECK_FALSE(fs::exists(target));
  still_serving("unauthorised backups");

  // And a good one, into an existing empty directory, still works after all that.
  const fs::path empty = c.dir() / "empty-dir";
  fs::create_directories(empty);
  const Reply ok = post(json{{"dir", empty.string()}}.dump());
  INFO(ok.raw);
  REQUIRE(ok.status == 200);
  CHECK(Field(ok.body, "region") == "eu");
  CHECK(Field(ok.body, "newest").at("eu").get<std::uint64_t>() >= MaxSeq(acked, "eu"));
  CHECK(fs::exists(empty / "CURRENT"));
  still_serving("a good backup");
}
