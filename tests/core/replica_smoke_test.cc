// End-to-end smoke of the replica: three regions, a partition, concurrent overdrafts, heal.
#include <catch2/catch.hpp>

#include "cluster_fixture.h"

using namespace tally;
using namespace tally::testing;

TEST_CASE("three regions converge after a partition with concurrent overdrafts", "[replica]") {
  Cluster c(3, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 0;
  });
  c.Settle(5);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 60, 5, 100)}).status.ok());
  c.Settle(5);
  REQUIRE(c.Run(0, Credit{"alice", 90, "dep-1"}).status.ok());
  c.Settle(5);
  // Spread the rights: 30 each.
  REQUIRE(c.Run(0, TransferRights{"alice", 1, 30}).status.ok());
  REQUIRE(c.Run(0, TransferRights{"alice", 2, 30}).status.ok());
  c.Settle(10);
  REQUIRE(c.Converged("alice"));

  // Partition: everything is lost between regions. r1 and r2 each spend rights 30 + line 20 = 50.
  c.queue.clear();
  auto a = c.Run(1, Debit{"alice", 50, "k1"});
  auto b = c.Run(2, Debit{"alice", 50, "k2"});
  REQUIRE(a.status.ok());
  REQUIRE(a.overdraft);
  REQUIRE(b.status.ok());
  auto rejected = c.Run(1, Debit{"alice", 1, "k3"});
  REQUIRE(rejected.status.code() == Code::kInsufficientFunds);
  REQUIRE(rejected.rights == -20);
  REQUIRE(rejected.overdraft_line == 20);
  // The client retries k1 at r0 during the partition: a cross-region duplicate.
  auto dup = c.Run(0, Debit{"alice", 50, "k1"});
  REQUIRE(dup.status.ok());
  REQUIRE_FALSE(dup.replayed);
  c.queue.clear();

  c.Settle(20);
  REQUIRE(c.Converged("alice"));
  AccountView v;
  REQUIRE(c.at(0).GetAccount("alice", &v).ok());
  // Canonical order: r1's debit (t1) < r2's (t1, origin 2) < r0's duplicate (later HLC, voided).
  // 90 - 50 = 40; 40 - 50 = -10 crosses: fee 5 + ceil(10 * 100 / 10000) = 6 → -16.
  CHECK(v.raw_balance == 90 - 150);
  CHECK(v.fees == 6);
  CHECK(v.voids == 50);
  CHECK(v.balance == -16);
  Amount sum = 0;
  for (auto& r : v.regions) sum += r.rights;
  CHECK(sum == v.balance);
  CHECK_FALSE(v.tentative);
  CHECK(v.final_balance == -16);
}
