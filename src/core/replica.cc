#include "core/replica.h"

#include <algorithm>
#include <cassert>
#include <set>

#include "core/answers.h"
#include "core/digest.h"
#include "core/heartbeats.h"
#include "core/ids.h"
#include "core/rejoiner.h"
#include "core/replica_state.h"
#include "core/state_transfer.h"
#include "core/validate.h"

namespace tally {

void Effects::Clear() {
  ops.clear();
  forget_keys.clear();
  keys.clear();
  high_water = Hlc{};
  fences.clear();
  fold.reset();
  send.clear();
  completions.clear();
  notices.clear();
  replaces_store = false;
}

namespace {
constexpr std::uint64_t kMaxRetentionMs = std::uint64_t{366} * 24 * 3600 * 1000;
}  // namespace

Status ReplicaOptions::Validate() const {
  if (Status s = ValidateClusterId(cluster_id); !s.ok())
    return Status::InvalidArgument("cluster_id: " + s.message());
  if (regions.empty() || regions.size() > kMaxRegions)
    return Status::InvalidArgument("regions: between 1 and " + std::to_string(kMaxRegions) +
                                   " regions are needed");
  std::set<std::string> names;
  for (const std::string& r : regions) {
    Status s = ValidateRegionName(r);
    if (!s.ok()) return Status::InvalidArgument("regions: " + s.message());
    if (!names.insert(r).second) return Status::InvalidArgument("regions: duplicate name " + r);
  }
  if (self >= regions.size()) return Status::InvalidArgument("self: not one of the regions");
  if (heartbeat_interval_ms == 0)
    return Status::InvalidArgument("heartbeat_interval_ms must be > 0");
  if (peer_timeout_ms == 0) return Status::InvalidArgument("peer_timeout_ms must be > 0");
  if (max_batch_ops == 0) return Status::InvalidArgument("max_batch_ops must be > 0");
  if (max_inflight_ops < max_batch_ops)
    return Status::InvalidArgument("max_inflight_ops must be >= max_batch_ops");
  if (idempotency_retention_ms == 0 || idempotency_retention_ms > kMaxRetentionMs)
    return Status::InvalidArgument("idempotency_retention_ms must be between 1 and " +
                                   std::to_string(kMaxRetentionMs) + " (366 days)");
  return Status::OK();
}

// The orchestrator: it owns the replica's state (core/replica_state.h) and the parts that act on
// it — answers.h, rejoiner.h, heartbeats.h, state_transfer.h — and routes every call: a client's
// command to the desk, a message to the part it concerns, an op through the receive path below
// (fences, gaps, the ops held for a fence). Only it calls more than one part, so the parts never
// call back into it. docs/design.md, "Inside the core".
class Replica::Impl {
 public:
  Impl(ReplicaOptions o, const WallClock* wall)
      : s_(std::move(o), wall),
        answers_(s_),
        rejoiner_(s_),
        heartbeats_(s_, rejoiner_),
        transfer_(s_) {}

  Status Recover(RecoveredState st, std::uint64_t now_ms) {
    if (s_.book.size() != 0 || s_.log.applied().get(s_.opt.self) != 0)
      return Status::FailedPrecondition("Recover must be called on a fresh replica");
    const Hlc high_water = st.high_water;
    for (const Fence& f : st.fences) s_.inc.AddFence(f);
    transfer_.DropLostHistory(&st);
    Hlc held_max;  // the clock must not restart behind any op we hold: causality
    s_.frontier = s_.saved_frontier = st.frontier;
    Status s = StateTransfer::LoadInto(s_.opt, std::move(st), &s_.log, &s_.book, &held_max);
    if (!s.ok()) return s;
    if (!s_.opt.bugs.forget_hlc_high_water) {
      s_.clock.Restore(std::max(high_water, held_max));
    }
    s_.persisted_hw = high_water;
    next_heartbeat_ms_ = now_ms;
    next_rebalance_ms_ = now_ms + s_.opt.rebalance_interval_ms;
    next_checkpoint_ms_ = now_ms + s_.opt.checkpoint_interval_ms;  // not at the first frontier move
    // A new incarnation. Its epoch is a timestamp above the restored high-water mark, so it is
    // above every epoch an earlier start of this store advertised (each is leased before its
    // Hello goes out); a store wiped or restored from an older copy learns a higher one from its
    // peers (NoteRejoinAnswer). Until a peer confirms how many of our own ops exist, we originate
    // nothing: the store may have lost some, and reissuing their seqs would fork silently.
    rejoiner_.PickEpochAbove(0);
    // An earlier start may have resumed at an epoch our clock has not reached (it stepped back).
    if (const std::uint64_t ours = s_.inc.fences().NewestEpoch(s_.opt.self); ours >= s_.inc.epoch())
      rejoiner_.MoveEpochPast(ours);
    s_.rejoining = s_.n > 1 && s_.opt.rejoin_on_start && !s_.opt.bugs.skip_rejoin;
    if (!s_.rejoining) rejoiner_.Resume();
    return Status::OK();
  }

  void Submit(const Command& cmd, std::uint64_t now, Effects* out) {
    ++s_.stats.commands;
    if (cmd.replicated) {
      if (s_.n == 1) {
        answers_.Complete(
            Rejected(cmd.id, Status::InvalidArgument(
                                 "durability \"replicated\" needs another region, and this "
                                 "cluster has one")),
            now, out);
        return;
      }
      s_.replication.Want(cmd.id);
    }
    CommandResult r = s_.desk.Submit(cmd, s_.Phase(), now, out);
    if (r.id == CommandDesk::kParked) return;  // completes later
    answers_.Complete(std::move(r), now, out);
  }

  Status CheckHello(const Hello& h) const {
    if (h.cluster_id != s_.opt.cluster_id)
      return Status::PermissionDenied("peer belongs to cluster '" + h.cluster_id + "', not '" +
                                      s_.opt.cluster_id + "'");
    if (h.protocol_version != kProtocolVersion)
      return Status::FailedPrecondition("peer speaks protocol " +
                                        std::to_string(h.protocol_version) + ", we speak " +
                                        std::to_string(kProtocolVersion));
    if (h.region >= s_.n || h.region == s_.opt.self)
      return Status::InvalidArgument("peer claims unknown region id " + std::to_string(h.region));
    if (h.retention_ms != 0 && h.retention_ms != s_.opt.idempotency_retention_ms)
      return Status::FailedPrecondition(
          "peer keeps idempotency keys " + std::to_string(h.retention_ms) + " ms, we keep them " +
          std::to_string(s_.opt.idempotency_retention_ms) +
          " ms: the retention decides voids and must be the same in every region");
    return Status::OK();
  }

  void OnMessage(RegionId from, const Message& msg, std::uint64_t now, Effects* out) {
    if (from >= s_.n || from == s_.opt.self) return;
    if (const auto* hello = std::get_if<Hello>(&msg)) {
      OnHello(from, *hello, now, out);
      return;
    }
    s_.peers.Heard(from, now);
    if (const auto* batch = std::get_if<OpBatch>(&msg)) {
      for (const Op& op : batch->ops) Receive(op, now, out);
      out->send.push_back(Outbound{from, s_.AckFor(from, s_.Claims(s_.log.applied()))});
    } else if (const auto* ack = std::get_if<Ack>(&msg)) {
      s_.Acked(from, ack->applied, now, /*prunable=*/true, ack->fence_epoch >= s_.inc.epoch());
      answers_.ReleaseReplicated(now, out);
    } else if (const auto* hb = std::get_if<Heartbeat>(&msg)) {
      // Fences first: a promise must not confirm ops of a lost history we applied unaware.
      LearnFences(hb->fences, now, out);
      heartbeats_.On(from, *hb, now, out);
      answers_.ReleaseReplicated(now, out);
    } else if (const auto* rq = std::get_if<RightsRequest>(&msg)) {
      if (s_.broker.OnRightsRequest(from, *rq, s_.Phase(), now, out)) Push(from, now, out);
    } else if (const auto* snap = std::get_if<Snapshot>(&msg)) {
      OnSnapshot(from, *snap, now, out);
    }
  }

  void OnHello(RegionId from, const Hello& hello, std::uint64_t now, Effects* out) {
    Status s = CheckHello(hello);
    if (s.ok() && hello.region != from)
      s = Status::InvalidArgument("peer on the link of region " + std::to_string(from) +
                                  " says it is region " + std::to_string(hello.region));
    if (!s.ok()) {
      out->notices.push_back(Notice{Notice::Kind::kPeerRefused, from, 0, s.ToString()});
      return;
    }
    s_.peers.Heard(from, now);
    LearnFences(hello.fences, now, out);
    s_.inc.NoteOwnFences(from, hello.fences);
    s_.Acked(from, hello.applied, now, /*prunable=*/false, s_.inc.KnowsOurFence(hello.fences));
    s_.peers.ResetSent(from, now);  // a new connection: what we sent before may be lost
    const std::uint64_t known_epoch = s_.inc.NotePeerEpoch(from, hello.epoch);
    // Its ops we hold beyond a gap may belong to a history its restart lost (a store restored
    // from a copy): once it has rejoined it issues those seqs again with other ops, and draining
    // them after its new ones would splice two histories. Its new run re-sends what exists.
    if (hello.epoch > known_epoch) {
      s_.log.ClearBuffered(from);
      // A peer that answered our rejoin and has restarted since may have lost what it said it
      // held (its disk, or what it had not synced): waiting for those ops could be for ever
      // (swarm seed 309599: each of two regions then waited for the other). Ask everyone again.
      if (s_.rejoining && s_.rejoin.answered(from)) rejoiner_.AskEveryPeerAgain(out);
    }
    Peer& p = s_.peers.at(from);
    p.rejoining = hello.rejoining;
    p.needs_snapshot = hello.needs_snapshot;
    if (s_.rejoining) rejoiner_.NoteRejoinAnswer(from, hello, now, out);
    // A peer we knew under another epoch restarted: answer with what we hold of its own ops,
    // echoing its epoch, so it knows whether it lost any (and gets them back by Push). A
    // rejoining peer asks again every heartbeat until it has our answer, so its repeated
    // Hellos are answered at most once per heartbeat interval: two rejoining regions would
    // otherwise answer each other's answers (each says `rejoining`) for ever.
    if (hello.epoch != known_epoch ||
        (hello.rejoining &&
         (p.answered_ms == 0 || now >= p.answered_ms + s_.opt.heartbeat_interval_ms))) {
      p.answered_ms = std::max<std::uint64_t>(now, 1);
      s_.SendHello(from, out);
      if (hello.rejoining) SendAwaitingFence(from, out);
    }
    Push(from, now, out);
  }

  void OnConnected(RegionId to, std::uint64_t now, Effects* out) {
    if (to >= s_.n || to == s_.opt.self) return;
    s_.peers.at(to).sent = s_.peers.at(to).acked;
    s_.peers.at(to).link_up = true;
    s_.SendHello(to, out);
  }

  void OnDisconnected(RegionId to) {
    if (to < s_.n && to != s_.opt.self) s_.peers.at(to).link_up = false;
  }

  // Sends peer `to` the ops it lacks (PeerTable::Push), or, a rejoining peer that lacks ops we no
  // longer retain, a snapshot.
  void Push(RegionId to, std::uint64_t now, Effects* out) {
    if (!s_.peers.Reachable(to, now)) return;
    if (!s_.rejoining &&
        s_.peers.NeedsSnapshot(to, s_.log.floor())) {  // a rejoining region's state may lack ops
      transfer_.SendSnapshot(to, now, out);
      return;
    }
    s_.peers.Push(to, s_.log, now, out, &s_.stats);
  }

  void Tick(std::uint64_t now, Effects* out) {
    answers_.CompleteAll(s_.desk.ExpirePending(s_.Phase(), now, out), now, out);
    answers_.ReleaseReplicated(now, out);
    if (s_.rejoining) rejoiner_.MaybeFinishRejoin(now, out);
    if (now >= next_heartbeat_ms_) {
      next_heartbeat_ms_ = now + s_.opt.heartbeat_interval_ms;
      heartbeats_.Send(now, out);
      if (s_.rejoining) rejoiner_.AskUnanswered(out);  // Hellos and their answers may be lost
      // While rejoining our own log may lack ops that exist: no frontier may pass them.
      if (!s_.rejoining && heartbeats_.FoldToFrontier()) {
        s_.desk.ReleaseExpiredHolds(s_.Phase(), out);
        answers_.CompleteAll(s_.desk.RetryAllPending(s_.Phase(), now, out), now, out);
      }
    }
    if (now >= next_checkpoint_ms_ && s_.saved_frontier < s_.frontier) {
      next_checkpoint_ms_ = now + s_.opt.checkpoint_interval_ms;
      heartbeats_.SaveCheckpoints(out);
    }
    if (!s_.rejoining && s_.opt.rebalance_interval_ms > 0 && now >= next_rebalance_ms_) {
      next_rebalance_ms_ = now + s_.opt.rebalance_interval_ms;
      s_.broker.Rebalance(s_.Phase(), now, out);
    }
    for (RegionId p = 0; p < s_.n; ++p) {
      if (p != s_.opt.self) Push(p, now, out);
    }
    // Every tick at most: they are few and change rarely.
    if (std::optional<std::vector<Fence>> all = s_.inc.TakeUnsaved()) out->fences = std::move(*all);
  }

  Status GetAccount(std::string_view id, AccountView* v) {
    Account* a = s_.book.Find(id);
    if (!a || !a->open) {
      // A rejoining region may not have received the account yet: not a verdict on it.
      if (s_.rejoining) return Status::Unavailable(s_.RejoinReason());
      return Status::NotFound("no account '" + std::string(id) + "'");
    }
    s_.book.FillView(*a, v);
    v->frontier = s_.frontier;
    v->lines_usable = a->opened.hlc < s_.frontier;
    if (!v->lines_usable) v->lines_wait_for = s_.finality.RegionsNotPast(a->opened.hlc);
    v->stale = s_.rejoining;
    return Status::OK();
  }

  Status GetHold(Dot hold, HoldView* v) {
    Account* a = nullptr;
    const HoldState* h = nullptr;
    if (!s_.book.FindHold(hold, &a, &h) || !h->placed) {
      if (s_.rejoining) return Status::Unavailable(s_.RejoinReason());
      return Status::NotFound("no hold " + hold.ToString() + " here");
    }
    *v = HoldView{a->config.id, hold, h->at.hlc, h->amount, h->expires_ms};
    using S = HoldView::State;
    if (h->voided) {
      v->state = S::kVoided;
    } else if (h->resolved()) {
      v->state = h->resolution == OpKind::kCapture ? S::kCaptured
                 : h->expired                      ? S::kExpired
                                                   : S::kReleased;
      v->captured = h->captured;
      v->resolved_by = Dot{h->winner.origin, h->winner.seq};
    }
    v->final = h->placed_final && (h->voided || h->winner_final);
    return Status::OK();
  }

  Status Forks(std::string_view id, std::vector<ForkReport>* forks) {
    Account* a = s_.book.Find(id);
    if (!a || !a->open) return Status::NotFound("no account '" + std::string(id) + "'");
    s_.book.Forks(*a, s_.log, forks);
    return Status::OK();
  }

  Status Statement(std::string_view id, std::vector<StatementLine>* lines) {
    Account* a = s_.book.Find(id);
    if (!a || !a->open) return Status::NotFound("no account '" + std::string(id) + "'");
    s_.book.Statement(*a, s_.log, lines);
    return Status::OK();
  }

  Status DerivedEvents(std::string_view id, std::vector<DerivedEvent>* events) {
    std::vector<ForkReport> forks;
    Status s = Forks(id, &forks);
    if (!s.ok()) return s;
    events->clear();
    for (const ForkReport& f : forks) events->push_back(f.event);
    return Status::OK();
  }

  std::uint64_t StateDigest() {
    Fnv64 h;
    for (const std::string& id : s_.book.OpenIds()) {
      h.Add(id);
      h.Add(s_.book.Digest(*s_.book.Find(id)));
    }
    return h.value();
  }

  std::vector<std::string> AccountIds() const { return s_.book.OpenIds(); }
  bool HasAccount(std::string_view id) const { return s_.book.IsOpen(id); }
  std::vector<PeerView> Peers(std::uint64_t now) const {
    return s_.peers.Views(s_.log.applied(), now);
  }
  const ReplicaOptions& options() const { return s_.opt; }
  bool rejoining() const { return s_.rejoining; }
  VersionVector held() const { return s_.log.Held(); }
  std::vector<Fence> fences() const { return s_.inc.fences().All(); }
  std::string rejoin_reason() const { return s_.rejoining ? s_.RejoinReason() : ""; }
  std::uint64_t epoch() const { return s_.inc.epoch(); }
  Hello HelloTo(RegionId to, const VersionVector& applied) const {
    return s_.HelloFor(to, applied);
  }
  const VersionVector& applied() const { return s_.log.applied(); }
  const VersionVector& log_floor() const { return s_.log.floor(); }
  Hlc clock() const { return s_.clock.last(); }
  Hlc frontier() const { return s_.frontier; }
  Hlc saved_frontier() const { return s_.saved_frontier; }
  const ReplicaStats& stats() const {
    s_.stats.idempotency_keys = s_.book.key_count();
    s_.stats.idempotency_index_bytes = s_.book.key_memory_bytes();
    s_.stats.buffered_ops = s_.log.buffered();
    return s_.stats;
  }

 private:
  void Receive(const Op& op, std::uint64_t now, Effects* out) {
    const RegionId o = op.dot.origin;
    if (o >= s_.n) return;
    // Every timestamp we receive is merged, applied or not (held back for a gap, a duplicate, of a
    // lost history): whoever we answer when it rejoins then resumes above it.
    s_.clock.Update(op.hlc, s_.Wall());
    // Our own ops come back through relays: we have them — unless we restarted with less than we
    // had, and a peer is giving them back while we rejoin.
    if (o == s_.opt.self && !s_.rejoining) return;
    if (s_.inc.AddFence(FenceBook::Implied(op))) {
      std::vector<bool> changed(s_.n, false);
      changed[o] = true;
      AfterNewFences(changed, now, out);
    }
    if (s_.inc.fences().IsDead(op)) {
      ++s_.stats.lost_history_ops;
      return;
    }
    if (op.dot.seq <= s_.log.applied().get(o)) {
      ++s_.stats.duplicate_ops;
      return;
    }
    if (s_.inc.AwaitsFence(op)) {
      // An op of an earlier run of its origin, which has restarted since: until we know where
      // that restart resumed (its fence) we cannot tell whether the op is of a history it lost,
      // and what we spent of it meanwhile the fence would take back (swarm seed 314095: rights
      // shipped by a dead run, spent here, then removed). Hold it; hand it to its origin, which
      // takes back its own ops while it rejoins, and to any rejoining peer: to those that ask
      // (SendAwaitingFence), and to those that asked already, as it arrives (swarm seed 323502:
      // r0 rejoined cut off from r1, which held its ops; r2 had answered before r1's relay of
      // them reached it, and held them for r0's fence while r0 waited for them).
      if (s_.log.HoldForFence(op)) {
        for (RegionId p = 0; p < s_.n; ++p)
          if (p != s_.opt.self && s_.peers.at(p).rejoining && s_.peers.Reachable(p, now))
            out->send.push_back(Outbound{p, OpBatch{{op}}});
      }
      rejoiner_.MaybeFinishRejoin(now, out);
      return;
    }
    if (op.dot.seq > s_.log.applied().get(o) + 1) {
      s_.log.Buffer(op);
      return;  // the gap is filled by a re-send; beyond the bound we drop and wait for it too
    }
    ApplyRemote(op, now, out);
    DrainBuffered(o, now, out);
    if (o != s_.opt.self) s_.TryConfirm(o);
    rejoiner_.MaybeFinishRejoin(now, out);
  }

  // Gives a rejoining peer the ops we hold for a fence. Its rejoin waits for every op an answer
  // names (Held), and ours name only what we applied: so the op may exist nowhere else it can
  // reach — its own (which it takes back), or another rejoining region's whose old ops we hold
  // until that one resumes, while it waits for the first (swarm seed 1098: two rejoining regions
  // cut from each other, the third holding each one's old ops for the other's fence).
  void SendAwaitingFence(RegionId to, Effects* out) const {
    std::vector<Op> ops;
    for (RegionId o = 0; o < s_.n; ++o) {
      for (const auto& [seq, op] : s_.log.HeldForFence(o)) ops.push_back(op);
    }
    s_.peers.SendOps(to, ops, out);
  }

  // Receives again the ops of origin `o` held for its fence, once it is known.
  void ReleaseAwaitingFence(RegionId o, std::uint64_t now, Effects* out) {
    if (!s_.log.HoldsForFence(o) || s_.inc.fences().NewestEpoch(o) < s_.inc.NewestEpochOf(o))
      return;
    for (const auto& [seq, op] : s_.log.TakeHeldForFence(o)) Receive(op, now, out);
  }

  // Applies the buffered ops of origin `o` that now follow what we hold; drops those we have.
  void DrainBuffered(RegionId o, std::uint64_t now, Effects* out) {
    Op op;
    while (s_.log.TakeReady(o, &op)) {
      if (s_.inc.fences().IsDead(op)) {
        ++s_.stats.lost_history_ops;
      } else if (op.dot.seq == s_.log.applied().get(o) + 1) {
        ApplyRemote(op, now, out);
      }
    }
  }

  void ApplyRemote(const Op& op, std::uint64_t now, Effects* out) {
    Status s = ValidateOpFor(op, s_.n);
    if (s.ok()) s = s_.ApplyOp(op, out);
    if (!s.ok()) {
      // A peer sent an op its origin could never have accepted. Applying it would corrupt state;
      // skipping it silently would hide the fault: report it and stall that origin.
      out->notices.push_back(Notice{Notice::Kind::kPeerRefused, op.dot.origin, 0,
                                    "refused op " + op.dot.ToString() + ": " + s.ToString()});
      return;
    }
    ++s_.stats.remote_ops_applied;
    if (op.kind == OpKind::kRights && op.to == s_.opt.self)
      answers_.CompleteAll(s_.desk.RetryPending(op.account, s_.Phase(), now, out), now, out);
  }

  // Learns the fences a peer sent. A new one may show that ops we hold are of a lost history
  // (applied before we heard of the fence, or read back from a restored store): they go. Ops we
  // held back for lack of a fence may be decided now. While we rejoin, the answers so far may
  // have counted such ops: we ask again.
  void LearnFences(const std::vector<Fence>& fences, std::uint64_t now, Effects* out) {
    std::vector<bool> changed(s_.n, false);
    bool any = false;
    for (const Fence& f : fences) {
      if (f.origin < s_.n && s_.inc.AddFence(f)) changed[f.origin] = any = true;
    }
    if (any) AfterNewFences(changed, now, out);
  }

  // What follows learning new fences of the origins `changed` marks.
  void AfterNewFences(const std::vector<bool>& changed, std::uint64_t now, Effects* out) {
    s_.inc.MarkUnsaved();
    if (changed[s_.opt.self] && s_.rejoining &&
        s_.inc.fences().NewestEpoch(s_.opt.self) >= s_.inc.epoch()) {
      // A start of ours that our store does not remember resumed already (the store is older
      // than it, and the peer that answered us restarted since and forgot that epoch): as with an
      // answer that knows it, move past it.
      rejoiner_.MoveEpochPast(s_.inc.fences().NewestEpoch(s_.opt.self));
      out->notices.push_back(
          Notice{Notice::Kind::kRejoin, s_.opt.self, 0,
                 "a fence of a later start of ours is known: our store is older than "
                 "our last run; rejoining under a new epoch"});
    }
    for (RegionId o = 0; o < s_.n; ++o) {
      if (!changed[o]) continue;
      transfer_.RemoveLostHistory(o, now, out);
      if (o != s_.opt.self) {
        DrainBuffered(o, now, out);
        ReleaseAwaitingFence(o, now, out);
      }
    }
    if (s_.rejoining && !s_.needs_snapshot) rejoiner_.AskEveryPeerAgain(out);
  }

  // A peer's snapshot (StateTransfer::Install).
  void OnSnapshot(RegionId from, const Snapshot& snap, std::uint64_t now, Effects* out) {
    if (!s_.rejoining) return;
    // Fences first: ours among them may show that own ops we hold beyond the snapshot are of a
    // lost history (they go), where we would otherwise replay them on the snapshot and write them
    // back as durable under seqs since issued again (seed 300977).
    LearnFences(snap.fences, now, out);
    if (!transfer_.Install(from, snap, now, out)) return;
    for (RegionId o = 0; o < s_.n; ++o) {
      if (o != s_.opt.self) {
        DrainBuffered(o, now, out);
        s_.TryConfirm(o);
      }
    }
    rejoiner_.MaybeFinishRejoin(now, out);
  }

  ReplicaState s_;
  Answers answers_;
  Rejoiner rejoiner_;
  Heartbeats heartbeats_;
  StateTransfer transfer_;
  std::uint64_t next_heartbeat_ms_ = 0;
  std::uint64_t next_rebalance_ms_ = 0;
  std::uint64_t next_checkpoint_ms_ = 0;
};

Replica::Replica(ReplicaOptions options, const WallClock& wall) {
  Status s = options.Validate();
  assert(s.ok() && "invalid ReplicaOptions");
  (void)s;
  impl_ = std::make_unique<Impl>(std::move(options), &wall);
}
Replica::~Replica() = default;

Status Replica::Recover(RecoveredState state, std::uint64_t now_ms) {
  return impl_->Recover(std::move(state), now_ms);
}
void Replica::Submit(const Command& cmd, std::uint64_t now_ms, Effects* out) {
  impl_->Submit(cmd, now_ms, out);
}
void Replica::OnMessage(RegionId from, const Message& msg, std::uint64_t now_ms, Effects* out) {
  impl_->OnMessage(from, msg, now_ms, out);
}
void Replica::OnConnected(RegionId to, std::uint64_t now_ms, Effects* out) {
  impl_->OnConnected(to, now_ms, out);
}
void Replica::OnDisconnected(RegionId to) { impl_->OnDisconnected(to); }
Status Replica::CheckHello(const Hello& hello) const { return impl_->CheckHello(hello); }
void Replica::Tick(std::uint64_t now_ms, Effects* out) { impl_->Tick(now_ms, out); }
Status Replica::GetHold(Dot hold, HoldView* out) { return impl_->GetHold(hold, out); }

Status Replica::GetAccount(std::string_view id, AccountView* out) {
  return impl_->GetAccount(id, out);
}
std::vector<std::string> Replica::AccountIds() const { return impl_->AccountIds(); }
bool Replica::HasAccount(std::string_view id) const { return impl_->HasAccount(id); }
Status Replica::Forks(std::string_view id, std::vector<ForkReport>* out) {
  return impl_->Forks(id, out);
}

Status Replica::Statement(std::string_view id, std::vector<StatementLine>* out) {
  return impl_->Statement(id, out);
}
Status Replica::DerivedEvents(std::string_view id, std::vector<DerivedEvent>* out) {
  return impl_->DerivedEvents(id, out);
}
RegionId Replica::self() const { return impl_->options().self; }
bool Replica::rejoining() const { return impl_->rejoining(); }
std::string Replica::rejoin_reason() const { return impl_->rejoin_reason(); }
std::uint64_t Replica::epoch() const { return impl_->epoch(); }
Hello Replica::HelloTo(RegionId to, const VersionVector& applied) const {
  return impl_->HelloTo(to, applied);
}
const ReplicaOptions& Replica::options() const { return impl_->options(); }
const VersionVector& Replica::applied() const { return impl_->applied(); }
VersionVector Replica::held() const { return impl_->held(); }
std::vector<Fence> Replica::fences() const { return impl_->fences(); }
const VersionVector& Replica::log_floor() const { return impl_->log_floor(); }
Hlc Replica::clock() const { return impl_->clock(); }
Hlc Replica::frontier() const { return impl_->frontier(); }
Hlc Replica::saved_frontier() const { return impl_->saved_frontier(); }
std::vector<PeerView> Replica::Peers(std::uint64_t now_ms) const { return impl_->Peers(now_ms); }
const ReplicaStats& Replica::stats() const { return impl_->stats(); }
std::uint64_t Replica::StateDigest() { return impl_->StateDigest(); }

}  // namespace tally

namespace tally {

std::string_view HoldStateName(HoldView::State s) {
  switch (s) {
    case HoldView::State::kOpen:
      return "open";
    case HoldView::State::kCaptured:
      return "captured";
    case HoldView::State::kReleased:
      return "released";
    case HoldView::State::kExpired:
      return "expired";
    case HoldView::State::kVoided:
      return "voided";
  }
  return "unknown";
}

}  // namespace tally
