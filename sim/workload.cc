// Clients: open accounts, credit, debit and transfer between accounts with idempotency keys and
// move rights; retry with the same key when a request times out, sometimes at another region
// (across the partition, when one cuts the region that went dark off); probe replays at the same
// region; spend a credit — or a transfer's credit to its payee — that a retry elsewhere got
// applied as a new op — a possible duplicate, tentative until final — where it landed and where
// it was tried before.

#include <algorithm>
#include <cstdio>

#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

// A request refused as "in progress" (its first attempt still waits for rights) is tried again
// after this long.
constexpr std::uint32_t kConflictBackoffMinMs = 30;
constexpr std::uint32_t kConflictBackoffMaxMs = 150;

std::string AccountName(std::uint32_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "acct-%05u", i);
  return buf;
}

// The requests that carry an idempotency key, are retried with it and may be probed for a replay.
bool Keyed(Request::Kind k) {
  return k == Request::Kind::kCredit || k == Request::Kind::kDebit || k == Request::Kind::kTransfer;
}

}  // namespace

CommandBody Simulation::Impl::BodyOf(const Request& req, const std::vector<AccountInfo>& accounts) {
  const std::string& id = accounts[req.account].id;
  switch (req.kind) {
    case Request::Kind::kOpen:
      return OpenAccount{req.rival ? *accounts[req.account].rival : accounts[req.account].config};
    case Request::Kind::kCredit:
      return Credit{id, req.amount, req.key};
    case Request::Kind::kDebit:
      return Debit{id, req.amount, req.key};
    case Request::Kind::kRights:
      return TransferRights{id, req.to, req.amount};
    case Request::Kind::kTransfer:
      return Transfer{id, accounts[req.payee].id, req.amount, req.key};
  }
  return Credit{};
}

void Simulation::Impl::StartWorkload() {
  workload_started = true;
  const WorkloadParams& w = config.workload;
  // Account policies vary: with or without an overdraft line, split evenly or not, fees or none.
  for (std::uint32_t i = 0; i < config.accounts; ++i) {
    std::uint32_t idx = AccountIndex(AccountName(i));
    AccountConfig& c = accounts[idx].config;
    c.id = accounts[idx].id;
    c.currency = "EUR";
    c.overdraft_limit =
        workload_rng.Chance(w.overdraft_p) ? workload_rng.Range(1, w.overdraft_max) : 0;
    if (c.overdraft_limit > 0 && workload_rng.Chance(0.5)) {
      c.lines.assign(config.regions, 0);
      Amount left = c.overdraft_limit;
      for (RegionId r = 0; r + 1 < config.regions; ++r) {
        Amount share = workload_rng.Range(0, left);
        c.lines[r] = share;
        left -= share;
      }
      c.lines[config.regions - 1] = left;
    }
    c.fee.flat = workload_rng.Chance(0.7) ? workload_rng.Range(0, 50) : 0;
    c.fee.bps =
        workload_rng.Chance(0.7) ? static_cast<std::uint32_t>(workload_rng.Range(0, 2000)) : 0;
    if (config.rival_opens && config.regions > 1 && workload_rng.Chance(0.3)) {
      // Another config for the same id: a line larger or none, split evenly, another flat fee.
      // Which open wins depends on the two ops' timestamps; either way the lines differ.
      AccountConfig rival = c;
      rival.lines.clear();
      rival.overdraft_limit = c.overdraft_limit > 0 && workload_rng.Chance(0.5)
                                  ? 0
                                  : c.overdraft_limit + workload_rng.Range(1, w.overdraft_max);
      rival.fee.flat = c.fee.flat + 1 + workload_rng.Range(0, 20);
      accounts[idx].rival = std::move(rival);
    }
  }
  for (RegionId r = 0; r < config.regions; ++r) {
    for (std::uint32_t k = 0; k < w.clients_per_region; ++k) {
      Client c;
      c.id = static_cast<std::uint32_t>(clients.size());
      c.home = r;
      clients.push_back(c);
    }
  }
  if (clients.empty() || config.ops == 0) {
    BeginLiveness();
    return;
  }
  for (const Client& c : clients)
    queue.Schedule(now + workload_rng.Below(w.think_max_ms + 1), EventKind::kClientWakes, c.id);
}

std::string Simulation::Impl::NewKey(Client& cl, std::uint32_t account, bool* fresh) {
  if (!config.keys_per_account) {
    *fresh = true;
    return "k" + std::to_string(cl.id) + "-" + std::to_string(++cl.keys);
  }
  std::string key =
      "k" + std::to_string(cl.id) + "-" + std::to_string(++cl.keys_by_account[account]);
  *fresh = cl.reused_on.count({account, key}) == 0;
  return key;
}

void Simulation::Impl::OnClientWakes(std::uint32_t c) {
  Client& cl = clients[c];
  if (cl.stopped) return;
  if (cl.busy) {
    // Backing off after a conflict: try the same request again where it was.
    SendAttempt(c, cl.at);
    return;
  }
  if (requests_issued >= config.ops) {
    ClientStops(c);
    return;
  }
  const WorkloadParams& w = config.workload;
  Request req;
  RegionId target = cl.home;
  const bool can_open = next_unopened < config.accounts || !reopen.empty();
  if (!cl.spend_at.empty()) {
    // Spend the credit a retry elsewhere got applied, where it landed and then where it was tried
    // before: each region that applied it holds it as credit not yet final, and all but the
    // canonically first of those copies will be voided.
    req.kind = Request::Kind::kDebit;
    req.account = cl.spend_account;
    req.amount = cl.spend_amount;
    req.key = NewKey(cl, req.account, &req.fresh_key);
    target = cl.spend_at.front();
    cl.spend_at.erase(cl.spend_at.begin());
    // The client reads the account there first and spends all that region holds, if more.
    AccountView v;
    if (hosts[target].up && hosts[target].replica->GetAccount(accounts[req.account].id, &v).ok() &&
        target < v.regions.size())
      req.amount = std::max(req.amount, v.regions[target].rights);
    ++summary.retried_credit_spends;
  } else if (!rival_opens.empty() && accounts[rival_opens.front()].open_region != cl.home) {
    // The rival open, from a client of another region, while the first may still be on its way.
    req.kind = Request::Kind::kOpen;
    req.account = rival_opens.front();
    req.rival = true;
    rival_opens.pop_front();
    ++summary.rival_opens;
  } else if (can_open && (opened.empty() || workload_rng.Chance(0.5))) {
    req.kind = Request::Kind::kOpen;
    if (!reopen.empty()) {
      // An open that timed out may or may not have happened: ask the same region again.
      req.account = reopen.front();
      reopen.pop_front();
      target = accounts[req.account].open_region;
    } else {
      req.account = next_unopened++;
      accounts[req.account].open_region = target;
      if (accounts[req.account].rival) rival_opens.push_back(req.account);
    }
    accounts[req.account].state = AccountInfo::State::kOpening;
  } else if (opened.empty()) {
    // Every account is still being opened: wait for one.
    queue.Schedule(now + w.think_max_ms + 1, EventKind::kClientWakes, c);
    return;
  } else {
    std::size_t hot =
        std::max<std::size_t>(1, static_cast<std::size_t>(opened.size() * w.hot_fraction));
    auto draw_account = [&] {
      return workload_rng.Chance(w.hot_p) ? opened[workload_rng.Below(hot)]
                                          : opened[workload_rng.Below(opened.size())];
    };
    req.account = draw_account();
    const double transfer_weight = opened.size() > 1 ? w.transfer_weight : 0;
    const double rights_weight = config.regions > 1 ? w.rights_weight : 0;
    double total = w.credit_weight + w.debit_weight + transfer_weight + rights_weight;
    double u = workload_rng.Unit() * total;
    if (u < w.credit_weight) {
      req.kind = Request::Kind::kCredit;
      req.amount = workload_rng.Range(1, w.credit_max);
    } else if (u < w.credit_weight + w.debit_weight) {
      req.kind = Request::Kind::kDebit;
      req.amount = workload_rng.Range(1, w.debit_max);
    } else if (u < w.credit_weight + w.debit_weight + transfer_weight) {
      // Money to another account of the same currency (every account here is in EUR), drawn as
      // the payer is; the next one opened if it is the payer.
      req.kind = Request::Kind::kTransfer;
      req.amount = workload_rng.Range(1, w.debit_max);
      req.payee = draw_account();
      if (req.payee == req.account) {
        const auto at = std::find(opened.begin(), opened.end(), req.account) - opened.begin();
        req.payee = opened[(static_cast<std::size_t>(at) + 1) % opened.size()];
      }
      ++summary.transfers;
    } else {
      req.kind = Request::Kind::kRights;
      req.amount = workload_rng.Range(1, w.rights_max);
      req.to = static_cast<RegionId>(workload_rng.Below(config.regions - 1));
      if (req.to >= cl.home) ++req.to;
    }
    if (req.kind != Request::Kind::kRights) {
      // Now and then a key reused well past its window (virtual time; region clocks may be off
      // by up to the profile's offset, so some of these still land inside it and are answered
      // as replays or refused as reused keys).
      if (!cl.done_key.empty() && now > cl.done_key_ms + 2 * config.idempotency_retention_ms &&
          workload_rng.Chance(w.reuse_key_p)) {
        req.key = cl.done_key;
        if (config.keys_per_account) cl.reused_on.emplace(req.account, req.key);
        ++summary.keys_reused;
      } else {
        req.key = NewKey(cl, req.account, &req.fresh_key);
      }
    }
  }
  ++requests_issued;
  ++summary.requests;
  cl.req = std::move(req);
  cl.tries = 0;
  cl.probing = false;
  cl.elsewhere = false;
  cl.tried = 0;
  cl.busy = true;
  SendAttempt(c, target);
}

void Simulation::Impl::SendAttempt(std::uint32_t c, RegionId region) {
  Client& cl = clients[c];
  const bool replicated = config.durability == "replicated";
  attempts.push_back(Attempt{c, region, cl.probing, cl.req, replicated});
  const std::uint64_t id = attempts.size();
  cl.attempt = id;
  cl.at = region;
  cl.tried |= 1u << region;
  ++cl.tries;
  std::uint32_t slot;
  if (!request_free.empty()) {
    slot = request_free.back();
    request_free.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(request_slots.size());
    request_slots.emplace_back();
  }
  request_slots[slot] = RequestSlot{region, Command{id, BodyOf(cl.req, accounts), replicated}};
  queue.Schedule(now + link_rng.Below(config.workload.client_delay_max_ms + 1),
                 EventKind::kRequestArrives, 0, slot);
  queue.Schedule(now + config.workload.timeout_ms, EventKind::kClientTimeout, c, id);
}

void Simulation::Impl::OnReplyArrives(std::uint64_t slot) {
  ReplySlot rs = std::move(reply_slots[slot]);
  reply_slots[slot] = ReplySlot{};
  reply_free.push_back(static_cast<std::uint32_t>(slot));
  Client& cl = clients[rs.client];
  const CommandResult& res = rs.result;
  if (!cl.busy || cl.attempt != res.id) return;  // an answer to an attempt given up on
  const std::string& account = accounts[cl.req.account].id;

  if (cl.probing) {
    // The same request again at the same region, after it was acknowledged there: it must be
    // answered from the stored result, never applied a second time (I6).
    // Past the retention window (by the op's own timestamp: a region's clock may have stepped
    // forward) it is a new op.
    if (res.status.ok() && !res.replayed &&
        res.hlc.wall_ms() < cl.probe_hlc.wall_ms() + config.idempotency_retention_ms)
      Fail("I6 idempotency", "r" + std::to_string(cl.at) + " applied key '" + cl.req.key + "' of " +
                                 account + " again within the retention window: first as " +
                                 cl.probe_dot.ToString() + ", again as " + res.op.ToString());
    ClientDone(rs.client);
    return;
  }
  if (cl.tries == 1 && cl.req.fresh_key &&
      (res.replayed || res.status.code() == Code::kIdempotencyKeyReused)) {
    Fail("I6 idempotency",
         "r" + std::to_string(cl.at) + " answered the first request with key '" + cl.req.key +
             "' on " + account + " as " +
             (res.replayed ? "a replay of op " + res.op.ToString() : res.status.ToString()) +
             ": the client never sent that key for this account before");
  }
  if (res.status.ok()) {
    if (cl.req.rival && !res.replayed) ++summary.rival_opens_accepted;
    if (cl.req.kind == Request::Kind::kOpen && !cl.req.rival &&
        accounts[cl.req.account].state != AccountInfo::State::kOpen) {
      accounts[cl.req.account].state = AccountInfo::State::kOpen;
      opened.push_back(cl.req.account);
    }
    // A credit retried at another region and applied there as a new op: that region did not know
    // the key, and the first attempt may well have been applied where the partition hid it. A
    // transfer likewise, for its payee: if the first attempt was applied, the payer's key voids
    // one of the two, and the payee loses that credit.
    const bool credits =
        cl.req.kind == Request::Kind::kCredit || cl.req.kind == Request::Kind::kTransfer;
    if (credits && cl.elsewhere && !res.replayed && config.workload.spend_retried_credit_p > 0 &&
        workload_rng.Chance(config.workload.spend_retried_credit_p)) {
      cl.spend_account = cl.req.kind == Request::Kind::kTransfer ? cl.req.payee : cl.req.account;
      cl.spend_amount = cl.req.amount;
      cl.spend_at = {cl.at};
      for (RegionId r = 0; r < config.regions; ++r)
        if (r != cl.at && (cl.tried & (1u << r))) cl.spend_at.push_back(r);
    }
    const bool keyed = Keyed(cl.req.kind);
    if (keyed) {
      cl.done_key = cl.req.key;
      cl.done_key_ms = now;
    }
    if (keyed && !res.replayed && config.workload.replay_probe_p > 0 &&
        workload_rng.Chance(config.workload.replay_probe_p)) {
      cl.probing = true;
      cl.probe_dot = res.op;
      cl.probe_hlc = res.hlc;
      ++summary.probes;
      SendAttempt(rs.client, cl.at);
      return;
    }
    ClientDone(rs.client);
    return;
  }
  const Code code = res.status.code();
  if ((code == Code::kConflict || code == Code::kUnavailable) &&
      cl.tries < config.workload.max_attempts) {
    ++summary.retries;
    queue.Schedule(now + workload_rng.Range(kConflictBackoffMinMs, kConflictBackoffMaxMs),
                   EventKind::kClientWakes, rs.client);
    cl.attempt = 0;  // the pending timeout must not fire a second retry
    return;
  }
  if (cl.req.kind == Request::Kind::kOpen && !cl.req.rival &&
      accounts[cl.req.account].state != AccountInfo::State::kOpen) {
    accounts[cl.req.account].state = AccountInfo::State::kAbandoned;
  }
  ClientDone(rs.client);
}

void Simulation::Impl::OnClientTimeout(std::uint32_t c, std::uint64_t attempt) {
  Client& cl = clients[c];
  if (!cl.busy || cl.attempt != attempt) return;
  ++summary.timeouts;
  if (cl.probing) {
    ClientDone(c);
    return;
  }
  const bool keyed = Keyed(cl.req.kind);
  const bool retryable = keyed || cl.req.kind == Request::Kind::kOpen;
  if (!retryable || cl.tries >= config.workload.max_attempts) {
    ++summary.gave_up;
    if (cl.req.kind == Request::Kind::kOpen && !cl.req.rival &&
        accounts[cl.req.account].state != AccountInfo::State::kOpen) {
      accounts[cl.req.account].state = AccountInfo::State::kUnopened;
      reopen.push_back(cl.req.account);
    }
    ClientDone(c);
    return;
  }
  ++summary.retries;
  RegionId at = cl.at;
  // The cross-region duplicate: the same key sent to another region while the first may well
  // have been applied. Reconciliation must void one of them. Credits as well as debits: a voided
  // credit is clawed back from the region that took it, which must not have spent it past its
  // line meanwhile. Transfers as well: a voided transfer is refunded to its payer and clawed back
  // from its payee, both at the region that took it.
  if (keyed && config.regions > 1 && workload_rng.Chance(config.workload.retry_elsewhere_p)) {
    // A client fails over away from a region that went dark: when a partition cuts that region
    // off from some peers, to one of those (the client's side of the cut), else to any other.
    std::vector<RegionId> across;
    for (RegionId p = 0; p < config.regions; ++p)
      if (p != cl.at && (!network.up(cl.at, p) || !network.up(p, cl.at))) across.push_back(p);
    if (!across.empty()) {
      at = across[workload_rng.Below(across.size())];
    } else {
      RegionId other = static_cast<RegionId>(workload_rng.Below(config.regions - 1));
      at = other >= cl.at ? other + 1 : other;
    }
    cl.elsewhere = true;
    ++summary.retries_elsewhere;
    if (cl.req.kind == Request::Kind::kCredit) ++summary.credit_retries_elsewhere;
    if (cl.req.kind == Request::Kind::kTransfer) ++summary.transfer_retries_elsewhere;
  }
  SendAttempt(c, at);
}

void Simulation::Impl::ClientDone(std::uint32_t c) {
  Client& cl = clients[c];
  cl.busy = false;
  cl.probing = false;
  const WorkloadParams& w = config.workload;
  queue.Schedule(now + workload_rng.Range(w.think_min_ms, w.think_max_ms), EventKind::kClientWakes,
                 c);
}

void Simulation::Impl::ClientStops(std::uint32_t c) {
  clients[c].stopped = true;
  if (++clients_stopped == clients.size()) BeginLiveness();
}

}  // namespace tally::sim
