// Real tallyd processes whose wall clock steps (issue 10, item 3). A region's wall clock is moved
// with libfaketime (LD_PRELOAD, a timestamp file read on every call, the monotonic clock left
// alone), as an operator or NTP would set it: timers must not follow it.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

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

// The entry about `region` in a /v1/cluster answer's peers (null when absent).
json PeerEntry(const Reply& cluster, const std::string& region) {
  for (const json& p : cluster.body.value("peers", json::array()))
    if (p.value("region", "") == region) return p;
  return nullptr;
}

}  // namespace

TEST_CASE("a region whose wall clock steps back an hour as a link dies counts the peer unreachable "
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
  options.env = {{},
                 {std::string("LD_PRELOAD=") + LIBFAKETIME_PATH,
                  "FAKETIME_TIMESTAMP_FILE=" + us_clock.string(), "FAKETIME_NO_CACHE=1",
                  "FAKETIME_DONT_FAKE_MONOTONIC=1"}};
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
