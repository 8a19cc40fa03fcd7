// Budgets in a hierarchy (core/budgets.h) through the in-memory cluster of cluster_fixture.h:
// parents set at open and every bad one refused; a fallback debit paid by the first of the account
// and its ancestors whose spendable rights cover it, with its key kept by the account named; a cap
// account whose debits consume its cap and its parent's money in one op, so no level is overspent
// in a partition; a budget debit retried in two cut-off regions, voided on every account it
// touched; and a restart. Money is checked at every call (Watch) and on every account.
#include <catch2/catch.hpp>
#include <string>

#include "cluster_fixture.h"
#include "replica_checks.h"

using namespace tally;
using namespace tally::testing;

namespace {

AccountConfig Child(const std::string& id, const std::string& parent, bool cap = false,
                    Amount overdraft = 0) {
  AccountConfig c = Config(id, overdraft);
  c.parent = parent;
  c.cap = cap;
  return c;
}

// org → team → user-7, opened at r0 and final everywhere; each region gets `org_each` of org's
// money and `user_each` of user-7's as unkeyed (at once spendable) credits.
void Setup(Cluster& c, bool user_is_cap, Amount org_each, Amount user_each) {
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("team", "org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("user-7", "team", user_is_cap)}).status.ok());
  c.Settle(6);
  for (RegionId r = 0; r < c.size(); ++r) {
    if (org_each > 0) REQUIRE(c.Run(r, Credit{"org", org_each, ""}).status.ok());
    if (user_each > 0) REQUIRE(c.Run(r, Credit{"user-7", user_each, ""}).status.ok());
  }
  c.Settle(8);
  for (const char* id : {"org", "team", "user-7"}) REQUIRE(c.Converged(id));
}

Debit Fallback(const std::string& account, Amount amount, const std::string& key) {
  Debit d{account, amount, key};
  d.fallback = true;
  return d;
}

void CheckAll(Cluster& c) {
  for (const char* id : {"org", "team", "user-7"}) CheckMoney(c, id);
}

}  // namespace

TEST_CASE("each bad parent is refused at open with its error", "[replica][budget]") {
  Cluster c(2, NoWaits);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  AccountConfig usd = Config("usd-org");
  usd.currency = "USD";
  REQUIRE(c.Run(0, OpenAccount{usd}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("l2", "org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("l3", "l2")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("l4", "l3")}).status.ok());  // depth 4: the limit
  auto refused = [&](AccountConfig cfg, Code code, const std::string& says) {
    Untouched before(c, 0);
    const CommandResult r = c.Run(0, OpenAccount{std::move(cfg)});
    INFO("got " << r.status.ToString());
    CHECK(r.status.code() == code);
    CHECK(r.status.message().find(says) != std::string::npos);
    before.Check();
  };
  refused(Child("x", "nobody"), Code::kNotFound, "parent account 'nobody' does not exist");
  refused(Child("x", "x"), Code::kInvalidArgument, "its own parent");
  refused(Child("x", "usd-org"), Code::kInvalidArgument, "is in USD, not EUR");
  refused(Child("l5", "l4"), Code::kInvalidArgument, "deeper than 4 levels");
  refused(Child("x", "bad id!"), Code::kInvalidArgument, "parent");
  refused(Child("x", "", /*cap=*/true), Code::kInvalidArgument, "a cap account needs a parent");
  // The only way to ask for a cycle: give an existing account a parent below it. An account's
  // config is fixed at open, so that is a different config of an existing account.
  refused(Child("org", "l4"), Code::kAlreadyExists, "different config");
}

TEST_CASE("a fallback debit is paid by the first account on the path that covers it",
          "[replica][budget]") {
  Cluster c(3, NoWaits);
  Watch watch(c);
  Setup(c, /*user_is_cap=*/false, 1000, 50);
  // user-7 has 50 at r1: it pays 40 itself (a plain debit).
  CommandResult r = c.Run(1, Fallback("user-7", 40, "f-1"));
  REQUIRE(r.status.ok());
  CHECK(r.payers.empty());
  // 40 more: user-7 has 10 at r1, team nothing; org pays, with the key kept by user-7.
  r = c.Run(1, Fallback("user-7", 40, "f-2"));
  REQUIRE(r.status.ok());
  REQUIRE(r.payers == std::vector<std::string>{"org"});
  CHECK(r.balance == 110);  // user-7's own balance is untouched
  // A retry is a replay naming the payer, also without the fallback flag (the same request).
  CommandResult again = c.Run(1, Fallback("user-7", 40, "f-2"));
  CHECK(again.replayed);
  CHECK(again.op == r.op);
  CHECK(again.payers == std::vector<std::string>{"org"});
  again = c.Run(1, Debit{"user-7", 40, "f-2"});
  CHECK(again.replayed);
  CHECK(c.Run(1, Fallback("user-7", 41, "f-2")).status.code() == Code::kIdempotencyKeyReused);
  // A fallback that may not pay from org (the caller's scope) leaves a plain debit of user-7.
  Debit scoped = Fallback("user-7", 40, "f-3");
  scoped.may_pay = [](const std::string& id) { return id != "org"; };
  CHECK(c.Run(1, scoped).status.code() == Code::kInsufficientFunds);
  c.Settle(8);
  for (const char* id : {"org", "team", "user-7"}) REQUIRE(c.Converged(id));
  for (RegionId x = 0; x < 3; ++x) {
    CHECK(View(c, x, "user-7").balance == 110);
    CHECK(View(c, x, "org").balance == 2960);
    CHECK(View(c, x, "org").regions[1].rights == 960);
    CHECK(View(c, x, "team").balance == 0);
  }
  CheckAll(c);
}

TEST_CASE("a cap debit consumes the cap and the parent's money in one op", "[replica][budget]") {
  Cluster c(3, NoWaits);
  Watch watch(c);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("team", "org", /*cap=*/true)}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("user-7", "team", /*cap=*/true)}).status.ok());
  c.Settle(6);
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(c.Run(r, Credit{"org", 100, ""}).status.ok());
    REQUIRE(c.Run(r, Credit{"team", 60, ""}).status.ok());    // team's cap: 180
    REQUIRE(c.Run(r, Credit{"user-7", 30, ""}).status.ok());  // user-7's cap: 90
  }
  c.Settle(8);
  CommandResult r = c.Run(2, Debit{"user-7", 25, "c-1"});
  REQUIRE(r.status.ok());
  CHECK(r.payers == std::vector<std::string>{"user-7", "team", "org"});
  CHECK(r.balance == 65);
  // 10 more at r2 would pass user-7's cap there (5 left): refused, naming the account short.
  r = c.Run(2, Debit{"user-7", 10, "c-2"});
  CHECK(r.status.code() == Code::kInsufficientFunds);
  CHECK(r.status.message().find("account 'user-7' has spendable rights 5") != std::string::npos);
  // The team itself is a cap inside org: its own debits debit org too.
  r = c.Run(2, Debit{"team", 30, "c-3"});
  REQUIRE(r.status.ok());
  CHECK(r.payers == std::vector<std::string>{"team", "org"});
  // Now org has 100 − 25 − 30 = 45 at r2, team 60 − 25 − 30 = 5: a debit of 6 on user-7 (5 left
  // of its cap at r2) is short on user-7 — and of 5, on nothing.
  CHECK(c.Run(2, Debit{"user-7", 6, "c-4"}).status.code() == Code::kInsufficientFunds);
  REQUIRE(c.Run(2, Debit{"user-7", 5, "c-5"}).status.ok());
  CHECK(c.Run(2, Debit{"team", 1, "c-6"}).status.code() == Code::kInsufficientFunds);
  c.Settle(8);
  for (const char* id : {"org", "team", "user-7"}) REQUIRE(c.Converged(id));
  CHECK(View(c, 0, "user-7").balance == 60);
  CHECK(View(c, 0, "team").balance == 180 - 60);
  CHECK(View(c, 0, "org").balance == 300 - 60);
  CheckAll(c);
}

TEST_CASE("cap debits in three cut-off regions overspend no level", "[replica][budget][floor]") {
  // Each region spends its own rights of each account: user-7's cap of 90 (30 a region) and
  // org's 60 (20 a region) bound what the three together can take while cut off.
  Cluster c(3, NoWaits);
  Watch watch(c);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("user-7", "org", /*cap=*/true)}).status.ok());
  c.Settle(6);
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(c.Run(r, Credit{"org", 20, ""}).status.ok());
    REQUIRE(c.Run(r, Credit{"user-7", 30, ""}).status.ok());
  }
  c.Settle(8);
  c.queue.clear();
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    for (RegionId r = 0; r < 3; ++r) {
      if (c.Run(r, Debit{"user-7", 7, "s-" + std::to_string(r) + "-" + std::to_string(i)})
              .status.ok())
        ++accepted;
    }
  }
  CHECK(accepted == 6);  // 2 × 7 ≤ 20 of org's rights at each region; the third is short
  c.queue.clear();
  c.Settle(12);
  REQUIRE(c.Converged("org"));
  REQUIRE(c.Converged("user-7"));
  CHECK(View(c, 0, "org").balance == 60 - 42);
  CHECK(View(c, 0, "user-7").balance == 90 - 42);
  CheckMoney(c, "org");
  CheckMoney(c, "user-7");
}

TEST_CASE("a fallback debit retried in two cut-off regions is voided on every account it took",
          "[replica][budget][floor]") {
  // r0 and r1 each take the retry while cut off; at r0 user-7 pays itself, at r1 org pays (r1
  // holds none of user-7's money). After the heal the canonically first keeps the key; the
  // other is voided where it took the money, so it is taken once.
  Cluster c(2, NoWaits);
  Watch watch(c);
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Child("user-7", "org")}).status.ok());
  c.Settle(6);
  REQUIRE(c.Run(0, Credit{"user-7", 100, ""}).status.ok());
  REQUIRE(c.Run(1, Credit{"org", 100, ""}).status.ok());
  c.Settle(8);
  c.queue.clear();
  const CommandResult at0 = c.Run(0, Fallback("user-7", 70, "order-9"));
  REQUIRE(at0.status.ok());
  CHECK(at0.payers.empty());
  c.queue.clear();
  const CommandResult at1 = c.Run(1, Fallback("user-7", 70, "order-9"));
  REQUIRE(at1.status.ok());
  CHECK(at1.payers == std::vector<std::string>{"org"});
  c.queue.clear();
  c.Settle(12);
  REQUIRE(c.Converged("org"));
  REQUIRE(c.Converged("user-7"));
  const Amount user = View(c, 0, "user-7").balance;
  const Amount org = View(c, 0, "org").balance;
  CHECK(user + org == 200 - 70);  // taken once
  CHECK(((user == 30 && org == 100) || (user == 100 && org == 30)));
  std::vector<ForkReport> forks;
  REQUIRE(c.at(0).Forks("user-7", &forks).ok());
  CHECK(forks.size() == 1);
  CheckMoney(c, "org");
  CheckMoney(c, "user-7");
  // Both retries now replay the survivor, in either region.
  CHECK(c.Run(0, Fallback("user-7", 70, "order-9")).replayed);
  CHECK(c.Run(1, Fallback("user-7", 70, "order-9")).replayed);
}

TEST_CASE("budget debits survive a restart from the persisted store", "[replica][budget]") {
  Cluster c(3, NoWaits);
  Setup(c, /*user_is_cap=*/false, 100, 40);
  REQUIRE(c.Run(0, Debit{"user-7", 30, "a"}).status.ok());
  c.Settle(10);
  c.queue.clear();
  REQUIRE(c.Run(1, Fallback("user-7", 60, "b")).status.ok());  // org pays (user-7 has 40 at r1)
  c.queue.clear();
  REQUIRE(c.Restart(1).ok());
  c.Settle(10);
  for (const char* id : {"org", "team", "user-7"}) REQUIRE(c.Converged(id));
  CHECK(View(c, 2, "user-7").balance == 120 - 30);
  CHECK(View(c, 2, "team").balance == 0);
  CHECK(View(c, 2, "org").balance == 300 - 60);
  const CommandResult again = c.Run(1, Fallback("user-7", 60, "b"));
  CHECK(again.replayed);
  CheckAll(c);
}
