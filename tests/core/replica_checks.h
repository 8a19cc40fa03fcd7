// Invariant checks shared by the replica tests: conservation (I3) at one region, the floor (I2)
// over the union of ops, and a Watch that hooks into a Cluster to check, at every region after
// every call, what must hold at every moment (not only after a heal).

#ifndef TALLY_TESTS_CORE_REPLICA_CHECKS_H_
#define TALLY_TESTS_CORE_REPLICA_CHECKS_H_

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cluster_fixture.h"

namespace tally::testing {

// Everything a rejected command must leave alone.
struct Untouched {
  explicit Untouched(Cluster& c, RegionId r)
      : c(c),
        r(r),
        applied(c.at(r).applied()),
        digest(c.at(r).StateDigest()),
        persisted(c.persisted_ops),
        batches(c.stores[r].batches),
        clock(c.at(r).clock()),
        queued(c.queue.size()) {}
  void Check() {
    CHECK(c.at(r).applied() == applied);
    CHECK(c.at(r).StateDigest() == digest);
    CHECK(c.persisted_ops == persisted);
    CHECK(c.stores[r].batches == batches);
    CHECK(c.queue.size() == queued);  // nothing sent
  }
  Cluster& c;
  RegionId r;
  VersionVector applied;
  std::uint64_t digest;
  std::size_t persisted;
  std::uint64_t batches;
  Hlc clock;
  std::size_t queued;
};

inline AccountView View(Cluster& c, RegionId r, const std::string& id) {
  AccountView v;
  const Status s = c.at(r).GetAccount(id, &v);
  INFO("GetAccount(" << id << ") at r" << r << ": " << s.ToString());
  REQUIRE(s.ok());
  return v;
}

// Σ voids among derived events, signed: + refunds of voided debits, − clawbacks of voided credits.
// The effective floor counts a voided debit as never spent and a voided credit as never received.
inline Amount SignedVoids(const std::vector<DerivedEvent>& events) {
  Amount s = 0;
  for (const DerivedEvent& e : events)
    if (e.kind == DerivedKind::kVoid) s += e.amount;
  return s;
}

// I3 at one region: Σ rights == effective balance == raw − fees + voids, per-region bookings add
// up, and the replica's derived events explain its fees and voids.
inline void CheckConservationAt(Replica& rep, const std::string& id) {
  AccountView v;
  REQUIRE(rep.GetAccount(id, &v).ok());
  INFO("account " << id << " at r" << rep.self() << ": balance " << v.balance << " raw "
                  << v.raw_balance << " fees " << v.fees << " voids " << v.voids);
  REQUIRE(v.regions.size() == rep.options().regions.size());
  Amount rights = 0, fees = 0, voids = 0, lines = 0;
  for (const RegionView& r : v.regions) {
    rights += r.rights;
    fees += r.fees;
    voids += r.voids;
    lines += r.overdraft_line;
    REQUIRE(r.fees >= 0);
  }
  REQUIRE(rights == v.balance);
  REQUIRE(v.raw_balance - v.fees + v.voids == v.balance);
  REQUIRE(fees == v.fees);
  REQUIRE(voids == v.voids);
  REQUIRE(lines == v.config.overdraft_limit);
  if (!v.tentative) REQUIRE(v.final_balance == v.balance);
}

// I3 at every region that holds the account, and I2 on the union when they all agree.
inline void CheckMoney(Cluster& c, const std::string& id) {
  for (RegionId r = 0; r < c.size(); ++r) {
    if (c.at(r).HasAccount(id)) CheckConservationAt(c.at(r), id);
  }
  if (!c.Converged(id)) return;
  AccountView v = View(c, 0, id);
  std::vector<DerivedEvent> ev;
  REQUIRE(c.at(0).DerivedEvents(id, &ev).ok());
  INFO("effective floor of " << id << ": raw " << v.raw_balance << " voids " << SignedVoids(ev)
                             << " overdraft limit " << v.config.overdraft_limit);
  REQUIRE(v.raw_balance + SignedVoids(ev) >= -v.config.overdraft_limit);
}

// Hooks into a cluster and checks after every call into any replica:
//   - I3 at that region for every account it holds;
//   - a dot names one op only (no seq reused, also across restarts), and no region originates two
//     ops with the same idempotency key on one account (a retry at the same region never
//     applies twice);
//   - every transfer the region originated in the call was covered by its own effective rights
//     right before the call (rights are never created from nothing, donors give what they have);
//   - every debit or transfer accepted in the call was covered by rights + line as reported, and is
//     flagged as overdraft exactly when rights alone did not cover it;
//   - every answer that names an op is released only once that op is in the region's store (I4);
//   - the stable frontier never moves back (while a replica lives), derived events are marked
//     final exactly when their op is below it, and what was final never changes (later finals
//     only extend the list);
//   - a region's ops have increasing timestamps in seq order, keep every heartbeat promise it
//     made ("none of my ops after seq s is below hlc h") and come after every op it had applied
//     (HLC causality), also across restarts with the wall clock behind.
// It also collects the union of every op applied anywhere, for checks after a heal.
class Watch {
 public:
  explicit Watch(Cluster& c)
      : c_(c), frontier_(c.size()), op_hlc_(c.size()), seen_hlc_(c.size()), promise_(c.size()) {
    c.before_call = [this](RegionId r) { Before(r); };
    c.observe = [this](RegionId r, const Effects& e) { After(r, e); };
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch() {
    c_.before_call = nullptr;
    c_.observe = nullptr;
  }

  // Ops of one account in the union, in dot order.
  std::vector<Op> OpsOf(const std::string& id) const {
    std::vector<Op> out;
    for (const auto& [dot, op] : ops)
      if (op.account == id) out.push_back(op);
    return out;
  }

  // Region r was restarted: its frontier starts again from what it had persisted (a fold may be
  // persisted later than the frontier moved in memory), so the "never back" check restarts too.
  void Restarted(RegionId r) {
    frontier_[r] = c_.at(r).frontier();
    for (const std::string& id : c_.at(r).AccountIds()) {
      std::vector<DerivedEvent>& prev = final_[{r, id}];
      const std::vector<DerivedEvent> now = FinalEvents(r, id);
      INFO("final events of " << id << " at r" << r << " across a restart");
      REQUIRE(now.size() <= prev.size());
      REQUIRE(std::equal(now.begin(), now.end(), prev.begin()));
      prev = now;
    }
  }

  // The highest timestamp region r has issued (on an op or in a heartbeat promise).
  Hlc IssuedMax(RegionId r) const { return std::max(op_hlc_[r], promise_[r].hlc); }

  std::map<Dot, Op> ops;
  std::uint64_t transfers_checked = 0;
  std::uint64_t debits_checked = 0;

 private:
  void Before(RegionId r) {
    rights_before_.clear();
    for (const std::string& id : c_.at(r).AccountIds()) {
      AccountView v;
      if (c_.at(r).GetAccount(id, &v).ok()) rights_before_[id] = v.regions[r].rights;
    }
  }

  void After(RegionId r, const Effects& e) {
    INFO("after a call into r" << r << " at " << c_.now);
    // Promises first: ops in the same call with a seq past the promise came after it.
    for (const Outbound& o : e.send) {
      const auto* hb = std::get_if<Heartbeat>(&o.msg);
      if (!hb) continue;
      for (const HeartbeatEntry& h : hb->entries) {
        if (h.origin != r) continue;
        INFO("r" << r << " promised " << h.hlc.ToString() << " at seq " << h.seq
                 << " after promising " << promise_[r].hlc.ToString() << " at seq "
                 << promise_[r].seq);
        REQUIRE(h.hlc >= promise_[r].hlc);
        REQUIRE(h.seq >= promise_[r].seq);
        promise_[r] = h;
      }
    }
    std::map<std::string, Amount> given;
    for (const Op& op : e.ops) {
      auto [it, fresh] = ops.emplace(op.dot, op);
      if (!fresh) {
        INFO("op " << op.dot.ToString() << " applied again with different content");
        REQUIRE(it->second == op);
      }
      if (fresh && op.dot.origin == r && !op.key.empty()) {
        INFO("r" << r << " originated a second op with key " << op.key << " on " << op.account);
        REQUIRE(own_keys_.emplace(op.account, op.key, r).second);
      }
      if (fresh && op.dot.origin == r) {
        INFO("r" << r << " originated " << op.dot.ToString() << " at " << op.hlc.ToString()
                 << "; its previous op was at " << op_hlc_[r].ToString() << ", its promise "
                 << promise_[r].hlc.ToString() << " at seq " << promise_[r].seq);
        REQUIRE(op.hlc > op_hlc_[r]);
        if (op.dot.seq > promise_[r].seq) REQUIRE(op.hlc > promise_[r].hlc);
        INFO("the newest op it had applied is at " << seen_hlc_[r].ToString());
        REQUIRE(op.hlc > seen_hlc_[r]);
        op_hlc_[r] = op.hlc;
      }
      seen_hlc_[r] = std::max(seen_hlc_[r], op.hlc);
      if (op.dot.origin == r && op.kind == OpKind::kRights) {
        REQUIRE(op.to != r);
        given[op.account] += op.amount;
        ++transfers_checked;
      }
    }
    for (const auto& [id, amount] : given) {
      INFO("r" << r << " gave " << amount << " of rights on " << id << " holding "
               << rights_before_[id]);
      REQUIRE(amount <= rights_before_[id]);
    }
    // I4: an answer goes out only after the op it names is durable (the cluster's CommitGate).
    for (const CommandResult& res : e.completions) {
      if (!res.status.ok() || res.op.seq == 0) continue;
      const PersistedStore& store = c_.stores[r];
      INFO("answer names op " << res.op.ToString() << " not in r" << r << "'s store");
      REQUIRE((store.ops.count(res.op) == 1 || res.op.seq <= store.log_floor.get(res.op.origin)));
    }
    for (const CommandResult& res : e.completions) {
      if (!res.status.ok() || res.replayed || res.op.origin != r) continue;
      const auto it = ops.find(res.op);
      // A transfer is decided as a debit of its payer.
      if (it == ops.end() ||
          (it->second.kind != OpKind::kDebit && it->second.kind != OpKind::kTransfer))
        continue;
      INFO(OpKindName(it->second.kind)
           << " " << res.op.ToString() << " of " << res.requested << ": rights " << res.rights
           << " line " << res.overdraft_line << " overdraft " << res.overdraft);
      REQUIRE(res.requested == it->second.amount);
      REQUIRE(res.tentative_credit >= 0);
      REQUIRE(res.rights - res.tentative_credit + res.overdraft_line >= res.requested);
      REQUIRE(res.overdraft == (res.rights - res.tentative_credit < res.requested));
      REQUIRE(it->second.overdraft == res.overdraft);
      ++debits_checked;
    }
    for (const std::string& id : c_.at(r).AccountIds()) CheckConservationAt(c_.at(r), id);
    REQUIRE(c_.at(r).frontier() >= frontier_[r]);
    frontier_[r] = c_.at(r).frontier();
    for (const std::string& id : c_.at(r).AccountIds()) {
      std::vector<DerivedEvent>& prev = final_[{r, id}];
      const std::vector<DerivedEvent> now = FinalEvents(r, id);
      if (now.size() >= c_.options[r].max_events_per_account) continue;  // oldest dropped
      INFO("final events of " << id << " at r" << r << ": " << prev.size() << " before, "
                              << now.size() << " now");
      REQUIRE(now.size() >= prev.size());
      REQUIRE(std::equal(prev.begin(), prev.end(), now.begin()));
      prev = now;
    }
  }

  // The derived events region r calls final; checks the flag against its frontier.
  std::vector<DerivedEvent> FinalEvents(RegionId r, const std::string& id) {
    std::vector<ForkReport> forks;
    REQUIRE(c_.at(r).Forks(id, &forks).ok());
    std::vector<DerivedEvent> out;
    const Hlc frontier = c_.at(r).frontier();
    for (const ForkReport& f : forks) {
      INFO("fork at " << f.event.op.hlc.ToString() << " final " << f.final << " frontier "
                      << frontier.ToString());
      REQUIRE(f.final == (f.event.op.hlc < frontier));
      if (f.final) {
        REQUIRE(out.size() == static_cast<std::size_t>(&f - forks.data()));  // finals come first
        out.push_back(f.event);
      }
    }
    return out;
  }

  Cluster& c_;
  std::vector<Hlc> frontier_;
  std::vector<Hlc> op_hlc_;
  std::vector<Hlc> seen_hlc_;  // per region: the newest op timestamp it has applied
  std::vector<HeartbeatEntry> promise_;
  std::map<std::string, Amount> rights_before_;
  std::set<std::tuple<std::string, std::string, RegionId>> own_keys_;
  std::map<std::pair<RegionId, std::string>, std::vector<DerivedEvent>> final_;
};

}  // namespace tally::testing

#endif  // TALLY_TESTS_CORE_REPLICA_CHECKS_H_
