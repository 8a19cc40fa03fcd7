// Safety under partitions, retries and lying peers, on real tallyd processes (issue 9): money a
// retried credit could create, a peer's Hello taken on trust, and idempotency keys that must
// answer the same way wherever and whenever the client retries.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <variant>
#include <vector>

#include "codec/codec.h"
#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;

namespace {

// Waits until every node agrees about `account`; stops the test, showing how they differ, if not.
tally::ctl::Agreement RequireAgree(Cluster& c, const std::string& account,
                                   std::chrono::milliseconds timeout) {
  auto agreement = c.WaitAgree(account, timeout);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  return agreement;
}

json ErrorField(const Reply& r, const char* key) { return Field(Field(r.body, "error"), key); }

// The entry for `region` in a GET /v1/cluster answer's peers, or null.
json PeerEntry(const json& cluster, const std::string& region) {
  for (const auto& p : Field(cluster, "peers"))
    if (Field(p, "region") == region) return p;
  return json();
}

// A node's hybrid clock from GET /v1/cluster ("<wall ms>.<logical>"), as a comparable pair.
std::pair<std::uint64_t, std::uint64_t> ClockOf(Api& api) {
  Reply r = api.Cluster();
  const json clock = Field(r.body, "clock");
  if (r.status != 200 || !clock.is_string()) return {0, 0};
  const std::string text = clock.get<std::string>();
  const std::size_t dot = text.find('.');
  if (dot == std::string::npos) return {std::stoull(text), 0};
  return {std::stoull(text.substr(0, dot)), std::stoull(text.substr(dot + 1))};
}

// What a raw gossip connection saw after sending its Hello.
struct HelloOutcome {
  bool sent = false;
  bool answered = false;  // the node answered with its own Hello: ours was accepted
  bool closed = false;    // the node closed the connection (refused us)
  std::string detail;
};

// Connects to a peer port on 127.0.0.1 the way a region's gossip link does (length-prefixed
// tally.v1 envelopes, a Hello first), sends `hello`, waits up to `patience` for the node to
// answer or hang up, then closes.
HelloOutcome SendRawHello(std::uint16_t port, const tally::Hello& hello,
                          std::chrono::milliseconds patience) {
  HelloOutcome out;
  std::string bytes;
  if (tally::Status s = tally::codec::AppendFrame(hello, &bytes); !s.ok()) {
    out.detail = "cannot encode the Hello: " + s.ToString();
    return out;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) ::close(fd);
    out.detail = "cannot connect to peer port " + std::to_string(port);
    return out;
  }
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + written, bytes.size() - written, MSG_NOSIGNAL);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  out.sent = written == bytes.size();
  tally::codec::FrameReader reader;
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (out.sent && !out.answered && !out.closed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.detail = "no answer within " + std::to_string(patience.count()) + " ms";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      out.closed = true;
      out.detail = "the node closed the connection";
      break;
    }
    reader.Append(std::string_view(buf, static_cast<std::size_t>(n)));
    std::string frame;
    bool ready = false;
    if (tally::Status s = reader.Next(&frame, &ready); !s.ok()) {
      out.detail = "bad frame from the node: " + s.ToString();
      break;
    }
    if (!ready) continue;
    tally::Message msg;
    if (tally::Status s = tally::codec::DecodeMessage(frame, &msg); !s.ok()) {
      out.detail = "undecodable message from the node: " + s.ToString();
      break;
    }
    out.answered = std::holds_alternative<tally::Hello>(msg);
    out.detail = out.answered ? "the node answered with its Hello" : "the node sent a non-Hello";
    break;
  }
  ::close(fd);
  return out;
}

}  // namespace

// Attacks the rights a credit creates. A client that lost its answer retries `credit 1000` with
// the same Idempotency-Key in every region during a partition; each region accepts its copy, and
// once the regions meet two copies are voided. If a region may spend credit that can still be
// voided, each one hands out the same 1000 again and the heal leaves the account 2000 below its
// floor (the voids are taken from rights already spent). Until a credit is final a region may
// spend only its overdraft line beyond its final rights; once final, the credit is spendable.
TEST_CASE("a credit retried in every region during a partition is not spendable until final",
          "[node][safety]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("retried-credit", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "topup-wallet";
  constexpr std::int64_t kLimit = 300, kLine = 100, kCredit = 1000;
  REQUIRE(c.api(0).Open(acct, kLimit).status == 201);
  WaitVisible(c, acct);
  WaitFinal(c, acct);  // overdraft lines are usable only once the open is final
  for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(RightsOf(c, i, acct, c.region(i)) == 0);

  c.CutAll();
  WaitIsolated(c);

  // The same credit, retried in every region: each region accepts its copy.
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply r = c.api(i).Credit(acct, kCredit, "topup-1");
    INFO(c.region(i) << ": " << r.raw << r.transport_error);
    REQUIRE(r.status == 200);
  }

  // Spending the tentative credit is refused, with the numbers that explain it ...
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply r = c.api(i).Debit(acct, kCredit + kLine, "spend-all-" + c.region(i));
    INFO(c.region(i) << ": debit of " << kCredit + kLine << " answered " << r.status << " "
                     << r.raw);
    CHECK(r.status == 402);
    CHECK(r.error_code() == "insufficient_funds");
    CHECK(ErrorField(r, "tentative_credit") == kCredit);
    CHECK(ErrorField(r, "rights") == kCredit);
    CHECK(ErrorField(r, "overdraft_line") == kLine);
    CHECK_THAT(ErrorMessage(r), Catch::Contains("final", Catch::CaseSensitive::No));
  }
  // ... while the overdraft line stays spendable.
  for (std::size_t i = 0; i < c.size(); ++i) {
    Reply r = c.api(i).Debit(acct, kLine, "spend-line-" + c.region(i));
    INFO(c.region(i) << ": debit of " << kLine << " answered " << r.status << " " << r.raw);
    CHECK(r.status == 200);
    CHECK(Field(r.body, "overdraft") == true);
  }

  c.HealAll();
  auto healed = RequireAgree(c, acct, 20s);
  // One credit counts (the two copies are voided), minus the three line debits; the floor holds.
  for (const auto& node : healed.summary["nodes"]) {
    INFO("balance at " << node["region"].get<std::string>());
    CHECK(node["balance"].get<std::int64_t>() == kCredit - 3 * kLine);
    CHECK(node["balance"].get<std::int64_t>() >= -kLimit);
  }
  Reply report = c.api(0).Report(acct);
  REQUIRE(report.status == 200);
  int credit_voids = 0;
  for (const auto& e : report.body["accounts"][0]["events"])
    if (e["kind"] == "void" && e["op_kind"] == "credit") ++credit_voids;
  CHECK(credit_voids == 2);

  // Once the credit is final it is fully spendable again. Rights move to eu on demand, which may
  // take a refusal or two; a refused debit records nothing, so it is retried under its key.
  WaitFinal(c, acct);
  Api eu = c.api(0);
  Reply spend;
  const bool spent = WaitUntil(
      [&] {
        spend = eu.Debit(acct, 600, "spend-final");
        return spend.status == 200;
      },
      10s, 200ms);
  INFO("debit of 600 at eu after the heal: " << spend.status << " " << spend.raw);
  CHECK(spent);
}

// Attacks the gossip handshake. The Hello's applied vector tells the receiver what the sender
// already holds, and the receiver then stops sending those ops. A process that reaches eu's peer
// port with the cluster's id and claims to be ap holding everything (2^40 of every origin) must
// not make eu believe ap is up to date: the real ap must still get every later op of eu, and eu
// must not report ap as 0 ops behind while ap lacks them. The us-ap link is cut so that ap can
// learn eu's ops only from eu itself (us would otherwise relay them after relay_delay_ms and hide
// the loss).
TEST_CASE("a peer lying in its Hello about its applied vector does not stop replication",
          "[node][safety]") {
  ClusterOptions options;
  options.proxied = true;
  options.tls = false;  // the liar speaks gossip itself, without a certificate
  Cluster c("hello-liar", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "liar-wallet";
  REQUIRE(c.api(0).Open(acct).status == 201);
  WaitVisible(c, acct);
  c.Cut(1, 2);  // us-ap

  tally::Hello lie;
  lie.cluster_id = "test-cluster";
  lie.protocol_version = tally::kProtocolVersion;
  lie.region = 2;  // ap
  for (tally::RegionId r = 0; r < c.size(); ++r) lie.applied.set(r, tally::Seq{1} << 40);
  const HelloOutcome liar = SendRawHello(c.peer_port(0), lie, 5s);  // eu's own port, no proxy
  INFO("the liar: " << liar.detail);
  REQUIRE(liar.sent);

  Api eu = c.api(0), ap = c.api(2);
  constexpr int kOps = 20;
  for (int k = 0; k < kOps; ++k) {
    Reply r = eu.Credit(acct, 1, "after-lie-" + std::to_string(k));
    INFO(r.raw << r.transport_error);
    REQUIRE(r.status == 200);
  }

  // Ack means applied: whenever eu says ap is 0 ops behind, ap must already hold all of them.
  json ap_at_eu;
  std::int64_t ap_balance = -1;
  bool lie_believed = false;
  const bool caught_up = WaitUntil(
      [&] {
        ap_at_eu = PeerEntry(eu.Cluster().body, "ap");
        Reply r = ap.Account(acct);
        ap_balance = r.status == 200 ? Int(r.body, "balance") : -1;
        const bool behind_zero = Field(ap_at_eu, "ops_behind") == 0;
        if (behind_zero && ap_balance != kOps) lie_believed = true;
        return behind_zero;
      },
      15s);
  INFO("eu's view of ap: " << ap_at_eu.dump() << "; ap's balance: " << ap_balance << " of "
                           << kOps);
  CHECK_FALSE(lie_believed);
  CHECK(caught_up);
  CHECK(ap_balance == kOps);

  auto agreement = c.WaitAgree(acct, 15s);
  INFO(Differences(agreement));
  CHECK(agreement.agree);
}

// Attacks the answer to a retry whose first use lost. During a partition the same key was used at
// us (debit 300) and, later, at eu (debit 100); after the heal us's op is canonically first and
// eu's is voided. The client that sent eu's request never saw an answer and retries it, unchanged,
// at eu: it must get its own op back as a replay, marked voided and by which op, not a 422 that
// says the key was used for something else (it was used for exactly this, at exactly this region).
TEST_CASE("a key retried where its op was voided replays that op, marked voided",
          "[node][safety]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("voided-retry", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "retry-wallet";
  REQUIRE(c.api(0).Open(acct).status == 201);
  WaitVisible(c, acct);
  REQUIRE(c.api(0).Credit(acct, 500, "dep-eu").status == 200);
  REQUIRE(c.api(1).Credit(acct, 500, "dep-us").status == 200);
  auto funded = RequireAgree(c, acct, 10s);
  REQUIRE(funded.summary["nodes"][0]["balance"] == 1000);
  WaitFinal(c, acct);

  c.CutAll();
  WaitIsolated(c);
  Api eu = c.api(0), us = c.api(1);

  Reply at_us = us.Debit(acct, 300, "c-1");
  INFO("us: " << at_us.raw);
  REQUIRE(at_us.status == 200);
  const json us_op = at_us.body.at("op");
  REQUIRE(us_op["region"] == "us");
  // Canonical order is by HLC: eu's debit must carry a later timestamp than us's (read after it).
  const auto us_clock = ClockOf(us);
  REQUIRE(us_clock.first > 0);
  REQUIRE(WaitUntil([&] { return ClockOf(eu) > us_clock; }, 5s));
  Reply at_eu = eu.Debit(acct, 100, "c-1");
  INFO("eu: " << at_eu.raw);
  REQUIRE(at_eu.status == 200);
  const json eu_op = at_eu.body.at("op");
  REQUIRE(eu_op["region"] == "eu");

  c.HealAll();
  RequireAgree(c, acct, 20s);
  // The regions agree that eu's use of the key is the voided one.
  Reply report = eu.Report(acct);
  REQUIRE(report.status == 200);
  std::vector<json> voided;
  for (const auto& e : report.body["accounts"][0]["events"])
    if (e["kind"] == "void") voided.push_back(e["op"]);
  REQUIRE(voided.size() == 1);
  REQUIRE(voided[0]["region"] == "eu");
  REQUIRE(voided[0]["seq"] == eu_op["seq"]);

  // eu's original request, retried at eu: its own op, voided by us's.
  Reply retry = eu.Debit(acct, 100, "c-1");
  INFO("retry of eu's request: " << retry.status << " " << retry.raw);
  CHECK(retry.status == 200);
  CHECK(retry.header("Idempotent-Replayed") == "true");
  CHECK(Field(retry.body, "op") == eu_op);
  CHECK(Field(retry.body, "voided") == true);
  CHECK(Field(retry.body, "voided_by") == us_op);

  // us's request, retried at eu: us's op, the one that counts.
  Reply winner = eu.Debit(acct, 300, "c-1");
  INFO("retry of us's request at eu: " << winner.status << " " << winner.raw);
  CHECK(winner.status == 200);
  CHECK(winner.header("Idempotent-Replayed") == "true");
  CHECK(Field(winner.body, "op") == us_op);
}

// Attacks the idempotency of rights transfers. POST /v1/accounts/{id}/rights takes an
// Idempotency-Key (tallyctl sends it with --idempotency-key), so an operator who retries a
// transfer after a lost answer expects it to move the rights once; a key reused for another
// amount is a client bug and is refused, as for credits and debits.
TEST_CASE("a rights transfer retried with its Idempotency-Key moves the rights once",
          "[node][safety]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("transfer-key", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));

  const std::string acct = "move-wallet";
  REQUIRE(c.api(0).Open(acct).status == 201);
  WaitVisible(c, acct);
  REQUIRE(c.api(0).Credit(acct, 1000, "dep-eu").status == 200);
  RequireAgree(c, acct, 10s);
  WaitFinal(c, acct);  // rights that are credit not yet final are not handed on
  REQUIRE(RightsOf(c, 0, acct, "eu") == 1000);
  REQUIRE(RightsOf(c, 0, acct, "us") == 0);

  Api eu = c.api(0);
  Reply first = eu.Rights(acct, "us", 200, "move-1");
  INFO("first: " << first.raw);
  REQUIRE(first.status == 200);
  CHECK(first.header("Idempotent-Replayed") == "");
  Reply again = eu.Rights(acct, "us", 200, "move-1");
  INFO("again: " << again.status << " " << again.raw);
  CHECK(again.status == 200);
  CHECK(again.header("Idempotent-Replayed") == "true");
  CHECK(Field(again.body, "op") == first.body.at("op"));
  RequireAgree(c, acct, 10s);
  for (std::size_t i = 0; i < c.size(); ++i) {
    CHECK(RightsOf(c, i, acct, "us") == 200);
    CHECK(RightsOf(c, i, acct, "eu") == 800);
  }

  Reply other = eu.Rights(acct, "us", 300, "move-1");
  INFO("same key, another amount: " << other.status << " " << other.raw);
  CHECK(other.status == 422);
  CHECK(other.error_code() == "idempotency_key_reused");
  RequireAgree(c, acct, 10s);
  CHECK(RightsOf(c, 1, acct, "us") == 200);

  // The same through tallyctl, which sends --idempotency-key as the header.
  const std::int64_t us_before = RightsOf(c, 0, acct, "us");
  std::vector<std::string> args = c.CtlArgs(0);
  args.insert(args.end(), {"--token", kAdminToken, "--json", "account", "rights", acct, "150",
                           "--to", "us", "--idempotency-key", "move-ctl"});
  CtlRun run1 = RunCtl(c.dir(), args);
  INFO("first tallyctl run: " << run1.out);
  REQUIRE(run1.exit_code == 0);
  CtlRun run2 = RunCtl(c.dir(), args);
  INFO("second tallyctl run: " << run2.out);
  CHECK(run2.exit_code == 0);
  CHECK(Field(LastJson(run2.out), "op") == Field(LastJson(run1.out), "op"));
  RequireAgree(c, acct, 10s);
  CHECK(RightsOf(c, 1, acct, "us") == us_before + 150);
}

// Issue 9: under a partial partition (eu–ap cut, us relaying) eu reported ap 11,381 ops behind
// although ap had them all through us, and eu stopped pruning its log. Heartbeats now relay what
// each region holds; eu counts what ap holds by any route.
TEST_CASE(
    "under a partial partition a region fed through a relay is not behind, and pruning goes on",
    "[node][safety]") {
  ClusterOptions options;
  options.proxied = true;
  Cluster c("relay-holds", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  const std::string acct = "relay-wallet";
  REQUIRE(c.api(0).Open(acct).status == 201);
  WaitVisible(c, acct);
  c.Cut(0, 2);  // eu–ap; eu–us and us–ap stay up

  Api eu = c.api(0), ap = c.api(2);
  constexpr int kOps = 30;
  for (int k = 0; k < kOps; ++k) {
    Reply r = eu.Credit(acct, 1, "relayed-" + std::to_string(k));
    INFO(r.raw << r.transport_error);
    REQUIRE(r.status == 200);
  }
  const std::uint64_t eu_ops = Field(eu.Cluster().body, "applied").at("eu").get<std::uint64_t>();
  // ap gets them through us.
  REQUIRE(WaitUntil(
      [&] {
        Reply r = ap.Account(acct);
        return r.status == 200 && Int(r.body, "balance") == kOps;
      },
      15s));
  json view;
  const bool settled = WaitUntil(
      [&] {
        view = eu.Cluster().body;
        const json ap_at_eu = PeerEntry(view, "ap");
        // Unreachable only after peer_timeout_ms (400 ms here) without a word from ap: the
        // credits above can take less since the cut.
        return Field(ap_at_eu, "ops_behind") == 0 &&
               Field(view, "log_floor").value("eu", std::uint64_t{0}) >= eu_ops &&
               ap_at_eu.value("reachable", true) == false;
      },
      15s);
  INFO("eu's view: " << view.dump() << "\n" << c.ProxyState());
  CHECK(settled);
  CHECK(PeerEntry(view, "ap").value("reachable", true) == false);  // the cut is real
}

namespace {

Reply ReplicatedWrite(Api& api, const std::string& kind, const std::string& account,
                      std::int64_t amount, const std::string& key,
                      const std::string& durability = "replicated") {
  return api.Call("POST", "/v1/accounts/" + account + "/" + kind, json{{"amount", amount}}.dump(),
                  {{"Idempotency-Key", key}, {"Durability", durability}});
}

}  // namespace

// Issue 9: an op acknowledged by a region whose disk is lost before any peer got it is the one loss
// a region cannot prevent alone. With durability "replicated" the answer waits until another
// region holds the op durably, so wiping the answering region's disk right after loses nothing.
TEST_CASE("durability replicated: an acknowledged op survives the loss of the disk that answered",
          "[node][safety][durability]") {
  ClusterOptions options;
  options.proxied = true;
  options.extra_toml = "[durability]\nwait_ms = 700\n";
  Cluster c("durability", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  const std::string acct = "durable-wallet";
  REQUIRE(c.api(0).Open(acct, 300).status == 201);
  WaitVisible(c, acct);
  Api eu = c.api(0);

  Reply bad = ReplicatedWrite(eu, "credits", acct, 1, "bad-header", "somewhere");
  CHECK(bad.status == 400);
  CHECK(bad.raw.find("Durability") != std::string::npos);

  std::vector<json> acked;
  for (int k = 0; k < 10; ++k) {
    Reply r = ReplicatedWrite(eu, "credits", acct, 10, "rep-" + std::to_string(k));
    INFO(r.raw << r.transport_error);
    REQUIRE(r.status == 200);
    CHECK(Field(r.body, "replicated") == true);
    acked.push_back(r.body["op"]);
  }
  // Local durability (the default) answers at once and says whether the op is replicated yet.
  Reply local = eu.Credit(acct, 1, "local-1");
  REQUIRE(local.status == 200);
  CHECK(local.body.contains("replicated"));

  // Cut off: the answer says the op is accepted but not replicated, and names it.
  c.CutAll();
  WaitIsolated(c);
  Reply cut = ReplicatedWrite(eu, "debits", acct, 5, "rep-cut");
  INFO("while cut off: " << cut.status << " " << cut.raw);
  CHECK(cut.status == 503);
  CHECK(ErrorField(cut, "replicated") == false);
  CHECK(ErrorField(cut, "op").value("region", "") == "eu");
  CHECK(ErrorField(cut, "message").get<std::string>().find("same Idempotency-Key") !=
        std::string::npos);
  c.HealAll();
  REQUIRE(c.WaitConnected(10s));
  Reply retried = ReplicatedWrite(eu, "debits", acct, 5, "rep-cut");
  INFO("retried after the heal: " << retried.raw);
  CHECK(retried.status == 200);
  CHECK(Field(retried.body, "replicated") == true);
  CHECK(Field(retried.body, "op") == ErrorField(cut, "op"));
  CHECK(retried.header("Idempotent-Replayed") == "true");

  // eu's disk is lost right after it answered: every replicated op comes back from its peers.
  REQUIRE(c.Stop(0) == 0);
  std::filesystem::remove_all(c.data_dir(0));
  REQUIRE_START(c, 0);
  REQUIRE(c.WaitConnected(30s));
  auto agreement = c.WaitAgree(acct, 20s);
  INFO(Differences(agreement));
  CHECK(agreement.agree);
  for (int k = 0; k < 10; ++k) {
    Reply again = ReplicatedWrite(eu, "credits", acct, 10, "rep-" + std::to_string(k));
    INFO("retry of rep-" << k << ": " << again.raw);
    CHECK(again.status == 200);
    CHECK(Field(again.body, "op") == acked[k]);
  }
  Reply view = eu.Account(acct);
  REQUIRE(view.status == 200);
  CHECK(Int(view.body, "balance") == 10 * 10 + 1 - 5);
}
