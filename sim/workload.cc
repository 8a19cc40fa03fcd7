// Clients: open accounts, credit, debit and transfer between accounts with idempotency keys and
// move rights; retry with the same key when a request times out, sometimes at another region
// (across the partition, when one cuts the region that went dark off); probe replays at the same
// region; spend a credit — or a transfer's credit to its payee — that a retry elsewhere got
// applied as a new op — a possible duplicate, tentative until final — where it landed and where
// it was tried before. Place holds (keyed, retried like debits) and resolve those they were told
// of later — a capture, a release, both at once in two regions, or nothing (the hold expires) —
// and send a capture again at another region now and then. Open accounts in a hierarchy of
// budgets (a parent opened first; some children caps inside it) and debit children with a fallback
// to their ancestors now and then.

#include <algorithm>
#include <cstdio>
#include <optional>

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

// Captures and releases: their key is their hold's (HoldKey), not one the client drew.
bool Resolution(Request::Kind k) {
  return k == Request::Kind::kCapture || k == Request::Kind::kRelease;
}

// The requests that carry a key the client drew (reused now and then past its window).
bool ClientKeyed(Request::Kind k) {
  return k == Request::Kind::kCredit || k == Request::Kind::kDebit ||
         k == Request::Kind::kTransfer || k == Request::Kind::kHold;
}

// The requests that carry an idempotency key, are retried with it and may be probed for a replay.
bool Keyed(Request::Kind k) { return ClientKeyed(k) || Resolution(k); }

}  // namespace

void NoteForKey(std::string_view key, double p, std::string* memo, Metadata* metadata) {
  memo->clear();
  metadata->clear();
  TraceHash h;
  h.Add(key);
  const std::uint64_t v = h.value();
  // Keys of up to 64 bytes (the workload's are ~10) keep the note within its bounds.
  if (key.size() > 64 || static_cast<double>(v >> 11) * 0x1p-53 >= p) return;
  if (v & 1) *memo = "note " + std::string(key) + " \u00e9\u20ac <b>&amp;</b> \"q\"";
  if ((v & 2) || memo->empty()) {
    const std::size_t pairs = 1 + (v >> 2) % kMaxMetadataPairs;
    for (std::size_t i = pairs; i-- > 0;)  // not in key order: the order must survive
      metadata->emplace_back("k" + std::to_string(i), std::string(key) + "/" + std::to_string(i));
  }
}

// Sets the note of a credit's, debit's, transfer's or hold's key on it, whatever it carried.
void Simulation::Impl::AttachNote(Command* cmd) const {
  std::visit(
      [&](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Credit> || std::is_same_v<T, Debit> ||
                      std::is_same_v<T, Transfer> || std::is_same_v<T, PlaceHold>) {
          if (!b.key.empty()) NoteForKey(b.key, config.workload.note_p, &b.memo, &b.metadata);
        }
      },
      cmd->body);
}

CommandBody Simulation::Impl::BodyOf(const Request& req, const std::vector<AccountInfo>& accounts) {
  const std::string& id = accounts[req.account].id;
  switch (req.kind) {
    case Request::Kind::kOpen:
      return OpenAccount{req.rival ? *accounts[req.account].rival : accounts[req.account].config};
    case Request::Kind::kCredit:
      return Credit{id, req.amount, req.key};
    case Request::Kind::kDebit: {
      Debit d{id, req.amount, req.key};
      d.fallback = req.fallback;
      return d;
    }
    case Request::Kind::kRights:
      return TransferRights{id, req.to, req.amount};
    case Request::Kind::kTransfer:
      return Transfer{id, accounts[req.payee].id, req.amount, req.key};
    case Request::Kind::kHold:
      return PlaceHold{id, req.amount, req.key, req.expires_in_ms};
    case Request::Kind::kCapture:
      return CaptureHold{req.hold, req.amount};
    case Request::Kind::kRelease:
      return ReleaseHold{req.hold};
  }
  return Credit{};
}

RegionId Simulation::Impl::OtherRegion(RegionId from) {
  // A client fails over away from a region that went dark: when a partition cuts that region
  // off from some peers, to one of those (the client's side of the cut), else to any other.
  std::vector<RegionId> across;
  for (RegionId p = 0; p < config.regions; ++p)
    if (p != from && (!network.up(from, p) || !network.up(p, from))) across.push_back(p);
  if (!across.empty()) return across[workload_rng.Below(across.size())];
  const RegionId other = static_cast<RegionId>(workload_rng.Below(config.regions - 1));
  return other >= from ? other + 1 : other;
}

Request Simulation::Impl::ResolutionOf(const HoldTicket& t) {
  Request req;
  req.kind = t.kind;
  req.account = t.account;
  req.hold = t.hold;
  req.hold_hlc = t.hold_hlc;
  req.amount = t.kind == Request::Kind::kCapture ? t.amount : t.held;
  req.key = HoldKey(t.hold);
  if (t.kind == Request::Kind::kCapture)
    ++summary.captures;
  else
    ++summary.releases;
  return req;
}

// A hold the client was told of (placed, or a replay of one): what it will do with it — capture
// part or all of it, release it, resolve it at two regions at once, or let it expire — and when:
// at a random moment of its life, or up to a fifth of it past its expiry (refused then), at its
// region or at any region.
void Simulation::Impl::PlanHold(std::uint32_t c, const CommandResult& res) {
  Client& cl = clients[c];
  const WorkloadParams& w = config.workload;
  HoldTicket t;
  t.hold = res.hold;
  t.hold_hlc = res.hlc;
  t.account = cl.req.account;
  t.held = res.held > 0 ? res.held : cl.req.amount;
  t.client = c;
  t.at =
      workload_rng.Chance(0.5) ? cl.at : static_cast<RegionId>(workload_rng.Below(config.regions));
  t.due_ms = now + workload_rng.Below(cl.req.expires_in_ms * 6 / 5 + 1);
  if (cl.elsewhere && !res.replayed) {
    // Retried at another region and placed there as a new op: the first attempt may well be
    // held too, in which case the key rule voids one of the two, and a capture of the voided
    // one with it. Captured there soon, as a client would once told its hold went through.
    t.kind = Request::Kind::kCapture;
    t.at = cl.at;
    t.due_ms = now + workload_rng.Below(cl.req.expires_in_ms / 4 + 1);
    t.amount = workload_rng.Chance(w.hold_capture_all_p) ? t.held : workload_rng.Range(1, t.held);
    cl.tickets.push_back(t);
    return;
  }
  const double u = workload_rng.Unit();
  if (u < w.hold_capture_p) {
    t.kind = Request::Kind::kCapture;
  } else if (u < w.hold_capture_p + w.hold_release_p) {
    t.kind = Request::Kind::kRelease;
  } else if (u < w.hold_capture_p + w.hold_release_p + w.hold_dual_p) {
    t.dual = true;
    t.kind = workload_rng.Chance(0.6) ? Request::Kind::kCapture : Request::Kind::kRelease;
  } else {
    return;  // left to expire: its region releases it
  }
  if (t.kind == Request::Kind::kCapture)
    t.amount = workload_rng.Chance(w.hold_capture_all_p) ? t.held : workload_rng.Range(1, t.held);
  cl.tickets.push_back(t);
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
  // Budgets: a parent among the accounts before (opened before it), no deeper than 4 levels; the
  // rival config keeps the same place in the tree.
  for (std::uint32_t i = 1; w.budget_p > 0 && i < config.accounts; ++i) {
    if (!budget_rng.Chance(w.budget_p)) continue;
    const std::uint32_t idx = AccountIndex(AccountName(i));
    const std::uint32_t parent =
        AccountIndex(AccountName(static_cast<std::uint32_t>(budget_rng.Below(i))));
    std::uint32_t depth = 2;
    for (std::uint32_t up = parent; accounts[up].parent != UINT32_MAX; ++depth)
      up = accounts[up].parent;
    if (depth > kMaxBudgetDepth) continue;
    accounts[idx].parent = parent;
    AccountConfig& c = accounts[idx].config;
    c.parent = accounts[parent].id;
    c.cap = budget_rng.Chance(w.cap_p);
    if (accounts[idx].rival) {
      accounts[idx].rival->parent = c.parent;
      accounts[idx].rival->cap = c.cap;
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

bool Simulation::Impl::ParentOpen() const {
  const std::uint32_t next = !reopen.empty() ? reopen.front() : next_unopened;
  if (next >= accounts.size() || accounts[next].parent == UINT32_MAX) return true;
  const AccountInfo::State s = accounts[accounts[next].parent].state;
  return s == AccountInfo::State::kOpen || s == AccountInfo::State::kAbandoned;  // then refused
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
  // Holds: the second resolution of a hold resolved at two regions at once (another client sent
  // the first just now), else a resolution of this client's that is due. Nothing is drawn here
  // unless there is one.
  std::optional<HoldTicket> ticket;
  if (cl.spend_at.empty()) {
    if (!dual_resolutions.empty() && dual_resolutions.front().client != c) {
      ticket = dual_resolutions.front();
      dual_resolutions.pop_front();
    } else {
      for (auto it = cl.tickets.begin(); it != cl.tickets.end(); ++it) {
        if (it->due_ms > now) continue;
        ticket = *it;
        cl.tickets.erase(it);
        break;
      }
    }
  }
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
  } else if (ticket) {
    req = ResolutionOf(*ticket);
    target = ticket->at;
    if (ticket->dual) {
      // The same hold resolved at another region at once, by the next client to wake: across
      // the partition if one cuts this region off (neither side has heard of the other's), a
      // capture of its own amount or a release.
      HoldTicket second = *ticket;
      second.dual = false;
      second.client = c;
      second.at = OtherRegion(target);
      second.due_ms = now;
      second.kind = workload_rng.Chance(0.5) ? Request::Kind::kCapture : Request::Kind::kRelease;
      if (second.kind == Request::Kind::kCapture)
        second.amount = workload_rng.Range(1, second.held);
      dual_resolutions.push_back(second);
      ++summary.dual_resolutions;
    }
  } else if (!rival_opens.empty() && accounts[rival_opens.front()].open_region != cl.home) {
    // The rival open, from a client of another region, while the first may still be on its way.
    req.kind = Request::Kind::kOpen;
    req.account = rival_opens.front();
    req.rival = true;
    rival_opens.pop_front();
    ++summary.rival_opens;
  } else if (can_open && (opened.empty() || workload_rng.Chance(0.5)) && ParentOpen()) {
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
    // Holds take their share between transfers and rights: with no holds the mix is drawn as it
    // was before they existed.
    const double hold_weight = w.hold_weight;
    double total = w.credit_weight + w.debit_weight + transfer_weight + hold_weight + rights_weight;
    double u = workload_rng.Unit() * total;
    if (u < w.credit_weight) {
      req.kind = Request::Kind::kCredit;
      req.amount = workload_rng.Range(1, w.credit_max);
    } else if (u < w.credit_weight + w.debit_weight) {
      req.kind = Request::Kind::kDebit;
      req.amount = workload_rng.Range(1, w.debit_max);
      if (accounts[req.account].parent != UINT32_MAX && budget_rng.Chance(w.fallback_p)) {
        req.fallback = true;
        ++summary.fallback_debits;
      }
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
    } else if (u < w.credit_weight + w.debit_weight + transfer_weight + hold_weight) {
      // A hold, with an amount drawn like a debit's and an expiry within the retention (the
      // desk refuses a longer one: every resolution must fall inside one key window).
      req.kind = Request::Kind::kHold;
      req.amount = workload_rng.Range(1, w.debit_max);
      const std::uint64_t longest = std::max<std::uint64_t>(
          1, std::min<std::uint64_t>(w.hold_expiry_max_ms, config.idempotency_retention_ms));
      const std::uint64_t shortest = std::clamp<std::uint64_t>(w.hold_expiry_min_ms, 1, longest);
      req.expires_in_ms = static_cast<std::uint64_t>(workload_rng.Range(
          static_cast<std::int64_t>(shortest), static_cast<std::int64_t>(longest)));
      ++summary.holds;
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
  attempts.push_back(Attempt{
      .client = c, .region = region, .probe = cl.probing, .replicated = replicated, .req = cl.req});
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
    if (ClientKeyed(cl.req.kind)) {
      // The answer names its op's note: the key's; a replay's may lack it once the op is folded.
      std::string memo;
      Metadata metadata;
      NoteForKey(cl.req.key, config.workload.note_p, &memo, &metadata);
      const bool none = res.memo.empty() && res.metadata.empty();
      if ((res.memo != memo || res.metadata != metadata) && !(res.replayed && none))
        Fail("notes", "r" + std::to_string(cl.at) + " answered key '" + cl.req.key + "' on " +
                          account + " with memo '" + res.memo + "' and " +
                          std::to_string(res.metadata.size()) + " metadata pairs; its key gives '" +
                          memo + "' and " + std::to_string(metadata.size()));
    }
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
    if (cl.req.kind == Request::Kind::kHold && res.hold.seq != 0) PlanHold(rs.client, res);
    if (cl.req.kind == Request::Kind::kCapture && !res.replayed &&
        config.workload.hold_capture_retry_elsewhere_p > 0 &&
        workload_rng.Chance(config.workload.hold_capture_retry_elsewhere_p)) {
      // The same capture again at another region (a client unsure it went through): a replay
      // where the first is known, a second capture — a fork the first wins — where it is not.
      HoldTicket again;
      again.hold = cl.req.hold;
      again.hold_hlc = cl.req.hold_hlc;
      again.account = cl.req.account;
      again.held = res.held;
      again.kind = Request::Kind::kCapture;
      again.amount = cl.req.amount;
      again.at = OtherRegion(cl.at);
      again.due_ms = now;
      again.client = rs.client;
      cl.tickets.push_front(again);
      ++summary.capture_retries_elsewhere;
    }
    const bool keyed = Keyed(cl.req.kind);
    if (ClientKeyed(cl.req.kind)) {
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
  // A resolution asked where its hold has not arrived yet is asked again there a little later.
  const bool hold_unknown = Resolution(cl.req.kind) && code == Code::kNotFound;
  if ((code == Code::kConflict || code == Code::kUnavailable || hold_unknown) &&
      cl.tries < config.workload.max_attempts) {
    ++summary.retries;
    queue.Schedule(now + workload_rng.Range(kConflictBackoffMinMs, kConflictBackoffMaxMs),
                   EventKind::kClientWakes, rs.client);
    cl.attempt = 0;  // the pending timeout must not fire a second retry
    return;
  }
  if (cl.req.kind == Request::Kind::kOpen && !cl.req.rival &&
      accounts[cl.req.account].state != AccountInfo::State::kOpen) {
    // A child opened where its parent's open has not arrived yet is asked again later, unless
    // its parent was abandoned itself.
    const bool parent_not_here =
        code == Code::kNotFound && res.status.message().find("parent") != std::string::npos;
    const std::uint32_t parent = accounts[cl.req.account].parent;
    const bool parent_abandoned =
        parent != UINT32_MAX && accounts[parent].state == AccountInfo::State::kAbandoned;
    if ((parent_not_here || code == Code::kFailedPrecondition) && !parent_abandoned) {
      accounts[cl.req.account].state = AccountInfo::State::kUnopened;
      reopen.push_back(cl.req.account);
    } else {
      accounts[cl.req.account].state = AccountInfo::State::kAbandoned;
    }
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
    at = OtherRegion(cl.at);
    cl.elsewhere = true;
    ++summary.retries_elsewhere;
    if (cl.req.kind == Request::Kind::kCredit) ++summary.credit_retries_elsewhere;
    if (cl.req.kind == Request::Kind::kTransfer) ++summary.transfer_retries_elsewhere;
    if (cl.req.kind == Request::Kind::kHold) ++summary.hold_retries_elsewhere;
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
