// A test-only cluster of Replicas joined by an in-memory message queue that a test controls:
// deliver in order, shuffled, with duplicates, or not at all. Stores are ideal (every Effects is
// "synced" at once); the simulator (sim/) is where faults in storage and time live.
//
// Each region also keeps a PersistedStore: exactly what its replica was told to write (ops, keys,
// high-water mark, folds), so a test can restart a region from it with Restart(). Each region may
// run its physical clock skewed from the cluster's (`skew_ms`), e.g. hours behind after a restart.

#ifndef TALLY_TESTS_CORE_CLUSTER_FIXTURE_H_
#define TALLY_TESTS_CORE_CLUSTER_FIXTURE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/commit_gate.h"
#include "core/persist_batch.h"
#include "core/replica.h"

namespace tally::testing {

struct InFlight {
  RegionId from;
  RegionId to;
  Message msg;
};

// What one region's store holds: every PersistBatch its CommitGate handed out, applied in the
// order core/persist_batch.h gives. Every batch is synced as soon as it is written (an ideal disk).
struct PersistedStore {
  Hlc high_water;
  std::vector<Fence> fences;
  Hlc frontier;
  VersionVector log_floor;
  std::map<std::string, AccountCheckpoint> checkpoints;
  std::map<Dot, Op> ops;
  std::map<std::tuple<std::string, KeyHash, bool>, KeyRecord> keys;  // (account, key, displaced)
  // Statement lines (Fold::lines), by account and key: a history store. A snapshot that replaces
  // the store drops them with the rest, as tallyd's does.
  std::map<std::pair<std::string, CanonicalKey>, StatementLine> history;
  std::uint64_t batches = 0;

  void Apply(const PersistBatch& b) {
    ++batches;
    if (b.replaces_store) {  // a snapshot was installed: everything but the high-water mark goes
      frontier = Hlc{};
      log_floor = VersionVector{};
      checkpoints.clear();
      ops.clear();
      keys.clear();
      history.clear();
    }
    for (const KeyRecordId& k : b.forget_keys) keys.erase({k.account, k.key, k.displaced});
    for (const KeyRecord& k : b.keys) keys[{k.account, k.key, k.displaced}] = k;
    for (const Op& op : b.ops) ops[op.dot] = op;
    if (!b.high_water.is_zero()) high_water = b.high_water;
    if (!b.fences.empty()) fences = b.fences;
    for (const Fold& fold : b.folds) {
      frontier = fold.frontier;
      log_floor = fold.log_floor;
      for (const AccountCheckpoint& c : fold.checkpoints) checkpoints[c.config.id] = c;
      for (const StatementLine& l : fold.lines) history[{l.account, l.key}] = l;
      for (auto it = ops.begin(); it != ops.end();) {
        it = it->first.seq <= log_floor.get(it->first.origin) ? ops.erase(it) : std::next(it);
      }
    }
  }

  RecoveredState Read() const {
    RecoveredState st;
    st.high_water = high_water;
    st.fences = fences;
    st.frontier = frontier;
    st.log_floor = log_floor;
    for (const auto& [id, c] : checkpoints) st.checkpoints.push_back(c);
    for (const auto& [dot, op] : ops) st.ops.push_back(op);
    for (const auto& [k, rec] : keys) st.keys.push_back(rec);
    return st;
  }
};

class Cluster {
 public:
  // Region r's wall clock: PhysicalNow(r).
  class RegionWallClock final : public WallClock {
   public:
    RegionWallClock(const Cluster* c, RegionId r) : c_(c), r_(r) {}
    std::uint64_t NowMs() const override { return c_->PhysicalNow(r_); }

   private:
    const Cluster* c_;
    RegionId r_;
  };

  // `tweak` may adjust the options of every region (timeouts, rebalancer, bugs).
  template <typename Tweak>
  Cluster(RegionId n, Tweak tweak) {
    for (RegionId r = 0; r < n; ++r) {
      ReplicaOptions o;
      o.cluster_id = "test";
      for (RegionId i = 0; i < n; ++i) o.regions.push_back("r" + std::to_string(i));
      o.self = r;
      tweak(o);
      options.push_back(o);
      walls.push_back(std::make_unique<RegionWallClock>(this, r));
      replicas.push_back(std::make_unique<Replica>(o, *walls.back()));
      gates.push_back(std::make_unique<CommitGate>(o.bugs.ack_before_sync));
    }
    stores.resize(n);
    skew_ms.assign(n, 0);
  }
  explicit Cluster(RegionId n) : Cluster(n, [](ReplicaOptions&) {}) {}
  // The replicas' wall clocks point at this object.
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  Replica& at(RegionId r) { return *replicas[r]; }
  RegionId size() const { return static_cast<RegionId>(replicas.size()); }

  // The wall clock region r reads: the cluster's, shifted by its skew. Replicas get `now`, the
  // cluster's time, as their monotonic clock: a skew changed mid-test is a wall clock stepping.
  std::uint64_t PhysicalNow(RegionId r) const {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(now) + skew_ms[r]);
  }

  // Runs a command at region r and returns its completion (if it completed at once).
  CommandResult Run(RegionId r, CommandBody body, bool replicated = false) {
    Effects e;
    if (before_call) before_call(r);
    at(r).Submit(Command{++next_id, std::move(body), replicated}, now, &e);
    const std::size_t before = completions.size();
    Absorb(r, e);
    CommandResult res;
    res.id = 0;
    res.status = Status::Unavailable("no completion");
    for (std::size_t i = before; i < completions.size(); ++i) {
      if (completions[i].id == next_id) res = completions[i];
    }
    return res;
  }

  // The completion of command `id`, if it has completed (at once or later).
  std::optional<CommandResult> CompletionOf(std::uint64_t id) const {
    for (const CommandResult& c : completions)
      if (c.id == id) return c;
    return std::nullopt;
  }

  // Through region r's CommitGate, as tallyd and the simulator do: the gate's batch is written
  // and synced at once, then what it held leaves.
  void Absorb(RegionId r, Effects& e) {
    std::optional<Effects> seen;
    if (observe) seen = e;  // the gate takes e's fields
    persisted_ops += e.ops.size();
    CommitGate::Release out;
    gates[r]->Absorb(&e, &out);
    while (gates[r]->has_open_batch()) {
      stores[r].Apply(gates[r]->StartWrite());
      gates[r]->Synced(&out);
    }
    if (observe) observe(r, *seen);
    for (auto& c : out.completions) completions.push_back(std::move(c));
    for (auto& o : out.send) queue.push_back(InFlight{r, o.to, std::move(o.msg)});
  }

  void Tick(std::uint64_t advance_ms = 10) {
    now += advance_ms;
    for (RegionId r = 0; r < replicas.size(); ++r) {
      Effects e;
      if (before_call) before_call(r);
      at(r).Tick(now, &e);
      Absorb(r, e);
    }
  }

  // A transport of region `from` connected to `to`: `from` sends its Hello.
  void Connect(RegionId from, RegionId to) {
    Effects e;
    if (before_call) before_call(from);
    at(from).OnConnected(to, now, &e);
    Absorb(from, e);
  }

  // Delivers every queued message (and what they cause) in FIFO order, while `link_up` allows.
  template <typename LinkUp>
  void Deliver(LinkUp link_up, std::size_t max_messages = 1000000) {
    std::vector<InFlight> held;
    while (!queue.empty() && max_messages-- > 0) {
      InFlight m = std::move(queue.front());
      queue.pop_front();
      if (!link_up(m.from, m.to)) continue;  // lost
      Effects e;
      if (before_call) before_call(m.to);
      at(m.to).OnMessage(m.from, m.msg, now, &e);
      Absorb(m.to, e);
    }
  }
  void Deliver() {
    Deliver([](RegionId, RegionId) { return true; });
  }

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
    SettleOver([](RegionId, RegionId) { return true; }, rounds);
  }

  // As Settle, over the links `link_up` lets through only (a partition); stops early, before a
  // round, once `done()` holds.
  template <typename LinkUp, typename Done>
  void SettleOver(LinkUp link_up, int rounds, Done done) {
    for (int i = 0; i < rounds && !done(); ++i) {
      Tick(50);
      Deliver(link_up);
    }
  }
  template <typename LinkUp>
  void SettleOver(LinkUp link_up, int rounds) {
    SettleOver(link_up, rounds, [] { return false; });
  }

  // Crashes region r and starts a fresh Replica from what its store holds, with its physical clock
  // now `skew` ms off the cluster's. Messages in flight stay in flight (the transport is weak).
  // With `rejoin`, r then exchanges Hellos with every peer (only Hellos are delivered) so that it
  // serves writes again; without it the test lets gossip do that.
  Status Restart(RegionId r, std::int64_t skew = 0, bool rejoin = true) {
    skew_ms[r] = skew;
    replicas[r] = std::make_unique<Replica>(options[r], *walls[r]);
    gates[r]->Crash();
    Status s = replicas[r]->Recover(stores[r].Read(), now);
    if (!s.ok() || !rejoin) return s;
    for (RegionId p = 0; p < size(); ++p) {
      if (p != r) Connect(r, p);
    }
    for (bool more = true; more;) {
      more = false;
      std::deque<InFlight> rest;
      std::deque<InFlight> now_queue;
      now_queue.swap(queue);
      for (InFlight& m : now_queue) {
        if (std::holds_alternative<Hello>(m.msg) && (m.from == r || m.to == r)) {
          Effects e;
          at(m.to).OnMessage(m.from, m.msg, now, &e);
          Absorb(m.to, e);
          more = true;
        } else {
          rest.push_back(std::move(m));
        }
      }
      for (InFlight& m : queue) rest.push_back(std::move(m));
      queue.swap(rest);
    }
    return s;
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

  std::vector<ReplicaOptions> options;
  std::vector<std::unique_ptr<RegionWallClock>> walls;  // before replicas: they read them
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::unique_ptr<CommitGate>> gates;
  std::vector<PersistedStore> stores;
  std::vector<std::int64_t> skew_ms;
  // Hooks for property checks: called before every call into a replica, and with every Effects
  // right after it was persisted (before what it released is queued).
  std::function<void(RegionId)> before_call;
  std::function<void(RegionId, const Effects&)> observe;
  std::deque<InFlight> queue;
  std::vector<CommandResult> completions;
  std::uint64_t now = 1'700'000'000'000;  // ms
  std::uint64_t next_id = 0;
  std::size_t persisted_ops = 0;
};

// A Cluster tweak: no rebalancing and no waits, so a debit is decided at once on what its region
// holds (the tests of transfers, holds and budgets count rights by hand).
inline void NoWaits(ReplicaOptions& o) {
  o.rebalance_interval_ms = 0;
  o.rights_wait_ms = 0;
  o.finality_wait_ms = 0;
}

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
