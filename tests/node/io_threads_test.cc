// [http] io_threads against real tallyd processes (issue 15): with client connections served on
// threads of their own (io_threads > 1), many connections at once — over HTTPS, keep-alive, with
// batches, streams and refusals among them — each get their own answers, every answered write is
// in the balance, request ids stay unique, and a SIGTERM in the middle of it all drains and exits
// cleanly. io_threads = 1, the single io thread, serves the same load.
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

constexpr int kClients = 12;
constexpr int kCreditsEach = 20;

// Each client credits its own account kCreditsEach times (every other one through a batch of two
// ops), reading the account back after each write, on its own keep-alive connection; returns
// every X-Request-Id it was answered with.
void RunClients(const Cluster& c, std::vector<std::string>* request_ids) {
  std::mutex mu;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      Api api = c.api(0);
      const std::string account = "shop-" + std::to_string(i);
      std::vector<std::string> ids;
      std::int64_t balance = 0;
      for (int n = 0; n < kCreditsEach; ++n) {
        const std::string key = account + "-c" + std::to_string(n);
        Reply r;
        if (n % 2 == 0) {
          r = api.Credit(account, 1 + i, key);
          if (r.status != 200 || Int(r.body, "balance") != balance + 1 + i) ++failures;
          balance += 1 + i;
        } else {
          json ops = json::array({json{{"type", "credit"},
                                       {"account", account},
                                       {"idempotency_key", key + "a"},
                                       {"amount", 1 + i}},
                                  json{{"type", "credit"},
                                       {"account", account},
                                       {"idempotency_key", key + "b"},
                                       {"amount", 1 + i}}});
          r = api.Call("POST", "/v1/batch", json{{"ops", ops}}.dump());
          if (r.status != 200 || r.body["results"].size() != 2 ||
              Int(r.body["results"][1]["body"], "balance") != balance + 2 * (1 + i))
            ++failures;
          balance += 2 * (1 + i);
        }
        ids.push_back(r.header("X-Request-Id"));
        Reply read = api.Account(account);
        if (read.status != 200 || Int(read.body, "balance") != balance) ++failures;
        ids.push_back(read.header("X-Request-Id"));
        // A refusal the session gives itself (405) and one the node gives (404), answered in
        // order between the others.
        if (n == 3 && api.Call("DELETE", "/v1/accounts/" + account).status != 405) ++failures;
        if (n == 4 && api.Account("nobody-" + account).status != 404) ++failures;
      }
      std::lock_guard<std::mutex> lock(mu);
      request_ids->insert(request_ids->end(), ids.begin(), ids.end());
    });
  }
  for (auto& t : clients) t.join();
  CHECK(failures == 0);
}

void CheckBalances(const Cluster& c) {
  Api admin = c.api(0);
  for (int i = 0; i < kClients; ++i) {
    // Half the rounds credit once, half twice.
    const std::int64_t want = static_cast<std::int64_t>(1 + i) * (kCreditsEach / 2) * 3;
    Reply r = admin.Account("shop-" + std::to_string(i));
    INFO("shop-" << i << ": " << r.raw);
    CHECK(Int(r.body, "balance") == want);
  }
}

void OpenAccounts(const Cluster& c) {
  Api admin = c.api(0);
  for (int i = 0; i < kClients; ++i) REQUIRE(admin.Open("shop-" + std::to_string(i)).status == 201);
}

}  // namespace

TEST_CASE("io_threads > 1: many HTTPS connections at once get their own answers", "[node][io]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.extra_toml = "[http]\nio_threads = 3\n";
  Cluster c("io-threads", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  OpenAccounts(c);

  // A stream opened on a pool thread is served from the io thread: it sees the writes and takes
  // requests.
  tally::ctl::Url url;
  std::string error;
  REQUIRE(tally::ctl::Url::Parse(c.url(0), &url, &error));
  tally::ctl::WsReader stream(url, 5s, tally::ctl::ClientTls{c.ca_file()});
  REQUIRE(stream.Open("/v1/stream?accounts=shop-0",
                      {{"Authorization", std::string("Bearer ") + kAdminToken}}, &error));
  std::string message;
  REQUIRE(stream.Next(5s, &message, &error) == 1);  // the state
  CHECK(json::parse(message)["type"] == "account");

  std::vector<std::string> ids;
  RunClients(c, &ids);
  CheckBalances(c);
  // NewRequestId is called from every pool thread: no id twice.
  std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  CHECK(distinct.count("") == 0);

  // The stream saw shop-0's writes, and answers a request sent on it.
  int events = 0;
  while (stream.Next(1s, &message, &error) == 1) {
    if (json::parse(message)["type"] == "event") ++events;
  }
  CHECK(events > 0);
  REQUIRE(stream.Send(
      json{{"type", "get_account"}, {"request_id", "r1"}, {"account", "shop-0"}}.dump(), &error));
  json result;
  for (int i = 0; i < 20 && stream.Next(5s, &message, &error) == 1; ++i) {
    result = json::parse(message);
    if (result["type"] == "result") break;
  }
  INFO(result.dump());
  CHECK(result["type"] == "result");
  CHECK(result["status"] == 200);

  // The metrics count the pool's connections and every request (counted on the io thread).
  Reply metrics = c.api(0).Call("GET", "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(MetricSample(metrics.raw, "tally_http_connections") >= 1);
}

TEST_CASE("io_threads > 1: SIGTERM under load drains and exits cleanly", "[node][io]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.extra_toml = "[http]\nio_threads = 2\n";
  Cluster c("io-threads-stop", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  OpenAccounts(c);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      Api api = c.api(0, kAdminToken, 3s);
      for (int n = 0; !stop; ++n) {
        Reply r = api.Credit("shop-" + std::to_string(i), 1, "k" + std::to_string(n));
        if (r.status == 0) break;  // the node is gone
        if (r.status == 200) ++answered;
      }
    });
  }
  REQUIRE(WaitUntil([&] { return answered > 200; }, 20s));
  const int status = c.Stop(0);
  stop = true;
  for (auto& t : clients) t.join();
  INFO(c.ReadLog(0));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Every write answered 200 is durable: the restarted node holds at least those.
  std::string error;
  REQUIRE(c.Start(0, &error));
  Api admin = c.api(0);
  std::int64_t total = 0;
  for (int i = 0; i < kClients; ++i)
    total += Int(admin.Account("shop-" + std::to_string(i)).body, "balance");
  CHECK(total >= answered);
}

TEST_CASE("io_threads = 1: the io thread serves the same load", "[node][io]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.extra_toml = "[http]\nio_threads = 1\n";
  Cluster c("io-threads-one", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  OpenAccounts(c);
  std::vector<std::string> ids;
  RunClients(c, &ids);
  CheckBalances(c);
}
