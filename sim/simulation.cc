// The event loop and the hosts: how a region runs the replica on simulated storage and network.

#include "sim/simulation.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "codec/codec.h"
#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

// A restarted region's peers notice the broken connection and reconnect after this long.
constexpr std::uint64_t kReconnectDelayMaxMs = 20;
// How often the sampler runs checks on live replicas (and samples for the report).
constexpr std::uint32_t kAccountsCheckedPerSample = 6;

}  // namespace

Simulation::Impl::Impl(SimConfig c)
    : config(std::move(c)),
      network(config.regions, config.faults.link, DeriveSeed(config.seed, "network")),
      ledger(config.regions, config.idempotency_retention_ms),
      dots(config.regions),
      statements(config.regions),
      fault_rng(DeriveSeed(config.seed, "faults")),
      workload_rng(DeriveSeed(config.seed, "workload")),
      link_rng(DeriveSeed(config.seed, "client-links")),
      disk_rng(DeriveSeed(config.seed, "disk-faults")),
      budget_rng(DeriveSeed(config.seed, "budgets")),
      epoch_rng(DeriveSeed(config.seed, "epoch-nonces")) {
  knows.assign(config.regions, std::vector<Hlc>(config.regions));
  in_amnesia.assign(config.regions, false);
  armed_sync_crash.assign(config.regions, false);
}

ReplicaOptions Simulation::Impl::OptionsFor(RegionId r) const {
  ReplicaOptions o;
  o.cluster_id = "sim";
  for (RegionId i = 0; i < config.regions; ++i) o.regions.push_back("r" + std::to_string(i));
  o.self = r;
  o.idempotency_retention_ms = config.idempotency_retention_ms;
  Status s = SetPlantedBug(config.plant_bug, &o.bugs);
  assert(s.ok());
  (void)s;
  return o;
}

void Simulation::Impl::Start() {
  answer_bound_ms = AnswerBoundMs();
  Rng clock_rng(DeriveSeed(config.seed, "clocks"));
  hosts.resize(config.regions);
  resumes.resize(config.regions);
  forgotten_runs.resize(config.regions);
  for (RegionId r = 0; r < config.regions; ++r) {
    Host& h = hosts[r];
    h.id = r;
    const FaultParams& f = config.faults;
    std::int64_t offset = f.offset_max_ms ? clock_rng.Range(-f.offset_max_ms, f.offset_max_ms) : 0;
    std::int64_t drift = f.drift_max_ppm ? clock_rng.Range(-f.drift_max_ppm, f.drift_max_ppm) : 0;
    h.clock = SimClock(offset, drift);
    h.wall = std::make_unique<HostWallClock>(&h.clock, &now);
    h.rng = Rng(DeriveSeed(config.seed, "storage", r));
    h.replica = std::make_unique<Replica>(OptionsFor(r), *h.wall);
    h.gate = std::make_unique<CommitGate>(OptionsFor(r).bugs.ack_before_sync);
    h.max_ahead.assign(config.regions, 0);
    h.max_behind.assign(config.regions, 0);
    queue.Schedule(h.rng.Below(config.tick_ms), EventKind::kTick, r, h.incarnation);
  }
  for (RegionId r = 0; r < config.regions; ++r)
    for (RegionId p = 0; p < config.regions; ++p)
      if (p != r) queue.Schedule(0, EventKind::kReconnect, r, (std::uint64_t{p} << 32) | 0);
  queue.Schedule(config.sample_ms, EventKind::kSample);
}

void Simulation::Impl::Fail(std::string invariant, std::string message) {
  if (failure) return;  // the first violation is the one to explain
  failure = Failure{std::move(invariant), std::move(message), now};
}

void Simulation::Impl::RunUntil(std::uint64_t time_ms) {
  while (!failure && !queue.empty() && queue.top().time_ms <= time_ms) {
    Event e = queue.Pop();
    now = e.time_ms;
    ++summary.events;
    Dispatch(e);
  }
  if (!failure) now = std::max(now, time_ms);
}

void Simulation::Impl::RunToEnd() {
  while (!failure && !finished && !queue.empty()) {
    Event e = queue.Pop();
    now = e.time_ms;
    ++summary.events;
    Dispatch(e);
  }
}

void Simulation::Impl::Dispatch(const Event& e) {
  switch (e.kind) {
    case EventKind::kTick:
      if (hosts[e.a].up && hosts[e.a].incarnation == e.b) OnTick(e.a);
      break;
    case EventKind::kSyncDone:
      if (hosts[e.a].up && hosts[e.a].incarnation == e.b) OnSyncDone(e.a);
      break;
    case EventKind::kDeliver:
      OnDeliver(e.b);
      break;
    case EventKind::kReconnect: {
      RegionId peer = static_cast<RegionId>(e.b >> 32);
      if (hosts[e.a].up && (hosts[e.a].incarnation & 0xffffffffu) == (e.b & 0xffffffffu))
        OnReconnect(e.a, peer);
      break;
    }
    case EventKind::kRequestArrives:
      OnRequestArrives(e.b);
      break;
    case EventKind::kReplyArrives:
      OnReplyArrives(e.b);
      break;
    case EventKind::kClientTimeout:
      OnClientTimeout(e.a, e.b);
      break;
    case EventKind::kClientWakes:
      OnClientWakes(e.a);
      break;
    case EventKind::kFault:
      OnFault(e.b);
      break;
    case EventKind::kSample:
      OnSample();
      break;
    case EventKind::kLivenessCheck:
      OnLivenessCheck();
      break;
  }
}

// ---- hosts ------------------------------------------------------------------------------------

void Simulation::Impl::OnTick(RegionId r) {
  Host& h = hosts[r];
  Effects e;
  h.replica->Tick(Mono(), &e);
  Absorb(r, &e);
  CheckAnswerBound(r);
  if (h.up) queue.Schedule(now + config.tick_ms, EventKind::kTick, r, h.incarnation);
}

void Simulation::Impl::OnReconnect(RegionId r, RegionId peer) {
  if (!network.up(r, peer)) return;
  trace.Add(0x52u);
  trace.Add(now);
  trace.Add((std::uint64_t{r} << 8) | peer);
  Effects e;
  hosts[r].replica->OnConnected(peer, Mono(), &e);
  Absorb(r, &e);
}

void Simulation::Impl::OnDeliver(std::uint64_t slot) {
  InFlight f;
  if (!network.Take(slot, &f)) return;
  if (!lose_until_ms.empty() && now < lose_until_ms[f.from * config.regions + f.to]) {
    network.CountLost();
    return;
  }
  Host& h = hosts[f.to];
  if (!h.up || (network.stream() && f.to_incarnation != h.incarnation)) {
    network.CountReceiverDown();  // down, or (stream) its connection died with the old process
    return;
  }
  // The receiving host's edge: what arrives is bytes, decoded as tallyd's gossip link does.
  Message msg;
  if (Status s = codec::DecodeMessage(f.bytes, &msg); !s.ok()) {
    Fail("wire decoding", "r" + std::to_string(f.to) + " cannot decode a message r" +
                              std::to_string(f.from) + " sent at " + std::to_string(f.sent_ms) +
                              " ms: " + s.ToString());
    return;
  }
  trace.Add(0x44u);
  trace.Add(now);
  trace.Add((std::uint64_t{f.from} << 8) | f.to);
  trace.Add(msg.index());
  if (const auto* b = std::get_if<OpBatch>(&msg)) {
    trace.Add(b->ops.size());
    if (!b->ops.empty())
      trace.Add((std::uint64_t{b->ops.front().dot.origin} << 48) ^ b->ops.front().dot.seq);
  }
  NoteShown(f, msg);
  CheckRejoinAnswer(f, msg);
  Effects e;
  const std::uint64_t incarnation = h.incarnation;
  h.replica->OnMessage(f.from, msg, Mono(), &e);
  Absorb(f.to, &e);
  // Counted once the batch is in: an op the region originates while it works through the batch
  // (a debit a transfer in it unparks) need only be above the ops before it.
  if (const auto* b = std::get_if<OpBatch>(&msg); b && h.incarnation == incarnation)
    for (const Op& op : b->ops) h.hlc_received = std::max(h.hlc_received, op.hlc);
}

void Simulation::Impl::OnRequestArrives(std::uint64_t slot) {
  RequestSlot rq = std::move(request_slots[slot]);
  request_slots[slot] = RequestSlot{};
  request_free.push_back(static_cast<std::uint32_t>(slot));
  Host& h = hosts[rq.region];
  if (!h.up) return;  // the client hears nothing and times out
  ++summary.attempts;
  trace.Add(0x51u);
  trace.Add(now);
  trace.Add(rq.cmd.id);
  trace.Add(rq.region);
  h.unanswered.emplace(rq.cmd.id, now);
  SubmitAttempt(rq.region, std::move(rq.cmd));
}

void Simulation::Impl::SubmitAttempt(RegionId r, Command cmd) {
  Attempt& a = attempts[cmd.id - 1];
  Host& h = hosts[r];
  if (a.req.kind == Request::Kind::kDebit || a.req.kind == Request::Kind::kTransfer ||
      a.req.kind == Request::Kind::kHold) {
    // A transfer is decided as a debit of its payer, a hold as a debit that moves no money.
    AccountView v;
    if (h.replica->GetAccount(accounts[a.req.account].id, &v).ok() && r < v.regions.size()) {
      const RegionView& rv = v.regions[r];
      a.before = Attempt::Figures{rv.rights - rv.reserved, rv.overdraft_line, rv.reserved};
    }
  }
  const std::uint64_t id = cmd.id;
  AttachNote(&cmd);
  Effects e;
  h.replica->Submit(std::move(cmd), Mono(), &e);
  for (const CommandResult& c : e.completions) a.decided_at_submit |= c.id == id;
  Absorb(r, &e);
}

// The longest a replica may hold a command: a debit's wait (for rights, or for credit to turn
// final), then, asked for durability "replicated", the wait for a peer's copy; plus a sync at its
// slowest before each of the two and before the answer (an answer waits for the batch written
// after the sync in flight), and a tick per step. A wait timed on a clock that steps breaks it.
std::uint64_t Simulation::Impl::AnswerBoundMs() const {
  const ReplicaOptions o = OptionsFor(0);
  const FaultParams& f = config.faults;
  return std::max(o.rights_wait_ms, o.finality_wait_ms) + o.replicated_wait_ms +
         3 * (std::uint64_t{f.fsync_max_ms} + f.fsync_slow_ms + config.tick_ms);
}

void Simulation::Impl::CheckAnswerBound(RegionId r) {
  Host& h = hosts[r];
  if (h.unanswered.empty() || failure) return;
  const auto [id, since] = *h.unanswered.begin();
  if (now - since <= answer_bound_ms) return;
  Fail("answer bound", "r" + std::to_string(r) + " has held command " + std::to_string(id) +
                           " unanswered for " + std::to_string(now - since) +
                           " ms, past the longest wait it may take (" +
                           std::to_string(answer_bound_ms) + " ms)");
}

std::uint64_t Simulation::Impl::Submit(RegionId r, CommandBody body) {
  Attempt a;
  a.client = kScriptedClient;
  a.region = r;
  a.replicated = config.durability == "replicated";
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, OpenAccount>) {
          a.req.kind = Request::Kind::kOpen;
          a.req.account = AccountIndex(b.config.id);
        } else if constexpr (std::is_same_v<T, Credit>) {
          a.req = Request{Request::Kind::kCredit, AccountIndex(b.account), b.amount, 0, b.key};
        } else if constexpr (std::is_same_v<T, Debit>) {
          a.req = Request{Request::Kind::kDebit, AccountIndex(b.account), b.amount, 0, b.key};
          a.req.fallback = b.fallback;
        } else if constexpr (std::is_same_v<T, Transfer>) {
          a.req = Request{Request::Kind::kTransfer, AccountIndex(b.from), b.amount, 0, b.key};
          a.req.payee = AccountIndex(b.to);
        } else if constexpr (std::is_same_v<T, TransferRights>) {
          a.req = Request{Request::Kind::kRights, AccountIndex(b.account), b.amount, b.to, ""};
        } else if constexpr (std::is_same_v<T, PlaceHold>) {
          a.req = Request{Request::Kind::kHold, AccountIndex(b.account), b.amount, 0, b.key};
          a.req.expires_in_ms = b.expires_in_ms;
        } else if constexpr (std::is_same_v<T, CaptureHold> || std::is_same_v<T, ReleaseHold>) {
          // The hold's account and amount, as the ledger (or the hold's answer) has them.
          std::string account;
          const LedgerOp* hold = ledger.Find(b.hold, &account);
          a.req.kind =
              std::is_same_v<T, CaptureHold> ? Request::Kind::kCapture : Request::Kind::kRelease;
          if (hold && hold->kind == OpKind::kHold) {
            a.req.account = AccountIndex(account);
          } else if (auto it = hold_accounts.find(b.hold); it != hold_accounts.end()) {
            a.req.account = it->second;
          }
          if constexpr (std::is_same_v<T, CaptureHold>) {
            a.req.amount = b.amount;
          } else {
            a.req.amount = hold && hold->kind == OpKind::kHold ? hold->amount : 0;
          }
          a.req.hold = b.hold;
          a.req.key = HoldKey(b.hold);
        }
      },
      body);
  attempts.push_back(std::move(a));
  std::uint64_t id = attempts.size();
  if (!hosts[r].up) return id;
  ++summary.attempts;
  hosts[r].unanswered.emplace(id, now);
  const bool replicated = attempts.back().replicated;
  SubmitAttempt(r, Command{id, std::move(body), replicated});
  return id;
}

std::uint32_t Simulation::Impl::AccountIndex(const std::string& id) {
  auto [it, inserted] = account_index.try_emplace(id, static_cast<std::uint32_t>(accounts.size()));
  if (inserted) {
    AccountInfo info;
    info.id = id;
    accounts.push_back(std::move(info));
  }
  return it->second;
}

// The Effects contract, through the core's CommitGate as in tallyd: persist as one batch, sync,
// then send and complete.
void Simulation::Impl::Absorb(RegionId r, Effects* e) {
  Host& h = hosts[r];
  // Checked before anything moves out of `e`: one op per dot first (it also tells which ops were
  // originated just now), then the clock, then what a rejoining region may do.
  if (e->replaces_store)
    h.holds_lost = 0;  // its state was rebuilt: what it holds now is seen below
  SeeApplied(r, *e, &originated_scratch);
  NoteResumed(r);
  CheckHlc(r, *e, originated_scratch);
  CheckRejoining(r, *e, originated_scratch);
  if (h.disk_behind && h.replica && !h.replica->rejoining()) h.disk_behind = false;
  // A snapshot may bring back, in its checkpoints, ops whose every other copy went with a disk.
  if (e->replaces_store) ReviveHeld();
  for (const Notice& n : e->notices) {
    if (n.kind == Notice::Kind::kClockAhead) ++summary.clock_ahead_reports;
    if (n.kind == Notice::Kind::kRejoin && n.region == r && h.rejoined.empty()) {
      char at[32];
      std::snprintf(at, sizeof at, "%.3f s", now / 1000.0);
      h.rejoined = std::string("rejoined at ") + at + ": " + n.text;
    }
    if (n.kind == Notice::Kind::kPeerRefused)
      Fail("peer refused", "r" + std::to_string(r) + " refused input from r" +
                               std::to_string(n.region) + ": " + n.text);
  }
  CommitGate::Release out;
  h.gate->Absorb(e, &out);
  Release(r, &out);
  if (h.gate->has_open_batch() && !h.sync_in_flight) StartSync(r);
}

void Simulation::Impl::StartSync(RegionId r) {
  Host& h = hosts[r];
  const FaultParams& f = config.faults;
  std::uint64_t delay = static_cast<std::uint64_t>(h.rng.Range(f.fsync_min_ms, f.fsync_max_ms));
  if (f.fsync_slow_p > 0 && h.rng.Chance(f.fsync_slow_p)) delay += h.rng.Below(f.fsync_slow_ms + 1);
  h.store.WriteBorrowed(&h.gate->StartWrite());  // the gate keeps it until Synced or Crash
  h.sync_in_flight = true;
  h.sync_target = h.store.written();
  ++summary.syncs;
  queue.Schedule(now + delay, EventKind::kSyncDone, r, h.incarnation);
  MaybeCrashInSync(r, delay);
}

void Simulation::Impl::OnSyncDone(RegionId r) {
  Host& h = hosts[r];
  h.sync_in_flight = false;
  bool replaced = false;
  h.store.SyncUpTo(h.sync_target, [&](const PersistBatch& b) {
    replaced = replaced || b.replaces_store;
    if (std::string problem = statements.See(r, b); !problem.empty()) {
      const std::size_t colon = problem.find(": ");
      Fail(problem.substr(0, colon), problem.substr(colon + 2));
    }
    for (const Op& op : b.ops) dots.MarkDurableAt(op.dot, r);
    for (const Op& op : b.ops) CheckNote(r, op);
    for (const Op& op : b.ops) {
      if (op.dot.origin != r) continue;
      std::string problem = ledger.AddDurable(op, now);
      if (problem.empty()) dots.MarkDurable(op.dot);
      if (!problem.empty()) {
        // "I2 floor: <what>" -> invariant "I2 floor", message "<what>".
        std::size_t colon = problem.find(": ");
        Fail(problem.substr(0, colon),
             colon == std::string::npos ? problem : problem.substr(colon + 2));
      }
      if (op.hlc > h.hlc_visible) h.hlc_visible = op.hlc;
    }
  });
  if (!h.store.write_error().empty())
    Fail("storage", "r" + std::to_string(r) + ": " + h.store.write_error());
  if (replaced) {
    // A snapshot replaced this store. Only a lost disk may lose a durable op: whatever the old
    // store held must still be held somewhere (in the snapshot, or by a peer).
    const VersionVector held = Held();
    for (RegionId o = 0; o < config.regions; ++o)
      if (held.get(o) < ledger.durable().get(o))
        Fail("I4 durability",
             "r" + std::to_string(r) + " replaced its store with a snapshot and r" +
                 std::to_string(o) + "'s durable ops " + std::to_string(held.get(o) + 1) + ".." +
                 std::to_string(ledger.durable().get(o)) + " are now held nowhere");
  }
  trace.Add(0x53u);
  trace.Add(now);
  trace.Add(r);
  trace.Add(h.store.synced());
  CommitGate::Release out;
  h.gate->Synced(&out);
  Release(r, &out);
  if (h.up && h.gate->has_open_batch()) StartSync(r);
}

void Simulation::Impl::Release(RegionId r, CommitGate::Release* out) {
  ReleaseSends(r, &out->send);
  for (CommandResult& c : out->completions) ReleaseCompletion(r, std::move(c));
  out->Clear();
}

void Simulation::Impl::ReleaseSends(RegionId r, std::vector<Outbound>* send) {
  Host& h = hosts[r];
  // A release often carries one message for several peers (the same op batch or heartbeat to
  // each: about 4 sends in 10). It is encoded once; each peer gets a copy of the bytes.
  // `encoded_scratch` holds, per message encoded so far in this release, its index in *send and
  // its bytes.
  encoded_scratch.clear();
  for (std::size_t i = 0; i < send->size(); ++i) {
    const Outbound& o = (*send)[i];
    if (const auto* hb = std::get_if<Heartbeat>(&o.msg)) {
      for (const HeartbeatEntry& en : hb->entries)
        if (en.origin == r && en.hlc > h.hlc_visible) h.hlc_visible = en.hlc;
    } else if (const auto* b = std::get_if<OpBatch>(&o.msg)) {
      SeeOps(r, b->ops, "sent");
    } else if (const auto* snap = std::get_if<Snapshot>(&o.msg)) {
      SeeOps(r, snap->ops, "sent in a snapshot");
    } else if (const auto* hello = std::get_if<Hello>(&o.msg)) {
      h.disk_epoch_max = std::max(h.disk_epoch_max, hello->epoch);
    }
    if (o.to >= config.regions || o.to == r) {
      Fail("transport",
           "r" + std::to_string(r) + " addressed a message to region " + std::to_string(o.to));
      continue;
    }
    const std::string* bytes = nullptr;
    for (const auto& [j, b] : encoded_scratch)
      if ((*send)[j].msg == o.msg) {
        bytes = &b;
        break;
      }
    if (!bytes) {
      std::string b;
      if (Status s = Network::Encode(o.msg, &b); !s.ok()) {
        Fail("wire encoding",
             "the codec refuses a message r" + std::to_string(r) + " sent (" + s.ToString() + ")");
        continue;
      }
      bytes = &encoded_scratch.emplace_back(i, std::move(b)).second;
    }
    network.SendBytes(now, r, o.to, o.msg.index(), *bytes, &queue, hosts[o.to].incarnation);
  }
  encoded_scratch.clear();
}

void Simulation::Impl::ReleaseCompletion(RegionId r, CommandResult result) {
  if (result.id == 0 || result.id > attempts.size()) {
    Fail("completion",
         "r" + std::to_string(r) + " completed unknown command " + std::to_string(result.id));
    return;
  }
  NoteRelease(r, result);
  hosts[r].unanswered.erase(result.id);
  trace.Add(0x43u);
  trace.Add(now);
  trace.Add(result.id);
  trace.Add(static_cast<std::uint64_t>(result.status.code()));
  trace.Add((std::uint64_t{result.op.origin} << 48) ^ result.op.seq);
  trace.Add(static_cast<std::uint64_t>(result.balance));
  const Attempt& a = attempts[result.id - 1];
  if (a.client == kScriptedClient) {
    scripted_results[result.id] = std::move(result);
    return;
  }
  double loss = config.faults.reply_loss;
  if (config.faults.cutoff_reply_loss > loss && CutOff(r)) loss = config.faults.cutoff_reply_loss;
  if (loss > 0 && link_rng.Chance(loss)) {
    ++summary.replies_lost;
    return;
  }
  std::uint32_t slot;
  if (!reply_free.empty()) {
    slot = reply_free.back();
    reply_free.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(reply_slots.size());
    reply_slots.emplace_back();
  }
  reply_slots[slot] = ReplySlot{a.client, std::move(result)};
  queue.Schedule(now + link_rng.Below(config.workload.client_delay_max_ms + 1),
                 EventKind::kReplyArrives, 0, slot);
}

bool Simulation::Impl::CutOff(RegionId r) const {
  for (RegionId p = 0; p < config.regions; ++p)
    if (p != r && (!network.up(r, p) || !network.up(p, r))) return true;
  return false;
}

void Simulation::Impl::Crash(RegionId r) {
  Host& h = hosts[r];
  if (!h.up) return;
  // I4: nothing acknowledged may be lost. Whatever this region acknowledged of its own must
  // already be durable, since the crash drops everything else.
  if (h.acked_own_max > ledger.durable().get(r)) {
    std::string which;
    for (auto it = acks.rbegin(); it != acks.rend(); ++it) {
      if (it->dot.origin == r && it->dot.seq > ledger.durable().get(r)) {
        which = it->dot.ToString() + " (acknowledged at " + std::to_string(it->time_ms) + " ms)";
        break;
      }
    }
    Fail("I4 durability", "r" + std::to_string(r) + " crashed with acknowledged op " + which +
                              " not yet synced: durable up to seq " +
                              std::to_string(ledger.durable().get(r)) + ", acknowledged up to " +
                              std::to_string(h.acked_own_max));
  }
  trace.Add(0x58u);
  trace.Add(now);
  trace.Add(r);
  ++summary.crashes;
  RetireStats(*h.replica);
  h.store.Crash();
  h.gate->Crash();
  ForgetUnsyncedKnowledge(r);
  h.unanswered.clear();  // the requests die with the process; their clients time out
  h.replica.reset();
  h.up = false;
  h.sync_in_flight = false;
  ++h.incarnation;
  h.hlc_generated = Hlc{};
  h.hlc_received = Hlc{};
  h.down_since_ms = now;
  h.timeline_crash = timeline.size();
  timeline.push_back(report::TimelineSpan{now, now, "r" + std::to_string(r), "crash",
                                          "r" + std::to_string(r) + " down"});
  // What it held only in memory is gone; if that was some op's last copy, its dot is free again.
  ReleaseLostCopies();
}

// A crashed replica's counters would vanish with it; the summary counts the whole run.
void Simulation::Impl::RetireStats(const Replica& replica) {
  const ReplicaStats& st = replica.stats();
  summary.rights_requests += st.rights_requests_sent;
  summary.rights_granted += st.rights_granted;
  summary.rebalance_transfers += st.rebalance_transfers;
  summary.snapshots += st.snapshots_sent;
  summary.expiry_releases += st.holds_expired;
}

void Simulation::Impl::Restart(RegionId r) {
  Host& h = hosts[r];
  if (h.up) return;
  trace.Add(0x59u);
  trace.Add(now);
  trace.Add(r);
  ++summary.restarts;
  h.up = true;
  ++h.incarnation;
  if (h.timeline_crash < timeline.size()) timeline[h.timeline_crash].end_ms = now;
  h.timeline_crash = SIZE_MAX;
  h.started_ms = now;
  h.lost_store = h.disk_behind;
  h.rejoined.clear();
  // A store that was wiped or rolled back cannot remember what the region let out; the region can
  // be held only to what its peers still know (Shown, see CheckHlc) until a run on it has
  // rejoined.
  if (h.lost_store) h.hlc_visible = Hlc{};
  h.hlc_visible_at_start = std::max(h.hlc_visible, Hlc{h.disk_epoch_max});
  ReplicaOptions options = OptionsFor(r);
  options.epoch_nonce = epoch_rng.Below(ReplicaOptions::kEpochNonceLimit);
  h.replica = std::make_unique<Replica>(options, *h.wall);
  RecoveredState stored;
  if (Status s = h.store.Recover(&stored); !s.ok()) {
    Fail("recovery", "r" + std::to_string(r) + " cannot read its own store back: " + s.ToString());
    return;
  }
  h.holds_lost = 0;
  h.durable_elsewhere_at_start = dots.LastDurableElsewhere(r);
  SeeOps(r, stored.ops, "read back from its store");
  Status s = h.replica->Recover(std::move(stored), Mono());
  if (!s.ok()) {
    Fail("recovery",
         "r" + std::to_string(r) + " cannot recover from its own store: " + s.ToString());
    return;
  }
  NoteResumed(r);  // a start without a rejoin resumes at once
  queue.Schedule(now + h.rng.Below(config.tick_ms), EventKind::kTick, r, h.incarnation);
  for (RegionId p = 0; p < config.regions; ++p) {
    if (p == r) continue;
    // This region dials its peers, and its peers notice the broken connection and dial back.
    queue.Schedule(now, EventKind::kReconnect, r,
                   (std::uint64_t{p} << 32) | (h.incarnation & 0xffffffffu));
    if (hosts[p].up)
      queue.Schedule(now + h.rng.Below(kReconnectDelayMaxMs + 1), EventKind::kReconnect, p,
                     (std::uint64_t{r} << 32) | (hosts[p].incarnation & 0xffffffffu));
  }
}

void Simulation::Impl::ScheduleReconnects(const std::vector<std::pair<RegionId, RegionId>>& up) {
  for (auto [from, to] : up) {
    if (!hosts[from].up) continue;
    queue.Schedule(now + fault_rng.Below(kReconnectDelayMaxMs + 1), EventKind::kReconnect, from,
                   (std::uint64_t{to} << 32) | (hosts[from].incarnation & 0xffffffffu));
  }
}

void Simulation::Impl::Cut(const Partition& p) { network.Cut(p); }

void Simulation::Impl::Uncut(const Partition& p) { ScheduleReconnects(network.Uncut(p)); }

void Simulation::Impl::OnSample() {
  if (finished) return;
  for (RegionId r = 0; r < config.regions && !failure; ++r) {
    Host& h = hosts[r];
    if (!h.up || opened.empty()) continue;
    for (std::uint32_t k = 0; k < kAccountsCheckedPerSample && k < opened.size(); ++k) {
      h.check_cursor = (h.check_cursor + 1) % opened.size();
      CheckAccount(r, accounts[opened[h.check_cursor]].id);
    }
  }
  if (!config.report_dir.empty()) SampleForReport();
  queue.Schedule(now + config.sample_ms, EventKind::kSample);
}

RunResult Simulation::Impl::MakeResult() {
  RunResult res;
  summary.network = network.stats();
  summary.end_ms = now;
  summary.durable_ops = ledger.op_count();
  summary.accounts_opened = opened.size();
  summary.seqs_reissued = dots.reissued();
  summary.durable_lost_with_disk = dots.LostDurable();
  summary.acked_lost_with_disk = AckedLostWithDisk();
  const HoldTotals holds = ledger.HoldCounts();
  summary.durable_holds = holds.holds;
  summary.holds_voided = holds.holds_voided;
  summary.holds_captured = holds.captured;
  summary.holds_released = holds.released;
  summary.holds_expired = holds.expired;
  summary.holds_open = holds.open;
  summary.resolution_conflicts = holds.conflicts;
  summary.amount_captured = holds.amount_captured;
  res.summary = summary;
  for (const Host& h : hosts) {
    if (!h.replica) continue;
    const ReplicaStats& st = h.replica->stats();
    res.summary.rights_requests += st.rights_requests_sent;
    res.summary.rights_granted += st.rights_granted;
    res.summary.rebalance_transfers += st.rebalance_transfers;
    res.summary.snapshots += st.snapshots_sent;
    res.summary.expiry_releases += st.holds_expired;
  }
  if (failure) {
    res.ok = false;
    res.failure = *failure;
    trace.Add(0x46u);
    trace.Add(failure->invariant);
  }
  res.trace = trace.value();
  res.reproduce = ReproduceCommand(config);
  return res;
}

// ---- Simulation -------------------------------------------------------------------------------

Simulation::Simulation(SimConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Simulation::~Simulation() = default;

void Simulation::Start() { impl_->Start(); }
std::uint64_t Simulation::now() const { return impl_->now; }
void Simulation::RunUntil(std::uint64_t t) { impl_->RunUntil(t); }
std::uint64_t Simulation::Submit(RegionId r, CommandBody body) {
  return impl_->Submit(r, std::move(body));
}
const CommandResult* Simulation::Result(std::uint64_t handle) const {
  auto it = impl_->scripted_results.find(handle);
  return it == impl_->scripted_results.end() ? nullptr : &it->second;
}
void Simulation::Cut(const Partition& p) { impl_->Cut(p); }
void Simulation::Uncut(const Partition& p) { impl_->Uncut(p); }
void Simulation::Lose(RegionId from, RegionId to, std::uint64_t until_ms) {
  Impl& s = *impl_;
  const RegionId n = s.config.regions;
  if (s.lose_until_ms.empty()) s.lose_until_ms.assign(static_cast<std::size_t>(n) * n, 0);
  std::uint64_t& u = s.lose_until_ms[from * n + to];
  u = std::max(u, until_ms);
}
void Simulation::StepClock(RegionId r, std::int64_t delta_ms) {
  impl_->hosts[r].clock.Step(delta_ms);
}
void Simulation::Deliver(RegionId from, RegionId to, const Message& msg) {
  Impl& s = *impl_;
  if (!s.hosts[to].up) return;
  Effects e;
  s.hosts[to].replica->OnMessage(from, msg, s.Mono(), &e);
  s.Absorb(to, &e);
}
void Simulation::Crash(RegionId r) { impl_->Crash(r); }
void Simulation::Restart(RegionId r) { impl_->Restart(r); }
void Simulation::WipeDisk(RegionId r) { impl_->ReplaceDisk(r, nullptr); }
void Simulation::CopyDisk(RegionId r) { impl_->CopyDisk(r); }
void Simulation::RestoreDisk(RegionId r, std::size_t back) {
  Impl& s = *impl_;
  const auto& copies = s.hosts[r].disk_copies;
  if (back >= copies.size()) return;
  const Host::DiskCopy c = copies[copies.size() - 1 - back];
  s.ReplaceDisk(r, &c);
}
Replica* Simulation::replica(RegionId r) { return impl_->hosts[r].replica.get(); }
bool Simulation::failed() const { return impl_->failure.has_value(); }
const report::RunReport& Simulation::report_data() const { return impl_->report; }

RunResult Simulation::Run() {
  Impl& s = *impl_;
  s.Start();
  s.StartFaults();
  s.StartWorkload();
  s.RunToEnd();
  if (!s.failure && !s.finished)
    s.Fail("I1 convergence", "the event queue ran dry before the run ended");
  RunResult res = s.MakeResult();
  if (!s.config.report_dir.empty()) {
    s.BuildReport();
    Status w = report::WriteReport(s.report, s.config.report_dir);
    if (!w.ok()) std::fprintf(stderr, "tally-sim: %s\n", w.ToString().c_str());
  }
  return res;
}

RunResult Simulation::Finish() { return Finish(Partition{}); }

RunResult Simulation::Finish(const Partition& left_down) {
  Impl& s = *impl_;
  if (!s.failure && !s.liveness) s.BeginLiveness(left_down.cut.empty() ? nullptr : &left_down);
  s.RunToEnd();
  if (!s.failure && !s.finished)
    s.Fail("I1 convergence", "the event queue ran dry before the run ended");
  RunResult res = s.MakeResult();
  if (!s.config.report_dir.empty()) {
    s.BuildReport();
    Status w = report::WriteReport(s.report, s.config.report_dir);
    if (!w.ok()) std::fprintf(stderr, "tally-sim: %s\n", w.ToString().c_str());
  }
  return res;
}

std::string FormatSummary(const SimConfig& c, const RunResult& r) {
  const RunSummary& s = r.summary;
  std::string out;
  char buf[512];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += buf;
    out += '\n';
  };
  line("tally-sim run: seed=%" PRIu64 " regions=%u accounts=%u ops=%" PRIu64 " faults=%s bug=%s",
       c.seed, c.regions, c.accounts, c.ops, c.profile.c_str(),
       c.plant_bug.empty() ? "none" : c.plant_bug.c_str());
  if (c.durability != "local") out.insert(out.size() - 1, " durability=" + c.durability);
  line("requests: %" PRIu64 " (transfers %" PRIu64 ", attempts %" PRIu64 ", retries %" PRIu64
       " of which %" PRIu64 " at another region (%" PRIu64 " credits, %" PRIu64
       " transfers, spent by %" PRIu64 " debits), replay probes %" PRIu64 ", timeouts %" PRIu64
       ", gave up %" PRIu64 ", replies lost %" PRIu64 ")",
       s.requests, s.transfers, s.attempts, s.retries, s.retries_elsewhere,
       s.credit_retries_elsewhere, s.transfer_retries_elsewhere, s.retried_credit_spends, s.probes,
       s.timeouts, s.gave_up, s.replies_lost);
  if (c.rival_opens)
    out.insert(out.size() - 2, ", rival opens " + std::to_string(s.rival_opens) + " (accepted " +
                                   std::to_string(s.rival_opens_accepted) + ")");
  std::string rej;
  for (const auto& [code, n] : s.rejected_by_code) rej += " " + code + "=" + std::to_string(n);
  line("answers: accepted %" PRIu64 " (overdraft %" PRIu64 ", replays %" PRIu64
       "), rejected %" PRIu64 "%s%s%s",
       s.accepted, s.overdraft_debits, s.replays, s.rejected, rej.empty() ? "" : " (",
       rej.empty() ? "" : rej.c_str() + 1, rej.empty() ? "" : ")");
  line("state: %" PRIu64 " accounts opened, %" PRIu64 " durable ops, rights requests %" PRIu64
       " (granted %" PRIu64 "), rebalance transfers %" PRIu64,
       s.accounts_opened, s.durable_ops, s.rights_requests, s.rights_granted,
       s.rebalance_transfers);
  line("forks: %" PRIu64 " overdraft fees (total %" PRId64 "), %" PRIu64 " voids (net %" PRId64
       "); transfers between accounts %" PRIu64 " (voided %" PRIu64 ")",
       s.fee_events, s.fees, s.void_events, s.voids, s.durable_transfers, s.transfers_voided);
  if (c.workload.budget_p > 0 || s.budget_debits > 0)
    line("budgets: debits asking for a fallback %" PRIu64 "; durable budget debits %" PRIu64
         " (voided %" PRIu64 "): paid by an ancestor %" PRIu64 ", through a cap %" PRIu64,
         s.fallback_debits, s.budget_debits, s.budget_voided, s.budget_fallbacks, s.budget_caps);
  if (c.workload.hold_weight > 0 || s.holds > 0 || s.durable_holds > 0)
    line("holds: requests %" PRIu64 " (retried at another region %" PRIu64 "), captures %" PRIu64
         " (sent again at another region %" PRIu64 "), releases %" PRIu64
         ", resolved at two regions at once %" PRIu64 "; durable %" PRIu64 " (voided %" PRIu64
         "): captured %" PRIu64 " (total %" PRId64 "), released %" PRIu64 ", expired %" PRIu64
         " (expiry releases %" PRIu64 "), open %" PRIu64 ", resolution conflicts %" PRIu64 "%s",
         s.holds, s.hold_retries_elsewhere, s.captures, s.capture_retries_elsewhere, s.releases,
         s.dual_resolutions, s.durable_holds, s.holds_voided, s.holds_captured, s.amount_captured,
         s.holds_released, s.holds_expired, s.expiry_releases, s.holds_open, s.resolution_conflicts,
         s.stale_hold_resolutions == 0 ? ""
                                       : (", resolutions of a hold lost with a disk (dot reused) " +
                                          std::to_string(s.stale_hold_resolutions))
                                             .c_str());
  line("faults: partitions %" PRIu64 ", crashes %" PRIu64 " (restarts %" PRIu64
       "), clock steps %" PRIu64 ", amnesia %" PRIu64 ", lying hellos %" PRIu64 ", syncs %" PRIu64
       ", clock-ahead reports %" PRIu64,
       s.partitions, s.crashes, s.restarts, s.clock_steps, s.amnesias, s.lying_hellos, s.syncs,
       s.clock_ahead_reports);
  line("disks: wipes %" PRIu64 ", restores %" PRIu64 " (copies taken %" PRIu64
       "), durable ops lost with a disk %" PRIu64 ", acked ops lost with a disk %" PRIu64
       ", seqs issued again %" PRIu64,
       s.wipes, s.restores, s.disk_copies, s.durable_lost_with_disk, s.acked_lost_with_disk,
       s.seqs_reissued);
  const NetworkStats& n = s.network;
  line("network: %" PRIu64 " messages sent, %" PRIu64 " bytes, delivered %" PRIu64 ", lost %" PRIu64
       ", duplicated %" PRIu64 ", cut by partitions %" PRIu64 ", over capacity %" PRIu64
       ", to a down region %" PRIu64,
       n.sent, n.bytes, n.delivered, n.lost, n.duplicated, n.dropped_partition, n.dropped_capacity,
       n.dropped_receiver_down);
  if (n.sent_by_kind.size() == 6)
    line("messages: hello %" PRIu64 ", op batches %" PRIu64 ", acks %" PRIu64
         ", heartbeats %" PRIu64 ", rights requests %" PRIu64 ", snapshots %" PRIu64,
         n.sent_by_kind[0], n.sent_by_kind[1], n.sent_by_kind[2], n.sent_by_kind[3],
         n.sent_by_kind[4], n.sent_by_kind[5]);
  std::string conv =
      s.convergence_ms ? std::to_string(*s.convergence_ms) + " ms" : std::string("-");
  if (s.finality_ms) conv += ", every op final after " + std::to_string(*s.finality_ms) + " ms";
  line(
      "virtual time: workload ended %.3f s, heal %.3f s (final topology %s), converged after %s, "
      "end %.3f s, %" PRIu64 " events",
      s.workload_end_ms / 1000.0, s.heal_ms / 1000.0,
      s.final_topology.empty() ? "-" : s.final_topology.c_str(), conv.c_str(), s.end_ms / 1000.0,
      s.events);
  if (r.ok) {
    line("result: ok (I1-I7 held)");
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", r.failure.time_ms / 1000.0);
    out += "FAILED " + r.failure.invariant + " at " + buf + " s: " + r.failure.message + "\n";
    out += "reproduce: " + r.reproduce + "\n";
  }
  line("trace=%016" PRIx64, r.trace);
  return out;
}

}  // namespace tally::sim
