// Transfers of money between accounts (OpKind::kTransfer) through the in-memory cluster of
// cluster_fixture.h: one op that debits the payer at the region that takes it (its rights, then
// its line, the debit's rules and answers) and credits the payee; every bad input with its error;
// idempotency at one region and across regions, where a duplicate is voided on both sides; fees
// of an overdraft episode booked to the payer; restarts from what was persisted. Money is checked
// at every call (Watch) and conserved across the two accounts.
#include <catch2/catch.hpp>
#include <string>

#include "cluster_fixture.h"
#include "core/ids.h"
#include "replica_checks.h"

using namespace tally;
using namespace tally::testing;

namespace {

// Opens `payer` and `payee` everywhere, lets the opens turn final (lines usable) and gives each
// region `rights_each` of the payer's money as unkeyed (hence at once spendable) credits.
void Setup(Cluster& c, const AccountConfig& payer, const AccountConfig& payee, Amount rights_each) {
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{payer}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{payee}).status.ok());
  c.Settle(6);
  if (rights_each > 0) {
    for (RegionId r = 0; r < c.size(); ++r)
      REQUIRE(c.Run(r, Credit{payer.id, rights_each, ""}).status.ok());
  }
  c.Settle(8);
  REQUIRE(c.Converged(payer.id));
  REQUIRE(c.Converged(payee.id));
}

// Σ balances of the two accounts at every region: a transfer moves money, never makes it.
void CheckConserved(Cluster& c, const std::string& a, const std::string& b, Amount total) {
  for (RegionId r = 0; r < c.size(); ++r) {
    INFO("region " << r);
    CHECK(View(c, r, a).balance + View(c, r, b).balance == total);
  }
  CheckMoney(c, a);
  CheckMoney(c, b);
}

}  // namespace

TEST_CASE("a transfer debits the payer and credits the payee in one op, everywhere",
          "[replica][transfer]") {
  Cluster c(3, NoWaits);
  Watch watch(c);
  Setup(c, Config("alice"), Config("shop"), 300);
  const CommandResult t = c.Run(1, Transfer{"alice", "shop", 250, "pay-1"});
  REQUIRE(t.status.ok());
  CHECK(t.balance == 650);
  CHECK(t.payee_balance == 250);
  CHECK_FALSE(t.overdraft);
  CHECK(t.requested == 250);
  CHECK(t.rights == 300);
  c.Settle(8);
  REQUIRE(c.Converged("alice"));
  REQUIRE(c.Converged("shop"));
  for (RegionId r = 0; r < 3; ++r) {
    CHECK(View(c, r, "alice").balance == 650);
    CHECK(View(c, r, "shop").balance == 250);
    CHECK(View(c, r, "shop").regions[1].rights == 250);  // credited where it was taken
  }
  CheckConserved(c, "alice", "shop", 900);
  CHECK(watch.debits_checked >= 1);
}

TEST_CASE("each bad transfer gets its error and nothing is applied", "[replica][transfer]") {
  Cluster c(2, NoWaits);
  Setup(c, Config("alice"), Config("shop"), 100);
  AccountConfig usd = Config("us-shop");
  usd.currency = "USD";
  REQUIRE(c.Run(0, OpenAccount{usd}).status.ok());
  c.Settle(6);
  auto rejected = [&](Transfer t, Code code, const std::string& says) {
    Untouched before(c, 0);
    const CommandResult r = c.Run(0, std::move(t));
    INFO("got " << r.status.ToString());
    CHECK(r.status.code() == code);
    CHECK(r.status.message().find(says) != std::string::npos);
    CHECK(r.op.seq == 0);
    before.Check();
  };
  rejected(Transfer{"alice", "alice", 10, "k"}, Code::kInvalidArgument, "to itself");
  rejected(Transfer{"nobody", "shop", 10, "k"}, Code::kNotFound, "no account 'nobody'");
  rejected(Transfer{"alice", "nobody", 10, "k"}, Code::kNotFound, "no account 'nobody'");
  rejected(Transfer{"alice", "us-shop", 10, "k"}, Code::kInvalidArgument, "currencies differ");
  rejected(Transfer{"alice", "shop", 0, "k"}, Code::kInvalidArgument, "amount");
  rejected(Transfer{"alice", "shop", -5, "k"}, Code::kInvalidArgument, "amount");
  rejected(Transfer{"alice", "shop", kMaxOpAmount + 1, "k"}, Code::kInvalidArgument, "amount");
  rejected(Transfer{"alice", "bad id!", 10, "k"}, Code::kInvalidArgument, "account id");
  rejected(Transfer{"alice", "shop", 10, std::string(300, 'k')}, Code::kInvalidArgument, "key");
  // Beyond rights and line: the debit's refusal, in the transfer's words.
  rejected(Transfer{"alice", "shop", 101, "k"}, Code::kInsufficientFunds, "transfer of 101");
}

TEST_CASE("a retried transfer is replayed, and its key with another amount or payee is refused",
          "[replica][transfer]") {
  Cluster c(2, NoWaits);
  Setup(c, Config("alice"), Config("shop"), 500);
  AccountConfig other = Config("cafe");
  REQUIRE(c.Run(0, OpenAccount{other}).status.ok());
  c.Settle(6);
  REQUIRE(AccountTag("shop") != AccountTag("cafe"));  // the key index keeps an 8-bit payee tag
  const CommandResult first = c.Run(0, Transfer{"alice", "shop", 100, "pay-7"});
  REQUIRE(first.status.ok());
  {
    Untouched before(c, 0);
    const CommandResult again = c.Run(0, Transfer{"alice", "shop", 100, "pay-7"});
    REQUIRE(again.status.ok());
    CHECK(again.replayed);
    CHECK(again.op == first.op);
    CHECK(again.balance == first.balance);
    before.Check();
  }
  CHECK(c.Run(0, Transfer{"alice", "shop", 101, "pay-7"}).status.code() ==
        Code::kIdempotencyKeyReused);
  CHECK(c.Run(0, Transfer{"alice", "cafe", 100, "pay-7"}).status.code() ==
        Code::kIdempotencyKeyReused);
  // The key is the payer's: a debit of alice with it is a reuse, a transfer from shop is not.
  CHECK(c.Run(0, Debit{"alice", 100, "pay-7"}).status.code() == Code::kIdempotencyKeyReused);
  REQUIRE(c.Run(0, Credit{"shop", 5, ""}).status.ok());
  CHECK(c.Run(0, Transfer{"shop", "alice", 5, "pay-7"}).status.ok());
  // Replayed at the other region once it holds the op.
  c.Settle(6);
  const CommandResult there = c.Run(1, Transfer{"alice", "shop", 100, "pay-7"});
  REQUIRE(there.status.ok());
  CHECK(there.replayed);
  CHECK(there.op == first.op);
  CheckConserved(c, "alice", "shop", 1005);  // with the 5 credited to shop
}

TEST_CASE("one transfer retried in three cut-off regions moves money once, on both sides",
          "[replica][transfer][floor]") {
  // The client's retries reach r0, r1 and r2 while they are cut off from each other: each takes
  // the transfer. After the heal the canonically first survives and the two others are voided in
  // both accounts: refunded to alice, clawed back from shop, each booked to the region that
  // took it. Until then shop's credit is tentative: spendable only within shop's line (0 here).
  Cluster c(3, NoWaits);
  Watch watch(c);
  Setup(c, Config("alice"), Config("shop"), 300);
  c.queue.clear();
  for (RegionId r = 0; r < 3; ++r) {
    const CommandResult t = c.Run(r, Transfer{"alice", "shop", 200, "order-42"});
    REQUIRE(t.status.ok());
    CHECK_FALSE(t.replayed);
    const CommandResult spend = c.Run(r, Debit{"shop", 200, "spend-" + std::to_string(r)});
    CHECK(spend.status.code() == Code::kInsufficientFunds);
    CHECK(spend.tentative_credit == 200);
  }
  c.queue.clear();
  c.Settle(12);
  REQUIRE(c.Converged("alice"));
  REQUIRE(c.Converged("shop"));
  const AccountView a = View(c, 0, "alice");
  const AccountView s = View(c, 0, "shop");
  CHECK(a.balance == 700);
  CHECK(s.balance == 200);
  CHECK(a.voids == 400);   // two refunds
  CHECK(s.voids == -400);  // two clawbacks
  CHECK(a.fees == 0);
  int voided_regions = 0;
  for (RegionId r = 0; r < 3; ++r) {
    CHECK(a.regions[r].voids == -s.regions[r].voids);
    if (a.regions[r].voids == 200) ++voided_regions;
    CHECK(s.regions[r].tentative_credit == 0);  // final now
  }
  CHECK(voided_regions == 2);
  CheckConserved(c, "alice", "shop", 900);
  std::vector<ForkReport> forks;
  REQUIRE(c.at(0).Forks("shop", &forks).ok());
  CHECK(forks.size() == 2);
  for (const ForkReport& f : forks) {
    CHECK(f.event.kind == DerivedKind::kVoid);
    CHECK(f.ops.size() == 2);  // the voided transfer and the one that kept the key
  }
}

TEST_CASE("an overdrawing transfer is the payer's overdraft: the fee is the payer's",
          "[replica][transfer]") {
  Cluster c(2, NoWaits);
  Setup(c, Config("alice", 200, 7, 100), Config("shop", 0, 3, 0), 50);
  // r0: rights 50, line 100.
  const CommandResult t = c.Run(0, Transfer{"alice", "shop", 120, "big"});
  REQUIRE(t.status.ok());
  CHECK(t.overdraft);
  CHECK(t.rights == 50);
  CHECK(t.overdraft_line == 100);
  c.Settle(8);
  // alice: 100 − 120 = −20, then 7 + ceil(1 % of 20) = 8 of fee.
  CHECK(View(c, 1, "alice").balance == -28);
  CHECK(View(c, 1, "alice").fees == 8);
  CHECK(View(c, 1, "shop").balance == 120);
  CHECK(View(c, 1, "shop").fees == 0);
  CheckMoney(c, "alice");
  CheckMoney(c, "shop");
}

TEST_CASE("transfers survive a restart from the persisted store, folded or not",
          "[replica][transfer]") {
  Cluster c(3, NoWaits);
  Setup(c, Config("alice"), Config("shop"), 100);
  REQUIRE(c.Run(0, Transfer{"alice", "shop", 60, "a"}).status.ok());
  c.Settle(10);  // final: folded into both accounts' checkpoints
  c.queue.clear();
  REQUIRE(c.Run(1, Transfer{"alice", "shop", 30, "b"}).status.ok());  // above the frontier
  c.queue.clear();
  REQUIRE(c.Restart(1).ok());
  c.Settle(10);
  REQUIRE(c.Converged("alice"));
  REQUIRE(c.Converged("shop"));
  CHECK(View(c, 2, "alice").balance == 210);
  CHECK(View(c, 2, "shop").balance == 90);
  CheckConserved(c, "alice", "shop", 300);
  // The retry after the restart is a replay, not a second transfer.
  const CommandResult again = c.Run(1, Transfer{"alice", "shop", 30, "b"});
  REQUIRE(again.status.ok());
  CHECK(again.replayed);
}
