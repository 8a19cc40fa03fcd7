// Three real tallyd processes on loopback: convergence, a partition healed through the test
// proxy, kill -9 under load, and peers from another cluster refused.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {}  // namespace

// Every node test starts tallyd on ports the harness picked. A port picked and let go could be
// taken (by a netproxy route bound to port 0, another test process, an outgoing connection)
// before tallyd binds it, and the node would fail to start: the CI flake "listen.client: Address
// already in use". The harness keeps each port it hands out bound until the test process exits.
TEST_CASE("a port the harness hands out is taken by no one but the node told to use it", "[node]") {
  const std::uint16_t port = FreePort();
  REQUIRE(port != 0);
  auto bind_to = [port](bool reuse, bool listen) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const int one = 1;
    if (reuse) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (ok && listen) ok = ::listen(fd, 1) == 0;
    ::close(fd);
    return ok;
  };
  CHECK_FALSE(bind_to(/*reuse=*/false, /*listen=*/false));  // a stranger's plain bind is refused
  CHECK(bind_to(/*reuse=*/true, /*listen=*/true));          // tallyd's bind (SO_REUSEADDR) works
}

TEST_CASE("three regions converge after writes in every region", "[node]") {
  Cluster c("converge", {});
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  REQUIRE(c.api(0).Open("conv-1").status == 201);
  WaitVisible(c, "conv-1");

  std::int64_t credits = 0, debits = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 10; ++k) {
      const std::int64_t amount = 100 + static_cast<std::int64_t>(i);
      Reply r = api.Credit("conv-1", amount, "c-" + c.region(i) + "-" + std::to_string(k));
      INFO(r.raw << r.transport_error);
      REQUIRE(r.status == 200);
      credits += amount;
    }
  }
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 5; ++k) {
      Reply r = api.Debit("conv-1", 40, "d-" + c.region(i) + "-" + std::to_string(k));
      INFO(r.raw << r.transport_error);
      REQUIRE(r.status == 200);
      CHECK(r.body.at("overdraft") == false);
      debits += 40;
    }
  }

  auto agreement = c.WaitAgree("conv-1", 10s);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  for (const auto& node : agreement.summary["nodes"]) {
    CHECK(node["balance"].get<std::int64_t>() == credits - debits);
    CHECK(node["fees"].get<std::int64_t>() == 0);
    CHECK(node["voids"].get<std::int64_t>() == 0);
  }
  // Rights always add up to the balance (I3), in every region's view.
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply r = c.api(i).Account("conv-1");
    std::int64_t rights = 0;
    for (const auto& [name, v] : r.body["regions"].items()) rights += Int(v, "rights");
    CHECK(rights == Int(r.body, "balance"));
  }
}

TEST_CASE("partition and heal: concurrent overdrafts and a key retried in another region",
          "[node]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("partition", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "wallet-1";
  constexpr std::int64_t kLimit = 300, kFlat = 10, kBps = 100;
  REQUIRE(c.api(0).Open(acct, kLimit, kFlat, kBps).status == 201);
  WaitVisible(c, acct);
  REQUIRE(c.api(0).Credit(acct, 200, "dep-eu").status == 200);
  REQUIRE(c.api(1).Credit(acct, 100, "dep-us").status == 200);
  auto before = c.WaitAgree(acct, 10s);
  INFO(Differences(before));
  REQUIRE(before.agree);
  REQUIRE(before.summary["nodes"][0]["balance"] == 300);
  // The credits must be final before the cut: until then a credit is spendable only within the
  // line (a duplicate of its key elsewhere could still void it), and the debits below spend it.
  WaitFinal(c, acct);

  c.CutAll();
  WaitIsolated(c);  // so no debit waits for rights from a peer it cannot reach

  // Each of eu and us spends all its rights and half its overdraft line, concurrently.
  std::int64_t accepted_debits = 0;
  std::map<std::string, json> ops;
  for (std::size_t i : {0u, 1u}) {
    Api api = c.api(i);
    Reply view = api.Account(acct);
    REQUIRE(view.status == 200);
    const json& mine = view.body["regions"][c.region(i)];
    const std::int64_t amount = Int(mine, "rights") + Int(mine, "overdraft_line") / 2;
    REQUIRE(amount > 0);
    Reply r = api.Debit(acct, amount, "spend-" + c.region(i));
    INFO(r.raw << r.transport_error);
    REQUIRE(r.status == 200);
    CHECK(r.body.at("overdraft") == true);
    accepted_debits += amount;
  }
  // A debit past rights plus line is refused with the numbers that explain it.
  Reply refused = c.api(1).Debit(acct, 100000, "too-much");
  CHECK(refused.status == 402);
  CHECK(refused.error_code() == "insufficient_funds");

  // One idempotency key: accepted at ap, replayed at ap, then retried at eu (which cannot know).
  Reply first = c.api(2).Debit(acct, 20, "retry-key");
  INFO(first.raw);
  REQUIRE(first.status == 200);
  Reply replay = c.api(2).Debit(acct, 20, "retry-key");
  REQUIRE(replay.status == 200);
  CHECK(replay.body["op"] == first.body["op"]);
  Reply elsewhere = c.api(0).Debit(acct, 20, "retry-key");
  INFO(elsewhere.raw);
  REQUIRE(elsewhere.status == 200);
  CHECK(elsewhere.body["op"]["region"] == "eu");
  accepted_debits += 40;

  c.HealAll();
  auto after = c.WaitAgree(acct, 20s);
  INFO(Differences(after));
  REQUIRE(after.agree);

  // The agreed outcome: one void (the canonically later use of retry-key), at least one overdraft
  // fee, each fee as the policy derives it, and the balance they explain.
  Reply report = c.api(1).Report(acct);
  REQUIRE(report.status == 200);
  int voids = 0, fees = 0;
  std::int64_t fee_total = 0;
  const json& account = report.body["accounts"][0];
  for (const auto& e : account["events"]) {
    if (e["kind"] == "void") {
      ++voids;
      CHECK(e["amount"] == 20);
      CHECK(e["op"]["region"].get<std::string>() != "us");
    } else if (e["kind"] == "overdraft_fee") {
      ++fees;
      const std::int64_t overdrawn = Int(e, "overdrawn");
      CHECK(Int(e, "amount") == kFlat + (overdrawn * kBps + 9999) / 10000);
      fee_total += Int(e, "amount");
    }
  }
  CHECK(voids == 1);
  CHECK(fees >= 1);
  CHECK(Int(account, "fees") == fee_total);
  CHECK(Int(account, "voids") == 20);
  CHECK(Int(account, "balance") == 300 - accepted_debits - fee_total + 20);
  // The floor (I2): the raw balance never goes below minus the overdraft limit.
  CHECK(Int(account, "raw_balance") >= -kLimit);
  CHECK(Int(account, "raw_balance") == 300 - accepted_debits);
}

TEST_CASE("kill -9 under load loses no acknowledged op", "[node]") {
  Cluster c("crash", {});
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  REQUIRE(c.api(0).Open("load-1").status == 201);
  WaitVisible(c, "load-1");

  constexpr int kWriters = 4;
  constexpr std::size_t kAckedBeforeKill = 50;    // acknowledged by eu before it is killed
  constexpr std::size_t kAckedAfterRestart = 20;  // acknowledged by the restarted eu
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> refused{0};  // requests that found eu down
  std::mutex acked_mu;                  // the writers append while the test thread counts
  std::vector<std::pair<std::string, json>> acked;
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      Api api = c.api(0, kAdminToken, 2s);
      for (int n = 0; !stop.load(); ++n) {
        const std::string key = "w" + std::to_string(t) + "-" + std::to_string(n);
        Reply r = api.Credit("load-1", 1, key);
        if (r.status == 200) {
          std::lock_guard<std::mutex> lock(acked_mu);
          acked.emplace_back(key, r.body["op"]);
        }
        if (r.status == 0) {  // the node is down: keep knocking
          ++refused;
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }
  auto count = [&] {
    std::lock_guard<std::mutex> lock(acked_mu);
    return acked.size();
  };
  auto stop_writers = [&] {
    stop = true;
    for (auto& w : writers)
      if (w.joinable()) w.join();
  };
  // Let load build up, kill eu mid-stream, restart it while the writers keep going. Each phase
  // waits for what it needs to have happened, with a deadline, rather than for a fixed time.
  const bool loaded = WaitUntil([&] { return count() >= kAckedBeforeKill; }, 30s);
  c.Kill9(0);
  const std::size_t acked_at_kill = count();
  // The writers run into the outage (kWriters refused requests in all) before eu comes back.
  const bool seen_down = WaitUntil([&] { return refused.load() >= kWriters; }, 10s);
  std::string error;
  const bool restarted = c.Start(0, &error);
  // Answers eu sent just before it died may still be read after the kill: at most one per writer.
  // Past those, kAckedAfterRestart more acknowledgements can only come from the restarted eu.
  const std::size_t acked_at_restart = count();
  const bool loaded_again =
      restarted &&
      WaitUntil([&] { return count() >= acked_at_restart + kWriters + kAckedAfterRestart; }, 30s);
  stop_writers();
  INFO(error);
  REQUIRE(loaded);
  REQUIRE(seen_down);
  REQUIRE(restarted);
  INFO("acknowledged before the kill: " << acked_at_kill << ", at the restart: " << acked_at_restart
                                        << ", in all: " << count());
  REQUIRE(loaded_again);

  // Every acknowledged op survived: a retry with its key returns the very same op. This covers at
  // least kAckedBeforeKill ops acknowledged by the killed process and kAckedAfterRestart by the
  // restarted one.
  Api api = c.api(0);
  std::size_t missing = 0;
  for (const auto& [key, op] : acked) {
    Reply r = api.Credit("load-1", 1, key);
    if (r.status != 200 || r.body["op"] != op) {
      if (++missing <= 5)
        UNSCOPED_INFO("key " << key << " acked as " << op.dump() << ", now " << r.raw);
    }
  }
  REQUIRE(missing == 0);

  // The regions agree, and the balance counts every acknowledged credit; at most one in-flight
  // request per writer may have been applied without its answer reaching us.
  auto agreement = c.WaitAgree("load-1", 15s);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  const std::int64_t balance = agreement.summary["nodes"][0]["balance"].get<std::int64_t>();
  CHECK(balance >= static_cast<std::int64_t>(count()));
  CHECK(balance <= static_cast<std::int64_t>(count()) + kWriters);
}

namespace {

std::uint64_t RefusedCount(Api& api) {
  const double n =
      MetricSample(api.CallNoAuth("GET", "/metrics").raw, "tally_gossip_refused_total");
  return n < 0 ? 0 : static_cast<std::uint64_t>(n);
}

}  // namespace

TEST_CASE("a peer from another cluster or with an unknown region is refused", "[node]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.tls = false;  // the strangers hold no certificate of this cluster
  Cluster c("stranger", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api eu = c.api(0);
  const std::uint64_t refused_before = RefusedCount(eu);

  struct Stranger {
    std::string name, cluster_id;
    std::vector<std::string> regions;
    std::size_t self;
  };
  const Stranger strangers[] = {
      {"other-cluster", "intruder-cluster", {"eu", "us"}, 1},
      {"unknown-region", "test-cluster", {"eu", "us", "xx"}, 2},
  };
  std::uint64_t refused_expected = refused_before;
  for (const auto& s : strangers) {
    INFO("stranger: " << s.name);
    const std::uint16_t client_port = FreePort(), peer_port = FreePort();
    std::vector<std::uint16_t> dial(s.regions.size(), 0);
    dial[0] = c.peer_port(0);                                            // it dials the real eu
    for (std::size_t r = 1; r < dial.size(); ++r) dial[r] = FreePort();  // nobody there
    auto config =
        c.WriteConfig(s.name, RegionToml(s.cluster_id, s.regions, s.self, c.dir() / s.name,
                                         client_port, peer_port, dial) +
                                  "\n[rejoin]\nrequired = false\n");  // no peer will ever answer it
    Process stranger;
    std::string error;
    REQUIRE(stranger.Start(TALLYD_PATH, {"--config", config.string()}, c.dir() / (s.name + ".log"),
                           &error));
    Api sapi("http://127.0.0.1:" + std::to_string(client_port), kAdminToken);
    if (!WaitUntil([&] { return sapi.CallNoAuth("GET", "/healthz").status == 200; }, 20s))
      FAIL("stranger " << s.name << " did not come up");
    const std::string acct = "stranger-" + s.name;
    REQUIRE(sapi.Open(acct).status == 201);
    REQUIRE(sapi.Credit(acct, 1000, "stranger-credit").status == 200);

    // eu refuses the handshake (counted and logged) ...
    ++refused_expected;
    INFO("eu log:\n" << c.ReadLog(0));
    REQUIRE(WaitUntil([&] { return RefusedCount(eu) >= refused_expected; }, 10s));
    refused_expected = RefusedCount(eu);
    CHECK(c.ReadLog(0).find("refused") != std::string::npos);
    // ... and nothing of the stranger's crosses, while the real peers stay connected.
    std::this_thread::sleep_for(300ms);
    for (std::size_t i = 0; i < c.size(); ++i) CHECK(c.api(i).Account(acct).status == 404);
    Reply cluster = eu.Cluster();
    REQUIRE(cluster.status == 200);
    REQUIRE(cluster.body["peers"].size() == 1);
    CHECK(cluster.body["peers"][0]["region"] == "us");
    CHECK(cluster.body["peers"][0]["connected"] == true);
    CHECK(stranger.Stop() == 0);  // a clean exit status, not a signal
  }
}
