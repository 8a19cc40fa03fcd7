// A test-only cluster of Replicas joined by an in-memory message queue that a test controls:
// deliver in order, shuffled, with duplicates, or not at all. Stores are ideal (every Effects is
// "synced" at once); the simulator (sim/) is where faults in storage and time live.

#ifndef TALLY_TESTS_CORE_CLUSTER_FIXTURE_H_
#define TALLY_TESTS_CORE_CLUSTER_FIXTURE_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/replica.h"

namespace tally::testing {

struct InFlight {
  RegionId from;
  RegionId to;
  Message msg;
};

class Cluster {
 public:
  // `tweak` may adjust the options of every region (timeouts, rebalancer, bugs).
  template <typename Tweak>
  Cluster(RegionId n, Tweak tweak) {
    for (RegionId r = 0; r < n; ++r) {
      ReplicaOptions o;
      o.cluster_id = "test";
      for (RegionId i = 0; i < n; ++i) o.regions.push_back("r" + std::to_string(i));
      o.self = r;
      tweak(o);
      replicas.push_back(std::make_unique<Replica>(o));
    }
  }
  explicit Cluster(RegionId n) : Cluster(n, [](ReplicaOptions&) {}) {}

  Replica& at(RegionId r) { return *replicas[r]; }

  // Runs a command at region r and returns its completion (if it completed at once).
  CommandResult Run(RegionId r, CommandBody body) {
    Effects e;
    at(r).Submit(Command{++next_id, std::move(body)}, now, &e);
    Absorb(r, e);
    CommandResult res;
    res.id = 0;
    res.status = Status::Unavailable("no completion");
    for (auto& c : e.completions) {
      if (c.id == next_id) res = c;
    }
    return res;
  }

  void Absorb(RegionId r, Effects& e) {
    for (auto& c : e.completions) completions.push_back(c);
    for (auto& o : e.send) queue.push_back(InFlight{r, o.to, std::move(o.msg)});
    persisted_ops += e.ops.size();
  }

  void Tick(std::uint64_t advance_ms = 10) {
    now += advance_ms;
    for (RegionId r = 0; r < replicas.size(); ++r) {
      Effects e;
      at(r).Tick(now, &e);
      Absorb(r, e);
    }
  }

  // Delivers every queued message (and what they cause) in FIFO order, while `link_up` allows.
  template <typename LinkUp>
  void Deliver(LinkUp link_up, std::size_t max_messages = 1000000) {
    std::vector<InFlight> held;
    while (!queue.empty() && max_messages-- > 0) {
      InFlight m = std::move(queue.front());
      queue.erase(queue.begin());
      if (!link_up(m.from, m.to)) continue;  // lost
      Effects e;
      at(m.to).OnMessage(m.from, m.msg, now, &e);
      Absorb(m.to, e);
    }
  }
  void Deliver() { Deliver([](RegionId, RegionId) { return true; }); }

  // Shuffles the queue and duplicates some messages: the weak transport contract.
  void Scramble(std::mt19937_64& rng, double dup_rate = 0.2) {
    std::vector<InFlight> extra;
    std::bernoulli_distribution dup(dup_rate);
    for (auto& m : queue)
      if (dup(rng)) extra.push_back(m);
    for (auto& m : extra) queue.push_back(std::move(m));
    std::shuffle(queue.begin(), queue.end(), rng);
  }

  // Ticks and delivers until quiet: heartbeats flow, so the frontier advances and folds happen.
  void Settle(int rounds = 40) {
    for (int i = 0; i < rounds; ++i) {
      Tick(50);
      Deliver();
    }
  }

  bool Converged(const std::string& account) {
    AccountView first;
    if (!at(0).GetAccount(account, &first).ok()) return false;
    for (RegionId r = 1; r < replicas.size(); ++r) {
      AccountView v;
      if (!at(r).GetAccount(account, &v).ok() || v.digest != first.digest) return false;
    }
    return true;
  }

  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<InFlight> queue;
  std::vector<CommandResult> completions;
  std::uint64_t now = 1'700'000'000'000;  // ms
  std::uint64_t next_id = 0;
  std::size_t persisted_ops = 0;
};

inline AccountConfig Config(const std::string& id, Amount overdraft = 0, Amount flat = 0,
                            std::uint32_t bps = 0) {
  AccountConfig c;
  c.id = id;
  c.currency = "EUR";
  c.overdraft_limit = overdraft;
  c.fee = FeePolicy{flat, bps};
  return c;
}

}  // namespace tally::testing

#endif  // TALLY_TESTS_CORE_CLUSTER_FIXTURE_H_
