// Real tallyd processes whose wall clock steps (issue 10, item 3). A region's wall clock is moved
// with libfaketime (LD_PRELOAD, a timestamp file read on every call, the monotonic clock left
// alone), as an operator or NTP would set it: timers must not follow it.

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "temp_dir.h"

using namespace tally::test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kEu = 0, kUs = 1;

// Sets the offset libfaketime applies to the wall clock ("+0", "-1h": its relative format).
void SetWallOffset(const std::filesystem::path& file, const std::string& offset) {
  std::ofstream out(file, std::ios::trunc);
  out << offset << "\n";
}

// The environment that gives a tallyd the wall clock `file` sets (monotonic clock untouched).
std::vector<std::string> FakeWallClock(const std::filesystem::path& file) {
  return {std::string("LD_PRELOAD=") + LIBFAKETIME_PATH, "FAKETIME_TIMESTAMP_FILE=" + file.string(),
          "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"};
}

// The entry about `region` in a /v1/cluster answer's peers (null when absent).
json PeerEntry(const Reply& cluster, const std::string& region) {
  for (const json& p : cluster.body.value("peers", json::array()))
    if (p.value("region", "") == region) return p;
  return nullptr;
}

}  // namespace

TEST_CASE(
    "a region whose wall clock steps back an hour as a link dies counts the peer unreachable "
    "and answers a debit at once",
    "[node][clock]") {
  // Before, timers ran on the wall clock: us kept eu "reachable" for the hour (last heard
  // -3,599,691 ms ago), asked it for rights over the dead link and parked the debit.
  REQUIRE(std::filesystem::exists(LIBFAKETIME_PATH));  // scripts/setup installs libfaketime
  TempDir clock_dir("clock");
  const std::filesystem::path us_clock = clock_dir.path() / "us.faketime";
  SetWallOffset(us_clock, "+0");
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.proxied = true;
  options.env = {{}, FakeWallClock(us_clock)};
  Cluster c("clock", options);
  std::string error;
  REQUIRE(c.StartAll(&error));
  INFO(error);
  REQUIRE(c.WaitConnected(20s));

  Api eu = c.api(kEu), us = c.api(kUs);
  REQUIRE(eu.Open("acct", 200).status == 201);
  REQUIRE(eu.Credit("acct", 1000, "c-1").status == 200);
  REQUIRE(c.WaitAgree("acct", 20s).agree);
  std::this_thread::sleep_for(1s);  // the open turns final everywhere: us's line is usable

  c.Cut(kEu, kUs);
  SetWallOffset(us_clock, "-1h");
  std::this_thread::sleep_for(2s);  // five times peer_timeout_ms (400)

  const Reply cluster = us.Cluster();
  REQUIRE(cluster.status == 200);
  const json peer = PeerEntry(cluster, "eu");
  INFO(cluster.raw);
  REQUIRE(peer.is_object());
  CHECK_FALSE(peer.value("reachable", true));
  CHECK(peer.value("last_heard_ago_ms", -1) >= 1000);

  const auto start = std::chrono::steady_clock::now();
  const Reply debit = us.Debit("acct", 10, "d-1");  // us holds no rights; its line is 100
  const auto took = std::chrono::steady_clock::now() - start;
  INFO(debit.raw);
  CHECK(debit.status == 200);
  CHECK(debit.body.value("overdraft", false));
  CHECK(took < 1s);  // no wait for rights from a region it cannot hear
}

TEST_CASE(
    "a region whose wall clock is an hour behind is reported behind by its peers, and itself "
    "sees them ahead",
    "[node][clock]") {
  // Issue 10, item 4: offsets came from HLC differences. us, an hour behind, saw eu an hour
  // "ahead" while eu saw us in step (us's HLC follows eu's), and us's frontier lag went to
  // -3,599.8 s. Offsets now come from the heartbeats' wall times and round trips.
  REQUIRE(std::filesystem::exists(LIBFAKETIME_PATH));
  TempDir clock_dir("offset");
  const std::filesystem::path us_clock = clock_dir.path() / "us.faketime";
  SetWallOffset(us_clock, "-1h");
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.env = {{}, FakeWallClock(us_clock)};
  Cluster c("offset", options);
  std::string error;
  REQUIRE(c.StartAll(&error));
  INFO(error);
  REQUIRE(c.WaitConnected(20s));
  REQUIRE(c.api(kEu).Open("acct").status == 201);
  REQUIRE(c.WaitAgree("acct", 20s).agree);
  std::this_thread::sleep_for(1s);

  const Reply at_eu = c.api(kEu).Cluster(), at_us = c.api(kUs).Cluster();
  INFO(at_eu.raw << "\n" << at_us.raw);
  const json us_from_eu = PeerEntry(at_eu, "us"), eu_from_us = PeerEntry(at_us, "eu");
  REQUIRE(us_from_eu.is_object());
  REQUIRE(eu_from_us.is_object());
  CHECK(std::llabs(us_from_eu.value("clock_offset_ms", std::int64_t{0}) + 3'600'000) < 1000);
  CHECK(std::llabs(eu_from_us.value("clock_offset_ms", std::int64_t{0}) - 3'600'000) < 1000);
  const std::string metrics = c.api(kUs).CallNoAuth("GET", "/metrics").raw;
  CHECK(MetricSample(metrics, "tally_frontier_lag_seconds") >= 0);
  const std::string sample = "tally_peer_clock_offset_seconds{peer=\"eu\"} ";
  const std::size_t at = metrics.find(sample);
  REQUIRE(at != std::string::npos);
  CHECK(std::abs(std::stod(metrics.substr(at + sample.size())) - 3600.0) < 1.0);  // as /v1/cluster
}
