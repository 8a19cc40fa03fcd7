// Helpers shared by the node tests that drive a Cluster: starting it, reading answers that may
// lack a field, and waiting for an account to replicate or turn final. Header-only; the same
// threading contract as harness.h (one Api per thread).

#ifndef TALLY_TESTS_NODE_NODE_TEST_UTIL_H_
#define TALLY_TESTS_NODE_NODE_TEST_UTIL_H_

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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
// The integer field `key` of `j`; the test fails if it is missing or not an integer.
inline std::int64_t Int(const json& j, const char* key) { return j.at(key).get<std::int64_t>(); }

// A region's rights on `account` as node `node` sees them.
inline std::int64_t RightsOf(Cluster& c, std::size_t node, const std::string& account,
                             const std::string& region) {
  Reply r = c.api(node).Account(account);
  INFO(r.raw << r.transport_error);
  REQUIRE(r.status == 200);
  return Int(r.body.at("regions").at(region), "rights");
}

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

// The message of an API error answer, or "".
inline std::string ErrorMessage(const Reply& r) {
  const json m = Field(Field(r.body, "error"), "message");
  return m.is_string() ? m.get<std::string>() : "";
}

// True when `r` is the refusal of a region that is rejoining (503 unavailable, "rejoining").
inline bool RefusedRejoining(const Reply& r) {
  return r.status == 503 && r.error_code() == "unavailable" &&
         ErrorMessage(r).find("rejoining") != std::string::npos;
}

// Checks that `r` is the refusal of a region that is rejoining.
inline void CheckRefusedRejoining(const Reply& r, const std::string& what) {
  INFO(what << " answered " << r.status << " " << r.raw << r.transport_error);
  CHECK(r.status == 503);
  CHECK(r.error_code() == "unavailable");
  CHECK_THAT(ErrorMessage(r), Catch::Contains("rejoining"));
}

// GET /v1/cluster at node i; stops the test if it does not answer.
inline json ClusterView(Cluster& c, std::size_t i) {
  Reply r = c.api(i).Cluster();
  INFO(c.region(i) << " /v1/cluster: " << r.status << " " << r.raw << r.transport_error);
  REQUIRE(r.status == 200);
  return r.body;
}

// How many ops of `origin` node i has applied (its version vector entry).
inline std::uint64_t AppliedAt(Cluster& c, std::size_t i, const std::string& origin) {
  return ClusterView(c, i).at("applied").at(origin).get<std::uint64_t>();
}

// The seq of an answer's "op" ({"region", "seq"}).
inline std::uint64_t SeqOf(const json& op) { return op.at("seq").get<std::uint64_t>(); }

// A file's whole contents ("" if it cannot be read).
inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct CtlRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs tallyctl with `args` to completion (at most 60 s); its output goes to a file in `dir`.
inline CtlRun RunCtl(const std::filesystem::path& dir, const std::vector<std::string>& args) {
  static int runs = 0;
  const std::filesystem::path log = dir / ("tallyctl-" + std::to_string(++runs) + ".out");
  Process p;
  std::string error;
  CtlRun r;
  if (!p.Start(TALLYCTL_PATH, args, log, &error)) {
    r.out = error;
    return r;
  }
  WaitUntil([&] { return !p.running(); }, 60s, 10ms);
  r.exit_code = p.ExitCode().value_or(-1);
  r.out = Slurp(log);
  return r;
}

}  // namespace tally::test

#endif  // TALLY_TESTS_NODE_NODE_TEST_UTIL_H_
