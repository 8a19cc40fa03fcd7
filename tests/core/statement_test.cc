// Statement lines (StatementLine, Fold::lines): every op of an account as a line with the fee and
// void replay derived from it and the balance after it, the final lines handed to the store in the
// Fold that folds them, the tentative ones read from the replica. Checked through the in-memory
// cluster of cluster_fixture.h, whose PersistedStore keeps the lines like tallyd's history store:
// every region ends with the same final lines, their running balance adds up line by line (from
// the numbers on the lines, not from the replica's arithmetic) to the account's balance, and no
// line is ever in both places or in neither.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "cluster_fixture.h"
#include "replica_checks.h"

using namespace tally;
using namespace tally::testing;

namespace {

constexpr std::uint64_t kHour = 3600 * 1000;

std::vector<StatementLine> Stored(Cluster& c, RegionId r, const std::string& account) {
  std::vector<StatementLine> out;
  for (const auto& [k, line] : c.stores[r].history) {
    if (k.first == account) out.push_back(line);
  }
  return out;
}

std::vector<StatementLine> InMemory(Cluster& c, RegionId r, const std::string& account) {
  std::vector<StatementLine> out;
  REQUIRE(c.replicas[r]->Statement(account, &out).ok());
  return out;
}

// The lines' own arithmetic: each balance is the one before, plus the op's change unless it is
// voided, less the fee it was charged. Returns the last balance.
Amount CheckRunningBalance(const std::vector<StatementLine>& lines) {
  Amount balance = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO("line " << i << " " << OpKindName(lines[i].kind) << " " << lines[i].amount);
    if (i > 0) CHECK(lines[i - 1].key < lines[i].key);
    balance += (lines[i].voided ? 0 : lines[i].change) - lines[i].fee;
    CHECK(lines[i].balance_after == balance);
    CHECK(lines[i].kind != OpKind::kRights);
  }
  return balance;
}

const StatementLine* FindKey(const std::vector<StatementLine>& lines, const std::string& key) {
  for (const StatementLine& l : lines) {
    if (l.idempotency_key == key) return &l;
  }
  return nullptr;
}

// Settles until every region stored `n` lines of `account` (folds are saved every
// checkpoint_interval_ms, not at every fold), at most a few simulated seconds.
void SettleUntilStored(Cluster& c, const std::string& account, std::size_t n) {
  for (int i = 0; i < 50; ++i) {
    bool all = true;
    for (RegionId r = 0; r < c.size(); ++r) all = all && Stored(c, r, account).size() >= n;
    if (all) return;
    c.Settle(20);
  }
}

}  // namespace

TEST_CASE("every region ends with the same final statement, its running balance adding up",
          "[replica][statement]") {
  Cluster c(3, NoWaits);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 100, 5)}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Config("shop")}).status.ok());
  c.Settle(6);
  REQUIRE(c.Run(0, Credit{"alice", 100, "c1"}).status.ok());
  REQUIRE(c.Run(1, Credit{"alice", 50, "c2"}).status.ok());
  c.Settle(8);
  REQUIRE(c.Run(0, Debit{"alice", 120, "d1"}).status.ok());  // 30 left
  c.Settle(8);
  REQUIRE(c.Run(1, Debit{"alice", 40, "d2"}).status.ok());  // -10: the crossing, fee 5
  c.Settle(8);
  REQUIRE(c.Run(2, Transfer{"alice", "shop", 10, "t1"}).status.ok());
  // One key used at two regions before either hears of the other: the later use is voided.
  REQUIRE(c.Run(0, Credit{"alice", 7, "dup"}).status.ok());
  REQUIRE(c.Run(1, Credit{"alice", 7, "dup"}).status.ok());
  const CommandResult hold = c.Run(0, PlaceHold{"alice", 5, "h1", kHour});
  REQUIRE(hold.status.ok());
  c.Settle(8);
  REQUIRE(c.Run(1, CaptureHold{hold.hold, 5}).status.ok());
  SettleUntilStored(c, "alice", 10);
  REQUIRE(c.Converged("alice"));

  const std::vector<StatementLine> first = Stored(c, 0, "alice");
  std::string kinds;
  for (const StatementLine& l : first) kinds += std::string(OpKindName(l.kind)) + " ";
  INFO(kinds);
  REQUIRE(first.size() == 10);  // open, 2 credits, 2 debits, transfer, 2 dup credits, hold, capture
  for (RegionId r = 0; r < 3; ++r) {
    INFO("region " << r);
    const std::vector<StatementLine> lines = Stored(c, r, "alice");
    CHECK(lines == first);
    CHECK(InMemory(c, r, "alice").empty());  // all folded and handed over
    const AccountView v = View(c, r, "alice");
    CHECK(CheckRunningBalance(lines) == v.final_balance);
    CHECK(v.final_balance == v.balance);
  }
  for (const StatementLine& l : first) CHECK(l.final);
  CHECK(first.front().kind == OpKind::kOpen);

  const StatementLine* d2 = FindKey(first, "d2");
  REQUIRE(d2);
  CHECK(d2->crossing);
  CHECK(d2->fee == 5);
  CHECK(d2->change == -40);
  CHECK(d2->balance_after == -15);
  CHECK(d2->key.origin == 1);

  const StatementLine* t1 = FindKey(first, "t1");
  REQUIRE(t1);
  CHECK(t1->kind == OpKind::kTransfer);
  CHECK(t1->change == -10);
  CHECK(t1->counterparty == "shop");
  const std::vector<StatementLine> shop = Stored(c, 2, "shop");
  const StatementLine* in = FindKey(shop, "t1");
  REQUIRE(in);
  CHECK(in->change == 10);
  CHECK(in->counterparty == "alice");
  CHECK(CheckRunningBalance(shop) == View(c, 2, "shop").balance);

  int voided = 0;
  for (const StatementLine& l : first) {
    if (l.idempotency_key != "dup") continue;
    if (l.voided) {
      ++voided;
      CHECK(l.void_amount == -7);
    } else {
      CHECK(l.void_amount == 0);
    }
  }
  CHECK(voided == 1);

  int hold_lines = 0;
  for (const StatementLine& l : first) {
    if (l.kind == OpKind::kHold || l.kind == OpKind::kCapture) {
      ++hold_lines;
      CHECK(l.hold == hold.hold);
      CHECK(l.change == (l.kind == OpKind::kCapture ? -5 : 0));
      CHECK(l.idempotency_key == (l.kind == OpKind::kHold ? "h1" : ""));  // a made key is not shown
    }
  }
  CHECK(hold_lines == 2);

  // A restart folds again what it had not saved, and stores nothing twice or differently.
  REQUIRE(c.Restart(2).ok());
  SettleUntilStored(c, "alice", 10);
  CHECK(Stored(c, 2, "alice") == first);
}

TEST_CASE("a line is tentative in the replica until its fold hands it to the store, never in both",
          "[replica][statement]") {
  Cluster c(2, NoWaits);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice", 50)}).status.ok());
  c.Settle(8);
  auto keys_everywhere = [&](RegionId r) {
    std::set<CanonicalKey> stored, held;
    for (const StatementLine& l : Stored(c, r, "alice")) stored.insert(l.key);
    for (const StatementLine& l : InMemory(c, r, "alice")) {
      CHECK(stored.count(l.key) == 0);  // final ones too: folded, not yet handed over
      held.insert(l.key);
    }
    return stored.size() + held.size();
  };
  std::size_t ops = 1;  // the open
  for (int i = 0; i < 6; ++i) {
    REQUIRE(c.Run(0, Credit{"alice", 10 + i, "k" + std::to_string(i)}).status.ok());
    ++ops;
    // Cut off: region 0's own lines are tentative (no peer has acknowledged them).
    CHECK(keys_everywhere(0) == ops);
    const std::vector<StatementLine> held = InMemory(c, 0, "alice");
    REQUIRE_FALSE(held.empty());
    CHECK(held.back().balance_after == View(c, 0, "alice").balance);
    c.Tick(50);
  }
  SettleUntilStored(c, "alice", ops);
  CHECK(keys_everywhere(0) == ops);
  CHECK(keys_everywhere(1) == ops);
  CHECK(InMemory(c, 0, "alice").empty());
  CHECK(CheckRunningBalance(Stored(c, 1, "alice")) == 10 + 11 + 12 + 13 + 14 + 15);

  std::vector<StatementLine> none;
  CHECK(c.replicas[0]->Statement("nobody", &none).code() == Code::kNotFound);
}

TEST_CASE("with keep_statements off, folds carry no lines", "[replica][statement]") {
  Cluster c(2, [](ReplicaOptions& o) {
    NoWaits(o);
    o.keep_statements = false;
  });
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice")}).status.ok());
  REQUIRE(c.Run(0, Credit{"alice", 10, "k"}).status.ok());
  c.Settle(20);
  REQUIRE(View(c, 1, "alice").final_balance == 10);
  CHECK(c.stores[0].history.empty());
  CHECK(c.stores[1].history.empty());
  CHECK(InMemory(c, 0, "alice").empty());
}
