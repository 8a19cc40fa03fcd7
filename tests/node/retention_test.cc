// Idempotency key retention on real tallyd processes (issue 9, item 3; docs/design.md
// "Retention", docs/operations.md "[idempotency] retention_ms"): inside the window a retry, in the
// region that answered or in another that holds the op, replays the stored answer; past the window
// (measured from the key's last use) the same request is a new op in every region, and no region
// voids it.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

constexpr std::int64_t kRetentionMs = 2000;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Waits until node i has applied op `op` ({"region","seq"}) of another region.
void WaitApplied(Cluster& c, std::size_t i, const json& op) {
  const std::string origin = op.at("region").get<std::string>();
  const std::uint64_t seq = SeqOf(op);
  INFO(c.region(i) << " never applied " << op.dump());
  REQUIRE(WaitUntil([&] { return AppliedAt(c, i, origin) >= seq; }, 10s, 20ms));
}

// Waits until the key's last use (an op answered at or before `used_before_ms`, wall time of this
// host, which the nodes share) is more than the retention in the past, and every region holds the
// account with nothing tentative. Polls; bounded.
void WaitPastWindow(Cluster& c, const std::string& account, std::int64_t used_before_ms) {
  // The op's HLC wall time is at most the time its answer arrived (same host clock); a retry's
  // HLC is at least the physical time. A margin keeps clear of the boundary.
  const std::int64_t past = used_before_ms + kRetentionMs + 200;
  REQUIRE(WaitUntil([&] { return NowMs() >= past; }, std::chrono::milliseconds(kRetentionMs + 5000),
                    20ms));
  WaitFinal(c, account);
}

// Every region agrees about `account`, its balance is `balance`, and no region derived a void.
void RequireAgreedBalance(Cluster& c, const std::string& account, std::int64_t balance) {
  auto agreement = c.WaitAgree(account, 20s);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply a = c.api(i).Account(account);
    INFO(c.region(i) << ": " << a.raw << a.transport_error);
    REQUIRE(a.status == 200);
    CHECK(Field(a.body, "balance") == balance);
    Reply report = c.api(i).Report(account);
    INFO(c.region(i) << " report: " << report.raw);
    REQUIRE(report.status == 200);
    const json& account = report.body.at("accounts").at(0);
    CHECK(Field(account, "voids") == 0);
    for (const auto& e : account.at("events")) CHECK(Field(e, "kind") != "void");
  }
}

// `retry` was answered with the stored answer of `op`.
void CheckReplays(const Reply& retry, const json& op) {
  CHECK(retry.status == 200);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  CHECK(Field(retry.body, "op") == op);
}

}  // namespace

TEST_CASE("an idempotency key replays inside its retention window and is a new op past it",
          "[node][retention]") {
  ClusterOptions options;
  options.extra_toml = "[idempotency]\nretention_ms = " + std::to_string(kRetentionMs) + "\n";
  Cluster c("key-retention", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  constexpr std::size_t A = 0, B = 1, C = 2;  // eu, us, ap

  const std::string acct = "retention-wallet";
  const std::string key = "K-retention";
  constexpr std::int64_t kAmount = 250;
  REQUIRE(c.api(A).Open(acct).status == 201);
  WaitVisible(c, acct);
  WaitFinal(c, acct);
  Api a = c.api(A), b = c.api(B), cc = c.api(C);

  // 1. Inside the window: the first use at A, replayed at A and (once B holds the op) at B.
  const std::int64_t t1_start = NowMs();
  Reply first = a.Credit(acct, kAmount, key);
  const std::int64_t t1_used = NowMs();
  INFO("first use at " << c.region(A) << ": " << first.status << " " << first.raw);
  REQUIRE(first.status == 200);
  CHECK(first.header("Idempotent-Replayed") == "");
  const json op1 = first.body.at("op");
  REQUIRE(op1.at("region") == c.region(A));
  CHECK(Field(first.body, "balance") == kAmount);

  Reply again_a = a.Credit(acct, kAmount, key);
  INFO("retry at " << c.region(A) << ": " << again_a.status << " " << again_a.raw);
  CheckReplays(again_a, op1);
  CHECK(Field(again_a.body, "balance") == kAmount);

  WaitApplied(c, B, op1);
  Reply again_b = b.Credit(acct, kAmount, key);
  const std::int64_t t1_done = NowMs();
  INFO("retry at " << c.region(B) << ": " << again_b.status << " " << again_b.raw);
  CheckReplays(again_b, op1);
  // The retries above must have been inside the window, or this phase proved nothing.
  REQUIRE(t1_done - t1_start < kRetentionMs - 200);
  RequireAgreedBalance(c, acct, kAmount);

  // 2. Past the window, with op1 final everywhere: the same request at A is a new op.
  WaitPastWindow(c, acct, t1_used);
  const std::int64_t t2_start = NowMs();
  Reply second = a.Credit(acct, kAmount, key);
  const std::int64_t t2_used = NowMs();
  INFO("use at " << c.region(A) << " past the window: " << second.status << " " << second.raw);
  REQUIRE(second.status == 200);
  CHECK(second.header("Idempotent-Replayed") == "");
  const json op2 = second.body.at("op");
  CHECK(op2.at("region") == c.region(A));
  CHECK(SeqOf(op2) > SeqOf(op1));
  CHECK(op2 != op1);
  CHECK(Field(second.body, "balance") == 2 * kAmount);
  // The window now runs from op2: at C (once it holds op2) the request replays op2, not op1.
  WaitApplied(c, C, op2);
  Reply second_c = cc.Credit(acct, kAmount, key);
  const std::int64_t t2_done = NowMs();
  INFO("retry at " << c.region(C) << ": " << second_c.status << " " << second_c.raw);
  CheckReplays(second_c, op2);
  REQUIRE(t2_done - t2_start < kRetentionMs - 200);
  RequireAgreedBalance(c, acct, 2 * kAmount);

  // 3. Past op2's window, with op2 final everywhere: the same request at C is a new op of C's,
  // and A, which originated both earlier uses, replays it.
  WaitPastWindow(c, acct, t2_used);
  const std::int64_t t3_start = NowMs();
  Reply third = cc.Credit(acct, kAmount, key);
  INFO("use at " << c.region(C) << " past the window: " << third.status << " " << third.raw);
  REQUIRE(third.status == 200);
  CHECK(third.header("Idempotent-Replayed") == "");
  const json op3 = third.body.at("op");
  CHECK(op3.at("region") == c.region(C));
  CHECK(op3 != op1);
  CHECK(op3 != op2);
  CHECK(Field(third.body, "balance") == 3 * kAmount);
  WaitApplied(c, A, op3);
  Reply third_a = a.Credit(acct, kAmount, key);
  const std::int64_t t3_done = NowMs();
  INFO("retry at " << c.region(A) << ": " << third_a.status << " " << third_a.raw);
  CheckReplays(third_a, op3);
  REQUIRE(t3_done - t3_start < kRetentionMs - 200);

  // Every region: three credits count, none voided, all final and agreed.
  RequireAgreedBalance(c, acct, 3 * kAmount);
  WaitFinal(c, acct);
  RequireAgreedBalance(c, acct, 3 * kAmount);
}
