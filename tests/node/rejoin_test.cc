// A region that restarts with less than it had (issue 9, item 2), on real tallyd processes: its
// folder restored from an older copy, or wiped. Every start is a new epoch; until a peer has
// answered it and it holds every own op the answers name, the region refuses commands with 503
// `unavailable` ("rejoining"), so it never reissues a seq its peers hold with another op. Before
// e26ac00 a restored region did exactly that, and the replicas diverged for good, silently.
//
// The recovery tests set a long checkpoint interval (and make their first op after each node's
// first checkpoint, see WaitFirstCheckpoint) so that nothing is pruned and the peers can give
// every op back; the last two let the peers prune, so the region needs a snapshot.
// Where a test must see the refusal, the restarted region is started with its gossip links cut,
// so that it cannot rejoin before the test looks; the links are healed to let it rejoin.

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

// No checkpoint (and so no pruning) within a test's lifetime: peers keep every op to give back.
constexpr const char* kNoPruning = "[storage]\ncheckpoint_interval_ms = 3600000\n";

constexpr std::size_t kEu = 0, kUs = 1, kAp = 2;

// Waits until every node in `nodes` (every node when empty) agrees about `account`; stops the
// test, showing how they differ, if not.
tally::ctl::Agreement RequireAgree(Cluster& c, const std::string& account,
                                   std::chrono::milliseconds timeout,
                                   const std::vector<std::size_t>& nodes = {}) {
  auto agreement = c.WaitAgree(account, timeout, nodes);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  return agreement;
}

// Waits until every node's stable frontier has moved since it started. tallyd saves its first
// checkpoint, and prunes its log below it, on the first tick its frontier moves after a start,
// whatever checkpoint_interval_ms says (the interval applies only from then on). A test that
// needs every op kept (kNoPruning) makes its first op after that, so nothing it makes is pruned.
void WaitFirstCheckpoint(Cluster& c) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    Reply last;
    const bool moved = WaitUntil(
        [&] {
          last = api.Cluster();
          return last.status == 200 && Field(last.body, "frontier").is_string() &&
                 last.body["frontier"] != "0.0";
        },
        10s);
    INFO(c.region(i) << "'s frontier never moved: " << last.raw);
    REQUIRE(moved);
  }
}

struct AckedCredit {
  std::string key;
  std::int64_t amount = 0;
  json op;  // {"region", "seq", "hlc"} as the answer named it
};

// Credits at node i under `key`; requires an acknowledgement and returns it.
AckedCredit RequireCredit(Api& api, const std::string& account, std::int64_t amount,
                          const std::string& key) {
  Reply r = api.Credit(account, amount, key);
  INFO("credit " << key << " at " << api.url() << ": " << r.status << " " << r.raw
                 << r.transport_error);
  REQUIRE(r.status == 200);
  REQUIRE(r.body.contains("op"));
  return AckedCredit{key, amount, r.body["op"]};
}

std::uint64_t MaxSeq(const std::vector<AckedCredit>& acked) {
  std::uint64_t m = 0;
  for (const auto& a : acked) m = std::max(m, SeqOf(a.op));
  return m;
}

// What a restarted region answered to a credit retried until it was acknowledged.
struct RetryAnswers {
  int refused = 0;    // 503 unavailable, "rejoining"
  int not_found = 0;  // 404 for an account that exists
};

// Retries one credit (same key) at a region that restarted until it is acknowledged, at most
// `timeout`. Until then every answer must be the rejoining refusal, or a 404 (counted in *seen,
// for the caller to judge); anything else fails the test. Returns the acknowledgement.
AckedCredit CreditOnceRejoined(Cluster& c, std::size_t i, const std::string& account,
                               std::int64_t amount, const std::string& key,
                               std::chrono::milliseconds timeout, RetryAnswers* seen) {
  Api api = c.api(i, kAdminToken, 5s);
  Reply last;
  std::vector<std::string> unexpected;
  const bool acked = WaitUntil(
      [&] {
        last = api.Credit(account, amount, key);
        if (last.status == 200) return true;
        if (RefusedRejoining(last)) {
          ++seen->refused;
        } else if (last.status == 404 && last.error_code() == "not_found") {
          ++seen->not_found;
        } else if (unexpected.size() < 5) {
          unexpected.push_back(std::to_string(last.status) + " " + last.raw + last.transport_error);
        }
        return false;
      },
      timeout, 20ms);
  for (const auto& u : unexpected) UNSCOPED_INFO("unexpected answer while rejoining: " << u);
  CHECK(unexpected.empty());
  if (!acked) {
    std::string log = c.ReadLog(i);
    if (log.size() > 3000) log = log.substr(log.size() - 3000);
    std::string views;
    for (std::size_t n = 0; n < c.size(); ++n)
      views += c.region(n) + " /v1/cluster: " + c.api(n).Cluster().raw + "\n";
    FAIL(c.region(i) << " never served the credit " << key << "; last answer " << last.status << " "
                     << last.raw << last.transport_error << "\n"
                     << views << "log tail:\n"
                     << log);
  }
  REQUIRE(last.body.contains("op"));
  return AckedCredit{key, amount, last.body["op"]};
}

// Every key in `acked`, retried at node i with its amount, replays the very op it was answered.
void CheckReplays(Cluster& c, std::size_t i, const std::string& account,
                  const std::vector<AckedCredit>& acked) {
  Api api = c.api(i);
  std::size_t wrong = 0;
  for (const auto& a : acked) {
    Reply r = api.Credit(account, a.amount, a.key);
    if (r.status != 200 || Field(r.body, "op") != a.op ||
        r.header("Idempotent-Replayed") != "true") {
      if (++wrong <= 5)
        UNSCOPED_INFO("key " << a.key << " acked as " << a.op.dump() << ", retry answered "
                             << r.status << " " << r.raw);
    }
  }
  INFO(wrong << " of " << acked.size() << " retries at " << c.region(i)
             << " did not replay their op");
  CHECK(wrong == 0);
}

// Checks that every agreed node reports `balance`.
void CheckBalance(const tally::ctl::Agreement& agreement, std::int64_t balance) {
  for (const auto& node : agreement.summary["nodes"]) {
    INFO("balance at " << node["region"].get<std::string>());
    CHECK(node["balance"].get<std::int64_t>() == balance);
  }
}

void CopyFolder(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

}  // namespace

// Issue 9, item 2, the measured attack: an operator puts back an older copy of a region's folder.
// The restored store lacks the region's last 60 ops, which its peers hold; the old code issued
// their seqs again for new ops, the peers dropped those as duplicates, and the digests diverged
// for good. Now it must refuse writes until its peers have given those ops back, then continue
// above them.
TEST_CASE("a region restored from an older copy of its folder rejoins and reuses no seq",
          "[node][rejoin]") {
  ClusterOptions options;
  options.proxied = true;  // to start the restored region cut off and look at it before it rejoins
  options.extra_toml = kNoPruning;
  Cluster c("rejoin-restored", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  WaitFirstCheckpoint(c);

  const std::string acct = "restore-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  WaitVisible(c, acct);
  std::int64_t expected = 0;
  std::vector<AckedCredit> us_before_copy, us_after_copy;
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 5; ++k) {
      AckedCredit a = RequireCredit(api, acct, 10, "pre-" + c.region(i) + "-" + std::to_string(k));
      expected += a.amount;
      if (i == kUs) us_before_copy.push_back(a);
    }
  }
  RequireAgree(c, acct, 15s);

  // Yesterday's copy of us's folder, taken while it was stopped.
  REQUIRE(c.Stop(kUs) == 0);
  const auto copy = c.dir() / "us-data-copy";
  CopyFolder(c.data_dir(kUs), copy);
  REQUIRE_START(c, kUs);
  REQUIRE(c.WaitConnected(15s));
  const std::uint64_t seq_in_copy = AppliedAt(c, kUs, "us");
  REQUIRE(seq_in_copy >= MaxSeq(us_before_copy));

  // A day's work at us after the copy: 60 acknowledged ops the copy does not hold.
  {
    Api us = c.api(kUs);
    for (int k = 0; k < 60; ++k) {
      AckedCredit a = RequireCredit(us, acct, 1, "after-copy-" + std::to_string(k));
      CHECK(a.op.at("region") == "us");
      if (!us_after_copy.empty()) CHECK(SeqOf(a.op) > SeqOf(us_after_copy.back().op));
      expected += a.amount;
      us_after_copy.push_back(a);
    }
  }
  RequireAgree(c, acct, 15s);  // the peers hold all 60
  REQUIRE(c.Stop(kUs) == 0);
  const std::uint64_t acked_max = MaxSeq(us_after_copy);
  REQUIRE(acked_max >= seq_in_copy + 60);
  for (std::size_t i : {kEu, kAp}) REQUIRE(AppliedAt(c, i, "us") >= acked_max);

  // The operator puts the old copy back and starts us, here cut off from its peers at first.
  CopyFolder(copy, c.data_dir(kUs));
  c.Cut(kUs, kEu);
  c.Cut(kUs, kAp);
  REQUIRE_START(c, kUs);
  Api us = c.api(kUs);
  {
    const json view = ClusterView(c, kUs);
    INFO("us after the restore: " << view.dump());
    CHECK(view.at("rejoining") == true);
    CHECK(view.at("applied").at("us").get<std::uint64_t>() == seq_in_copy);
    // Alive, but not ready: a load balancer must not send it writes (issue 12).
    CHECK(us.CallNoAuth("GET", "/healthz").status == 200);
    Reply ready = us.CallNoAuth("GET", "/readyz");
    CHECK(ready.status == 503);
    CHECK(ready.body["status"] == "rejoining");
    CHECK(ready.body["reason"].get<std::string>().find("rejoin") != std::string::npos);
  }
  // It refuses every write for as long as no peer can answer it ...
  for (int round = 0; round < 5; ++round) {
    // (the client retries one credit under one key, as it will once us serves again)
    CheckRefusedRejoining(us.Credit(acct, 7, "after-restore-0"), "a new credit at the restored us");
    // ... the retry of an op it acknowledged and lost is not taken for a new op ...
    CheckRefusedRejoining(us.Credit(acct, 1, "after-copy-0"), "a retry of a lost op's key");
    CheckRefusedRejoining(us.Debit(acct, 1, "spend-" + std::to_string(round)), "a debit");
    CheckRefusedRejoining(us.Rights(acct, "eu", 1, "move-" + std::to_string(round)),
                          "a rights transfer");
    std::this_thread::sleep_for(200ms);
  }
  CHECK(AppliedAt(c, kUs, "us") == seq_in_copy);  // nothing originated
  // ... while reads say they may be stale, and keys the copy holds still replay.
  {
    Reply view = us.Account(acct);
    INFO(view.raw);
    REQUIRE(view.status == 200);
    CHECK(Field(view.body, "stale") == true);
  }
  CheckReplays(c, kUs, acct, us_before_copy);

  // The other regions keep serving meanwhile.
  for (std::size_t i : {kEu, kAp}) {
    Api api = c.api(i);
    for (int k = 0; k < 3; ++k)
      expected +=
          RequireCredit(api, acct, 100, "during-" + c.region(i) + "-" + std::to_string(k)).amount;
  }
  RequireAgree(c, acct, 10s, {kEu, kAp});

  // Healed: us gets its 60 ops back, then serves writes above every seq it acknowledged before.
  c.Heal(kUs, kEu);
  c.Heal(kUs, kAp);
  RetryAnswers seen;
  const AckedCredit first = CreditOnceRejoined(c, kUs, acct, 7, "after-restore-0", 30s, &seen);
  expected += first.amount;
  INFO("first op us acknowledged after the restore: "
       << first.op.dump() << " after " << seen.refused
       << " refusals; highest before: " << acked_max);
  CHECK(seen.not_found == 0);  // its restored store holds the account
  CHECK(first.op.at("region") == "us");
  CHECK(SeqOf(first.op) > acked_max);
  CHECK(ClusterView(c, kUs).at("rejoining") == false);
  CHECK(us.CallNoAuth("GET", "/readyz").status == 200);
  CHECK(AppliedAt(c, kUs, "us") >= acked_max + 1);
  CheckReplays(c, kUs, acct, us_after_copy);  // the lost ops came back with their keys
  CheckReplays(c, kUs, acct, us_before_copy);
  std::vector<AckedCredit> us_after_restore{first};
  for (int k = 1; k < 6; ++k) {
    AckedCredit a = RequireCredit(us, acct, 2, "after-restore-" + std::to_string(k));
    CHECK(SeqOf(a.op) > SeqOf(us_after_restore.back().op));
    expected += a.amount;
    us_after_restore.push_back(a);
  }

  // No op was dropped as a duplicate anywhere: the three regions agree on every credit.
  auto agreement = RequireAgree(c, acct, 20s);
  CheckBalance(agreement, expected);
  for (std::size_t i = 0; i < c.size(); ++i)
    CHECK(AppliedAt(c, i, "us") == SeqOf(us_after_restore.back().op));
}

// A region whose folder is lost: it starts with nothing, under a new epoch. It must not answer 404
// for accounts that exist (nor open them again, nor take an old key for a new op); it refuses
// writes until its peers have given back every op of its own, then continues above them. The
// other regions must not notice anything but its absence.
TEST_CASE("a region restarted on a wiped folder refuses writes until its own ops are back",
          "[node][rejoin]") {
  ClusterOptions options;
  options.proxied = true;  // to start the wiped region cut off and look at it before it rejoins
  options.extra_toml = kNoPruning;
  Cluster c("rejoin-wiped", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  WaitFirstCheckpoint(c);

  const std::string acct = "wipe-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  WaitVisible(c, acct);
  std::int64_t expected = 0;
  std::vector<AckedCredit> ap_before;
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 10; ++k) {
      AckedCredit a = RequireCredit(api, acct, 10, "pre-" + c.region(i) + "-" + std::to_string(k));
      expected += a.amount;
      if (i == kAp) ap_before.push_back(a);
    }
  }
  RequireAgree(c, acct, 15s);
  const std::uint64_t ap_had = AppliedAt(c, kAp, "ap");
  REQUIRE(ap_had >= MaxSeq(ap_before));
  REQUIRE(c.Stop(kAp) == 0);
  for (std::size_t i : {kEu, kUs}) REQUIRE(AppliedAt(c, i, "ap") == ap_had);

  // The folder is gone; ap starts on an empty one, cut off from its peers at first.
  std::filesystem::remove_all(c.data_dir(kAp));
  REQUIRE_FALSE(std::filesystem::exists(c.data_dir(kAp)));
  c.Cut(kAp, kEu);
  c.Cut(kAp, kUs);
  REQUIRE_START(c, kAp);
  Api ap = c.api(kAp);
  {
    const json view = ClusterView(c, kAp);
    INFO("ap after the wipe: " << view.dump());
    CHECK(view.at("rejoining") == true);
    CHECK(view.at("applied").at("ap") == 0);
  }
  for (int round = 0; round < 5; ++round) {
    // Writes to an account it has never heard of: 503, not 404 ...
    CheckRefusedRejoining(ap.Credit(acct, 5, "after-wipe-0"), "a credit at the wiped ap");
    CheckRefusedRejoining(ap.Debit(acct, 1, "spend-" + std::to_string(round)), "a debit");
    CheckRefusedRejoining(ap.Rights(acct, "eu", 1, "move-" + std::to_string(round)),
                          "a rights transfer");
    // ... nor opened again (201) ...
    CheckRefusedRejoining(ap.Open(acct), "opening the existing account again");
    // ... and a key it acknowledged before the wipe is not taken for a new op.
    CheckRefusedRejoining(ap.Credit(acct, ap_before[0].amount, ap_before[0].key),
                          "a retry of a key ap acknowledged before the wipe");
    std::this_thread::sleep_for(200ms);
  }
  CHECK(AppliedAt(c, kAp, "ap") == 0);

  // The other regions are unharmed: they keep serving writes and agree with each other.
  for (std::size_t i : {kEu, kUs}) {
    Api api = c.api(i);
    for (int k = 0; k < 5; ++k)
      expected +=
          RequireCredit(api, acct, 100, "during-" + c.region(i) + "-" + std::to_string(k)).amount;
  }
  RequireAgree(c, acct, 10s, {kEu, kUs});
  for (std::size_t i : {kEu, kUs}) CHECK(AppliedAt(c, i, "ap") == ap_had);

  // Healed: ap gets its own ops back from its peers, then serves writes above them.
  //
  // ap stops rejoining only once it holds every op its peers' answers named, of every origin (the
  // account's open is eu's op): a write to the account is never answered 404 (it was in about 1
  // run of 40 while rejoining waited only for ap's own ops).
  c.Heal(kAp, kEu);
  c.Heal(kAp, kUs);
  RetryAnswers seen;
  const AckedCredit first = CreditOnceRejoined(c, kAp, acct, 5, "after-wipe-0", 30s, &seen);
  CHECK(seen.not_found == 0);
  expected += first.amount;
  INFO("first op ap acknowledged after the wipe: " << first.op.dump() << " after " << seen.refused
                                                   << " refusals; ap had " << ap_had);
  CHECK(first.op.at("region") == "ap");
  CHECK(SeqOf(first.op) > ap_had);
  CHECK(ClusterView(c, kAp).at("rejoining") == false);
  CheckReplays(c, kAp, acct, ap_before);  // its own ops came back with their keys
  std::vector<AckedCredit> ap_after{first};
  {
    Api again = c.api(kAp);
    for (int k = 1; k < 5; ++k) {
      AckedCredit a = RequireCredit(again, acct, 1, "after-wipe-" + std::to_string(k));
      CHECK(SeqOf(a.op) > SeqOf(ap_after.back().op));
      expected += a.amount;
      ap_after.push_back(a);
    }
  }
  auto agreement = RequireAgree(c, acct, 20s);
  CheckBalance(agreement, expected);
  for (std::size_t i = 0; i < c.size(); ++i)
    CHECK(AppliedAt(c, i, "ap") == SeqOf(ap_after.back().op));
}

// Peers prune ops that are final, acked by every region and below a saved checkpoint (every
// [storage] checkpoint_interval_ms, 1 s by default). A region wiped after that cannot get its own
// ops back one by one: a peer sends it a snapshot (its checkpoints, retained log and idempotency
// records), which it installs before it serves writes. Before snapshot transfer it stayed
// refusing writes forever (safe, never live): this test failed at the first credit.
TEST_CASE("a wiped region whose ops were pruned everywhere rejoins from a peer's snapshot",
          "[node][rejoin][snapshot]") {
  Cluster c("rejoin-pruned", {});  // the default checkpoint interval: ops are pruned
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "pruned-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  WaitVisible(c, acct);
  std::int64_t expected = 0;
  std::vector<AckedCredit> ap_acked;
  for (std::size_t i = 0; i < c.size(); ++i) {
    Api api = c.api(i);
    for (int k = 0; k < 10; ++k) {
      const AckedCredit a =
          RequireCredit(api, acct, 10, "pre-" + c.region(i) + "-" + std::to_string(k));
      expected += a.amount;
      if (i == kAp) ap_acked.push_back(a);
    }
  }
  RequireAgree(c, acct, 15s);
  // Final everywhere, then a few checkpoint intervals: every region has saved a checkpoint past
  // these ops and pruned them (each was acked by every peer long before).
  WaitFinal(c, acct);
  std::this_thread::sleep_for(3500ms);
  const std::uint64_t ap_had = AppliedAt(c, kAp, "ap");
  REQUIRE(ap_had >= 10);
  REQUIRE(c.Stop(kAp) == 0);
  for (std::size_t i : {kEu, kUs}) REQUIRE(AppliedAt(c, i, "ap") == ap_had);

  std::filesystem::remove_all(c.data_dir(kAp));
  REQUIRE_START(c, kAp);
  RetryAnswers seen;
  const AckedCredit fresh = CreditOnceRejoined(c, kAp, acct, 5, "after-wipe-0", 20s, &seen);
  expected += fresh.amount;
  CHECK(seen.not_found == 0);  // a rejoining region does not say an existing account is missing
  CHECK(SeqOf(fresh.op) == ap_had + 1);  // no seq reused
  const std::string log = c.ReadLog(kAp);
  CHECK(log.find("installed") != std::string::npos);
  // The keys came with the snapshot: every credit ap acknowledged before the wipe replays.
  CheckReplays(c, kAp, acct, ap_acked);

  auto agreement = RequireAgree(c, acct, 20s);
  CheckBalance(agreement, expected);
  // What it installed was stored whole: after one more restart it holds the same.
  REQUIRE(c.Stop(kAp) == 0);
  REQUIRE_START(c, kAp);
  REQUIRE(c.WaitConnected(20s));
  agreement = RequireAgree(c, acct, 20s);
  CheckBalance(agreement, expected);
  for (std::size_t i = 0; i < c.size(); ++i) CHECK(AppliedAt(c, i, "ap") == ap_had + 1);
}

// A bug found while writing the tests above (it fails on the code of e26ac00, where rejoining
// waited only for the region's own ops). A region that originated nothing but whose peers pruned
// the other regions' ops rejoined at once on a wiped folder: writes to an existing account got
// 404, opening that account again with another config got 201, credits were accepted, and it never
// caught up (its peers cannot send what they pruned). Now a rejoining region waits for every op
// the answers said they held, of every origin, and gets what was pruned in a snapshot.
TEST_CASE("a wiped region that originated nothing gets the others' pruned ops before it writes",
          "[node][rejoin][snapshot]") {
  Cluster c("rejoin-bystander", {});  // the default checkpoint interval: ops are pruned
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "bystander-wallet";
  REQUIRE(c.api(kEu).Open(acct, 100).status == 201);
  WaitVisible(c, acct);
  std::int64_t expected = 0;
  for (std::size_t i : {kEu, kUs}) {
    Api api = c.api(i);
    for (int k = 0; k < 5; ++k)
      expected +=
          RequireCredit(api, acct, 10, "pre-" + c.region(i) + "-" + std::to_string(k)).amount;
  }
  RequireAgree(c, acct, 15s);
  WaitFinal(c, acct);
  std::this_thread::sleep_for(3500ms);  // checkpoints saved, ops pruned everywhere
  REQUIRE(AppliedAt(c, kAp, "ap") == 0);

  REQUIRE(c.Stop(kAp) == 0);
  std::filesystem::remove_all(c.data_dir(kAp));
  REQUIRE_START(c, kAp);
  RetryAnswers seen;
  expected += CreditOnceRejoined(c, kAp, acct, 5, "after-wipe-1", 20s, &seen).amount;
  CHECK(seen.not_found == 0);
  Api ap = c.api(kAp);
  Reply reopen = ap.Open(acct, 999);
  INFO("opening the existing account again, with another config: " << reopen.status << " "
                                                                   << reopen.raw);
  CHECK(reopen.status != 201);
  CHECK(reopen.status != 200);
  auto agreement = RequireAgree(c, acct, 20s);
  CheckBalance(agreement, expected);
}

// Swarm seed 303985, on real processes: us gave eu rights, its folder was put back to a copy from
// before, and it restarted while eu, the only region holding the transfer, was cut off. With the
// old `[rejoin] wait_ms` of 10 s us resumed on ap's answer alone; when eu came back us's fence
// took the transfer from it, though eu had spent those rights: eu ended 300 below its line, and
// us held the 300 again. A restarted region now waits for every peer (wait_ms = 0, the default).
TEST_CASE("a region restored from a copy waits for the cut-off peer it gave rights to",
          "[node][rejoin]") {
  ClusterOptions options;
  options.proxied = true;
  options.extra_toml = kNoPruning;
  Cluster c("rejoin-rights", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "rights-wallet";
  REQUIRE(c.api(kEu).Open(acct).status == 201);
  WaitVisible(c, acct);
  {
    Api us = c.api(kUs);
    RequireCredit(us, acct, 300, "us-top-up");
  }
  WaitFinal(c, acct);  // final: us may give it away
  REQUIRE(c.Stop(kUs) == 0);
  const auto copy = c.dir() / "us-data-copy";
  CopyFolder(c.data_dir(kUs), copy);  // from before the transfer
  REQUIRE_START(c, kUs);
  REQUIRE(c.WaitConnected(15s));
  WaitFinal(c, acct);  // final again at the restarted us

  // us gives eu its 300 while ap hears of it from no one, and eu spends them.
  c.Cut(kUs, kAp);
  c.Cut(kEu, kAp);
  {
    Reply moved = c.api(kUs).Rights(acct, "eu", 300, "give-eu");
    INFO(moved.raw << moved.transport_error);
    REQUIRE(moved.status == 200);
  }
  REQUIRE(WaitUntil([&] { return RightsOf(c, kEu, acct, "eu") >= 300; }, 10s));
  {
    Reply spent = c.api(kEu).Debit(acct, 300, "eu-spends");
    INFO(spent.raw << spent.transport_error);
    REQUIRE(spent.status == 200);
  }

  // us's folder goes back to the copy; it restarts hearing only ap. eu stays cut off.
  REQUIRE(c.Stop(kUs) == 0);
  CopyFolder(copy, c.data_dir(kUs));
  c.Cut(kUs, kEu);
  c.Heal(kUs, kAp);
  REQUIRE_START(c, kUs);
  std::this_thread::sleep_for(13s);  // past the old 10 s wait, and a peer timeout
  CHECK(ClusterView(c, kUs).at("rejoining") == true);
  CheckRefusedRejoining(c.api(kUs).Debit(acct, 1, "us-meanwhile"), "a debit at the restored us");

  // eu is back: us gets its transfer back and resumes above it; nothing is fenced off.
  c.HealAll();
  RetryAnswers seen;
  CreditOnceRejoined(c, kUs, acct, 1, "us-after", 30s, &seen);
  auto agreement = RequireAgree(c, acct, 20s);
  for (std::size_t i = 0; i < c.size(); ++i) {
    INFO("as " << c.region(i) << " sees it");
    CHECK(RightsOf(c, i, acct, "eu") == 0);
    CHECK(RightsOf(c, i, acct, "us") == 1);
  }
  CheckBalance(agreement, 1);
  CHECK(c.ReadLog(kEu).find("of a history it lost") == std::string::npos);
}
