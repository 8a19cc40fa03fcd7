// Invariant checkers: continuous ones (HLC, I2 at every answer, I3 on samples, I4 at every crash)
// and the final ones after convergence (I1, I2, I3, I4, I6, I7 against the ledger's oracle).

#include <algorithm>

#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

std::string R(RegionId r) { return "r" + std::to_string(r); }

std::string EventText(const DerivedEvent& e) {
  std::string s = e.kind == DerivedKind::kOverdraftFee ? "fee " : "void ";
  s += std::to_string(e.amount) + " on r" + std::to_string(e.op.origin) + ":" +
       std::to_string(e.op.seq) + "@" + e.op.hlc.ToString() + " (" +
       std::string(OpKindName(e.op_kind)) + " " + std::to_string(e.op_amount);
  if (e.kind == DerivedKind::kOverdraftFee) s += ", overdrawn " + std::to_string(e.overdrawn);
  return s + ", balance after " + std::to_string(e.balance_after) + ")";
}

std::string EventsText(const std::vector<DerivedEvent>& v, std::size_t max = 4) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size() && i < max; ++i) s += (i ? "; " : "") + EventText(v[i]);
  if (v.size() > max) s += "; … " + std::to_string(v.size() - max) + " more";
  return s + "]";
}

OpKind KindOf(Request::Kind k) {
  switch (k) {
    case Request::Kind::kOpen:
      return OpKind::kOpen;
    case Request::Kind::kCredit:
      return OpKind::kCredit;
    case Request::Kind::kDebit:
      return OpKind::kDebit;
    case Request::Kind::kTransfer:
      return OpKind::kTransfer;
  }
  return OpKind::kCredit;
}

}  // namespace

// HLC strictly increasing per region over its whole life: every op and heartbeat timestamp a
// region issues must be above every timestamp it generated since its restart and every one that
// ever left it (a durable op, a sent heartbeat). One Effects may carry the same heartbeat to every
// peer, so timestamps are compared with those of earlier Effects. Timestamps generated but lost in
// a crash before anyone saw them do not count.
void Simulation::Impl::CheckHlc(RegionId r, const Effects& e) {
  Host& h = hosts[r];
  const Hlc prior = std::max(h.hlc_visible, h.hlc_generated);
  Hlc last = prior;
  for (const Op& op : e.ops) {
    if (op.dot.origin != r) continue;
    if (op.hlc <= last) {
      Fail("HLC monotonic", R(r) + " stamped op " + op.dot.ToString() + " with " +
                                op.hlc.ToString() + ", not above " + last.ToString() +
                                " (visible before: " + h.hlc_visible.ToString() +
                                ", physical clock " + std::to_string(Physical(r)) + ")");
      return;
    }
    last = op.hlc;
  }
  Hlc generated = last;
  for (const Outbound& o : e.send) {
    if (const auto* hello = std::get_if<Hello>(&o.msg);
        hello && hello->epoch != 0 && hello->epoch != h.epoch_announced) {
      // A new epoch is a timestamp taken at start: above anything an earlier run let out.
      if (Hlc{hello->epoch} <= h.hlc_visible_at_start) {
        Fail("HLC monotonic", R(r) + " announced epoch " + Hlc{hello->epoch}.ToString() +
                                  ", not above " + h.hlc_visible_at_start.ToString() +
                                  ", a timestamp an earlier run of it had let out");
        return;
      }
      h.epoch_announced = hello->epoch;
    }
    const auto* hb = std::get_if<Heartbeat>(&o.msg);
    if (!hb) continue;
    for (const HeartbeatEntry& en : hb->entries) {
      if (en.origin != r) continue;
      if (en.hlc <= prior) {
        Fail("HLC monotonic", R(r) + " sent a heartbeat stamped " + en.hlc.ToString() +
                                  ", not above " + prior.ToString() +
                                  ", a timestamp it had already issued (physical clock " +
                                  std::to_string(Physical(r)) + ")");
        return;
      }
      generated = std::max(generated, en.hlc);
    }
  }
  h.hlc_generated = std::max(h.hlc_generated, generated);
}

// Bookkeeping and checks at the instant a region answers a client.
void Simulation::Impl::NoteRelease(RegionId r, const CommandResult& res) {
  const Attempt& a = attempts[res.id - 1];
  if (res.status.ok()) {
    ++summary.accepted;
    if (res.replayed) ++summary.replays;
    if (res.overdraft && !res.replayed) ++summary.overdraft_debits;
  } else {
    ++summary.rejected;
    ++summary.rejected_by_code[std::string(res.status.code_name())];
  }
  if (!res.status.ok() || res.op.seq == 0) return;
  acks.push_back(AckRecord{res.op, res.id, now, r});
  if (res.op.origin == r) hosts[r].acked_own_max = std::max(hosts[r].acked_own_max, res.op.seq);
  // No region spends past its spendable rights plus its overdraft line: its rights less the credit
  // in them that is not yet final (a duplicate of its key elsewhere may still void it), as the
  // replica itself reports them.
  if (a.req.kind == Request::Kind::kDebit && !res.replayed &&
      a.req.amount > res.rights - res.tentative_credit + res.overdraft_line) {
    Fail("I2 floor", R(r) + " accepted a debit of " + std::to_string(a.req.amount) + " on " +
                         accounts[a.req.account].id + " past its rights " +
                         std::to_string(res.rights) + " less credit not yet final " +
                         std::to_string(res.tentative_credit) + " plus its overdraft line " +
                         std::to_string(res.overdraft_line) + " (op " + res.op.ToString() + ")");
  }
}

// I3 on one replica's view of one account: the effective balance is credits − debits − fees +
// voids, rights add up to it, fees and voids add up per region, and the raw counters equal what the
// ops the replica claims to hold (its applied vector) add up to, recomputed from the ledger.
void Simulation::Impl::CheckAccount(RegionId r, const std::string& id) {
  Host& h = hosts[r];
  if (!h.up) return;
  AccountView v;
  if (!h.replica->GetAccount(id, &v).ok()) return;  // not known here yet
  const std::string where = id + " at " + R(r) + ": ";
  const RegionId n = config.regions;
  if (v.regions.size() != n) {
    Fail("I3 conservation", where + "view has " + std::to_string(v.regions.size()) + " regions");
    return;
  }
  if (v.balance != v.raw_balance - v.fees + v.voids) {
    Fail("I3 conservation", where + "balance " + std::to_string(v.balance) + " != raw " +
                                std::to_string(v.raw_balance) + " - fees " +
                                std::to_string(v.fees) + " + voids " + std::to_string(v.voids));
    return;
  }
  Amount rights = 0, fees = 0, voids = 0;
  for (const RegionView& rv : v.regions) {
    rights += rv.rights;
    fees += rv.fees;
    voids += rv.voids;
  }
  if (rights != v.balance || fees != v.fees || voids != v.voids) {
    Fail("I3 conservation", where + "regions sum to rights " + std::to_string(rights) + ", fees " +
                                std::to_string(fees) + ", voids " + std::to_string(voids) +
                                "; the account says balance " + std::to_string(v.balance) +
                                ", fees " + std::to_string(v.fees) + ", voids " +
                                std::to_string(v.voids));
    return;
  }
  // Recompute the raw counters from the ops this replica holds: durable ones from the ledger, its
  // own not-yet-synced ones from its store's pending batches.
  VersionVector vv = h.replica->applied();
  const Seq own_durable = std::min(vv.get(r), ledger.durable().get(r));
  for (RegionId o = 0; o < n; ++o) {
    if (vv.get(o) > ledger.durable().get(o) && o != r) {
      Fail("I3 conservation", where + "replica claims ops of " + R(o) + " up to " +
                                  std::to_string(vv.get(o)) + " but " + R(o) + " made only " +
                                  std::to_string(ledger.durable().get(o)) + " durable");
      return;
    }
  }
  vv.set(r, own_durable);
  RawView raw;
  if (!ledger.Raw(id, vv, &raw)) raw.rights.assign(n, 0);
  for (const WriteBatch& b : h.store.pending())
    for (const Op& op : b.ops) {
      if (op.dot.origin != r || op.account != id || op.dot.seq <= own_durable) continue;
      switch (op.kind) {
        case OpKind::kCredit:
          raw.balance += op.amount;
          raw.rights[r] += op.amount;
          break;
        case OpKind::kDebit:
          raw.balance -= op.amount;
          raw.rights[r] -= op.amount;
          break;
        case OpKind::kTransfer:
          raw.rights[r] -= op.amount;
          raw.rights[op.to] += op.amount;
          break;
        case OpKind::kOpen:
          break;
      }
    }
  if (v.raw_balance != raw.balance) {
    Fail("I3 conservation", where + "raw balance " + std::to_string(v.raw_balance) +
                                " but the ops it holds (" + h.replica->applied().ToString(n) +
                                ") add up to " + std::to_string(raw.balance));
    return;
  }
  for (RegionId q = 0; q < n; ++q) {
    const RegionView& rv = v.regions[q];
    if (rv.rights + rv.fees - rv.voids != raw.rights[q]) {
      Fail("I3 conservation", where + "raw rights of " + R(q) + " are " +
                                  std::to_string(rv.rights + rv.fees - rv.voids) + " (effective " +
                                  std::to_string(rv.rights) + " + fees " + std::to_string(rv.fees) +
                                  " - voids " + std::to_string(rv.voids) +
                                  ") but its ops add up to " + std::to_string(raw.rights[q]));
      return;
    }
    if (q < v.config.lines.size() && rv.overdraft_line != v.config.lines[q]) {
      Fail("I3 conservation", where + "overdraft line of " + R(q) + " is " +
                                  std::to_string(rv.overdraft_line) + " but the config says " +
                                  std::to_string(v.config.lines[q]));
      return;
    }
  }
}

bool Simulation::Impl::AckMatches(const AckRecord& ack, std::string* why) const {
  const Attempt& a = attempts[ack.attempt - 1];
  std::string account;
  const LedgerOp* op = ledger.Find(ack.dot, &account);
  const std::string& want_account = accounts[a.req.account].id;
  const std::string asked =
      std::string(OpKindName(KindOf(a.req.kind))) + " " + want_account +
      (a.req.kind == Request::Kind::kOpen ? "" : " " + std::to_string(a.req.amount)) +
      (a.req.key.empty() ? "" : " key '" + a.req.key + "'");
  if (!op) {
    *why = "op " + ack.dot.ToString() + " acknowledged by " + R(ack.region) + " at " +
           std::to_string(ack.time_ms) + " ms (" + asked +
           ") is not in its origin's durable log (durable up to " +
           std::to_string(ledger.durable().get(ack.dot.origin)) + ")";
    return false;
  }
  bool same = account == want_account && op->kind == KindOf(a.req.kind) && op->key == a.req.key;
  if (a.req.kind != Request::Kind::kOpen) same = same && op->amount == a.req.amount;
  if (a.req.kind == Request::Kind::kTransfer) same = same && op->to == a.req.to;
  if (!same) {
    *why = "op " + ack.dot.ToString() + " acknowledged by " + R(ack.region) + " at " +
           std::to_string(ack.time_ms) + " ms as " + asked +
           " is durably a different op: " + std::string(OpKindName(op->kind)) + " " + account +
           " " + std::to_string(op->amount) + (op->key.empty() ? "" : " key '" + op->key + "'") +
           " (a sequence number lost and reused)";
    return false;
  }
  return true;
}

void Simulation::Impl::FinalChecks() {
  const RegionId n = config.regions;
  for (const Host& h : hosts)
    if (!h.up) {
      Fail("I1 convergence", R(h.id) + " is down at the end");
      return;
    }
  // I2 over everything that became durable: the ledger checked the effective floor as ops came
  // in; once more over the final union (clawbacks only grow, so this is the lowest it gets).
  if (std::string v = ledger.CheckFloors(); !v.empty()) {
    Fail("I2 floor", v.substr(v.find(": ") + 2));
    return;
  }
  // I4: every acknowledged op is durable at its origin as acknowledged, and applied everywhere.
  for (const AckRecord& ack : acks) {
    std::string why;
    if (!AckMatches(ack, &why)) {
      Fail("I4 durability", why);
      return;
    }
    for (const Host& h : hosts) {
      if (h.replica->applied().get(ack.dot.origin) < ack.dot.seq) {
        Fail("I4 durability", R(h.id) + " never applied acknowledged op " + ack.dot.ToString());
        return;
      }
    }
  }
  summary.fee_events = summary.void_events = 0;
  summary.fees = summary.voids = 0;
  for (const std::string& id : ledger.Accounts()) {
    OracleAccount o;
    ledger.Oracle(id, &o);
    if (o.surviving_debits_max_per_key > 1) {
      Fail("I6 idempotency", id + ": " + std::to_string(o.surviving_debits_max_per_key) +
                                 " debits with one key survive reconciliation");
      return;
    }
    for (const DerivedEvent& e : o.events) {
      if (e.kind == DerivedKind::kOverdraftFee)
        ++summary.fee_events;
      else
        ++summary.void_events;
    }
    summary.fees += o.fees;
    summary.voids += o.voids;

    std::vector<DerivedEvent> first_events;
    AccountView first_view;
    for (RegionId r = 0; r < n; ++r) {
      Replica& rep = *hosts[r].replica;
      AccountView v;
      if (!rep.GetAccount(id, &v).ok()) {
        Fail("I1 convergence", id + " is unknown at " + R(r) + " though " + std::to_string(o.ops) +
                                   " of its ops are durable");
        return;
      }
      std::vector<DerivedEvent> events;
      rep.DerivedEvents(id, &events);
      // I7: the same fees and voids everywhere, and the ones the oracle derives on its own. A
      // replica keeps a bounded tail of final events (how many depends on how far it has folded),
      // so its list must be a suffix of the oracle's; lists that are not cut must be equal.
      const bool complete =
          events.size() == o.events.size() && first_events.size() == o.events.size();
      if (r > 0 && complete && events != first_events) {
        Fail("I7 agreement", id + ": r0 derives " + EventsText(first_events) + " but " + R(r) +
                                 " derives " + EventsText(events));
        return;
      }
      const bool suffix = events.size() <= o.events.size() &&
                          std::equal(events.begin(), events.end(),
                                     o.events.end() - static_cast<std::ptrdiff_t>(events.size()));
      const bool truncated_ok =
          events.size() == o.events.size() ||
          events.size() >=
              std::min<std::size_t>(o.events.size(), rep.options().max_events_per_account);
      if (!suffix || !truncated_ok) {
        Fail("I7 agreement", id + ": " + R(r) + " derives " + EventsText(events) +
                                 " but canonical replay of the " + std::to_string(o.ops) +
                                 " durable ops gives " + EventsText(o.events));
        return;
      }
      if (v.fees != o.fees || v.voids != o.voids || v.episodes != o.episodes) {
        Fail("I7 agreement", id + " at " + R(r) + ": fees " + std::to_string(v.fees) + ", voids " +
                                 std::to_string(v.voids) + ", episodes " +
                                 std::to_string(v.episodes) + "; the oracle says fees " +
                                 std::to_string(o.fees) + ", voids " + std::to_string(o.voids) +
                                 ", episodes " + std::to_string(o.episodes));
        return;
      }
      if (v.balance != o.balance || v.raw_balance != o.raw_balance) {
        Fail("I3 conservation", id + " at " + R(r) + ": balance " + std::to_string(v.balance) +
                                    " (raw " + std::to_string(v.raw_balance) +
                                    "); the oracle says " + std::to_string(o.balance) + " (raw " +
                                    std::to_string(o.raw_balance) + ")");
        return;
      }
      for (RegionId q = 0; q < n; ++q) {
        const RegionView& rv = v.regions[q];
        if (rv.fees != o.region_fees[q] || rv.voids != o.region_voids[q] ||
            rv.rights != o.region_rights[q]) {
          Fail("I7 agreement",
               id + " at " + R(r) + ": " + R(q) + " has rights " + std::to_string(rv.rights) +
                   ", fees " + std::to_string(rv.fees) + ", voids " + std::to_string(rv.voids) +
                   "; the oracle says " + std::to_string(o.region_rights[q]) + ", " +
                   std::to_string(o.region_fees[q]) + ", " + std::to_string(o.region_voids[q]));
          return;
        }
      }
      if (r > 0 && v.digest != first_view.digest) {
        Fail("I1 convergence", id + ": digest at " + R(r) + " differs from r0's with the same ops");
        return;
      }
      if (o.config.id == id && v.config != o.config) {
        Fail("I1 convergence",
             id + " at " + R(r) + " has a config other than the canonically first open's");
        return;
      }
      CheckAccount(r, id);
      if (failure) return;
      if (r == 0) {
        first_events = std::move(events);
        first_view = v;
      }
    }
    trace.Add(id);
    trace.Add(first_view.digest);
  }
  for (const Host& h : hosts) trace.Add(h.replica->StateDigest());
}

}  // namespace tally::sim
