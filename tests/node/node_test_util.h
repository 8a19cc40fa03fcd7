// Helpers shared by the node tests that drive a Cluster: starting it, reading answers that may
// lack a field, and waiting for an account to replicate or turn final. Header-only; the same
// threading contract as harness.h (one Api per thread).

#ifndef TALLY_TESTS_NODE_NODE_TEST_UTIL_H_
#define TALLY_TESTS_NODE_NODE_TEST_UTIL_H_

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "harness.h"

namespace tally::test {

// Stops the test, with the log tail, when the cluster (or node i) does not start.
#define REQUIRE_STARTED(cluster)                     \
  do {                                               \
    std::string start_error;                         \
    bool started = (cluster).StartAll(&start_error); \
    INFO(start_error);                               \
    REQUIRE(started);                                \
  } while (0)

#define REQUIRE_START(cluster, i)                      \
  do {                                                 \
    std::string start_error;                           \
    bool started = (cluster).Start((i), &start_error); \
    INFO(start_error);                                 \
    REQUIRE(started);                                  \
  } while (0)

// How the nodes differ, for failure messages.
inline std::string Differences(const ctl::Agreement& a) {
  std::string out = a.summary.dump(2);
  for (const auto& d : a.differences) out += "\n" + d;
  return out;
}

// j[key] when j is an object holding it, else null: for checking answers that may lack the field.
inline json Field(const json& j, const char* key) {
  return j.is_object() && j.contains(key) ? j[key] : json();
}

// The last line of a command's output that parses as a JSON object.
inline json LastJson(const std::string& out) {
  std::stringstream ss(out);
  json last;
  for (std::string line; std::getline(ss, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) last = j;
  }
  return last;
}

// Waits until every node can read `account` (its open op has replicated).
inline void WaitVisible(Cluster& c, const std::string& account) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    INFO("region " << c.region(i) << " never saw " << account);
    REQUIRE(WaitUntil([&] { return api.Account(account).status == 200; }, 10s));
  }
}

// Waits until every node holds `account` with nothing tentative (every op of it is final): until
// then a credit is spendable only within the overdraft line.
inline void WaitFinal(Cluster& c, const std::string& account) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    Reply last;
    const bool final = WaitUntil(
        [&] {
          last = api.Account(account);
          return last.status == 200 && Field(last.body, "tentative") == false;
        },
        15s, 100ms);
    INFO("region " << c.region(i) << " still tentative about " << account << ": " << last.raw);
    REQUIRE(final);
  }
}

// Waits until every region sees every other as unreachable, so no debit waits for rights.
inline void WaitIsolated(Cluster& c) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    Reply last;
    const bool isolated = WaitUntil(
        [&] {
          last = api.Cluster();
          if (last.status != 200) return false;
          for (const auto& p : last.body["peers"])
            if (p.value("connected", true) || p.value("reachable", true)) return false;
          return true;
        },
        10s);
    INFO(c.region(i) << " still sees peers: " << last.raw << "\nproxy:\n" << c.ProxyState());
    REQUIRE(isolated);
  }
}

}  // namespace tally::test

#endif  // TALLY_TESTS_NODE_NODE_TEST_UTIL_H_
