#include "core/replica.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>

#include "core/account_book.h"
#include "core/command_desk.h"
#include "core/digest.h"
#include "core/fence_book.h"
#include "core/finality.h"
#include "core/hlc.h"
#include "core/ids.h"
#include "core/incarnations.h"
#include "core/op_log.h"
#include "core/peer_table.h"
#include "core/rejoin_state.h"
#include "core/replication_waits.h"
#include "core/rights.h"
#include "core/rights_broker.h"
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

namespace {

constexpr Seq kAnySeq = std::numeric_limits<Seq>::max();

}  // namespace

// The orchestrator: it owns the collaborators (core/account_book.h, op_log.h, peer_table.h,
// finality.h, rejoin_state.h, replication_waits.h, rights.h), routes each call through them, and
// keeps what ties them together — the clock, the frontier, our epoch and the fences, the debits
// waiting for rights. The collaborators never call back into it. docs/design.md, "Architecture".
class Replica::Impl {
 public:
  Impl(ReplicaOptions o, const WallClock* wall)
      : opt_(std::move(o)),
        wall_(wall),
        n_(static_cast<RegionId>(opt_.regions.size())),
        clock_(opt_.max_clock_offset_ms),
        log_(n_),
        book_(opt_),
        peers_(opt_),
        finality_(n_, opt_.self),
        rejoin_(n_, opt_.self),
        inc_(n_, opt_.self),
        lost_from_(n_, 0),
        broker_(opt_, *wall_, clock_, log_, book_, peers_, stats_),
        desk_(opt_, *wall_, clock_, log_, book_, peers_, finality_, stats_, broker_) {}

  // ---- recovery -------------------------------------------------------------------------------

  Status Recover(RecoveredState st, std::uint64_t now_ms) {
    if (book_.size() != 0 || log_.applied().get(opt_.self) != 0)
      return Status::FailedPrecondition("Recover must be called on a fresh replica");
    const Hlc high_water = st.high_water;
    for (const Fence& f : st.fences) inc_.AddFence(f);
    DropLostHistory(&st);
    Hlc held_max;  // the clock must not restart behind any op we hold: causality
    Status s = Load(std::move(st), &held_max);
    if (!s.ok()) return s;
    if (!opt_.bugs.forget_hlc_high_water) {
      clock_.Restore(std::max(high_water, held_max));
    }
    persisted_hw_ = high_water;
    next_heartbeat_ms_ = now_ms;
    next_rebalance_ms_ = now_ms + opt_.rebalance_interval_ms;
    next_checkpoint_ms_ = now_ms + opt_.checkpoint_interval_ms;  // not at the first frontier move
    // A new incarnation. Its epoch is a timestamp above the restored high-water mark, so it is
    // above every epoch an earlier start of this store advertised (each is leased before its
    // Hello goes out); a store wiped or restored from an older copy learns a higher one from its
    // peers (NoteRejoinAnswer). Until a peer confirms how many of our own ops exist, we originate
    // nothing: the store may have lost some, and reissuing their seqs would fork silently.
    PickEpochAbove(0);
    // An earlier start may have resumed at an epoch our clock has not reached (it stepped back).
    if (const std::uint64_t ours = inc_.fences().NewestEpoch(opt_.self); ours >= inc_.epoch())
      MoveEpochPast(ours);
    rejoining_ = n_ > 1 && opt_.rejoin_on_start && !opt_.bugs.skip_rejoin;
    if (!rejoining_) Resume();
    return Status::OK();
  }

  // The ops of a lost history our own store holds, by the fences it holds too: a copy restored
  // from before a fence, with that fence learned and synced since, then a crash (seed 300977).
  // Learning a fence removes such ops (RemoveLostHistory); one read back from the store must be
  // handled here. From the first dead op of an origin on (a splice after it too) the ops go, as
  // that would remove them; if one of them is folded into our checkpoints already, only a
  // peer's state can replace ours: we keep them, claim none of them, and ask for a snapshot.
  void DropLostHistory(RecoveredState* st) {
    std::vector<Seq> first(n_, 0);
    for (const Op& op : st->ops) {
      const RegionId o = op.dot.origin;
      if (o < n_ && inc_.fences().IsDead(op) && (first[o] == 0 || op.dot.seq < first[o]))
        first[o] = op.dot.seq;
    }
    for (RegionId o = 0; o < n_; ++o) {
      if (first[o] == 0) continue;
      auto lost = [&](const Op& op) { return op.dot.origin == o && op.dot.seq >= first[o]; };
      const bool folded = std::any_of(st->ops.begin(), st->ops.end(), [&](const Op& op) {
        return lost(op) && op.hlc < st->frontier;
      });
      if (folded) {
        needs_snapshot_ = true;
        lost_from_[o] = first[o];
        continue;
      }
      const auto removed = std::erase_if(st->ops, lost);
      std::erase_if(st->keys,
                    [&](const KeyRecord& k) { return k.dot.origin == o && k.dot.seq >= first[o]; });
      stats_.lost_history_ops += removed;
    }
  }

  // Loads checkpoints, key records and the retained log into a fresh replica (Recover, and a
  // snapshot being checked before it is installed). Corruption when they contradict each other.
  // *held_max: the newest timestamp among the ops.
  Status Load(RecoveredState st, Hlc* held_max) {
    frontier_ = st.frontier;
    saved_frontier_ = st.frontier;
    log_.Reset(st.log_floor);
    for (const AccountCheckpoint& c : st.checkpoints) {
      Status s = book_.LoadCheckpoint(c);
      if (!s.ok()) return Status::Corruption("checkpoint of " + c.config.id + ": " + s.message());
    }
    for (const KeyRecord& k : st.keys) {
      Status s = book_.LoadKey(k);
      if (!s.ok()) return Status::Corruption("key record of " + k.account + ": " + s.message());
    }
    std::sort(st.ops.begin(), st.ops.end(), [](const Op& a, const Op& b) { return a.dot < b.dot; });
    for (Op& op : st.ops) {
      Status s = ValidateOpFor(op, n_);
      if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
      const RegionId o = op.dot.origin;
      if (op.dot.seq != log_.applied().get(o) + 1)
        return Status::Corruption("op log of region " + std::to_string(o) +
                                  " has a gap before seq " + std::to_string(op.dot.seq));
      *held_max = std::max(*held_max, op.hlc);
      if (op.hlc < frontier_) {
        // Already folded into the checkpoint; kept only so lagging peers can still be served.
        log_.Append(op);
        continue;
      }
      s = ApplyOp(op, nullptr);
      if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
    }
    return Status::OK();
  }

  // ---- client commands ------------------------------------------------------------------------

  void Submit(const Command& cmd, std::uint64_t now, Effects* out) {
    ++stats_.commands;
    if (cmd.replicated) {
      if (n_ == 1) {
        Complete(Rejected(cmd.id, Status::InvalidArgument(
                                      "durability \"replicated\" needs another region, and this "
                                      "cluster has one")),
                 now, out);
        return;
      }
      replication_.Want(cmd.id);
    }
    CommandResult r = desk_.Submit(cmd, Phase(), now, out);
    if (r.id == CommandDesk::kParked) return;  // completes later
    Complete(std::move(r), now, out);
  }

  // What the desk reads of our state (CommandDesk::Phase).
  CommandDesk::Phase Phase() const {
    return CommandDesk::Phase{inc_.epoch(), rejoining_, rejoining_ ? RejoinReason() : std::string(),
                              frontier_};
  }

  void CompleteAll(std::vector<CommandResult> results, std::uint64_t now, Effects* out) {
    for (CommandResult& r : results) Complete(std::move(r), now, out);
  }

  // Answers a command, or, for one that asked for durability "replicated" and whose op of ours no
  // other region is known to hold yet, holds the answer until one does (ReleaseReplicated).
  void Complete(CommandResult r, std::uint64_t now, Effects* out) {
    const bool wants_replicated = replication_.TakeWant(r.id);
    r.replicated = r.status.ok() && r.op.seq != 0 && IsReplicated(r.op);
    if (wants_replicated && r.status.ok() && !r.replicated) {
      if (replication_.size() >= opt_.max_pending_debits) {
        r = Rejected(r.id, Status::Unavailable(
                               NotReplicatedReason(r.op, "too many answers wait for replication")));
      } else {
        replication_.Hold(std::move(r), now + opt_.replicated_wait_ms);
        return;
      }
    }
    out->completions.push_back(std::move(r));
  }

  // ---- messages -------------------------------------------------------------------------------

  Status CheckHello(const Hello& h) const {
    if (h.cluster_id != opt_.cluster_id)
      return Status::PermissionDenied("peer belongs to cluster '" + h.cluster_id + "', not '" +
                                      opt_.cluster_id + "'");
    if (h.protocol_version != kProtocolVersion)
      return Status::FailedPrecondition("peer speaks protocol " +
                                        std::to_string(h.protocol_version) + ", we speak " +
                                        std::to_string(kProtocolVersion));
    if (h.region >= n_ || h.region == opt_.self)
      return Status::InvalidArgument("peer claims unknown region id " + std::to_string(h.region));
    if (h.retention_ms != 0 && h.retention_ms != opt_.idempotency_retention_ms)
      return Status::FailedPrecondition(
          "peer keeps idempotency keys " + std::to_string(h.retention_ms) + " ms, we keep them " +
          std::to_string(opt_.idempotency_retention_ms) +
          " ms: the retention decides voids and must be the same in every region");
    return Status::OK();
  }

  void OnMessage(RegionId from, const Message& msg, std::uint64_t now, Effects* out) {
    if (from >= n_ || from == opt_.self) return;
    if (const auto* hello = std::get_if<Hello>(&msg)) {
      OnHello(from, *hello, now, out);
      return;
    }
    peers_.Heard(from, now);
    if (const auto* batch = std::get_if<OpBatch>(&msg)) {
      for (const Op& op : batch->ops) Receive(op, now, out);
      out->send.push_back(Outbound{from, AckFor(from, Claims(log_.applied()))});
    } else if (const auto* ack = std::get_if<Ack>(&msg)) {
      Acked(from, ack->applied, now, /*prunable=*/true, ack->fence_epoch >= inc_.epoch());
      ReleaseReplicated(now, out);
    } else if (const auto* hb = std::get_if<Heartbeat>(&msg)) {
      OnHeartbeat(from, *hb, now, out);
      ReleaseReplicated(now, out);
    } else if (const auto* rq = std::get_if<RightsRequest>(&msg)) {
      if (broker_.OnRightsRequest(from, *rq, Phase(), now, out)) Push(from, now, out);
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
    peers_.Heard(from, now);
    LearnFences(hello.fences, now, out);
    inc_.NoteOwnFences(from, hello.fences);
    Acked(from, hello.applied, now, /*prunable=*/false, inc_.KnowsOurFence(hello.fences));
    peers_.ResetSent(from, now);  // a new connection: what we sent before may be lost
    const std::uint64_t known_epoch = inc_.NotePeerEpoch(from, hello.epoch);
    // Its ops we hold beyond a gap may belong to a history its restart lost (a store restored
    // from a copy): once it has rejoined it issues those seqs again with other ops, and draining
    // them after its new ones would splice two histories. Its new run re-sends what exists.
    if (hello.epoch > known_epoch) {
      log_.ClearBuffered(from);
      // A peer that answered our rejoin and has restarted since may have lost what it said it
      // held (its disk, or what it had not synced): waiting for those ops could be for ever
      // (swarm seed 309599: each of two regions then waited for the other). Ask everyone again.
      if (rejoining_ && rejoin_.answered(from)) AskEveryPeerAgain(out);
    }
    Peer& p = peers_.at(from);
    p.rejoining = hello.rejoining;
    p.needs_snapshot = hello.needs_snapshot;
    if (rejoining_) NoteRejoinAnswer(from, hello, now, out);
    // A peer we knew under another epoch restarted: answer with what we hold of its own ops,
    // echoing its epoch, so it knows whether it lost any (and gets them back by Push). A
    // rejoining peer asks again every heartbeat until it has our answer, so its repeated
    // Hellos are answered at most once per heartbeat interval: two rejoining regions would
    // otherwise answer each other's answers (each says `rejoining`) for ever.
    if (hello.epoch != known_epoch ||
        (hello.rejoining &&
         (p.answered_ms == 0 || now >= p.answered_ms + opt_.heartbeat_interval_ms))) {
      p.answered_ms = std::max<std::uint64_t>(now, 1);
      SendHello(from, out);
      if (hello.rejoining) SendAwaitingFence(from, out);
    }
    Push(from, now, out);
  }

  void OnConnected(RegionId to, std::uint64_t now, Effects* out) {
    if (to >= n_ || to == opt_.self) return;
    peers_.at(to).sent = peers_.at(to).acked;
    peers_.at(to).link_up = true;
    SendHello(to, out);
  }

  void OnDisconnected(RegionId to) {
    if (to < n_ && to != opt_.self) peers_.at(to).link_up = false;
  }

  // What we tell peers we hold of `applied`: not the ops of a lost history we could not remove
  // yet. A rejoining peer would wait for them from us for ever, and we for its snapshot.
  VersionVector Claims(VersionVector applied) const {
    for (RegionId o = 0; o < n_; ++o)
      if (lost_from_[o] != 0 && applied.get(o) >= lost_from_[o]) applied.set(o, lost_from_[o] - 1);
    return applied;
  }

  Hello HelloFor(RegionId to, const VersionVector& applied) const {
    // The clock shown is never above the persisted high-water mark, so no restart can issue a
    // timestamp below it (a host may send this Hello without an Effects, before any lease).
    return Hello{opt_.cluster_id,
                 kProtocolVersion,
                 opt_.self,
                 Claims(applied),
                 inc_.epoch(),
                 to < n_ ? inc_.peer_epoch(to) : 0,
                 rejoining_,
                 std::min(clock_.last(), persisted_hw_).value,
                 inc_.fences().All(),
                 needs_snapshot_,
                 opt_.idempotency_retention_ms};
  }

  // What a peer says it holds (Hello, Ack, heartbeat): PeerTable::Acked. Its claim about our own
  // ops above where this incarnation resumed counts only if it knew our fence when it wrote it:
  // before, it may hold ops of our lost history under those seqs, and believing it would release
  // a "replicated" answer (or prune an op) that no peer holds.
  void Acked(RegionId from, const VersionVector& said, std::uint64_t now, bool prunable,
             bool knows_our_fence) {
    const Seq own_cap = !rejoining_ && !knows_our_fence ? inc_.resumed_from() : kAnySeq;
    peers_.Acked(from, said, log_.applied(), own_cap, inc_.peer_epoch(from), now, prunable);
  }

  // Sends peer `to` the ops it lacks (PeerTable::Push), or, a rejoining peer that lacks ops we no
  // longer retain, a snapshot.
  void Push(RegionId to, std::uint64_t now, Effects* out) {
    if (!peers_.Reachable(to, now)) return;
    if (!rejoining_ &&
        peers_.NeedsSnapshot(to, log_.floor())) {  // a rejoining region's state may lack ops
      MaybeSendSnapshot(to, now, out);
      return;
    }
    peers_.Push(to, log_, now, out, &stats_);
  }

  // ---- time -----------------------------------------------------------------------------------

  void Tick(std::uint64_t now, Effects* out) {
    CompleteAll(desk_.ExpirePending(Phase(), now, out), now, out);
    ReleaseReplicated(now, out);
    if (rejoining_) MaybeFinishRejoin(now, out);
    if (now >= next_heartbeat_ms_) {
      next_heartbeat_ms_ = now + opt_.heartbeat_interval_ms;
      SendHeartbeats(now, out);
      if (rejoining_) AskUnanswered(out);  // Hellos and their answers may be lost
      // While rejoining our own log may lack ops that exist: no frontier may pass them.
      if (!rejoining_ && FoldToFrontier())
        CompleteAll(desk_.RetryAllPending(Phase(), now, out), now, out);
    }
    if (now >= next_checkpoint_ms_ && saved_frontier_ < frontier_) {
      next_checkpoint_ms_ = now + opt_.checkpoint_interval_ms;
      SaveCheckpoints(out);
    }
    if (!rejoining_ && opt_.rebalance_interval_ms > 0 && now >= next_rebalance_ms_) {
      next_rebalance_ms_ = now + opt_.rebalance_interval_ms;
      broker_.Rebalance(Phase(), now, out);
    }
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self) Push(p, now, out);
    }
    // Every tick at most: they are few and change rarely.
    if (std::optional<std::vector<Fence>> all = inc_.TakeUnsaved()) out->fences = std::move(*all);
  }

  // ---- reads ----------------------------------------------------------------------------------

  Status GetAccount(std::string_view id, AccountView* v) {
    Account* a = book_.Find(id);
    if (!a || !a->open) {
      // A rejoining region may not have received the account yet: not a verdict on it.
      if (rejoining_) return Status::Unavailable(RejoinReason());
      return Status::NotFound("no account '" + std::string(id) + "'");
    }
    book_.FillView(*a, v);
    v->frontier = frontier_;
    v->lines_usable = a->opened.hlc < frontier_;
    if (!v->lines_usable) v->lines_wait_for = finality_.RegionsNotPast(a->opened.hlc);
    v->stale = rejoining_;
    return Status::OK();
  }

  Status Forks(std::string_view id, std::vector<ForkReport>* forks) {
    Account* a = book_.Find(id);
    if (!a || !a->open) return Status::NotFound("no account '" + std::string(id) + "'");
    book_.Forks(*a, log_, forks);
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
    for (const std::string& id : book_.OpenIds()) {
      h.Add(id);
      h.Add(book_.Digest(*book_.Find(id)));
    }
    return h.value();
  }

  std::vector<std::string> AccountIds() const { return book_.OpenIds(); }
  bool HasAccount(std::string_view id) const { return book_.IsOpen(id); }
  std::vector<PeerView> Peers(std::uint64_t now) const { return peers_.Views(log_.applied(), now); }
  const ReplicaOptions& options() const { return opt_; }
  bool rejoining() const { return rejoining_; }
  VersionVector held() const { return log_.Held(); }
  std::vector<Fence> fences() const { return inc_.fences().All(); }
  std::string rejoin_reason() const { return rejoining_ ? RejoinReason() : ""; }
  std::uint64_t epoch() const { return inc_.epoch(); }
  Hello HelloTo(RegionId to, const VersionVector& applied) const { return HelloFor(to, applied); }
  const VersionVector& applied() const { return log_.applied(); }
  const VersionVector& log_floor() const { return log_.floor(); }
  Hlc clock() const { return clock_.last(); }
  Hlc frontier() const { return frontier_; }
  const ReplicaStats& stats() const {
    stats_.idempotency_keys = book_.key_count();
    stats_.idempotency_index_bytes = book_.key_memory_bytes();
    stats_.buffered_ops = log_.buffered();
    return stats_;
  }

 private:
  // ---- applying ops ---------------------------------------------------------------------------

  // The wall clock, read for timestamps only (core/wall_clock.h); `now` everywhere is monotonic.
  std::uint64_t Wall() const { return wall_->NowMs(); }

  // Applies the next op of its origin (core/command_desk.h, ApplyOp). Our own ops' key records
  // are written by the desk once the answer is known — or by the book, when a peer gives back ops
  // a lost store had.
  Status ApplyOp(const Op& op, Effects* out) {
    return tally::ApplyOp(op, /*write_keys=*/op.dot.origin != opt_.self || rejoining_, &book_,
                          &log_, out);
  }

  void Receive(const Op& op, std::uint64_t now, Effects* out) {
    const RegionId o = op.dot.origin;
    if (o >= n_) return;
    // Every timestamp we receive is merged, applied or not (held back for a gap, a duplicate, of a
    // lost history): whoever we answer when it rejoins then resumes above it.
    clock_.Update(op.hlc, Wall());
    // Our own ops come back through relays: we have them — unless we restarted with less than we
    // had, and a peer is giving them back while we rejoin.
    if (o == opt_.self && !rejoining_) return;
    if (inc_.AddFence(FenceBook::Implied(op))) {
      std::vector<bool> changed(n_, false);
      changed[o] = true;
      AfterNewFences(changed, now, out);
    }
    if (inc_.fences().IsDead(op)) {
      ++stats_.lost_history_ops;
      return;
    }
    if (op.dot.seq <= log_.applied().get(o)) {
      ++stats_.duplicate_ops;
      return;
    }
    if (inc_.AwaitsFence(op)) {
      // An op of an earlier run of its origin, which has restarted since: until we know where
      // that restart resumed (its fence) we cannot tell whether the op is of a history it lost,
      // and what we spent of it meanwhile the fence would take back (swarm seed 314095: rights
      // shipped by a dead run, spent here, then removed). Hold it; hand it to its origin, which
      // takes back its own ops while it rejoins, and to any rejoining peer: to those that ask
      // (SendAwaitingFence), and to those that asked already, as it arrives (swarm seed 323502:
      // r0 rejoined cut off from r1, which held its ops; r2 had answered before r1's relay of
      // them reached it, and held them for r0's fence while r0 waited for them).
      if (log_.HoldForFence(op)) {
        for (RegionId p = 0; p < n_; ++p)
          if (p != opt_.self && peers_.at(p).rejoining && peers_.Reachable(p, now))
            out->send.push_back(Outbound{p, OpBatch{{op}}});
      }
      MaybeFinishRejoin(now, out);
      return;
    }
    if (op.dot.seq > log_.applied().get(o) + 1) {
      log_.Buffer(op);
      return;  // the gap is filled by a re-send; beyond the bound we drop and wait for it too
    }
    ApplyRemote(op, now, out);
    DrainBuffered(o, now, out);
    if (o != opt_.self) TryConfirm(o);
    MaybeFinishRejoin(now, out);
  }

  // Gives a rejoining peer the ops we hold for a fence. Its rejoin waits for every op an answer
  // names (Held), and ours name only what we applied: so the op may exist nowhere else it can
  // reach — its own (which it takes back), or another rejoining region's whose old ops we hold
  // until that one resumes, while it waits for the first (swarm seed 1098: two rejoining regions
  // cut from each other, the third holding each one's old ops for the other's fence).
  void SendAwaitingFence(RegionId to, Effects* out) const {
    std::vector<Op> ops;
    for (RegionId o = 0; o < n_; ++o) {
      for (const auto& [seq, op] : log_.HeldForFence(o)) ops.push_back(op);
    }
    peers_.SendOps(to, ops, out);
  }

  // Receives again the ops of origin `o` held for its fence, once it is known.
  void ReleaseAwaitingFence(RegionId o, std::uint64_t now, Effects* out) {
    if (!log_.HoldsForFence(o) || inc_.fences().NewestEpoch(o) < inc_.NewestEpochOf(o)) return;
    for (const auto& [seq, op] : log_.TakeHeldForFence(o)) Receive(op, now, out);
  }

  // Applies the buffered ops of origin `o` that now follow what we hold; drops those we have.
  void DrainBuffered(RegionId o, std::uint64_t now, Effects* out) {
    Op op;
    while (log_.TakeReady(o, &op)) {
      if (inc_.fences().IsDead(op)) {
        ++stats_.lost_history_ops;
      } else if (op.dot.seq == log_.applied().get(o) + 1) {
        ApplyRemote(op, now, out);
      }
    }
  }

  void ApplyRemote(const Op& op, std::uint64_t now, Effects* out) {
    Status s = ValidateOpFor(op, n_);
    if (s.ok()) s = ApplyOp(op, out);
    if (!s.ok()) {
      // A peer sent an op its origin could never have accepted. Applying it would corrupt state;
      // skipping it silently would hide the fault: report it and stall that origin.
      out->notices.push_back(Notice{Notice::Kind::kPeerRefused, op.dot.origin, 0,
                                    "refused op " + op.dot.ToString() + ": " + s.ToString()});
      return;
    }
    ++stats_.remote_ops_applied;
    if (op.kind == OpKind::kTransfer && op.to == opt_.self)
      CompleteAll(desk_.RetryPending(op.account, Phase(), now, out), now, out);
  }

  // ---- durability "replicated" ----------------------------------------------------------------

  // The highest seq of `origin` that some region other than us holds durably, by any route: peers
  // ack (and heartbeat, and relay) only what they have synced. For another origin's op that is
  // not simply "its origin has it": the origin may have lost its disk since (its new epoch's claims
  // then replace its old ones), and our copy may be the only one.
  Seq ReplicatedSeq(RegionId origin) const {
    return std::min({peers_.HeldByAnyPeer(origin), log_.applied().get(origin), SettledSeq(origin)});
  }

  // Up to which seq the ops of `origin` we hold are known not to be of a history it lost. Claims
  // of those seqs name ops, not just seqs, only below that: once `origin` has an incarnation
  // whose fence (resume point) it has not told us itself, any op we hold of an earlier one may be
  // fenced off, and its seq issued again with another op (seed 303554). Our own ops are settled
  // by KnowsOurFence instead.
  Seq SettledSeq(RegionId origin) const {
    const std::uint64_t newest = inc_.NewestEpochOf(origin);
    if (origin == opt_.self || inc_.own_fence_epoch(origin) >= newest)
      return log_.applied().get(origin);
    for (const Op& op : log_.Retained(origin))
      if (op.epoch < newest) return op.dot.seq - 1;
    return log_.applied().get(origin);
  }
  bool IsReplicated(const Dot& op) const { return op.seq <= ReplicatedSeq(op.origin); }

  std::string NotReplicatedReason(const Dot& op, const std::string& why) const {
    return "op " + opt_.regions[opt_.self] + ":" + std::to_string(op.seq) +
           " is accepted and durable in this region, but " + why +
           "; it is kept and replicates once a peer is reachable: retry with the same "
           "Idempotency-Key for its answer";
  }

  // Releases the answers whose ops another region now holds, and times out those that waited
  // replicated_wait_ms.
  void ReleaseReplicated(std::uint64_t now, Effects* out) {
    if (replication_.empty()) return;
    for (RegionId o = 0; o < n_; ++o)
      replication_.ReleaseUpTo(o, ReplicatedSeq(o), &out->completions);
    for (const CommandResult& waited : replication_.TakeExpired(now)) {
      CommandResult r =
          Rejected(waited.id, Status::Unavailable(NotReplicatedReason(
                                  waited.op, "no other region confirmed it within " +
                                                 std::to_string(opt_.replicated_wait_ms) + " ms")));
      r.op = waited.op;
      out->completions.push_back(std::move(r));
    }
  }

  // ---- snapshots ------------------------------------------------------------------------------
  //
  // We prune an op once every peer holds it, so only a peer that restarted with less than it had
  // (wiped, restored from a copy) can lack ops we no longer retain. It gets our whole state
  // instead: the checkpoints at our frontier, the retained log and the idempotency records.

  // At most one snapshot per peer per max(resend_after_ms, peer_timeout_ms): it is large, and the
  // peer answers one it installed with an Ack that ends the need.
  void MaybeSendSnapshot(RegionId to, std::uint64_t now, Effects* out) {
    Peer& p = peers_.at(to);
    const std::uint64_t every = std::max(opt_.resend_after_ms, opt_.peer_timeout_ms);
    if (p.snapshot_ms != 0 && now < p.snapshot_ms + every) return;
    p.snapshot_ms = std::max<std::uint64_t>(now, 1);
    Snapshot snap;
    snap.frontier = frontier_;
    snap.applied = log_.applied();
    snap.log_floor = log_.floor();
    snap.accounts = book_.FinalCheckpoints(frontier_);
    snap.ops = log_.AllRetained();
    snap.keys = book_.KeyRecords(/*with_displaced=*/false);
    snap.fences = inc_.fences().All();
    ++stats_.snapshots_sent;
    ++stats_.messages_sent;
    out->notices.push_back(Notice{
        Notice::Kind::kSnapshotSent, to, static_cast<std::int64_t>(snap.ops.size()),
        "sent a snapshot to region " + opt_.regions[to] + " (" +
            std::to_string(snap.accounts.size()) + " accounts, " + std::to_string(snap.ops.size()) +
            " ops): it restarted " + "lacking ops no region retains any more"});
    out->send.push_back(Outbound{to, std::move(snap)});
  }

  // A peer's snapshot. Installed only while we rejoin, only if we lack ops it no longer retains,
  // and only if it covers every op we folded away ourselves. Our own ops beyond it are replayed
  // on top; the whole result is checked on a scratch replica first, so a malformed snapshot
  // changes nothing. Then the host replaces its store with the new state.
  void OnSnapshot(RegionId from, const Snapshot& snap, std::uint64_t now, Effects* out) {
    if (!rejoining_) return;
    // Fences first: ours among them may show that own ops we hold beyond the snapshot are of a
    // lost history (they go), where we would otherwise replay them on the snapshot and write them
    // back as durable under seqs since issued again (seed 300977).
    LearnFences(snap.fences, now, out);
    bool lacking = needs_snapshot_;
    for (RegionId o = 0; o < n_; ++o) {
      if (log_.applied().get(o) < snap.log_floor.get(o)) lacking = true;
      if (!needs_snapshot_ && snap.applied.get(o) < log_.floor().get(o))
        return;  // it lacks ops only we still have
    }
    if (!lacking) return;
    RecoveredState st;
    st.frontier = snap.frontier;
    st.log_floor = snap.log_floor;
    st.checkpoints = snap.accounts;
    st.ops = snap.ops;
    st.keys = snap.keys;
    Status s;
    for (const Op& op : st.ops) {
      if (inc_.fences().IsDead(op))
        s = Status::InvalidArgument("it holds op " + op.dot.ToString() + " of a lost history");
    }
    for (RegionId o = 0; o < n_ && s.ok(); ++o) {
      for (Seq q = std::max(snap.applied.get(o), log_.floor().get(o)) + 1;
           q <= log_.applied().get(o); ++q) {
        const Op& op = log_.At(o, q);
        if (inc_.fences().IsDead(op)) break;  // ours of a lost history (a restored store): they go
        // Every op below its frontier was in the sender's hands when it folded (heartbeat
        // promises): one of ours that is not would vanish into a checkpoint that lacks it.
        st.ops.push_back(op);
      }
    }
    for (const KeyRecord& k : book_.KeyRecords(/*with_displaced=*/true)) {
      if (k.displaced) st.keys.push_back(k);
    }
    Impl fresh(opt_, wall_);
    Hlc held_max;
    if (s.ok()) s = fresh.Load(std::move(st), &held_max);
    if (s.ok() && !fresh.log_.applied().Dominates(snap.applied))
      s = Status::InvalidArgument("its ops stop short of its applied vector");
    if (!s.ok()) {
      out->notices.push_back(
          Notice{Notice::Kind::kPeerRefused, from, 0,
                 "refused the snapshot of region " + opt_.regions[from] + ": " + s.message()});
      return;
    }
    Adopt(fresh, held_max, now, out);
    needs_snapshot_ = false;
    const Seq own = log_.applied().get(opt_.self);
    out->notices.push_back(Notice{
        Notice::Kind::kSnapshotInstalled, from, static_cast<std::int64_t>(own),
        "installed the snapshot of region " + opt_.regions[from] + " (" +
            std::to_string(out->fold->checkpoints.size()) + " accounts, " +
            std::to_string(out->ops.size()) + " ops); own ops up to seq " + std::to_string(own)});
    out->send.push_back(Outbound{from, AckFor(from, log_.applied())});
    for (RegionId o = 0; o < n_; ++o) {
      if (o != opt_.self) {
        DrainBuffered(o, now, out);
        TryConfirm(o);
      }
    }
    MaybeFinishRejoin(now, out);
  }

  // Replaces our state with `fresh` (loaded from a snapshot, or from our own state less the ops of
  // a lost history) and has the host replace its store with it. Debits waiting for rights keep
  // waiting on the same account; one whose account is gone (its open was of a lost history) is
  // refused.
  void Adopt(Impl& fresh, Hlc held_max, std::uint64_t now, Effects* out) {
    for (CommandResult& r : desk_.CarryWaitingTo(fresh.book_))
      out->completions.push_back(std::move(r));
    frontier_ = fresh.frontier_;
    saved_frontier_ = fresh.saved_frontier_;
    log_.AdoptLog(std::move(fresh.log_));
    // Answers held until a peer holds their op: an op the new state lacks is gone (of a lost
    // history), and a later op may take its seq; its answer must not be released for that one.
    for (const CommandResult& lost : replication_.TakeBeyond(log_.applied())) {
      CommandResult r =
          Rejected(lost.id, Status::Unavailable("its op " + lost.op.ToString() +
                                                " was of a history its region lost; retry with the "
                                                "same Idempotency-Key"));
      r.op = lost.op;
      out->completions.push_back(std::move(r));
    }
    std::fill(lost_from_.begin(), lost_from_.end(), 0);
    book_.Adopt(std::move(fresh.book_));
    clock_.Update(std::max(held_max, frontier_), Wall());

    out->replaces_store = true;
    out->ops = log_.AllRetained();
    out->keys = book_.KeyRecords(/*with_displaced=*/true);
    out->fold = Fold{frontier_, log_.floor(), book_.FinalCheckpoints(frontier_)};
  }

  // ---- fences: ops of a lost history -----------------------------------------------------------

  // A serving region that must replace its state answers what still waits — debits waiting for
  // rights or for credit to turn final, answers waiting for a peer to hold their op — with
  // `unavailable` now: its state may change under them, and it decides nothing while rejoining.
  // (An op already taken stays taken: a retry with its key replays it.)
  void RefuseWaiting(Effects* out) {
    const Status why = Status::Unavailable(
        "this region holds ops of another region's lost history in its checkpoints and is "
        "replacing its state with a peer's; retry with the same Idempotency-Key");
    for (CommandResult& r : desk_.RefuseWaiting(why)) out->completions.push_back(std::move(r));
    for (const CommandResult& waiting : replication_.TakeAll()) {
      CommandResult r = Rejected(waiting.id, why);
      r.op = waiting.op;
      out->completions.push_back(std::move(r));
    }
  }

  // Our Ack to `to`, claiming `applied`. Its fence_epoch is the newest epoch of `to` whose fence
  // `to` itself told us, not the newest our book knows: that may be the fence an op of `to`
  // implied (its epoch, a resume point at or above the real one), and the ops of `to` we hold
  // below that op may be of its lost history — `to` would count them as its new ones (seed
  // 300887). Once we have its real fence we have removed those ops (or claim below them).
  Ack AckFor(RegionId to, const VersionVector& applied) const {
    return Ack{applied, inc_.own_fence_epoch(to)};
  }

  // Moves our epoch past `seen`, an epoch of an earlier start of ours, and our clock with it: a
  // region's epochs only grow, or its new ops would look older than that start's fence.
  void MoveEpochPast(std::uint64_t seen) {
    clock_.Update(Hlc{seen}, Wall());
    PickEpochAbove(seen);
  }

  // Our epoch: a timestamp above `floor` and our clock, plus this start's nonce (two starts from
  // one copy, or two that learned the same later start of ours, would otherwise pick the same
  // one); our clock moves to it, so what we issue from here is above it.
  void PickEpochAbove(std::uint64_t floor) {
    const std::uint64_t epoch = std::max(clock_.Now(Wall()).value, floor + 1) +
                                opt_.epoch_nonce % ReplicaOptions::kEpochNonceLimit;
    inc_.BeginEpoch(epoch);
    clock_.Update(Hlc{epoch}, Wall());
  }

  // Where this incarnation resumes issuing its own ops (its fence), once it does.
  void Resume() {
    inc_.Resume(log_.applied().get(opt_.self));
    // What peers told us they hold of our ops while we rejoined may count ops of a lost history
    // above where we resume; none of them holds an op we issue from here yet.
    peers_.CapOwnClaims(inc_.resumed_from());
  }

  // Learns the fences a peer sent. A new one may show that ops we hold are of a lost history
  // (applied before we heard of the fence, or read back from a restored store): they go. Ops we
  // held back for lack of a fence may be decided now. While we rejoin, the answers so far may
  // have counted such ops: we ask again.
  void LearnFences(const std::vector<Fence>& fences, std::uint64_t now, Effects* out) {
    std::vector<bool> changed(n_, false);
    bool any = false;
    for (const Fence& f : fences) {
      if (f.origin < n_ && inc_.AddFence(f)) changed[f.origin] = any = true;
    }
    if (any) AfterNewFences(changed, now, out);
  }

  // What follows learning new fences of the origins `changed` marks.
  void AfterNewFences(const std::vector<bool>& changed, std::uint64_t now, Effects* out) {
    inc_.MarkUnsaved();
    if (changed[opt_.self] && rejoining_ && inc_.fences().NewestEpoch(opt_.self) >= inc_.epoch()) {
      // A start of ours that our store does not remember resumed already (the store is older
      // than it, and the peer that answered us restarted since and forgot that epoch): as with an
      // answer that knows it, move past it.
      MoveEpochPast(inc_.fences().NewestEpoch(opt_.self));
      out->notices.push_back(
          Notice{Notice::Kind::kRejoin, opt_.self, 0,
                 "a fence of a later start of ours is known: our store is older than "
                 "our last run; rejoining under a new epoch"});
    }
    for (RegionId o = 0; o < n_; ++o) {
      if (!changed[o]) continue;
      RemoveLostHistory(o, now, out);
      if (o != opt_.self) {
        DrainBuffered(o, now, out);
        ReleaseAwaitingFence(o, now, out);
      }
    }
    if (rejoining_ && !needs_snapshot_) AskEveryPeerAgain(out);
  }

  // Removes the ops of origin o from its first one of a lost history on (the dead ones, and any
  // applied after them: a splice of two histories), rebuilding our state without them. Only ops
  // above the frontier can be taken out; one already folded into a checkpoint needs a snapshot.
  void RemoveLostHistory(RegionId o, std::uint64_t now, Effects* out) {
    Seq first = 0;
    for (const Op& op : log_.Retained(o)) {
      if (inc_.fences().IsDead(op)) {
        first = op.dot.seq;
        break;
      }
    }
    if (first == 0) return;
    const Seq removed = log_.applied().get(o) - first + 1;
    const std::string what = std::to_string(removed) + " ops of region " + opt_.regions[o] +
                             " from seq " + std::to_string(first) + " on, of a history it lost (" +
                             (o == opt_.self ? "our store was restored from an older copy"
                                             : "it restarted without them") +
                             ")";
    Status s;
    for (Seq q = first; q <= log_.applied().get(o) && s.ok(); ++q) {
      if (log_.At(o, q).hlc < frontier_)
        s = Status::FailedPrecondition("op " + Dot{o, q}.ToString() +
                                       " is folded into our checkpoints already");
    }
    RecoveredState st;
    st.frontier = frontier_;
    st.log_floor = log_.floor();
    st.checkpoints = book_.FinalCheckpoints(frontier_);
    for (Op& op : log_.AllRetained()) {
      if (op.dot.origin != o || op.dot.seq < first) st.ops.push_back(std::move(op));
    }
    for (KeyRecord& k : book_.KeyRecords(/*with_displaced=*/true)) {
      if (k.dot.origin != o || k.dot.seq < first) st.keys.push_back(std::move(k));
    }
    Impl fresh(opt_, wall_);
    Hlc held_max;
    if (s.ok()) s = fresh.Load(std::move(st), &held_max);
    if (!s.ok()) {
      // Our checkpoints count ops no region keeps: only a peer's state can replace them. Until one
      // arrives we serve no writes (the answers' wait is over: we need nothing else).
      needs_snapshot_ = true;
      lost_from_[o] = lost_from_[o] == 0 ? first : std::min(lost_from_[o], first);
      if (!rejoining_) {
        rejoining_ = true;
        rejoin_.WaitForSnapshotOnly();
        RefuseWaiting(out);
      }
      out->notices.push_back(
          Notice{Notice::Kind::kLostHistory, o, static_cast<std::int64_t>(removed),
                 "we hold " + what + " and cannot remove them: " + s.message() +
                     "; refusing writes until a peer's snapshot replaces our state"});
    } else {
      Adopt(fresh, held_max, now, out);
      stats_.lost_history_ops += removed;
      out->notices.push_back(Notice{Notice::Kind::kLostHistory, o,
                                    static_cast<std::int64_t>(removed), "removed " + what});
    }
    // Tell every peer what we hold now (so it sends the ops that replace them), or that we need a
    // snapshot.
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self) SendHello(p, out);
    }
  }

  // ---- rejoining after a restart ---------------------------------------------------------------

  // A peer's Hello while we rejoin. Only a Hello that echoes our epoch answers this incarnation;
  // one that knows a later epoch of ours means our store is older than a previous start of ours.
  void NoteRejoinAnswer(RegionId from, const Hello& h, std::uint64_t now, Effects* out) {
    if (h.peer_epoch > inc_.epoch()) {
      RejoinPastLaterStart(h.peer_epoch, from, "region " + opt_.regions[from] + " knows", out);
      return;
    }
    if (h.peer_epoch != inc_.epoch()) return;  // an answer to an earlier incarnation, or none yet
    if (!h.rejoining) rejoin_.NoteLiveAnswer(now);
    CountAnswer(from, h.clock, h.applied, now, out);
  }

  // Wiped, or restored from a copy older than a later start of ours that region `from` knows of
  // (`seen`): move past that epoch and ask every peer again (earlier answers were about an epoch
  // that is not the newest).
  void RejoinPastLaterStart(std::uint64_t seen, RegionId from, const std::string& who,
                            Effects* out) {
    MoveEpochPast(seen);
    out->notices.push_back(
        Notice{Notice::Kind::kRejoin, from, 0,
               who + " a later start of ours: our store is older than our last run; "
                     "rejoining under a new epoch"});
    AskEveryPeerAgain(out);
  }

  // Region q's answer to this epoch of ours, directly or relayed: it held `applied` (of every
  // origin, ours included) and its clock was `clock`. Every timestamp our earlier runs showed it
  // (a heartbeat promise above all our ops, say) was merged into that clock: past it, what we
  // originate cannot break a promise we made.
  void CountAnswer(RegionId q, std::uint64_t clock, const VersionVector& applied, std::uint64_t now,
                   Effects* out) {
    clock_.Update(Hlc{clock}, Wall());
    const Seq own = log_.applied().get(opt_.self);
    if (applied.get(opt_.self) > own) {
      out->notices.push_back(
          Notice{Notice::Kind::kRejoin, q, static_cast<std::int64_t>(applied.get(opt_.self)),
                 "region " + opt_.regions[q] + " holds our ops up to seq " +
                     std::to_string(applied.get(opt_.self)) + ", our store only up to " +
                     std::to_string(own) + ": recovering them before serving writes"});
    }
    rejoin_.Count(q, applied);
    MaybeFinishRejoin(now, out);
  }

  // Done once some peer answered this epoch, we hold every op any answer said it held — our own
  // and everyone else's: a store that lost ops must not serve (or reopen an account it lost)
  // before it has them back — and every other peer answered too or had peer_timeout_ms to do so.
  // Ops a peer has pruned cannot come back without snapshot transfer: then we keep refusing.
  void MaybeFinishRejoin(std::uint64_t now, Effects* out) {
    if (!rejoining_ ||
        !rejoin_.Ready(log_.Held(), now, opt_.rejoin_wait_ms, HearsAnAnsweredPeer(now)))
      return;
    if (needs_snapshot_) return;
    rejoining_ = false;
    // Where this incarnation resumes: any op of an earlier one above this seq is of a lost history.
    Resume();
    const Seq own = log_.applied().get(opt_.self);
    out->notices.push_back(Notice{
        Notice::Kind::kRejoin, opt_.self, static_cast<std::int64_t>(own),
        "rejoined: " + std::to_string(rejoin_.AnsweredPeers()) + " of " + std::to_string(n_ - 1) +
            " peers confirmed our own ops up to seq " + std::to_string(own) + "; serving writes"});
  }

  // Drops the answers gathered so far — they describe an older epoch of ours, or may count ops of
  // a lost history — and asks every peer again, now.
  void AskEveryPeerAgain(Effects* out) {
    rejoin_.Reset();
    AskUnanswered(out);
  }

  // Sends our Hello (asking for an answer) to every peer that has not answered this epoch — and,
  // while only rejoining peers have answered, to those too: one of them may have finished its own
  // rejoin since, and its answer now would count (MaybeFinishRejoin).
  void AskUnanswered(Effects* out) {
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self && rejoin_.ShouldAsk(p)) SendHello(p, out);
    }
  }

  // While we rejoin, some region holds our own ops up to `seq` (a peer's heartbeat says so, for
  // itself or relayed for another): those seqs exist, and we must not issue them again. We wait
  // for them as for the answers' (MaybeFinishRejoin), instead of resuming once the others
  // answered and rejoin_wait_ms passed.
  void OwnOpsExistUpTo(Seq seq) {
    if (rejoining_) rejoin_.OwnOpsExistUpTo(seq);
  }

  // Whether a peer that answered this rejoin is still heard from. Without one, a region that
  // stops waiting for the silent peers would resume on answers that may have gone stale: a peer
  // may have taken our newest ops since (from a region we cannot hear), and tells us in its
  // heartbeats only while we hear it.
  bool HearsAnAnsweredPeer(std::uint64_t now) const {
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self && rejoin_.answered(p) && peers_.Reachable(p, now)) return true;
    }
    return false;
  }

  // Why we refuse writes while rejoining. What the answers name must be held (OpLog::Held), not
  // applied: an op of a peer's earlier run waits for that peer's fence, which comes only once the
  // peer has rejoined — two regions rejoining at once would otherwise each wait for the other's
  // old ops for ever.
  std::string RejoinReason() const {
    return rejoin_.Reason(log_.applied(), log_.Held(), needs_snapshot_);
  }

  // ---- heartbeats, frontier, folding ----------------------------------------------------------

  // Leases the clock ahead of `h` so a restart never issues a timestamp (or an epoch) below one
  // we advertised: the high-water mark is persisted before anything showing `h` is sent.
  void LeaseClock(Hlc h, Effects* out) {
    if (h < persisted_hw_) return;
    persisted_hw_ = Hlc::Make(h.wall_ms() + opt_.hlc_lease_ms, 0);
    out->high_water = persisted_hw_;
  }

  void SendHello(RegionId to, Effects* out) {
    // Leased past our clock, not only our epoch: the Hello shows our clock to a rejoining peer,
    // which must resume above every timestamp of its we merged (a heartbeat from its earlier run
    // may have pushed our clock past the lease).
    LeaseClock(std::max(Hlc{inc_.epoch()}, clock_.last()), out);
    out->send.push_back(Outbound{to, HelloFor(to, log_.applied())});
  }

  void SendHeartbeats(std::uint64_t now, Effects* out) {
    const Hlc h = clock_.Now(Wall());
    LeaseClock(h, out);
    Heartbeat hb;
    hb.applied = Claims(log_.applied());
    hb.fences = inc_.fences().All();
    hb.epochs = inc_.KnownEpochs();
    hb.clock = h.value;
    // No promise about our own ops while rejoining: seqs we lost may exist with older timestamps.
    if (!rejoining_)
      hb.entries.push_back(
          HeartbeatEntry{opt_.self, h, log_.applied().get(opt_.self), inc_.epoch()});
    finality_.AppendRelayed(&hb.entries);
    hb.holds = peers_.Holds();
    hb.wall_ms = Wall();
    hb.mono_ms = now;
    peers_.Broadcast(std::move(hb), now, out, &stats_);
  }

  // The peer's physical clock offset (PeerTable::MeasureClock), reported when beyond the bound.
  void MeasureClock(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out) {
    const std::int64_t offset = peers_.MeasureClock(from, hb, now, hb.wall_ms == 0 ? 0 : Wall());
    if (hb.wall_ms == 0) return;
    const std::uint64_t off_by = static_cast<std::uint64_t>(std::llabs(offset));
    if (off_by > opt_.max_clock_offset_ms) {
      ++stats_.clock_ahead_reports;
      out->notices.push_back(Notice{Notice::Kind::kClockAhead, from, offset,
                                    "region " + opt_.regions[from] + " wall clock is " +
                                        std::to_string(off_by) + " ms " +
                                        (offset < 0 ? "behind" : "ahead of") + " ours"});
    }
  }

  void OnHeartbeat(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out) {
    // Fences first: a promise must not confirm ops of a lost history we applied unaware.
    LearnFences(hb.fences, now, out);
    inc_.NoteOwnFences(from, hb.fences);
    MeasureClock(from, hb, now, out);
    LearnEpochs(from, hb.epochs, out);
    Acked(from, hb.applied, now, /*prunable=*/true, inc_.KnowsOurFence(hb.fences));
    peers_.at(from).holds_epochs = hb.epochs;
    peers_.at(from).holds_clock = hb.clock;
    // A peer that took more of our ops since it answered tells us so here.
    OwnOpsExistUpTo(hb.applied.get(opt_.self));
    for (const HoldsEntry& e : hb.holds) {
      if (e.region < n_) peers_.RelayedHolds(e, inc_.peer_epoch(e.region));
      // A region we cannot hear may hold our newest ops: a peer relays what it holds.
      if (e.region != opt_.self) OwnOpsExistUpTo(e.applied.get(opt_.self));
      if (rejoining_ && e.region < n_ && e.region != opt_.self)
        NoteRelayedAnswer(e.region, e, now, out);
    }
    for (const HeartbeatEntry& e : hb.entries) {
      if (e.origin >= n_) continue;
      // A promise of an incarnation the origin has left (in flight, or relayed, from before it
      // restarted) binds nothing: its new run rejoined on our clock as it was and may issue below.
      if (e.origin != opt_.self &&
          (e.epoch < inc_.peer_epoch(e.origin) || e.epoch < inc_.fences().NewestEpoch(e.origin)))
        continue;
      if (e.origin != from) {
        // A relayed promise: merged like any timestamp we receive, so that whoever answers a
        // rejoining region has merged every promise it relays (ours from an earlier run too).
        clock_.Update(e.hlc, Wall());
        if (e.origin == opt_.self) continue;
      } else {
        peers_.at(from).rejoining = false;  // it promises about its own ops only once rejoined
        clock_.Update(e.hlc, Wall());
      }
      if (finality_.Promise(e)) TryConfirm(e.origin);
    }
  }

  // Newest epochs a peer knows, relayed. A region that restarted is known by its new epoch also
  // where it cannot be heard, and the epochs go out with what each region holds: that answers its
  // rejoin through relays (NoteRelayedAnswer). Kept apart from the epochs we heard from the
  // regions themselves (Hello, fences), which decide what we believe of their ops. A later start
  // of ours than this one means our store is older than our last run, as in a Hello.
  void LearnEpochs(RegionId from, const std::vector<std::uint64_t>& epochs, Effects* out) {
    for (RegionId o = 0; o < n_ && o < epochs.size(); ++o) {
      if (o != opt_.self) {
        inc_.NoteRelayedEpoch(o, epochs[o]);
      } else if (rejoining_ && epochs[o] > inc_.epoch()) {
        RejoinPastLaterStart(epochs[o], from, "region " + opt_.regions[from] + " relays", out);
      }
    }
  }

  // What region q holds, said (to a peer, relayed to us, or to us in a heartbeat) while it knew our
  // current epoch, so after we restarted: every op of ours it held then, it holds in this claim.
  // That answers our rejoin as its Hello would, through any number of relays: a restarted region
  // need not hear every peer directly (a partial partition), only be known by each. What such a
  // peer gets of our earlier run afterwards was in flight when we stopped: fences are for that.
  void NoteRelayedAnswer(RegionId q, const HoldsEntry& e, std::uint64_t now, Effects* out) {
    if (q >= n_ || q == opt_.self || e.epochs.size() <= opt_.self ||
        e.epochs[opt_.self] != inc_.epoch())
      return;
    if (peers_.Reachable(q, now))
      return;  // a peer we hear answers with its Hello, as it knows us best
    CountAnswer(q, e.clock, e.applied, now, out);
  }

  void TryConfirm(RegionId o) {
    finality_.Confirm(o, log_.applied().get(o), inc_.NewestEpochOf(o));
  }

  // Folds every journal below the stable frontier into its checkpoint, in memory. Cheap, so it
  // runs on every heartbeat; persisting is SaveCheckpoints' job. True when the frontier moved.
  bool FoldToFrontier() {
    const Hlc f = finality_.StableFrontier(clock_.last());
    if (f <= frontier_) return false;
    frontier_ = f;
    book_.FoldBelow(f, log_);
    return true;
  }

  // Emits the checkpoints folded since the last save, with the frontier they are valid at, and
  // prunes the log below it. Ops are deleted from storage only below a persisted checkpoint, so
  // a restart finds every op the checkpoints do not cover. Keys past their window go in the same
  // batch (AccountBook::SweepKeys).
  void SaveCheckpoints(Effects* out) {
    Fold fold;
    fold.frontier = frontier_;
    fold.checkpoints = book_.TakeUnsaved();
    saved_frontier_ = frontier_;
    PruneLogs();
    stats_.idempotency_keys_expired += book_.SweepKeys(saved_frontier_, out);
    fold.log_floor = log_.floor();
    out->fold = std::move(fold);
  }

  // Drops log ops that are final and that every peer has acked. Nothing else may go: a lagging
  // peer must still be able to get every op from someone.
  void PruneLogs() {
    VersionVector upto;
    for (RegionId o = 0; o < n_; ++o) upto.set(o, peers_.HeldByEveryPeer(o, log_.applied().get(o)));
    log_.Prune(upto, saved_frontier_);
  }

  ReplicaOptions opt_;
  const WallClock* wall_;  // not owned: outlives the replica
  RegionId n_;
  HybridClock clock_;
  Hlc persisted_hw_;
  Hlc frontier_;
  Hlc saved_frontier_;  // the frontier of the persisted checkpoints
  OpLog log_;
  AccountBook book_;
  PeerTable peers_;
  Finality finality_;
  RejoinState rejoin_;
  ReplicationWaits replication_;  // answers held for durability "replicated"
  bool rejoining_ = false;        // restarted; no op originated until our own log is whole
  Incarnations inc_;              // our epoch and fence; the others' epochs; every fence
  bool needs_snapshot_ = false;   // we hold folded ops of a lost history: only a snapshot helps
  // Per origin, the first op of a lost history we hold and cannot remove (0: none); what we claim
  // to hold stops below it (Claims) until a snapshot replaces our state.
  std::vector<Seq> lost_from_;
  std::uint64_t next_heartbeat_ms_ = 0;
  std::uint64_t next_rebalance_ms_ = 0;
  std::uint64_t next_checkpoint_ms_ = 0;
  mutable ReplicaStats
      stats_;  // the gauges (keys, index bytes, buffered ops) are filled in when read
  RightsBroker broker_;
  CommandDesk desk_;  // last: it refers to the members above
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
Status Replica::GetAccount(std::string_view id, AccountView* out) {
  return impl_->GetAccount(id, out);
}
std::vector<std::string> Replica::AccountIds() const { return impl_->AccountIds(); }
bool Replica::HasAccount(std::string_view id) const { return impl_->HasAccount(id); }
Status Replica::Forks(std::string_view id, std::vector<ForkReport>* out) {
  return impl_->Forks(id, out);
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
std::vector<PeerView> Replica::Peers(std::uint64_t now_ms) const { return impl_->Peers(now_ms); }
const ReplicaStats& Replica::stats() const { return impl_->stats(); }
std::uint64_t Replica::StateDigest() { return impl_->StateDigest(); }

}  // namespace tally
