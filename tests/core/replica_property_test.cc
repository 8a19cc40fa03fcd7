// Properties of the replica over random runs: 3–7 regions, random concurrent commands (opens,
// credits, debits, transfers, retries of keys at other regions), random delivery (shuffled,
// duplicated, dropped, partitioned), random restarts from what was persisted with clocks hours
// off, then a full heal. Checked at every call (replica_checks.h, Watch): conservation I3, donors
// give only what they hold, accepted debits covered by rights + line, a dot names one op, no
// region originates a key twice, the frontier never moves back. Checked after the heal:
// convergence I1 (same digests, state digest, derived events everywhere), agreement with the
// reference reconciliation I7, the floor I2, one survivor per key I6, finality, and every command
// answered exactly once with an answer that names the right op.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "cluster_fixture.h"
#include "replica_checks.h"
#include "test_seed.h"

using namespace tally;
using namespace tally::testing;

namespace {

constexpr std::int64_t kHourMs = 3'600'000;

struct RunShape {
  RegionId regions = 3;
  bool rebalance = false;
  std::uint64_t rights_wait_ms = 0;
  bool restarts = false;
  int steps = 200;
  int accounts = 1;
  double drop = 0.0;
};

RunShape ShapeFor(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  RunShape s;
  s.regions = 3 + static_cast<RegionId>(rng() % 5);  // 3..7
  s.rebalance = rng() % 2;
  s.rights_wait_ms = rng() % 2 ? 30 : 0;
  s.restarts = rng() % 3 == 0;
  s.steps = 150 + static_cast<int>(rng() % 250);
  s.accounts = 1 + static_cast<int>(rng() % 3);
  s.drop = (rng() % 4) * 0.1;
  return s;
}

// What the generated runs exercised, summed over all cases: the suite fails if the generator
// degenerates and stops producing forks, waits, restarts, replays or key misuse.
struct Coverage {
  std::uint64_t fee_events = 0, void_events = 0, restarts = 0, rights_requests = 0,
                rights_grants = 0, rebalance_transfers = 0, replays = 0, key_reused = 0,
                conflicts = 0, insufficient = 0, overdraft_debits = 0, not_found = 0,
                concurrent_config_opens = 0, duplicate_ops = 0, completions_later = 0;
};

struct Issued {
  RegionId region = 0;
  CommandBody body;
  bool may_be_lost = false;  // was waiting at a region that crashed
};

std::string AccountOf(const CommandBody& b) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, OpenAccount>)
          return x.config.id;
        else if constexpr (std::is_same_v<T, Transfer>)
          return x.from;
        else if constexpr (std::is_same_v<T, CaptureHold> || std::is_same_v<T, ReleaseHold>)
          return std::string();  // the hold names its account
        else
          return x.account;
      },
      b);
}

class RandomRun {
 public:
  RandomRun(std::uint64_t seed, const RunShape& shape)
      : shape_(shape),
        rng_(seed ^ 0x5eed),
        c_(shape.regions,
           [&](ReplicaOptions& o) {
             o.rebalance_interval_ms = shape.rebalance ? 150 : 0;
             o.rights_wait_ms = shape.rights_wait_ms;
             o.heartbeat_interval_ms = 40;
             o.peer_timeout_ms = 400;
             // The heal may leave two regions cut for good, and the run settles for 4 s: a
             // region restarted among them resumes on its other peers' answers (and relays).
             o.rejoin_wait_ms = 1000;
             o.resend_after_ms = 200;
             o.relay_delay_ms = 100;
             o.max_batch_ops = 8;  // small batches: more interleavings
             o.max_inflight_ops = 64;
           }),
        watch_(c_),
        up_(shape.regions, std::vector<bool>(shape.regions, true)) {
    for (int i = 0; i < shape.accounts; ++i) {
      AccountConfig cfg =
          Config("acct-" + std::to_string(i), Amount(rng_() % 4) * 60,
                 static_cast<Amount>(rng_() % 20), static_cast<std::uint32_t>(rng_() % 2000));
      configs_.push_back(cfg);
    }
    trace_ = std::getenv("TALLY_TRACE") != nullptr;
  }

  void Go() {
    // Clocks disagree: some regions run ahead (a few seconds, sometimes an hour), some behind.
    for (RegionId r = 0; r < shape_.regions; ++r) {
      const unsigned k = rng_() % 8;
      if (k == 0)
        c_.skew_ms[r] = kHourMs;
      else if (k < 3)
        c_.skew_ms[r] = static_cast<std::int64_t>(rng_() % 5000);
      else if (k < 4)
        c_.skew_ms[r] = -static_cast<std::int64_t>(rng_() % 5000);
    }
    c_.Settle(2);
    // The first account is opened up front so that most runs have traffic.
    Submit(static_cast<RegionId>(rng_() % shape_.regions), OpenAccount{configs_[0]});
    for (int i = 0; i < shape_.steps; ++i) Step();
    Heal();
  }

  void CheckAfterHeal();
  void AddCoverage(Coverage* cov);

 private:
  RegionId RandomRegion() { return static_cast<RegionId>(rng_() % shape_.regions); }
  Amount RandomAmount(Amount max) { return 1 + static_cast<Amount>(rng_() % max); }

  void Log(const std::string& s) {
    if (trace_)
      std::fprintf(stderr, "[t=%llu] %s\n", static_cast<unsigned long long>(c_.now), s.c_str());
  }

  void Submit(RegionId r, CommandBody body) {
    const std::uint64_t id = c_.next_id + 1;
    issued_[id] = Issued{r, body, false};
    const CommandResult res = c_.Run(r, body);
    if (res.status.code() == Code::kIdempotencyKeyReused) ++key_reused_;
    if (res.status.code() == Code::kConflict) ++conflicts_;
    if (res.status.code() == Code::kInsufficientFunds) ++insufficient_;
    if (res.status.code() == Code::kNotFound) ++not_found_;
    if (res.status.code() == Code::kUnavailable) ++later_;
    Log("cmd " + std::to_string(id) + " at r" + std::to_string(r) + " on " + AccountOf(body) +
        " -> " + res.status.ToString() + (res.replayed ? " (replayed)" : ""));
    if (const auto* open = std::get_if<OpenAccount>(&body);
        open && res.status.ok() && !res.replayed)
      opened_[open->config.id].insert(res.op);
    if (std::holds_alternative<OpenAccount>(body) && res.status.ok() && !res.replayed) {
      AccountConfig cfg = std::get<OpenAccount>(body).config;
      open_configs_[cfg.id].insert(ConfigKey(cfg));
    }
    if (const auto* cr = std::get_if<Credit>(&body); cr && !cr->key.empty()) keyed_.push_back(body);
    if (const auto* db = std::get_if<Debit>(&body); db && !db->key.empty()) keyed_.push_back(body);
  }

  static std::string ConfigKey(const AccountConfig& c) {
    std::string s = c.currency + "/" + std::to_string(c.overdraft_limit) + "/" +
                    std::to_string(c.fee.flat) + "/" + std::to_string(c.fee.bps);
    for (Amount l : c.lines) s += "/" + std::to_string(l);
    return s;
  }

  // Keys are numbered per account, as clients that number their requests do: one key string is in
  // use on every account at once, and must bind only on its own (issue 11, item 9).
  std::string NewKey(const std::string& account) {
    return "key-" + std::to_string(++keys_made_[account]);
  }

  void Command() {
    const RegionId r = RandomRegion();
    const std::string& account = configs_[rng_() % configs_.size()].id;
    const unsigned k = rng_() % 100;
    if (k < 6) {
      // Open: usually the account's config; sometimes a concurrent open with another one.
      AccountConfig cfg = configs_[rng_() % configs_.size()];
      if (rng_() % 3 == 0) cfg.overdraft_limit += 30;
      Submit(r, OpenAccount{cfg});
    } else if (k < 30) {
      Submit(r, Credit{account, RandomAmount(200), rng_() % 5 ? NewKey(account) : ""});
    } else if (k < 65) {
      Submit(r, Debit{account, RandomAmount(120), rng_() % 5 ? NewKey(account) : ""});
    } else if (k < 75) {
      RegionId to = RandomRegion();
      if (to == r) to = (to + 1) % shape_.regions;
      Submit(r, TransferRights{account, to, RandomAmount(100)});
    } else if (!keyed_.empty()) {
      // A client retry: the same request at any region (often another one) ...
      CommandBody b = keyed_[rng_() % keyed_.size()];
      if (k >= 93) {
        // ... or, rarely, a client bug: the same key with another amount.
        if (auto* cr = std::get_if<Credit>(&b)) cr->amount += 1;
        if (auto* db = std::get_if<Debit>(&b)) db->amount += 1;
      }
      Submit(r, b);
    }
  }

  void Deliver(std::size_t max_messages) {
    std::bernoulli_distribution drop(healed_ ? 0.0 : shape_.drop);
    c_.Deliver([&](RegionId from, RegionId to) { return up_[from][to] && !drop(rng_); },
               max_messages);
  }

  void Step() {
    const unsigned k = rng_() % 100;
    if (k < 40) {
      Command();
    } else if (k < 60) {
      c_.Tick(1 + rng_() % 80);
    } else if (k < 85) {
      if (rng_() % 3 == 0) c_.Scramble(rng_, 0.2);
      Deliver(1 + rng_() % 20);
    } else if (k < 92) {
      // A new partition: each directed link up with probability p.
      const double p = 0.3 + 0.1 * static_cast<double>(rng_() % 8);
      std::bernoulli_distribution link(p);
      for (RegionId a = 0; a < shape_.regions; ++a)
        for (RegionId b = 0; b < shape_.regions; ++b) up_[a][b] = a == b || link(rng_);
      Log("partition");
    } else if (k < 94 && shape_.restarts) {
      Restart(RandomRegion());
    } else {
      Deliver(100000);
    }
  }

  void Restart(RegionId r) {
    const VersionVector applied = c_.at(r).applied();
    // Whatever waited at r is gone with it; the client gets no answer (it would retry).
    for (auto& [id, is] : issued_) {
      if (is.region == r && !c_.CompletionOf(id)) is.may_be_lost = true;
    }
    const std::int64_t skew = -static_cast<std::int64_t>(rng_() % (3 * kHourMs)) +
                              static_cast<std::int64_t>(rng_() % 60'000);
    ++restarts_;
    Log("restart r" + std::to_string(r) + " skew " + std::to_string(skew));
    const Status s = c_.Restart(r, skew, /*rejoin=*/false);  // gossip rejoins it
    INFO("restart of r" << r);
    REQUIRE(s.ok());
    REQUIRE(c_.at(r).applied() == applied);  // ideal store: nothing it applied is lost
    watch_.Restarted(r);
    // Nothing it issued before is at or above its clock now (the Watch checks what it issues
    // next, whatever the wall clock says).
    REQUIRE(c_.at(r).clock() >= watch_.IssuedMax(r));
  }

  void Heal() {
    for (auto& row : up_) std::fill(row.begin(), row.end(), true);
    if (rng_() % 3 == 0) {
      // A partial heal: one pair stays cut for good; its ops must travel through relays.
      const RegionId a = RandomRegion();
      const RegionId b =
          static_cast<RegionId>((a + 1 + rng_() % (shape_.regions - 1)) % shape_.regions);
      up_[a][b] = up_[b][a] = false;
      Log("heal, but r" + std::to_string(a) + " and r" + std::to_string(b) + " stay cut");
    }
    Log("heal");
    healed_ = true;
    for (int i = 0; i < 80; ++i) {
      c_.Tick(50);
      Deliver(100000);
    }
  }

  RunShape shape_;
  std::mt19937_64 rng_;
  Cluster c_;
  Watch watch_;
  std::vector<std::vector<bool>> up_;
  std::vector<AccountConfig> configs_;
  std::map<std::uint64_t, Issued> issued_;
  std::map<std::string, std::set<Dot>> opened_;
  std::map<std::string, std::set<std::string>> open_configs_;
  std::vector<CommandBody> keyed_;
  std::map<std::string, std::uint64_t> keys_made_;  // per account
  std::uint64_t key_reused_ = 0, conflicts_ = 0, insufficient_ = 0, not_found_ = 0, later_ = 0,
                restarts_ = 0;
  bool trace_ = false;
  bool healed_ = false;
};

void RandomRun::CheckAfterHeal() {
  const RegionId n = shape_.regions;
  // I1: the same accounts, the same ops, the same state everywhere.
  const std::vector<std::string> ids = c_.at(0).AccountIds();
  VersionVector expected;
  for (const auto& [dot, op] : watch_.ops)
    expected.set(dot.origin, std::max(expected.get(dot.origin), dot.seq));
  for (RegionId r = 0; r < n; ++r) {
    INFO("region " << r);
    CHECK(c_.at(r).AccountIds() == ids);
    CHECK(c_.at(r).applied() == expected);
    CHECK(c_.at(r).StateDigest() == c_.at(0).StateDigest());
  }
  for (const auto& [id, dots] : opened_) CHECK(c_.at(0).HasAccount(id));

  for (const std::string& id : ids) {
    INFO("account " << id);
    const AccountView v0 = View(c_, 0, id);
    std::vector<DerivedEvent> ev0;
    REQUIRE(c_.at(0).DerivedEvents(id, &ev0).ok());
    for (RegionId r = 1; r < n; ++r) {
      INFO("region " << r);
      const AccountView v = View(c_, r, id);
      CHECK(v.digest == v0.digest);
      CHECK(v.balance == v0.balance);
      CHECK(v.raw_balance == v0.raw_balance);
      CHECK(v.fees == v0.fees);
      CHECK(v.voids == v0.voids);
      CHECK(v.config == v0.config);
      std::vector<DerivedEvent> ev;
      REQUIRE(c_.at(r).DerivedEvents(id, &ev).ok());
      CHECK(ev == ev0);
    }
    // Finality: after the heal nothing is tentative.
    for (RegionId r = 0; r < n; ++r) {
      const AccountView v = View(c_, r, id);
      CHECK_FALSE(v.tentative);
      CHECK(v.final_balance == v.balance);
    }

    // I7: the replica's incremental result is the reference reconciliation of the union.
    const std::vector<Op> ops = watch_.OpsOf(id);
    const Reconciliation ref = Reconcile(v0.config.fee, n, ops);
    if (ref.events.size() < c_.options[0].max_events_per_account) CHECK(ev0 == ref.events);
    CHECK(v0.balance == ref.state.balance);
    CHECK(v0.fees == ref.state.total_fees());
    CHECK(v0.voids == ref.state.total_voids());
    CHECK(v0.episodes == ref.state.episodes);
    for (RegionId r = 0; r < n; ++r) {
      CHECK(v0.regions[r].fees == ref.state.fees[r]);
      CHECK(v0.regions[r].voids == ref.state.voids[r]);
    }

    // I2 over the union, whatever configs concurrent opens proposed: the canonically first one
    // wins, and no region may have used a line of a config that could still lose.
    {
      INFO("effective floor: raw " << v0.raw_balance << " voids " << SignedVoids(ev0) << " limit "
                                   << v0.config.overdraft_limit << ", configs opened "
                                   << open_configs_[id].size());
      CHECK(v0.raw_balance + SignedVoids(ev0) >= -v0.config.overdraft_limit);
      // Per region too: what r holds once voided credits are clawed back and voided debits
      // refunded (fees aside: they are debt on top) never goes below its line.
      for (RegionId r = 0; r < n; ++r) {
        INFO("region " << r << " rights " << v0.regions[r].rights << " fees " << v0.regions[r].fees
                       << " line " << v0.regions[r].overdraft_line);
        CHECK(v0.regions[r].rights + v0.regions[r].fees >= -v0.regions[r].overdraft_line);
      }
    }

    // I6: exactly one op per idempotency key and account survives.
    std::set<CanonicalKey> voided;
    for (const DerivedEvent& e : ev0)
      if (e.kind == DerivedKind::kVoid) voided.insert(e.op);
    std::map<std::pair<std::string, std::string>, int> survivors;
    for (const Op& op : ops) {
      if (op.key.empty()) continue;
      survivors[{op.account, op.key}] += voided.count(op.canonical()) ? 0 : 1;
    }
    for (const auto& [account_key, count] : survivors) {
      INFO("account " << account_key.first << " key " << account_key.second);
      CHECK(count == 1);
    }
  }

  // Every command answered exactly once (unless it was waiting at a region that crashed), and
  // each answer names an op of that very request.
  std::map<std::uint64_t, int> answers;
  for (const CommandResult& res : c_.completions) ++answers[res.id];
  for (const auto& [id, is] : issued_) {
    INFO("command " << id << " at r" << is.region << " on " << AccountOf(is.body));
    const int count = answers.count(id) ? answers[id] : 0;
    if (is.may_be_lost) {
      CHECK(count <= 1);
    } else {
      CHECK(count == 1);
    }
  }
  for (const CommandResult& res : c_.completions) {
    const auto it = issued_.find(res.id);
    REQUIRE(it != issued_.end());
    if (!res.status.ok() || res.op.seq == 0) continue;
    const auto op = watch_.ops.find(res.op);
    INFO("command " << res.id << " answered with op " << res.op.ToString());
    REQUIRE(op != watch_.ops.end());
    CHECK(op->second.account == AccountOf(it->second.body));
    CHECK(op->second.hlc == res.hlc);
    if (const auto* cr = std::get_if<Credit>(&it->second.body)) {
      CHECK(op->second.kind == OpKind::kCredit);
      CHECK(op->second.amount == cr->amount);
      CHECK(op->second.key == cr->key);
    } else if (const auto* db = std::get_if<Debit>(&it->second.body)) {
      CHECK(op->second.kind == OpKind::kDebit);
      CHECK(op->second.amount == db->amount);
      CHECK(op->second.key == db->key);
    } else if (const auto* tr = std::get_if<TransferRights>(&it->second.body)) {
      CHECK(op->second.kind == OpKind::kRights);
      CHECK(op->second.amount == tr->amount);
      CHECK(op->second.to == tr->to);
    }
    if (!res.replayed) CHECK(res.op.origin == it->second.region);
  }
}

void RandomRun::AddCoverage(Coverage* cov) {
  for (const std::string& id : c_.at(0).AccountIds()) {
    std::vector<DerivedEvent> ev;
    REQUIRE(c_.at(0).DerivedEvents(id, &ev).ok());
    for (const DerivedEvent& e : ev) {
      if (e.kind == DerivedKind::kOverdraftFee) ++cov->fee_events;
      if (e.kind == DerivedKind::kVoid) ++cov->void_events;
    }
    if (open_configs_[id].size() > 1) ++cov->concurrent_config_opens;
  }
  // Stats of replicas restarted are partial; good enough for coverage.
  for (RegionId r = 0; r < shape_.regions; ++r) {
    const ReplicaStats& st = c_.at(r).stats();
    cov->rights_requests += st.rights_requests_sent;
    cov->rights_grants += st.rights_granted;
    cov->rebalance_transfers += st.rebalance_transfers;
    cov->replays += st.replays;
    cov->overdraft_debits += st.overdraft_debits;
    cov->duplicate_ops += st.duplicate_ops;
  }
  cov->restarts += restarts_;
  cov->key_reused += key_reused_;
  cov->conflicts += conflicts_;
  cov->insufficient += insufficient_;
  cov->not_found += not_found_;
  cov->completions_later += later_;
}

}  // namespace

TEST_CASE("random concurrent runs converge and keep the money invariants", "[replica][property]") {
  const int cases = 60;
  Coverage cov;
  for (int cs = 0; cs < cases; ++cs) {
    TALLY_INFO_SEED(cs);
    const std::uint64_t seed = CaseSeed(cs);
    const RunShape shape = ShapeFor(seed);
    INFO("regions " << shape.regions << " rebalance " << shape.rebalance << " rights_wait "
                    << shape.rights_wait_ms << " restarts " << shape.restarts << " steps "
                    << shape.steps << " accounts " << shape.accounts << " drop " << shape.drop);
    RandomRun run(seed, shape);
    run.Go();
    run.CheckAfterHeal();
    run.AddCoverage(&cov);
  }
  INFO("fees " << cov.fee_events << " voids " << cov.void_events << " restarts " << cov.restarts
               << " rights requests " << cov.rights_requests << " grants " << cov.rights_grants
               << " rebalance transfers " << cov.rebalance_transfers << " replays " << cov.replays
               << " key reused " << cov.key_reused << " conflicts " << cov.conflicts
               << " insufficient " << cov.insufficient << " overdraft debits "
               << cov.overdraft_debits << " not found " << cov.not_found
               << " concurrent config opens " << cov.concurrent_config_opens << " duplicate ops "
               << cov.duplicate_ops << " waited " << cov.completions_later);
  if (std::getenv("TALLY_COVERAGE")) WARN("coverage of the generated runs");
  CHECK(cov.fee_events > 0);
  CHECK(cov.void_events > 0);
  CHECK(cov.restarts > 0);
  CHECK(cov.rights_requests > 0);
  CHECK(cov.rights_grants > 0);
  CHECK(cov.rebalance_transfers > 0);
  CHECK(cov.replays > 0);
  CHECK(cov.key_reused > 0);
  CHECK(cov.insufficient > 0);
  CHECK(cov.overdraft_debits > 0);
  CHECK(cov.duplicate_ops > 0);
  CHECK(cov.completions_later > 0);
  CHECK(cov.concurrent_config_opens > 0);
}

TEST_CASE("the same run gives the same state: the replica is deterministic",
          "[replica][property]") {
  for (int cs = 0; cs < 5; ++cs) {
    TALLY_INFO_SEED(cs);
    const std::uint64_t seed = CaseSeed(1000 + cs);
    const RunShape shape = ShapeFor(seed);
    std::vector<std::uint64_t> digests;
    for (int rep = 0; rep < 2; ++rep) {
      Cluster c(shape.regions);
      std::mt19937_64 rng(seed);
      c.Settle(2);
      REQUIRE(c.Run(0, OpenAccount{Config("acct", 100, 3, 50)}).status.ok());
      for (int i = 0; i < 100; ++i) {
        const RegionId r = static_cast<RegionId>(rng() % shape.regions);
        if (rng() % 2)
          c.Run(r, Credit{"acct", 1 + static_cast<Amount>(rng() % 50), "c" + std::to_string(i)});
        else
          c.Run(r, Debit{"acct", 1 + static_cast<Amount>(rng() % 50), "d" + std::to_string(i)});
        if (rng() % 4 == 0) c.Scramble(rng);
        if (rng() % 3 == 0) c.Tick(1 + rng() % 40);
        if (rng() % 2 == 0) c.Deliver();
      }
      c.Settle(30);
      digests.push_back(c.at(0).StateDigest());
      for (RegionId r = 1; r < shape.regions; ++r) CHECK(c.at(r).StateDigest() == digests.back());
    }
    CHECK(digests[0] == digests[1]);
  }
}
