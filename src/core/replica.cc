#include "core/replica.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "core/digest.h"
#include "core/ids.h"
#include "core/fence_book.h"
#include "core/key_index.h"
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
  if (heartbeat_interval_ms == 0) return Status::InvalidArgument("heartbeat_interval_ms must be > 0");
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

// Bounds on what a peer can make us hold (style: put a limit on everything).
constexpr std::size_t kMaxBufferedOpsPerOrigin = 65536;
constexpr std::size_t kMaxPendingHeartbeats = 16;
constexpr std::size_t kMaxRebalanceTransfersPerTick = 256;
// Rights the rebalancer may have in flight per account (given, not yet acknowledged by the
// recipient): this share of balance plus lines. A split strands rights in flight until the heal, so
// this bounds what any cut moment can take from what the regions can spend alone (issue 10: at
// least 90 % stays spendable). On-demand grants are bounded by the debit that asked instead.
constexpr Amount kRebalanceInFlightDivisor = 20;  // 5 %
// A rebalancing step toward a region that spends is at most this many times its debits over the
// last round: enough to keep it answering at its observed rate until the next round.
constexpr Amount kRebalanceDemandRounds = 2;
// The rights wait: two round trips to the slowest peer asked, plus this for its sync and ticks.
constexpr std::uint64_t kRightsWaitSlackMs = 50;

// Lets the account index be searched with a string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// A set of account indices with O(1) insert, visited in ascending order as a std::set would be
// (what depends on the order stays as it was) at the cost of one sort per visit. Ops insert into
// these sets on every apply; a tree insert there cost more than the apply itself.
class IndexSet {
 public:
  void insert(std::uint32_t i) {
    if (i >= member_.size()) member_.resize(std::max<std::size_t>(i + 1, member_.size() * 2), 0);
    if (member_[i]) return;
    member_[i] = 1;
    sorted_ = sorted_ && (items_.empty() || items_.back() < i);
    items_.push_back(i);
  }
  // The members in ascending order. Inserting invalidates the reference.
  const std::vector<std::uint32_t>& sorted() {
    if (!sorted_) std::sort(items_.begin(), items_.end());
    sorted_ = true;
    return items_;
  }
  // Keeps the members for which keep(index) holds.
  template <class Keep>
  void retain(Keep keep) {
    std::size_t n = 0;
    for (std::uint32_t i : items_) {
      if (keep(i)) {
        items_[n++] = i;
      } else {
        member_[i] = 0;
      }
    }
    items_.resize(n);
  }
  void clear() {
    retain([](std::uint32_t) { return false; });
    sorted_ = true;
  }
  void swap(IndexSet& other) {
    member_.swap(other.member_);
    items_.swap(other.items_);
    std::swap(sorted_, other.sorted_);
  }

 private:
  std::vector<std::uint8_t> member_;  // by account index
  std::vector<std::uint32_t> items_;
  bool sorted_ = true;
};

struct JournalEntry {
  CanonicalKey key;
  OpKind kind = OpKind::kCredit;
  bool voided = false;
  bool keyed = false;  // carries an idempotency key: may be voided by a duplicate from elsewhere
  RegionId to = 0;
  Amount amount = 0;
  ReplayEntry replay() const { return ReplayEntry{key, kind, amount, voided}; }
};

struct PendingDebit {
  std::uint64_t command_id = 0;
  Amount amount = 0;
  std::string key;
  std::uint64_t deadline_ms = 0;
  bool asked_rights = false;  // waits for a peer's transfer (else only for credits to turn final)
};

struct Account {
  AccountConfig config;
  CanonicalKey opened;
  bool open = false;
  Counters counters;        // every op held
  Counters final_counters;  // ops folded into the checkpoint
  ReplayState checkpoint;   // replay state at the stable frontier
  std::vector<JournalEntry> journal;  // ops above the frontier, canonical order
  std::vector<Amount> tentative;      // per origin: its keyed, unvoided credits in the journal
  ReplayState tip;          // checkpoint + journal[0, tip_pos)
  std::size_t tip_pos = 0;
  std::deque<ForkReport> final_forks;
  std::vector<Amount> demand_mark;  // N[r] at the last rebalance
  std::deque<PendingDebit> pending;
};

// A rights transfer of ours not yet acknowledged by its recipient: stranded if the link dies now.
struct RightsInFlight {
  Seq seq = 0;      // our newest transfer to that region on that account
  Amount amount = 0;  // everything given it on that account since its last ack covered
};

struct HeartbeatState {
  std::uint64_t epoch = 0;  // the incarnation whose promises these are
  Hlc best_hlc;
  Seq best_seq = 0;
  Hlc confirmed;  // newest promise whose seq we have applied: the origin's share of the frontier
  std::deque<HeartbeatEntry> pending;
};

struct Peer {
  bool heard = false;
  std::uint64_t last_heard_ms = 0;
  bool link_up = true;           // the host has not reported our link to it dead (OnDisconnected)
  std::uint64_t acks_heard_ms = 0;  // when its own Ack or heartbeat last reached us (0: never)
  VersionVector acked;  // what it last said it holds (capped at what we hold): what to send
  VersionVector holds;  // what it said it holds in Acks and heartbeats (direct or relayed), not
                        // capped: pruning, ops_behind and replication cap it at what we hold
  std::uint64_t holds_epoch = 0;  // the incarnation of the peer that `holds` describes
  // The newest epochs of every region the peer knew, and its HLC, when it said what it holds (its
  // heartbeats, direct or relayed): whether it is a relayed answer to our rejoin.
  std::vector<std::uint64_t> holds_epochs;
  std::uint64_t holds_clock = 0;
  // Our own ops it holds by its own word (its Acks and heartbeats, never a Hello), checked
  // against our fence: what durability "replicated" counts. A relayed claim cannot say whether
  // the region it describes knew where we resumed.
  Seq holds_ours = 0;
  VersionVector sent;
  // Per origin: when the peer's ack for it last moved (or we began sending it more). Ops of an
  // origin in flight that long without progress are sent again. Per origin, so that progress on
  // one origin (the peer's own ops, say) cannot hold back the re-send of another.
  std::array<std::uint64_t, kMaxRegions> progress_ms{};
  std::int64_t clock_offset_ms = 0;  // its wall clock minus ours (heartbeats, half the round trip)
  std::int64_t rtt_ms = -1;          // the last round trip measured over heartbeats (-1: none)
  std::uint64_t hb_mono_ms = 0;      // its monotonic reading in its last heartbeat (echoed back)
  std::uint64_t hb_heard_ms = 0;     // when we got that heartbeat (our monotonic clock)
  // Per origin: since when the peer's ack for that origin has not moved while we held more (0: it
  // is not lagging), and the ack value seen then.
  std::array<std::uint64_t, kMaxRegions> lag_since_ms{};
  std::array<Seq, kMaxRegions> lag_acked{};
  bool rejoining = false;         // its last Hello said it restarted; cleared by its own promise
  bool needs_snapshot = false;    // its last Hello asked for a snapshot (it holds a lost history)
  std::uint64_t answered_ms = 0;  // when we last answered its Hello (0: never)
  std::uint64_t snapshot_ms = 0;  // when we last sent it a snapshot (0: never)
};

// The record of our own op that lost its key (KeyRecord::displaced).
KeyRecord DisplacedRecord(const KeyUse& u, const std::string& account, const KeyHash& key) {
  KeyRecord r{account, key,  u.dot,       u.hlc,           u.kind,
              u.amount, u.to, u.overdraft, u.balance_after, /*displaced=*/true};
  r.last_use = u.hlc;
  return r;
}

std::uint64_t Fingerprint(OpKind kind, Amount amount, RegionId to) {
  Fnv64 h;
  h.Add(static_cast<std::uint64_t>(kind));
  h.Add(static_cast<std::uint64_t>(amount));
  h.Add(static_cast<std::uint64_t>(to));
  return h.value();
}

}  // namespace

class Replica::Impl {
 public:
  Impl(ReplicaOptions o, const WallClock* wall)
      : opt_(std::move(o)),
        wall_(wall),
        n_(static_cast<RegionId>(opt_.regions.size())),
        clock_(opt_.max_clock_offset_ms),
        log_(n_),
        buffered_(n_),
        awaiting_fence_(n_),
        hb_(n_),
        peers_(n_),
        peer_epoch_(n_, 0),
        relayed_epoch_(n_, 0),
        own_fence_epoch_(n_, 0),
        fences_(n_),
        lost_from_(n_, 0),
        answered_(n_, false) {}

  // ---- recovery -------------------------------------------------------------------------------

  Status Recover(RecoveredState st, std::uint64_t now_ms) {
    if (!accounts_.empty() || applied_.get(opt_.self) != 0)
      return Status::FailedPrecondition("Recover must be called on a fresh replica");
    const Hlc high_water = st.high_water;
    for (const Fence& f : st.fences) fences_.Add(f);
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
    if (const std::uint64_t ours = fences_.NewestEpoch(opt_.self); ours >= epoch_) MoveEpochPast(ours);
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
      if (o < n_ && fences_.IsDead(op) && (first[o] == 0 || op.dot.seq < first[o])) first[o] = op.dot.seq;
    }
    for (RegionId o = 0; o < n_; ++o) {
      if (first[o] == 0) continue;
      auto lost = [&](const Op& op) { return op.dot.origin == o && op.dot.seq >= first[o]; };
      const bool folded = std::any_of(st->ops.begin(), st->ops.end(),
                                      [&](const Op& op) { return lost(op) && op.hlc < st->frontier; });
      if (folded) {
        needs_snapshot_ = true;
        lost_from_[o] = first[o];
        continue;
      }
      const auto removed = std::erase_if(st->ops, lost);
      std::erase_if(st->keys, [&](const KeyRecord& k) { return k.dot.origin == o && k.dot.seq >= first[o]; });
      stats_.lost_history_ops += removed;
    }
  }

  // Loads checkpoints, key records and the retained log into a fresh replica (Recover, and a
  // snapshot being checked before it is installed). Corruption when they contradict each other.
  // *held_max: the newest timestamp among the ops.
  Status Load(RecoveredState st, Hlc* held_max) {
    frontier_ = st.frontier;
    saved_frontier_ = st.frontier;
    log_floor_ = st.log_floor;
    applied_ = st.log_floor;
    for (AccountCheckpoint& c : st.checkpoints) {
      Status s = ValidateConfig(c.config);
      if (!s.ok()) return Status::Corruption("checkpoint of " + c.config.id + ": " + s.message());
      if (c.counters.regions() != n_ || c.state.fees.size() != n_ || c.state.voids.size() != n_)
        return Status::Corruption("checkpoint of " + c.config.id + " has the wrong region count");
      Account& a = GetOrCreate(c.config.id);
      a.config = c.config;
      a.opened = c.opened;
      a.open = true;
      a.counters = c.counters;
      a.final_counters = c.counters;
      a.checkpoint = c.state;
      a.tip = c.state;
      for (const DerivedEvent& e : c.events) a.final_forks.push_back(ForkReport{e, true, {}});
    }
    for (KeyRecord& k : st.keys) {
      Status s = ValidateKeyRecord(k);
      if (!s.ok()) return Status::Corruption("key record: " + s.message());
      Account& a = GetOrCreate(k.account);
      if (k.displaced) {
        if (k.dot.origin != opt_.self) return Status::Corruption("displaced key record of another region");
        displaced_[{IndexOf(a), k.key}] =
            KeyUse{k.dot, k.hlc, k.kind, k.amount, k.to, k.overdraft, k.balance_after, true};
      } else if (!keys_.Load(MakeKeyId(IndexOf(a), k.key), k)) {
        return Status::Corruption("key record of " + k.account + " with inconsistent uses");
      }
    }
    std::sort(st.ops.begin(), st.ops.end(),
              [](const Op& a, const Op& b) { return a.dot < b.dot; });
    for (Op& op : st.ops) {
      Status s = ValidateClusterOp(op);
      if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
      const RegionId o = op.dot.origin;
      if (op.dot.seq != applied_.get(o) + 1)
        return Status::Corruption("op log of region " + std::to_string(o) + " has a gap before seq " +
                                  std::to_string(op.dot.seq));
      *held_max = std::max(*held_max, op.hlc);
      if (op.hlc < frontier_) {
        // Already folded into the checkpoint; kept only so lagging peers can still be served.
        applied_.set(o, op.dot.seq);
        log_[o].push_back(std::move(op));
        continue;
      }
      s = Apply(op, nullptr, /*recovering=*/true);
      if (!s.ok()) return Status::Corruption("stored op " + op.dot.ToString() + ": " + s.message());
    }
    return Status::OK();
  }

  // ---- client commands ------------------------------------------------------------------------

  void Submit(const Command& cmd, std::uint64_t now, Effects* out) {
    ++stats_.commands;
    CommandResult r;
    r.id = cmd.id;
    if (cmd.replicated) {
      if (n_ == 1) {
        Complete(Rejected(cmd.id, Status::InvalidArgument(
                                      "durability \"replicated\" needs another region, and this "
                                      "cluster has one")),
                 now, out);
        return;
      }
      want_replicated_.insert(cmd.id);
    }
    std::visit(
        [&](const auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, OpenAccount>) {
            r = DoOpen(cmd.id, body, now, out);
          } else if constexpr (std::is_same_v<T, Credit>) {
            r = DoCredit(cmd.id, body, now, out);
          } else if constexpr (std::is_same_v<T, Debit>) {
            r = DoDebit(cmd.id, body, now, out);
          } else {
            r = DoTransfer(cmd.id, body, now, out);
          }
        },
        cmd.body);
    if (r.id == kParked) return;  // completes later
    Complete(std::move(r), now, out);
  }

  // ---- messages -------------------------------------------------------------------------------

  Status CheckHello(const Hello& h) const {
    if (h.cluster_id != opt_.cluster_id)
      return Status::PermissionDenied("peer belongs to cluster '" + h.cluster_id + "', not '" +
                                      opt_.cluster_id + "'");
    if (h.protocol_version != kProtocolVersion)
      return Status::FailedPrecondition("peer speaks protocol " + std::to_string(h.protocol_version) +
                                        ", we speak " + std::to_string(kProtocolVersion));
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
      Status s = CheckHello(*hello);
      if (s.ok() && hello->region != from)
        s = Status::InvalidArgument("peer on the link of region " + std::to_string(from) +
                                    " says it is region " + std::to_string(hello->region));
      if (!s.ok()) {
        out->notices.push_back(Notice{Notice::Kind::kPeerRefused, from, 0, s.ToString()});
        return;
      }
      Peer& p = peers_[from];
      Heard(from, now);
      LearnFences(hello->fences, now, out);
      NoteOwnFences(from, hello->fences);
      Acked(from, hello->applied, now, /*prunable=*/false, KnowsOurFence(hello->fences));
      p.sent = p.acked;  // a new connection: what we sent before may be lost
      p.progress_ms.fill(now);
      const std::uint64_t known_epoch = peer_epoch_[from];
      peer_epoch_[from] = std::max(known_epoch, hello->epoch);
      // Its ops we hold beyond a gap may belong to a history its restart lost (a store restored
      // from a copy): once it has rejoined it issues those seqs again with other ops, and draining
      // them after its new ones would splice two histories. Its new run re-sends what exists.
      if (hello->epoch > known_epoch) {
        buffered_[from].clear();
        // A peer that answered our rejoin and has restarted since may have lost what it said it
        // held (its disk, or what it had not synced): waiting for those ops could be for ever
        // (swarm seed 309599: each of two regions then waited for the other). Ask everyone again.
        if (rejoining_ && answered_[from]) AskEveryPeerAgain(out);
      }
      p.rejoining = hello->rejoining;
      p.needs_snapshot = hello->needs_snapshot;
      if (rejoining_) NoteRejoinAnswer(from, *hello, now, out);
      // A peer we knew under another epoch restarted: answer with what we hold of its own ops,
      // echoing its epoch, so it knows whether it lost any (and gets them back by Push). A
      // rejoining peer asks again every heartbeat until it has our answer, so its repeated
      // Hellos are answered at most once per heartbeat interval: two rejoining regions would
      // otherwise answer each other's answers (each says `rejoining`) for ever.
      if (hello->epoch != known_epoch ||
          (hello->rejoining && (p.answered_ms == 0 || now >= p.answered_ms + opt_.heartbeat_interval_ms))) {
        p.answered_ms = std::max<std::uint64_t>(now, 1);
        SendHello(from, out);
        if (hello->rejoining) SendAwaitingFence(from, out);
      }
      Push(from, now, out);
      return;
    }
    Heard(from, now);
    if (const auto* batch = std::get_if<OpBatch>(&msg)) {
      for (const Op& op : batch->ops) Receive(op, now, out);
      out->send.push_back(Outbound{from, AckFor(from, Claims(applied_))});
    } else if (const auto* ack = std::get_if<Ack>(&msg)) {
      Acked(from, ack->applied, now, /*prunable=*/true, ack->fence_epoch >= epoch_);
      ReleaseReplicated(now, out);
    } else if (const auto* hb = std::get_if<Heartbeat>(&msg)) {
      OnHeartbeat(from, *hb, now, out);
      ReleaseReplicated(now, out);
    } else if (const auto* rq = std::get_if<RightsRequest>(&msg)) {
      OnRightsRequest(from, *rq, now, out);
    } else if (const auto* snap = std::get_if<Snapshot>(&msg)) {
      OnSnapshot(from, *snap, now, out);
    }
  }

  void OnConnected(RegionId to, std::uint64_t now, Effects* out) {
    if (to >= n_ || to == opt_.self) return;
    peers_[to].sent = peers_[to].acked;
    peers_[to].link_up = true;
    SendHello(to, out);
  }

  void OnDisconnected(RegionId to) {
    if (to < n_ && to != opt_.self) peers_[to].link_up = false;
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
    return Hello{opt_.cluster_id, kProtocolVersion, opt_.self, Claims(applied), epoch_,
                 to < n_ ? peer_epoch_[to] : 0, rejoining_,
                 std::min(clock_.last(), persisted_hw_).value, fences_.All(), needs_snapshot_,
                 opt_.idempotency_retention_ms};
  }

  // ---- time -----------------------------------------------------------------------------------

  void Tick(std::uint64_t now, Effects* out) {
    ExpirePending(now, out);
    ReleaseReplicated(now, out);
    if (rejoining_) MaybeFinishRejoin(now, out);
    if (now >= next_heartbeat_ms_) {
      next_heartbeat_ms_ = now + opt_.heartbeat_interval_ms;
      SendHeartbeats(now, out);
      if (rejoining_) AskUnanswered(out);  // Hellos and their answers may be lost
      // While rejoining our own log may lack ops that exist: no frontier may pass them.
      if (!rejoining_ && FoldToFrontier()) RetryAllPending(now, out);
    }
    if (now >= next_checkpoint_ms_ && saved_frontier_ < frontier_) {
      next_checkpoint_ms_ = now + opt_.checkpoint_interval_ms;
      SaveCheckpoints(out);
    }
    if (!rejoining_ && opt_.rebalance_interval_ms > 0 && now >= next_rebalance_ms_) {
      next_rebalance_ms_ = now + opt_.rebalance_interval_ms;
      Rebalance(now, out);
    }
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self) Push(p, now, out);
    }
    if (fences_unsaved_) {  // every tick at most: they are few and change rarely
      out->fences = fences_.All();
      fences_unsaved_ = false;
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  Status GetAccount(std::string_view id, AccountView* v) {
    Account* a = Find(id);
    if (!a || !a->open) {
      // A rejoining region may not have received the account yet: not a verdict on it.
      if (rejoining_) return Status::Unavailable(RejoinReason());
      return Status::NotFound("no account '" + std::string(id) + "'");
    }
    const ReplayState& t = Tip(*a);
    v->config = a->config;
    v->balance = t.balance;
    v->final_balance = a->checkpoint.balance;
    v->raw_balance = a->counters.balance();
    v->tentative = !a->journal.empty();
    v->regions.assign(n_, RegionView{});
    for (RegionId r = 0; r < n_; ++r) {
      v->regions[r] = RegionView{EffectiveRights(*a, r), a->tentative[r], a->config.lines[r],
                                 t.fees[r], t.voids[r]};
    }
    v->fees = t.total_fees();
    v->voids = t.total_voids();
    v->episodes = t.episodes;
    v->frontier = frontier_;
    v->lines_usable = a->opened.hlc < frontier_;
    if (!v->lines_usable) v->lines_wait_for = RegionsNotPast(a->opened.hlc);
    v->stale = rejoining_;
    v->digest = Digest(*a);
    return Status::OK();
  }

  std::vector<std::string> AccountIds() const {
    std::vector<std::string> ids;
    for (const auto& [id, i] : index_) {
      if (accounts_[i].open) ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  bool HasAccount(std::string_view id) const {
    auto it = index_.find(id);
    return it != index_.end() && accounts_[it->second].open;
  }

  Status Forks(std::string_view id, std::vector<ForkReport>* forks) {
    Account* a = Find(id);
    if (!a || !a->open) return Status::NotFound("no account '" + std::string(id) + "'");
    forks->assign(a->final_forks.begin(), a->final_forks.end());
    ReplayState s = a->checkpoint;
    ReplayRange(*a, &s, 0, a->journal.size(), /*final=*/false, forks);
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

  std::vector<PeerView> Peers(std::uint64_t now) const {
    std::vector<PeerView> v;
    for (RegionId r = 0; r < n_; ++r) {
      if (r == opt_.self) continue;
      const Peer& p = peers_[r];
      PeerView pv;
      pv.region = r;
      pv.reachable = Reachable(r, now);
      pv.last_heard_ms = p.last_heard_ms;
      pv.acked = p.acked;
      pv.clock_offset_ms = p.clock_offset_ms;
      pv.rtt_ms = p.rtt_ms;
      // By any route: what it acked to us, or what a peer relayed it holds.
      for (RegionId o = 0; o < n_; ++o) {
        const Seq has = std::max(p.acked.get(o), p.holds.get(o));
        if (applied_.get(o) > has) pv.ops_behind += applied_.get(o) - has;
      }
      v.push_back(pv);
    }
    return v;
  }

  std::uint64_t StateDigest() {
    Fnv64 h;
    for (const std::string& id : AccountIds()) {
      h.Add(id);
      h.Add(Digest(*Find(id)));
    }
    return h.value();
  }

  const ReplicaOptions& options() const { return opt_; }
  bool rejoining() const { return rejoining_; }
  VersionVector held() const { return Held(); }
  std::vector<Fence> fences() const { return fences_.All(); }
  std::string rejoin_reason() const { return rejoining_ ? RejoinReason() : ""; }
  std::uint64_t epoch() const { return epoch_; }
  Hello HelloTo(RegionId to, const VersionVector& applied) const { return HelloFor(to, applied); }
  const VersionVector& applied() const { return applied_; }
  const VersionVector& log_floor() const { return log_floor_; }
  Hlc clock() const { return clock_.last(); }
  Hlc frontier() const { return frontier_; }
  const ReplicaStats& stats() const {
    stats_.idempotency_keys = keys_.size();
    stats_.idempotency_index_bytes = keys_.MemoryBytes();
    return stats_;
  }

 private:
  static constexpr std::uint64_t kParked = ~std::uint64_t{0};

  // ---- accounts -------------------------------------------------------------------------------

  Account* Find(std::string_view id) {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &accounts_[it->second];
  }

  Account& GetOrCreate(const std::string& id) {
    auto [it, inserted] = index_.try_emplace(id, static_cast<std::uint32_t>(accounts_.size()));
    if (inserted) {
      Account a;
      a.config.id = id;
      a.config.lines.assign(n_, 0);
      a.counters = Counters(n_);
      a.final_counters = Counters(n_);
      a.checkpoint = ReplayState(n_);
      a.tip = ReplayState(n_);
      a.demand_mark.assign(n_, 0);
      a.tentative.assign(n_, 0);
      accounts_.push_back(std::move(a));
    }
    return accounts_[it->second];
  }

  std::uint32_t IndexOf(const Account& a) const {
    return static_cast<std::uint32_t>(&a - accounts_.data());
  }

  // The replay state over every op held, brought up to date lazily: local ops append and replay
  // one step; a remote op landing earlier in the canonical order costs a replay from the frontier.
  const ReplayState& Tip(Account& a) {
    while (a.tip_pos < a.journal.size()) {
      ReplayStep(a.config.fee, a.journal[a.tip_pos].replay(), &a.tip, nullptr);
      ++a.tip_pos;
    }
    return a.tip;
  }

  void Invalidate(Account& a, std::size_t pos) {
    if (pos < a.tip_pos) {
      a.tip = a.checkpoint;
      a.tip_pos = 0;
    }
  }

  Amount EffectiveRights(Account& a, RegionId r) {
    const ReplayState& t = Tip(a);
    return a.counters.rights(r) - t.fees[r] + t.voids[r];
  }

  std::uint64_t Digest(Account& a) {
    const ReplayState& t = Tip(a);
    Fnv64 h;
    h.Add(a.config.id);
    h.Add(a.config.currency);
    h.Add(static_cast<std::uint64_t>(a.config.overdraft_limit));
    for (Amount l : a.config.lines) h.Add(static_cast<std::uint64_t>(l));
    h.Add(static_cast<std::uint64_t>(a.config.fee.flat));
    h.Add(a.config.fee.bps);
    for (RegionId r = 0; r < n_; ++r) {
      h.Add(static_cast<std::uint64_t>(a.counters.credits(r)));
      h.Add(static_cast<std::uint64_t>(a.counters.debits(r)));
      for (RegionId s = 0; s < n_; ++s) h.Add(static_cast<std::uint64_t>(a.counters.transferred(r, s)));
      h.Add(static_cast<std::uint64_t>(t.fees[r]));
      h.Add(static_cast<std::uint64_t>(t.voids[r]));
    }
    h.Add(static_cast<std::uint64_t>(t.balance));
    h.Add(static_cast<std::uint64_t>(t.refunds));
    h.Add(t.episodes);
    h.Add(t.ops);
    h.Add(t.in_episode ? 1 : 0);
    return h.value();
  }

  // ---- validation -----------------------------------------------------------------------------

  // The core's rules (core/validate.h), and what needs this cluster: one line per region.
  Status ValidateConfig(const AccountConfig& c) const {
    Status s = ValidateAccountConfig(c);
    return s.ok() ? ValidateLineCount(c) : s;
  }
  Status ValidateLineCount(const AccountConfig& c) const {
    if (c.lines.size() != n_) return Status::InvalidArgument("overdraft lines: one per region is needed");
    return Status::OK();
  }

  // The core's rules (core/validate.h), and what needs this cluster: origin and target regions.
  Status ValidateClusterOp(const Op& op) const {
    Status s = ValidateOp(op);
    if (!s.ok()) return s;
    if (op.dot.origin >= n_) return Status::InvalidArgument("origin out of range");
    if (op.kind == OpKind::kTransfer && op.to >= n_)
      return Status::InvalidArgument("transfer to an invalid region");
    // ValidateOp checked the config by the core's rules already.
    if (op.kind == OpKind::kOpen) return ValidateLineCount(op.config);
    return Status::OK();
  }

  Status ValidateKeyRecord(const KeyRecord& k) const {
    Status s = ValidateAccountId(k.account);
    if (s.ok() && (k.dot.origin >= n_ || k.dot.seq == 0)) s = Status::InvalidArgument("bad dot");
    if (s.ok() && k.key == KeyHash{}) s = Status::InvalidArgument("no key hash");
    return s;
  }

  // ---- applying ops ---------------------------------------------------------------------------

  // Applies the next op of its origin (seq == applied + 1) to the account state, the journal, the
  // key index and the log. Returns an error, and changes nothing, if the op breaks a counter cap.
  Status Apply(const Op& op, Effects* out, bool recovering) {
    Account& a = GetOrCreate(op.account);
    const RegionId o = op.dot.origin;
    Status s;
    switch (op.kind) {
      case OpKind::kOpen:
        if (!a.open || op.canonical() < a.opened) {
          // Concurrent opens: the canonically first config wins everywhere.
          a.config = op.config;
          a.opened = op.canonical();
          a.open = true;
          Invalidate(a, 0);
        }
        break;
      case OpKind::kCredit: s = a.counters.Credit(o, op.amount, nullptr); break;
      case OpKind::kDebit: s = a.counters.Debit(o, op.amount, nullptr); break;
      case OpKind::kTransfer: s = a.counters.Transfer(o, op.to, op.amount, nullptr); break;
    }
    if (!s.ok()) return s;

    JournalEntry e{op.canonical(), op.kind, false, !op.key.empty(), op.to, op.amount};
    std::size_t pos = a.journal.size();
    if (!opt_.bugs.order_forks_by_arrival) {
      // Ops mostly arrive in canonical order: search from the back.
      while (pos > 0 && e.key < a.journal[pos - 1].key) --pos;
    }
    if (!op.key.empty()) {
      // The windowed rule (key_index.h): this use is voided by a canonically earlier use within
      // the retention window, and may void the next use. Expiry decides nothing here.
      const KeyHash key = HashKey(op.key);
      const KeyId id = MakeKeyId(IndexOf(a), key);
      last_key_ = id;
      const VoidRule rule = opt_.bugs.order_forks_by_arrival ? VoidRule::kArrival
                            : opt_.bugs.expiry_decides_voids ? VoidRule::kIndex
                                                             : VoidRule::kWindow;
      const KeyIndex::Outcome u = keys_.AddUse(
          id, KeyUse{op.dot, op.hlc, op.kind, op.amount, op.to, op.overdraft, 0, false}, rule);
      e.voided = u.voided;
      if (!u.known) {
        // Our own op applied after a use that voids it (recovery, rejoin): keep its answer.
        if (e.voided && o == opt_.self) {
          const KeyUse own{op.dot, op.hlc, op.kind, op.amount, op.to, op.overdraft, 0, true};
          if (displaced_.try_emplace({IndexOf(a), key}, own).second && out)
            out->keys.push_back(DisplacedRecord(own, op.account, key));
        }
        if (u.voids_next) {
          // A canonically earlier use within the window arrived: the next use is voided now.
          const std::size_t j = FindEntry(a, u.next.canonical());
          if (j < a.journal.size()) {
            UntrackTentative(a, a.journal[j]);
            a.journal[j].voided = true;
            Invalidate(a, j);
          }
          if (u.next.dot.origin == opt_.self && o != opt_.self) {
            // Another region's canonically earlier op takes the key from ours: keep our answer.
            displaced_[{IndexOf(a), key}] = u.next;
            if (out) out->keys.push_back(DisplacedRecord(u.next, op.account, key));
          }
        }
        // Our own ops' records are written by Originate, once the answer is known (or here, when
        // a peer gives back ops a lost store had).
        if (out && (o != opt_.self || rejoining_)) out->keys.push_back(RecordOf(id));
      }
    }
    Invalidate(a, pos);
    if (IsTentativeCredit(e)) a.tentative[o] += e.amount;  // <= 2^58 per region: cannot overflow
    a.journal.insert(a.journal.begin() + static_cast<std::ptrdiff_t>(pos), e);
    journaled_.insert(IndexOf(a));
    if (op.kind == OpKind::kDebit) touched_.insert(IndexOf(a));

    applied_.set(o, op.dot.seq);
    log_[o].push_back(op);
    if (out) out->ops.push_back(op);
    (void)recovering;
    return Status::OK();
  }

  // A credit that a canonically earlier duplicate of its key could still void (only another
  // region can originate one: a region answers a repeated key from its own index).
  bool IsTentativeCredit(const JournalEntry& e) const {
    return e.kind == OpKind::kCredit && e.keyed && !e.voided && n_ > 1;
  }
  void UntrackTentative(Account& a, const JournalEntry& e) {
    if (IsTentativeCredit(e)) a.tentative[e.key.origin] -= e.amount;
    assert(a.tentative[e.key.origin] >= 0);
  }

  std::size_t FindEntry(const Account& a, const CanonicalKey& k) const {
    for (std::size_t i = a.journal.size(); i-- > 0;) {
      if (a.journal[i].key == k) return i;
    }
    return a.journal.size();
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
    if (fences_.Add(FenceBook::Implied(op))) {
      std::vector<bool> changed(n_, false);
      changed[o] = true;
      AfterNewFences(changed, now, out);
    }
    if (fences_.IsDead(op)) {
      ++stats_.lost_history_ops;
      return;
    }
    if (op.dot.seq <= applied_.get(o)) {
      ++stats_.duplicate_ops;
      return;
    }
    if (AwaitsFence(op)) {
      // An op of an earlier run of its origin, which has restarted since: until we know where
      // that restart resumed (its fence) we cannot tell whether the op is of a history it lost,
      // and what we spent of it meanwhile the fence would take back (swarm seed 314095: rights
      // shipped by a dead run, spent here, then removed). Hold it; hand it to its origin, which
      // takes back its own ops while it rejoins, and to any rejoining peer: to those that ask
      // (SendAwaitingFence), and to those that asked already, as it arrives (swarm seed 323502:
      // r0 rejoined cut off from r1, which held its ops; r2 had answered before r1's relay of
      // them reached it, and held them for r0's fence while r0 waited for them).
      auto& held = awaiting_fence_[o];
      if (held.size() < kMaxBufferedOpsPerOrigin && held.emplace(op.dot.seq, op).second) {
        for (RegionId p = 0; p < n_; ++p)
          if (p != opt_.self && peers_[p].rejoining && Reachable(p, now))
            out->send.push_back(Outbound{p, OpBatch{{op}}});
      }
      MaybeFinishRejoin(now, out);
      return;
    }
    if (op.dot.seq > applied_.get(o) + 1) {
      auto& buf = buffered_[o];
      if (buf.size() < kMaxBufferedOpsPerOrigin) buf.emplace(op.dot.seq, op);
      return;  // the gap is filled by a re-send; beyond the bound we drop and wait for it too
    }
    ApplyRemote(op, now, out);
    DrainBuffered(o, now, out);
    if (o != opt_.self) TryConfirm(o);
    MaybeFinishRejoin(now, out);
  }

  // Whether `op` is of a run of its origin older than the newest we know of, whose fence we do
  // not know yet.
  bool AwaitsFence(const Op& op) const {
    if (op.dot.origin == opt_.self) return false;  // our own: our fences decide
    const std::uint64_t newest = NewestEpochOf(op.dot.origin);
    return op.epoch < newest && fences_.NewestEpoch(op.dot.origin) < newest;
  }

  // Gives a rejoining peer the ops we hold for a fence. Its rejoin waits for every op an answer
  // names (Held), and ours name only what we applied: so the op may exist nowhere else it can
  // reach — its own (which it takes back), or another rejoining region's whose old ops we hold
  // until that one resumes, while it waits for the first (swarm seed 1098: two rejoining regions
  // cut from each other, the third holding each one's old ops for the other's fence).
  void SendAwaitingFence(RegionId to, Effects* out) const {
    OpBatch batch;
    for (RegionId o = 0; o < n_; ++o) {
      for (const auto& [seq, op] : awaiting_fence_[o]) {
        batch.ops.push_back(op);
        if (batch.ops.size() == opt_.max_batch_ops) {
          out->send.push_back(Outbound{to, std::move(batch)});
          batch = OpBatch{};
        }
      }
    }
    if (!batch.ops.empty()) out->send.push_back(Outbound{to, std::move(batch)});
  }

  // Receives again the ops of origin `o` held for its fence, once it is known.
  void ReleaseAwaitingFence(RegionId o, std::uint64_t now, Effects* out) {
    if (awaiting_fence_[o].empty() || fences_.NewestEpoch(o) < NewestEpochOf(o)) return;
    std::map<Seq, Op> held;
    held.swap(awaiting_fence_[o]);
    for (const auto& [seq, op] : held) Receive(op, now, out);
  }

  // Applies the buffered ops of origin `o` that now follow what we hold; drops those we have.
  void DrainBuffered(RegionId o, std::uint64_t now, Effects* out) {
    auto& buf = buffered_[o];
    while (!buf.empty() && buf.begin()->first <= applied_.get(o) + 1) {
      const Op& op = buf.begin()->second;
      if (fences_.IsDead(op)) {
        ++stats_.lost_history_ops;
      } else if (op.dot.seq == applied_.get(o) + 1) {
        ApplyRemote(op, now, out);
      }
      buf.erase(buf.begin());
    }
  }

  void ApplyRemote(const Op& op, std::uint64_t now, Effects* out) {
    Status s = ValidateClusterOp(op);
    if (s.ok()) s = Apply(op, out, false);
    if (!s.ok()) {
      // A peer sent an op its origin could never have accepted. Applying it would corrupt state;
      // skipping it silently would hide the fault: report it and stall that origin.
      out->notices.push_back(Notice{Notice::Kind::kPeerRefused, op.dot.origin, 0,
                                    "refused op " + op.dot.ToString() + ": " + s.ToString()});
      return;
    }
    ++stats_.remote_ops_applied;
    if (op.kind == OpKind::kTransfer && op.to == opt_.self) RetryPending(*Find(op.account), now, out);
  }

  // ---- local commands -------------------------------------------------------------------------

  Op NewOp(OpKind kind, const std::string& account, std::uint64_t now) {
    Op op;
    op.dot = Dot{opt_.self, applied_.get(opt_.self) + 1};
    op.epoch = epoch_;
    op.hlc = clock_.Now(Wall());
    op.kind = kind;
    op.account = account;
    return op;
  }

  CommandResult Rejected(std::uint64_t id, Status s) {
    CommandResult r;
    r.id = id;
    r.status = std::move(s);
    return r;
  }

  CommandResult DoOpen(std::uint64_t id, const OpenAccount& cmd, std::uint64_t now, Effects* out) {
    AccountConfig config = cmd.config;
    if (config.lines.empty()) config.lines = SplitOverdraft(config.overdraft_limit, n_);
    Status s = ValidateConfig(config);
    if (!s.ok()) return Rejected(id, s);
    if (rejoining_ && !HasAccount(config.id)) return Rejected(id, Status::Unavailable(RejoinReason()));
    if (Account* a = Find(config.id); a && a->open) {
      if (a->config != config)
        return Rejected(id, Status::AlreadyExists("account '" + config.id +
                                                  "' exists with a different config"));
      CommandResult r;
      r.id = id;
      r.replayed = true;
      r.balance = Tip(*a).balance;
      return r;
    }
    Op op = NewOp(OpKind::kOpen, config.id, now);
    op.config = std::move(config);
    s = Apply(op, out, false);
    assert(s.ok());
    CommandResult r;
    r.id = id;
    r.op = op.dot;
    r.hlc = op.hlc;
    return r;
  }

  // The wall clock, read for timestamps only (core/wall_clock.h); `now` everywhere is monotonic.
  std::uint64_t Wall() const { return wall_->NowMs(); }

  // The wall time an op originated now would carry at least (the HLC never goes back): a retry is
  // inside the window when even that is within it.
  std::uint64_t RetryWallMs() const { return std::max(clock_.last().wall_ms(), Wall()); }

  // Looks the key up. Returns true when the command is answered (a replay or a mismatch). Inside
  // the window of the key's last use, a retry replays the key's binding (its latest unvoided use);
  // past it, the request is a new op.
  bool CheckKey(Account& a, const std::string& key, OpKind kind, Amount amount, RegionId to,
                std::uint64_t id, std::uint64_t now, CommandResult* r) {
    if (key.empty()) return false;
    KeyIndex::State st;
    const bool found = keys_.Find(MakeKeyId(IndexOf(a), key), &st) &&
                       keys_.WithinWindow(st.last_use, Hlc::Make(RetryWallMs(), 0));
    if (!found) {
      // Unknown, or its last use is past the window: a new op, in every region alike.
      for (const PendingDebit& p : a.pending) {
        if (p.key == key) {
          *r = Rejected(id, Status::Conflict("a request with this idempotency key is in progress"));
          return true;
        }
      }
      return false;
    }
    const KeyUse& k = st.binding;
    const std::uint64_t fingerprint = Fingerprint(kind, amount, to);
    if (auto own = displaced_.find({IndexOf(a), HashKey(key)});
        own != displaced_.end() && k.canonical() < own->second.canonical() &&
        Fingerprint(own->second.kind, own->second.amount, own->second.to) == fingerprint) {
      // Our original request, whose op lost the key to another region's: the stored answer.
      ++stats_.replays;
      r->id = id;
      r->op = own->second.dot;
      r->hlc = own->second.hlc;
      r->overdraft = own->second.overdraft;
      r->replayed = true;
      r->voided = true;
      r->voided_by = k.dot;
      r->balance = own->second.balance_after;
      return true;
    }
    if (Fingerprint(k.kind, k.amount, k.to) != fingerprint) {
      *r = Rejected(id, Status::IdempotencyKeyReused(
                            "idempotency key '" + key + "' was used for " +
                            std::string(OpKindName(k.kind)) + " of " + std::to_string(k.amount) +
                            " (op " + k.dot.ToString() + ")"));
      return true;
    }
    ++stats_.replays;
    r->id = id;
    r->op = k.dot;
    r->hlc = k.hlc;
    r->overdraft = k.overdraft;
    r->replayed = true;
    r->balance = k.dot.origin == opt_.self ? k.balance_after : Tip(a).balance;
    return true;
  }

  Status OpenAccountFor(std::string_view id, Account** a) {
    Status s = ValidateAccountId(id);
    if (!s.ok()) return s;
    *a = Find(id);
    if (!*a || !(*a)->open) {
      // A rejoining region may not know the account yet: its store may have lost it.
      if (rejoining_) return Status::Unavailable(RejoinReason());
      return Status::NotFound("no account '" + std::string(id) + "'");
    }
    return Status::OK();
  }

  // Originates an op of ours and answers with the balance right after it.
  CommandResult Originate(std::uint64_t id, Account& a, Op op, Effects* out) {
    Status s = Apply(op, out, false);
    if (!s.ok()) return Rejected(id, s);
    CommandResult r;
    r.id = id;
    r.op = op.dot;
    r.hlc = op.hlc;
    r.overdraft = op.overdraft;
    r.balance = Tip(a).balance;
    if (!op.key.empty()) {
      keys_.SetAnswer(last_key_, op.dot, r.balance);
      out->keys.push_back(RecordOf(last_key_));
    }
    return r;
  }

  CommandResult DoCredit(std::uint64_t id, const Credit& cmd, std::uint64_t now, Effects* out) {
    Account* a = nullptr;
    Status s = OpenAccountFor(cmd.account, &a);
    if (s.ok()) s = ValidateAmount(cmd.amount);
    if (s.ok() && !cmd.key.empty()) s = ValidateIdempotencyKey(cmd.key);
    if (!s.ok()) return Rejected(id, s);
    CommandResult r;
    if (CheckKey(*a, cmd.key, OpKind::kCredit, cmd.amount, 0, id, now, &r)) return r;
    if (rejoining_) return Rejected(id, Status::Unavailable(RejoinReason()));
    Op op = NewOp(OpKind::kCredit, cmd.account, now);
    op.amount = cmd.amount;
    op.key = cmd.key;
    r = Originate(id, *a, std::move(op), out);
    if (r.status.ok()) ++stats_.accepted;
    return r;
  }

  CommandResult DoDebit(std::uint64_t id, const Debit& cmd, std::uint64_t now, Effects* out) {
    Account* a = nullptr;
    Status s = OpenAccountFor(cmd.account, &a);
    if (s.ok()) s = ValidateAmount(cmd.amount);
    if (s.ok() && !cmd.key.empty()) s = ValidateIdempotencyKey(cmd.key);
    if (!s.ok()) return Rejected(id, s);
    CommandResult r;
    if (CheckKey(*a, cmd.key, OpKind::kDebit, cmd.amount, 0, id, now, &r)) return r;
    if (rejoining_) return Rejected(id, Status::Unavailable(RejoinReason()));
    PendingDebit p{id, cmd.amount, cmd.key, now + opt_.rights_wait_ms};
    if (Decide(*a, p, now, /*may_wait=*/true, out, &r)) return r;
    return Parked();
  }

  CommandResult Parked() {
    CommandResult r;
    r.id = kParked;
    return r;
  }

  // This region's credits that are not yet final; they are part of its rights but not spendable
  // (outside the overdraft line) until final: see docs/design.md, "The effective floor".
  Amount TentativeCredit(const Account& a) const {
    return opt_.bugs.spend_tentative_credit ? 0 : a.tentative[opt_.self];
  }

  // What this region may spend or give away without its line: rights less tentative credit.
  Amount SpendableRights(Account& a) { return EffectiveRights(a, opt_.self) - TentativeCredit(a); }

  // The debit rules of the brief. Returns false when the debit was parked to wait for rights.
  bool Decide(Account& a, const PendingDebit& p, std::uint64_t now, bool may_wait, Effects* out,
              CommandResult* r) {
    const RegionId me = opt_.self;
    const Amount rights = EffectiveRights(a, me);
    const Amount tentative = TentativeCredit(a);
    const Amount spendable = rights - tentative;
    const Amount line = UsableLine(a);
    bool overdraft = false;
    if (spendable >= p.amount || opt_.bugs.skip_rights_check) {
      overdraft = spendable < p.amount;
    } else if (may_wait && Park(a, p, spendable, rights, line, now, out)) {
      return false;
    } else if (spendable + line >= p.amount) {
      overdraft = true;
    } else {
      ++stats_.rejected;
      std::string why = "debit of " + std::to_string(p.amount) +
                        " exceeds this region's spendable rights " + std::to_string(spendable) +
                        " plus its overdraft line " + std::to_string(line);
      if (tentative > 0) {
        why += "; its rights " + std::to_string(rights) + " include " + std::to_string(tentative) +
               " of credit not yet final, which is spendable only within the overdraft line until "
               "it is final (a duplicate of its idempotency key in another region may still void it)";
      }
      std::vector<RegionId> waits_for;
      const Amount not_yet_usable = line == 0 ? a.config.lines[me] : 0;
      if (not_yet_usable > 0) {
        waits_for = RegionsNotPast(a.opened.hlc);
        why += "; the overdraft line of " + std::to_string(not_yet_usable) +
               " is usable once the account's opening is final, and " +
               (waits_for.empty() ? std::string("it will be at the next heartbeat")
                                  : "region" + std::string(waits_for.size() > 1 ? "s " : " ") +
                                        RegionList(waits_for, now) + " must confirm it first");
      }
      *r = Rejected(p.command_id, Status::InsufficientFunds(std::move(why)));
      r->line_not_yet_usable = not_yet_usable;
      r->line_waits_for = std::move(waits_for);
      r->rights = rights;
      r->tentative_credit = tentative;
      r->overdraft_line = line;
      r->requested = p.amount;
      r->balance = Tip(a).balance;
      return true;
    }
    Op op = NewOp(OpKind::kDebit, a.config.id, now);
    op.amount = p.amount;
    op.key = p.key;
    op.overdraft = overdraft;
    *r = Originate(p.command_id, a, std::move(op), out);
    r->rights = rights;
    r->tentative_credit = tentative;
    r->overdraft_line = line;
    r->requested = p.amount;
    if (r->status.ok()) {
      ++stats_.accepted;
      if (overdraft) ++stats_.overdraft_debits;
    } else {
      ++stats_.rejected;
    }
    return true;
  }

  // Parks a debit that spendable rights do not cover when waiting can help: a live peer holds
  // rights (ask it, wait RightsWaitMs), or our tentative credits would cover it once final and
  // every peer is reachable so the frontier moves (wait finality_wait_ms). False otherwise.
  bool Park(Account& a, PendingDebit p, Amount spendable, Amount rights, Amount line,
            std::uint64_t now, Effects* out) {
    if (a.pending.size() >= opt_.max_pending_debits) return false;
    std::uint64_t wait_ms = 0;
    if (opt_.rights_wait_ms > 0 &&
        RequestRights(a, p.amount - std::max<Amount>(spendable, 0), now, out, &wait_ms)) {
      p.asked_rights = true;
    }
    if (opt_.finality_wait_ms > 0 && spendable < rights && rights + line >= p.amount &&
        AllPeersReachable(now)) {
      wait_ms = std::max(wait_ms, opt_.finality_wait_ms);
    }
    if (wait_ms == 0) return false;
    p.deadline_ms = DeadlineClock(now) + wait_ms;
    a.pending.push_back(std::move(p));
    pending_accounts_.insert(IndexOf(a));
    return true;
  }

  // Waits run on the monotonic clock; the planted bug puts them on the wall clock, where a clock
  // stepped back parks a debit for as long as the step.
  std::uint64_t DeadlineClock(std::uint64_t now) const {
    return opt_.bugs.wall_clock_deadlines ? Wall() : now;
  }

  bool AllPeersReachable(std::uint64_t now) const {
    for (RegionId r = 0; r < n_; ++r) {
      if (r != opt_.self && !Reachable(r, now)) return false;
    }
    return true;
  }

  // The overdraft line this region may spend. Only once the account's open is final: until then a
  // concurrent open elsewhere with another config could still win, and a line spent under the
  // losing config would break the floor of the winning one. Accounts are opened long before they
  // overdraw, so this costs nothing in practice; during a partition right after an open, debits
  // are limited to real rights.
  Amount UsableLine(const Account& a) const {
    return a.opened.hlc < frontier_ ? a.config.lines[opt_.self] : 0;
  }

  // The regions whose confirmed promises are not yet past `hlc`: what holds the frontier below it.
  std::vector<RegionId> RegionsNotPast(Hlc hlc) const {
    std::vector<RegionId> v;
    for (RegionId o = 0; o < n_; ++o)
      if (o != opt_.self && !(hlc < hb_[o].confirmed)) v.push_back(o);
    return v;
  }

  // "eu (not heard for 12 s), ap": names, with how long each has been silent when it has been.
  std::string RegionList(const std::vector<RegionId>& regions, std::uint64_t now) const {
    std::string s;
    for (RegionId o : regions) {
      if (!s.empty()) s += ", ";
      s += opt_.regions[o];
      const Peer& p = peers_[o];
      if (!p.heard) {
        s += " (not heard since this process started)";
      } else if (!Reachable(o, now)) {
        s += " (not heard for " + std::to_string((now - p.last_heard_ms) / 1000) + " s)";
      }
    }
    return s;
  }

  // Asks live peers that hold rights for `shortfall`, largest holder first, until what they are
  // known to hold covers it; *wait_ms is how long to wait for their transfers. False when no live
  // peer holds any (a peer that is only "reachable" may be past a cut we have not noticed yet).
  bool RequestRights(Account& a, Amount shortfall, std::uint64_t now, Effects* out,
                     std::uint64_t* wait_ms) {
    std::vector<std::pair<Amount, RegionId>> holders;
    for (RegionId r = 0; r < n_; ++r) {
      if (r == opt_.self || !Live(r, now)) continue;
      const Amount rr = EffectiveRights(a, r);
      if (rr > 0) holders.emplace_back(-rr, r);
    }
    if (holders.empty()) return false;
    std::sort(holders.begin(), holders.end());
    Amount asked = 0;
    for (const auto& [neg, r] : holders) {
      if (asked >= shortfall) break;
      const Amount ask = std::min(shortfall - asked, -neg);
      out->send.push_back(Outbound{r, RightsRequest{a.config.id, ask}});
      ++stats_.rights_requests_sent;
      asked += ask;
      *wait_ms = std::max(*wait_ms, RightsWaitMs(peers_[r]));
    }
    return true;
  }

  // A transfer asked of `p` comes back after a round trip plus its sync: wait two round trips and
  // kRightsWaitSlackMs, at most rights_wait_ms (all of it while no round trip is measured). A
  // fixed short wait refuses every first debit across a WAN; a fixed long one makes a debit that
  // cannot be helped wait for nothing.
  std::uint64_t RightsWaitMs(const Peer& p) const {
    if (p.rtt_ms < 0) return opt_.rights_wait_ms;
    return std::min(opt_.rights_wait_ms, 2 * static_cast<std::uint64_t>(p.rtt_ms) + kRightsWaitSlackMs);
  }

  void OnRightsRequest(RegionId from, const RightsRequest& rq, std::uint64_t now, Effects* out) {
    if (rejoining_) return;  // we originate nothing until we know our own log is whole
    if (!ValidateAccountId(rq.account).ok() || !ValidateAmount(rq.amount).ok()) return;
    Account* a = Find(rq.account);
    if (!a || !a->open) return;
    // Its request reached us, but rights sent over a link we cannot see working may be stranded.
    if (!Live(from, now)) return;
    const Amount mine = SpendableRights(*a);
    if (mine <= 0) return;
    if (GiveRights(*a, from, std::min(mine, rq.amount), now, out)) {
      ++stats_.rights_granted;
      Push(from, now, out);
    }
  }

  bool GiveRights(Account& a, RegionId to, Amount amount, std::uint64_t now, Effects* out) {
    Op op = NewOp(OpKind::kTransfer, a.config.id, now);
    op.to = to;
    op.amount = amount;
    const Seq seq = op.dot.seq;
    if (!Apply(op, out, false).ok()) return false;
    RightsInFlight& f = rights_in_flight_[{IndexOf(a), to}];
    f.seq = seq;
    if (!CheckedAdd(f.amount, amount, &f.amount)) f.amount = std::numeric_limits<Amount>::max();
    return true;
  }

  // Rights we gave on `a` that their recipients have not acknowledged yet; forgets the ones they
  // have.
  Amount RightsInFlightOn(const Account& a) {
    const std::uint32_t idx = IndexOf(a);
    Amount sum = 0;
    for (auto it = rights_in_flight_.lower_bound({idx, 0});
         it != rights_in_flight_.end() && it->first.first == idx;) {
      if (peers_[it->first.second].acked.get(opt_.self) >= it->second.seq) {
        it = rights_in_flight_.erase(it);
        continue;
      }
      if (!CheckedAdd(sum, it->second.amount, &sum)) sum = std::numeric_limits<Amount>::max();
      ++it;
    }
    return sum;
  }

  // Decides the waiting debits whose wait is over: rights now cover them, or they waited only for
  // credits to turn final and none is left tentative. In arrival order.
  void RetryPending(Account& a, std::uint64_t now, Effects* out) {
    while (!a.pending.empty()) {
      PendingDebit p = a.pending.front();
      const bool nothing_to_wait_for = !p.asked_rights && TentativeCredit(a) == 0;
      if (SpendableRights(a) < p.amount && !nothing_to_wait_for) break;
      a.pending.pop_front();
      CommandResult r;
      Decide(a, p, now, /*may_wait=*/false, out, &r);
      Complete(std::move(r), now, out);
    }
    if (a.pending.empty()) pending_accounts_.erase(IndexOf(a));
  }

  void ExpirePending(std::uint64_t now, Effects* out) {
    for (auto it = pending_accounts_.begin(); it != pending_accounts_.end();) {
      Account& a = accounts_[*it];
      while (!a.pending.empty() && a.pending.front().deadline_ms <= DeadlineClock(now)) {
        PendingDebit p = a.pending.front();
        a.pending.pop_front();
        CommandResult r;
        Decide(a, p, now, /*may_wait=*/false, out, &r);
        Complete(std::move(r), now, out);
      }
      it = a.pending.empty() ? pending_accounts_.erase(it) : std::next(it);
    }
  }

  CommandResult DoTransfer(std::uint64_t id, const TransferRights& cmd, std::uint64_t now,
                           Effects* out) {
    Account* a = nullptr;
    Status s = OpenAccountFor(cmd.account, &a);
    if (s.ok()) s = ValidateAmount(cmd.amount);
    if (s.ok() && cmd.to >= n_) s = Status::InvalidArgument("transfer to an unknown region");
    if (s.ok() && cmd.to == opt_.self)
      s = Status::FailedPrecondition("a region cannot transfer rights to itself");
    if (s.ok() && !cmd.key.empty()) s = ValidateIdempotencyKey(cmd.key);
    if (!s.ok()) return Rejected(id, s);
    CommandResult replay;
    if (CheckKey(*a, cmd.key, OpKind::kTransfer, cmd.amount, cmd.to, id, now, &replay)) return replay;
    if (rejoining_) return Rejected(id, Status::Unavailable(RejoinReason()));
    const Amount spendable = SpendableRights(*a);
    if (spendable < cmd.amount) {
      const Amount tentative = TentativeCredit(*a);
      CommandResult r = Rejected(
          id, Status::InsufficientFunds(
                  "transfer of " + std::to_string(cmd.amount) +
                  " exceeds this region's spendable rights " + std::to_string(spendable) +
                  (tentative > 0 ? " (" + std::to_string(tentative) +
                                       " of its rights is credit not yet final)"
                                 : std::string())));
      r.rights = spendable + tentative;
      r.tentative_credit = tentative;
      r.requested = cmd.amount;
      return r;
    }
    Op op = NewOp(OpKind::kTransfer, cmd.account, now);
    op.to = cmd.to;
    op.amount = cmd.amount;
    op.key = cmd.key;  // replay ignores transfers, so a voided duplicate of it moves nothing back
    CommandResult r = Originate(id, *a, std::move(op), out);
    if (r.status.ok()) ++stats_.accepted;
    return r;
  }

  // Answers a command, or, for one that asked for durability "replicated" and whose op of ours no
  // other region is known to hold yet, holds the answer until one does (ReleaseReplicated).
  void Complete(CommandResult r, std::uint64_t now, Effects* out) {
    const bool wants_replicated = want_replicated_.erase(r.id) > 0;
    r.replicated = r.status.ok() && r.op.seq != 0 && IsReplicated(r.op);
    if (wants_replicated && r.status.ok() && !r.replicated) {
      if (awaiting_.size() >= opt_.max_pending_debits) {
        r = Rejected(r.id, Status::Unavailable(NotReplicatedReason(r.op, "too many answers wait for replication")));
      } else {
        const Dot op = r.op;
        awaiting_.emplace(op, AwaitingReplication{now + opt_.replicated_wait_ms, std::move(r)});
        return;
      }
    }
    out->completions.push_back(std::move(r));
  }

  // ---- durability "replicated" ----------------------------------------------------------------

  // The highest seq of `origin` that some region other than us holds durably, by any route: peers
  // ack (and heartbeat, and relay) only what they have synced. For another origin's op that is
  // not simply "its origin has it": the origin may have lost its disk since (its new epoch's claims
  // then replace its old ones), and our copy may be the only one.
  Seq ReplicatedSeq(RegionId origin) const {
    Seq upto = 0;
    for (RegionId p = 0; p < n_; ++p) {
      if (p == opt_.self) continue;
      upto = std::max(upto, origin == opt_.self ? peers_[p].holds_ours : peers_[p].holds.get(origin));
    }
    return std::min({upto, applied_.get(origin), SettledSeq(origin)});
  }

  // Up to which seq the ops of `origin` we hold are known not to be of a history it lost. Claims
  // of those seqs name ops, not just seqs, only below that: once `origin` has an incarnation
  // whose fence (resume point) it has not told us itself, any op we hold of an earlier one may be
  // fenced off, and its seq issued again with another op (seed 303554). Our own ops are settled
  // by KnowsOurFence instead.
  Seq SettledSeq(RegionId origin) const {
    const std::uint64_t newest = NewestEpochOf(origin);
    if (origin == opt_.self || own_fence_epoch_[origin] >= newest) return applied_.get(origin);
    for (const Op& op : log_[origin])
      if (op.epoch < newest) return op.dot.seq - 1;
    return applied_.get(origin);
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
    if (awaiting_.empty()) return;
    for (RegionId o = 0; o < n_; ++o) {
      const Seq upto = ReplicatedSeq(o);
      auto it = awaiting_.lower_bound(Dot{o, 0});
      while (it != awaiting_.end() && it->first.origin == o && it->first.seq <= upto) {
        CommandResult r = std::move(it->second.result);
        it = awaiting_.erase(it);
        r.replicated = true;
        out->completions.push_back(std::move(r));
      }
    }
    for (auto it = awaiting_.begin(); it != awaiting_.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      const CommandResult& waited = it->second.result;
      CommandResult r = Rejected(
          waited.id, Status::Unavailable(NotReplicatedReason(
                         waited.op, "no other region confirmed it within " +
                                        std::to_string(opt_.replicated_wait_ms) + " ms")));
      r.op = waited.op;
      out->completions.push_back(std::move(r));
      it = awaiting_.erase(it);
    }
  }

  // ---- gossip ---------------------------------------------------------------------------------

  bool Reachable(RegionId r, std::uint64_t now) const {
    const Peer& p = peers_[r];
    return p.heard && now < p.last_heard_ms + opt_.peer_timeout_ms;
  }

  // Whether rights may move toward (or be asked of) peer `r`: our link to it is up and its own
  // acks or heartbeats are flowing — the last came within LiveWindowMs, a bound from the measured
  // round trip. "Reachable" (peer_timeout_ms) is far too loose for this: rights sent into a link
  // that died a second ago are stranded until the heal.
  bool Live(RegionId r, std::uint64_t now) const {
    const Peer& p = peers_[r];
    // The window is never longer than the peer timeout, so live implies reachable.
    return p.link_up && p.acks_heard_ms != 0 && now < p.acks_heard_ms + LiveWindowMs(p);
  }

  // Heartbeats come every heartbeat_interval_ms; allow one lost or late, plus two round trips of
  // jitter. Before a round trip is measured, the peer timeout.
  std::uint64_t LiveWindowMs(const Peer& p) const {
    if (p.rtt_ms < 0) return opt_.peer_timeout_ms;
    return std::min(opt_.peer_timeout_ms,
                    2 * opt_.heartbeat_interval_ms + 2 * static_cast<std::uint64_t>(p.rtt_ms));
  }

  void Heard(RegionId from, std::uint64_t now) {
    Peer& p = peers_[from];
    if (!Reachable(from, now)) {
      // Back after a silence: whatever we sent meanwhile may be lost.
      p.sent = p.acked;
      p.progress_ms.fill(now);
    }
    p.heard = true;
    p.last_heard_ms = now;
  }

  // What a peer says it holds (Hello, Ack, heartbeat). The newest word replaces the last one
  // instead of joining it, and nothing is believed beyond what we hold ourselves: a peer that
  // claims too much (a bug, a liar, a stale claim from before it lost its disk) is corrected by its
  // next honest ack, and a stale ack that claims too little only costs a re-send.
  //
  // A Hello's claim steers only what we send, never what we prune: a stranger or a stale Hello
  // claiming too much would otherwise make us drop ops the real peer never got (the simulator's
  // lying-Hello fault found exactly that). Acks and heartbeats come from the live peer.
  //
  // Its claim about our own ops above where this incarnation resumed counts only if it knew our
  // fence when it wrote it: before, it may hold ops of our lost history under those seqs, and
  // believing it would release a "replicated" answer (or prune an op) that no peer holds.
  void Acked(RegionId from, const VersionVector& said, std::uint64_t now, bool prunable,
             bool knows_our_fence) {
    Peer& p = peers_[from];
    VersionVector v = said;
    if (!rejoining_ && !knows_our_fence && v.get(opt_.self) > resumed_from_)
      v.set(opt_.self, resumed_from_);
    VersionVector claim;
    for (RegionId o = 0; o < n_; ++o) claim.set(o, std::min(v.get(o), applied_.get(o)));
    if (prunable) {
      p.acks_heard_ms = now;
      p.holds = v;  // uncapped: relayed as said (a rejoining region learns its seqs exist)
      p.holds_epoch = peer_epoch_[from];
      p.holds_ours = v.get(opt_.self);
    }
    for (RegionId o = 0; o < n_; ++o) {
      if (claim.get(o) > p.acked.get(o)) p.progress_ms[o] = now;
    }
    p.acked = claim;
    p.sent.JoinWith(p.acked);
  }

  // Sends peer `to` the ops it lacks, in bounded batches. Our own ops go at once; another origin's
  // ops are relayed only once the peer has lagged on them for relay_delay_ms (it probably cannot
  // hear that origin), so a full mesh does not carry every op n-1 times.
  void Push(RegionId to, std::uint64_t now, Effects* out) {
    if (!Reachable(to, now)) return;
    Peer& p = peers_[to];
    if (NeedsSnapshot(p)) {
      MaybeSendSnapshot(to, now, out);
      return;
    }
    std::size_t inflight = 0;
    for (RegionId o = 0; o < n_; ++o) {
      if (p.sent.get(o) <= p.acked.get(o)) continue;
      if (now >= p.progress_ms[o] + opt_.resend_after_ms) {
        p.sent.set(o, p.acked.get(o));  // nothing acked for a while: assume it was lost
        p.progress_ms[o] = now;
        continue;
      }
      inflight += p.sent.get(o) - p.acked.get(o);
    }
    OpBatch batch;
    for (RegionId o = 0; o < n_ && inflight < opt_.max_inflight_ops; ++o) {
      // A peer normally holds all of its own ops; if it says it does not (it lost its store and is
      // rejoining), it gets them back from us like any other.
      if (applied_.get(o) <= p.acked.get(o)) {
        p.lag_since_ms[o] = 0;
        continue;
      }
      if (o != opt_.self && o != to) {
        if (opt_.bugs.drop_relayed_ops) continue;
        if (p.lag_since_ms[o] == 0 || p.lag_acked[o] != p.acked.get(o)) {
          // The peer still makes progress on this origin (probably hears it directly): wait.
          p.lag_since_ms[o] = now;
          p.lag_acked[o] = p.acked.get(o);
        }
        if (now < p.lag_since_ms[o] + opt_.relay_delay_ms) continue;
      }
      if (p.sent.get(o) <= p.acked.get(o)) p.progress_ms[o] = now;  // nothing in flight: start
      Seq from = std::max(p.sent.get(o), p.acked.get(o));
      // Pruned: every peer had acked it (a stale ack says less; a restarted peer gets a snapshot).
      if (from < log_floor_.get(o)) from = log_floor_.get(o);
      const auto& log = log_[o];
      while (from < applied_.get(o) && inflight < opt_.max_inflight_ops) {
        const Op& op = log[from - log_floor_.get(o)];
        batch.ops.push_back(op);
        ++from;
        ++inflight;
        if (batch.ops.size() == opt_.max_batch_ops) {
          stats_.ops_sent += batch.ops.size();
          ++stats_.messages_sent;
          out->send.push_back(Outbound{to, std::move(batch)});
          batch = OpBatch{};
        }
      }
      p.sent.set(o, from);
    }
    if (!batch.ops.empty()) {
      stats_.ops_sent += batch.ops.size();
      ++stats_.messages_sent;
      out->send.push_back(Outbound{to, std::move(batch)});
    }
  }

  // ---- snapshots ------------------------------------------------------------------------------
  //
  // We prune an op once every peer holds it, so only a peer that restarted with less than it had
  // (wiped, restored from a copy) can lack ops we no longer retain. It gets our whole state
  // instead: the checkpoints at our frontier, the retained log and the idempotency records.

  bool NeedsSnapshot(const Peer& p) const {
    if (rejoining_ || !p.rejoining) return false;  // a rejoining region's state may lack ops
    if (p.needs_snapshot) return true;
    for (RegionId o = 0; o < n_; ++o) {
      if (p.acked.get(o) < log_floor_.get(o)) return true;
    }
    return false;
  }

  // At most one snapshot per peer per max(resend_after_ms, peer_timeout_ms): it is large, and the
  // peer answers one it installed with an Ack that ends the need.
  void MaybeSendSnapshot(RegionId to, std::uint64_t now, Effects* out) {
    Peer& p = peers_[to];
    const std::uint64_t every = std::max(opt_.resend_after_ms, opt_.peer_timeout_ms);
    if (p.snapshot_ms != 0 && now < p.snapshot_ms + every) return;
    p.snapshot_ms = std::max<std::uint64_t>(now, 1);
    Snapshot snap;
    snap.frontier = frontier_;
    snap.applied = applied_;
    snap.log_floor = log_floor_;
    snap.accounts = FinalCheckpoints();
    snap.ops = RetainedLog();
    snap.keys = KeyRecords(/*with_displaced=*/false);
    snap.fences = fences_.All();
    ++stats_.snapshots_sent;
    ++stats_.messages_sent;
    out->notices.push_back(Notice{Notice::Kind::kSnapshotSent, to, static_cast<std::int64_t>(snap.ops.size()),
                                  "sent a snapshot to region " + opt_.regions[to] + " (" +
                                      std::to_string(snap.accounts.size()) + " accounts, " +
                                      std::to_string(snap.ops.size()) + " ops): it restarted " +
                                      "lacking ops no region retains any more"});
    out->send.push_back(Outbound{to, std::move(snap)});
  }

  // The checkpoint of every account whose open is below the frontier: what a fold would store.
  std::vector<AccountCheckpoint> FinalCheckpoints() const {
    std::vector<AccountCheckpoint> out;
    for (const Account& a : accounts_) {
      if (a.open && a.opened.hlc < frontier_) out.push_back(CheckpointOf(a));
    }
    return out;
  }

  // An account's final prefix as stored: its config, final counters, replay state and events.
  static AccountCheckpoint CheckpointOf(const Account& a) {
    AccountCheckpoint c{a.config, a.opened, a.final_counters, a.checkpoint, {}};
    for (const ForkReport& fr : a.final_forks) c.events.push_back(fr.event);
    return c;
  }

  // Every op of the retained log, origin by origin in seq order.
  std::vector<Op> RetainedLog() const {
    std::vector<Op> ops;
    for (RegionId o = 0; o < n_; ++o) ops.insert(ops.end(), log_[o].begin(), log_[o].end());
    return ops;
  }

  std::vector<KeyRecord> KeyRecords(bool with_displaced) const {
    std::vector<KeyRecord> out;
    keys_.ForEach([&](const KeyId& id) { out.push_back(RecordOf(id)); });
    if (with_displaced) {
      for (const auto& [k, e] : displaced_)
        out.push_back(DisplacedRecord(e, accounts_[k.first].config.id, k.second));
    }
    return out;
  }

  // The stored record of key `id`, as the index holds it now.
  KeyRecord RecordOf(const KeyId& id) const {
    KeyRecord r;
    r.account = accounts_[id.account].config.id;
    r.key = KeyHash{id.h1, id.h2};
    keys_.FillRecord(id, &r);
    return r;
  }

  // Forgets the keys whose retention window the saved frontier has passed, and folds the uses of
  // keys used several times below it; the host deletes and rewrites their records in the batch
  // that persists that frontier (SaveCheckpoints), so a restart compares new uses only with what
  // it can still need. Our own displaced op of a forgotten key is forgotten with it.
  void SweepKeys(Effects* out) {
    keys_.Sweep(
        saved_frontier_,
        [&](const KeyId& id) {
          const std::string& account = accounts_[id.account].config.id;
          const KeyHash key{id.h1, id.h2};
          out->forget_keys.push_back(KeyRecordId{account, key, false});
          if (displaced_.erase({id.account, key}) > 0)
            out->forget_keys.push_back(KeyRecordId{account, key, true});
          ++stats_.idempotency_keys_expired;
        },
        [&](const KeyId& id) { out->keys.push_back(RecordOf(id)); });
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
      if (applied_.get(o) < snap.log_floor.get(o)) lacking = true;
      if (!needs_snapshot_ && snap.applied.get(o) < log_floor_.get(o)) return;  // it lacks ops only we still have
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
      if (fences_.IsDead(op)) s = Status::InvalidArgument("it holds op " + op.dot.ToString() + " of a lost history");
    }
    for (RegionId o = 0; o < n_ && s.ok(); ++o) {
      for (Seq q = std::max(snap.applied.get(o), log_floor_.get(o)) + 1; q <= applied_.get(o); ++q) {
        const Op& op = log_[o][q - log_floor_.get(o) - 1];
        if (fences_.IsDead(op)) break;  // ours of a lost history (a restored store): they go
        // Every op below its frontier was in the sender's hands when it folded (heartbeat
        // promises): one of ours that is not would vanish into a checkpoint that lacks it.
        st.ops.push_back(op);
      }
    }
    for (const KeyRecord& k : KeyRecords(/*with_displaced=*/true)) {
      if (k.displaced) st.keys.push_back(k);
    }
    Impl fresh(opt_, wall_);
    Hlc held_max;
    if (s.ok()) s = fresh.Load(std::move(st), &held_max);
    if (s.ok() && !fresh.applied_.Dominates(snap.applied))
      s = Status::InvalidArgument("its ops stop short of its applied vector");
    if (!s.ok()) {
      out->notices.push_back(Notice{Notice::Kind::kPeerRefused, from, 0,
                                    "refused the snapshot of region " + opt_.regions[from] + ": " + s.message()});
      return;
    }
    Adopt(fresh, held_max, now, out);
    needs_snapshot_ = false;
    out->notices.push_back(Notice{Notice::Kind::kSnapshotInstalled, from, static_cast<std::int64_t>(applied_.get(opt_.self)),
                                  "installed the snapshot of region " + opt_.regions[from] + " (" +
                                      std::to_string(out->fold->checkpoints.size()) + " accounts, " +
                                      std::to_string(out->ops.size()) + " ops); own ops up to seq " +
                                      std::to_string(applied_.get(opt_.self))});
    out->send.push_back(Outbound{from, AckFor(from, applied_)});
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
    std::set<std::uint32_t> waiting;
    for (std::uint32_t i : pending_accounts_) {
      Account& old = accounts_[i];
      if (Account* a = fresh.Find(old.config.id); a && a->open) {
        a->pending = std::move(old.pending);
        waiting.insert(fresh.IndexOf(*a));
      } else {
        for (const PendingDebit& d : old.pending)
          out->completions.push_back(Rejected(d.command_id, Status::Unavailable(
                                                                "the account's open op was of a lost history")));
      }
    }
    pending_accounts_ = std::move(waiting);
    frontier_ = fresh.frontier_;
    saved_frontier_ = fresh.saved_frontier_;
    applied_ = fresh.applied_;
    // Answers held until a peer holds their op: an op the new state lacks is gone (of a lost
    // history), and a later op may take its seq; its answer must not be released for that one.
    for (auto it = awaiting_.begin(); it != awaiting_.end();) {
      if (it->first.seq <= applied_.get(it->first.origin)) {
        ++it;
        continue;
      }
      CommandResult r = Rejected(it->second.result.id,
                                 Status::Unavailable("its op " + it->first.ToString() +
                                                     " was of a history its region lost; retry with the same "
                                                     "Idempotency-Key"));
      r.op = it->first;
      out->completions.push_back(std::move(r));
      it = awaiting_.erase(it);
    }
    std::fill(lost_from_.begin(), lost_from_.end(), 0);
    log_floor_ = fresh.log_floor_;
    log_ = std::move(fresh.log_);
    accounts_ = std::move(fresh.accounts_);
    index_ = std::move(fresh.index_);
    keys_ = std::move(fresh.keys_);
    displaced_ = std::move(fresh.displaced_);
    journaled_.swap(fresh.journaled_);
    unsaved_.clear();
    touched_.clear();
    clock_.Update(std::max(held_max, frontier_), Wall());

    out->replaces_store = true;
    out->ops = RetainedLog();
    out->keys = KeyRecords(/*with_displaced=*/true);
    out->fold = Fold{frontier_, log_floor_, FinalCheckpoints()};
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
    for (std::uint32_t i : pending_accounts_) {
      for (const PendingDebit& d : accounts_[i].pending) out->completions.push_back(Rejected(d.command_id, why));
      accounts_[i].pending.clear();
    }
    pending_accounts_.clear();
    for (auto& [op, waiting] : awaiting_) {
      CommandResult r = Rejected(waiting.result.id, why);
      r.op = op;
      out->completions.push_back(std::move(r));
    }
    awaiting_.clear();
  }

  // Whether a peer's list of fences (its Hello's or heartbeat's) has this incarnation's. Our
  // epoch alone is not enough: a peer that got an op of ours of this epoch knows the fence that op
  // implies, whose resume point may be above ours (seed 300887): it may hold, below that op, an op
  // of our lost history it applied before the new op came, and count it.
  bool KnowsOurFence(const std::vector<Fence>& fences) const {
    if (epoch_ == 0) return true;  // never recovered (a test's new replica): no fence to know
    return std::any_of(fences.begin(), fences.end(), [&](const Fence& f) {
      return f.origin == opt_.self &&
             (f.epoch > epoch_ || (f.epoch == epoch_ && f.resumed_from <= resumed_from_));
    });
  }

  // The fences of its own a peer sent us itself (in its Hello or heartbeat) hold its real resume
  // points: a region's own book never holds a fence of its current epoch that an op implied.
  void NoteOwnFences(RegionId from, const std::vector<Fence>& fences) {
    for (const Fence& f : fences)
      if (f.origin == from) own_fence_epoch_[from] = std::max(own_fence_epoch_[from], f.epoch);
  }

  // Our Ack to `to`, claiming `applied`. Its fence_epoch is the newest epoch of `to` whose fence
  // `to` itself told us, not the newest our book knows: that may be the fence an op of `to`
  // implied (its epoch, a resume point at or above the real one), and the ops of `to` we hold
  // below that op may be of its lost history — `to` would count them as its new ones (seed
  // 300887). Once we have its real fence we have removed those ops (or claim below them).
  Ack AckFor(RegionId to, const VersionVector& applied) const {
    return Ack{applied, own_fence_epoch_[to]};
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
    epoch_ = std::max(clock_.Now(Wall()).value, floor + 1) + opt_.epoch_nonce % ReplicaOptions::kEpochNonceLimit;
    clock_.Update(Hlc{epoch_}, Wall());
  }

  // Where this incarnation resumes issuing its own ops (its fence), once it does.
  void Resume() {
    resumed_from_ = applied_.get(opt_.self);
    fences_.Add(Fence{opt_.self, epoch_, resumed_from_});
    fences_unsaved_ = true;
    // What peers told us they hold of our ops while we rejoined may count ops of a lost history
    // above where we resume; none of them holds an op we issue from here yet.
    for (Peer& p : peers_) {
      if (p.holds.get(opt_.self) > resumed_from_) p.holds.set(opt_.self, resumed_from_);
      if (p.acked.get(opt_.self) > resumed_from_) p.acked.set(opt_.self, resumed_from_);
      p.holds_ours = std::min(p.holds_ours, resumed_from_);
    }
  }

  // Learns the fences a peer sent. A new one may show that ops we hold are of a lost history
  // (applied before we heard of the fence, or read back from a restored store): they go. Ops we
  // held back for lack of a fence may be decided now. While we rejoin, the answers so far may
  // have counted such ops: we ask again.
  void LearnFences(const std::vector<Fence>& fences, std::uint64_t now, Effects* out) {
    std::vector<bool> changed(n_, false);
    bool any = false;
    for (const Fence& f : fences) {
      if (f.origin < n_ && fences_.Add(f)) changed[f.origin] = any = true;
    }
    if (any) AfterNewFences(changed, now, out);
  }

  // What follows learning new fences of the origins `changed` marks.
  void AfterNewFences(const std::vector<bool>& changed, std::uint64_t now, Effects* out) {
    fences_unsaved_ = true;
    if (changed[opt_.self] && rejoining_ && fences_.NewestEpoch(opt_.self) >= epoch_) {
      // A start of ours that our store does not remember resumed already (the store is older
      // than it, and the peer that answered us restarted since and forgot that epoch): as with an
      // answer that knows it, move past it.
      MoveEpochPast(fences_.NewestEpoch(opt_.self));
      out->notices.push_back(Notice{Notice::Kind::kRejoin, opt_.self, 0,
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
    const Seq floor = log_floor_.get(o);
    Seq first = 0;
    for (const Op& op : log_[o]) {
      if (fences_.IsDead(op)) {
        first = op.dot.seq;
        break;
      }
    }
    if (first == 0) return;
    const Seq removed = applied_.get(o) - first + 1;
    const std::string what = std::to_string(removed) + " ops of region " + opt_.regions[o] + " from seq " +
                             std::to_string(first) + " on, of a history it lost (" +
                             (o == opt_.self ? "our store was restored from an older copy" : "it restarted without them") + ")";
    Status s;
    for (Seq q = first; q <= applied_.get(o) && s.ok(); ++q) {
      if (log_[o][q - floor - 1].hlc < frontier_)
        s = Status::FailedPrecondition("op " + Dot{o, q}.ToString() + " is folded into our checkpoints already");
    }
    RecoveredState st;
    st.frontier = frontier_;
    st.log_floor = log_floor_;
    st.checkpoints = FinalCheckpoints();
    for (Op& op : RetainedLog()) {
      if (op.dot.origin != o || op.dot.seq < first) st.ops.push_back(std::move(op));
    }
    for (KeyRecord& k : KeyRecords(/*with_displaced=*/true)) {
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
        any_answer_ = any_live_answer_ = true;
        first_answer_ms_ = 0;
        needed_ = VersionVector{};
        RefuseWaiting(out);
      }
      out->notices.push_back(Notice{Notice::Kind::kLostHistory, o, static_cast<std::int64_t>(removed),
                                    "we hold " + what + " and cannot remove them: " + s.message() +
                                        "; refusing writes until a peer's snapshot replaces our state"});
    } else {
      Adopt(fresh, held_max, now, out);
      stats_.lost_history_ops += removed;
      out->notices.push_back(Notice{Notice::Kind::kLostHistory, o, static_cast<std::int64_t>(removed), "removed " + what});
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
    if (h.peer_epoch > epoch_) {
      RejoinPastLaterStart(h.peer_epoch, from, "region " + opt_.regions[from] + " knows", out);
      return;
    }
    if (h.peer_epoch != epoch_) return;  // an answer to an earlier incarnation, or none yet
    if (!h.rejoining && !any_live_answer_) {
      any_live_answer_ = true;
      first_answer_ms_ = now;
    }
    CountAnswer(from, h.clock, h.applied, now, out);
  }

  // Wiped, or restored from a copy older than a later start of ours that region `from` knows of
  // (`seen`): move past that epoch and ask every peer again (earlier answers were about an epoch
  // that is not the newest).
  void RejoinPastLaterStart(std::uint64_t seen, RegionId from, const std::string& who, Effects* out) {
    MoveEpochPast(seen);
    out->notices.push_back(Notice{Notice::Kind::kRejoin, from, 0,
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
    any_answer_ = true;
    answered_[q] = true;
    if (applied.get(opt_.self) > applied_.get(opt_.self)) {
      out->notices.push_back(Notice{
          Notice::Kind::kRejoin, q, static_cast<std::int64_t>(applied.get(opt_.self)),
          "region " + opt_.regions[q] + " holds our ops up to seq " +
              std::to_string(applied.get(opt_.self)) + ", our store only up to " +
              std::to_string(applied_.get(opt_.self)) + ": recovering them before serving writes"});
    }
    needed_.JoinWith(applied);
    MaybeFinishRejoin(now, out);
  }

  // Done once some peer answered this epoch, we hold every op any answer said it held — our own
  // and everyone else's: a store that lost ops must not serve (or reopen an account it lost)
  // before it has them back — and every other peer answered too or had peer_timeout_ms to do so.
  // Ops a peer has pruned cannot come back without snapshot transfer: then we keep refusing.
  void MaybeFinishRejoin(std::uint64_t now, Effects* out) {
    if (!rejoining_ || !any_answer_ || !Held().Dominates(needed_)) return;
    const std::size_t answers = AnsweredPeers();
    // A peer that is rejoining itself may have lost its store too: two wiped regions would
    // confirm each other's empty disks while the one region holding the data is cut off. Its
    // answer counts only when every peer has answered (a whole cluster restarted at once); the
    // timeout runs from the first answer of a peer that is not rejoining.
    if (answers + 1 < n_ &&
        (!any_live_answer_ || opt_.rejoin_wait_ms == 0 || now < first_answer_ms_ + opt_.rejoin_wait_ms ||
         !HearsAnAnsweredPeer(now)))
      return;
    if (needs_snapshot_) return;
    rejoining_ = false;
    // Where this incarnation resumes: any op of an earlier one above this seq is of a lost history.
    Resume();
    out->notices.push_back(Notice{Notice::Kind::kRejoin, opt_.self,
                                  static_cast<std::int64_t>(applied_.get(opt_.self)),
                                  "rejoined: " + std::to_string(answers) + " of " +
                                      std::to_string(n_ - 1) + " peers confirmed our own ops up to seq " +
                                      std::to_string(applied_.get(opt_.self)) + "; serving writes"});
  }

  // Drops the answers gathered so far — they describe an older epoch of ours, or may count ops of
  // a lost history — and asks every peer again, now.
  void AskEveryPeerAgain(Effects* out) {
    answered_.assign(n_, false);
    any_answer_ = false;
    any_live_answer_ = false;
    needed_ = VersionVector{};
    AskUnanswered(out);
  }

  // Sends our Hello (asking for an answer) to every peer that has not answered this epoch — and,
  // while only rejoining peers have answered, to those too: one of them may have finished its own
  // rejoin since, and its answer now would count (MaybeFinishRejoin).
  void AskUnanswered(Effects* out) {
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self && (!answered_[p] || !any_live_answer_)) SendHello(p, out);
    }
  }

  // While we rejoin, some region holds our own ops up to `seq` (a peer's heartbeat says so, for
  // itself or relayed for another): those seqs exist, and we must not issue them again. We wait
  // for them as for the answers' (MaybeFinishRejoin), instead of resuming once the others
  // answered and rejoin_wait_ms passed.
  void OwnOpsExistUpTo(Seq seq) {
    if (rejoining_ && seq > needed_.get(opt_.self)) needed_.set(opt_.self, seq);
  }

  // Whether a peer that answered this rejoin is still heard from. Without one, a region that
  // stops waiting for the silent peers would resume on answers that may have gone stale: a peer
  // may have taken our newest ops since (from a region we cannot hear), and tells us in its
  // heartbeats only while we hear it.
  bool HearsAnAnsweredPeer(std::uint64_t now) const {
    for (RegionId p = 0; p < n_; ++p) {
      if (p != opt_.self && answered_[p] && Reachable(p, now)) return true;
    }
    return false;
  }

  // What we hold without a gap, per origin: applied, or held back for a fence. A rejoin waits for
  // the ops the answers name to be here, not applied: an op of a peer's earlier run waits for
  // that peer's fence, which comes only once the peer has rejoined — two regions rejoining at
  // once would otherwise each wait for the other's old ops for ever.
  VersionVector Held() const {
    VersionVector v = applied_;
    for (RegionId o = 0; o < n_; ++o) {
      Seq s = v.get(o);
      for (auto it = awaiting_fence_[o].upper_bound(s); it != awaiting_fence_[o].end() && it->first == s + 1; ++it) ++s;
      v.set(o, s);
    }
    return v;
  }

  std::size_t AnsweredPeers() const {
    return static_cast<std::size_t>(std::count(answered_.begin(), answered_.end(), true));
  }

  std::string RejoinReason() const {
    std::string why = "this region restarted and is rejoining: it serves writes once a peer has "
                      "confirmed which of its own ops exist (" + std::to_string(AnsweredPeers()) + " of " +
                      std::to_string(n_ - 1) + " peers answered";
    if (needed_.get(opt_.self) > applied_.get(opt_.self))
      why += "; recovering own ops " + std::to_string(applied_.get(opt_.self)) + " of " +
             std::to_string(needed_.get(opt_.self));
    std::uint64_t missing = 0;
    const VersionVector held = Held();
    for (RegionId o = 0; o < n_; ++o) {
      if (needed_.get(o) > held.get(o)) missing += needed_.get(o) - held.get(o);
    }
    if (missing > 0) why += "; " + std::to_string(missing) + " ops still to receive";
    if (needs_snapshot_) why += "; waiting for a peer's snapshot";
    return why + ")";
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
    LeaseClock(std::max(Hlc{epoch_}, clock_.last()), out);
    out->send.push_back(Outbound{to, HelloFor(to, applied_)});
  }

  void SendHeartbeats(std::uint64_t now, Effects* out) {
    const Hlc h = clock_.Now(Wall());
    LeaseClock(h, out);
    Heartbeat hb;
    hb.applied = Claims(applied_);
    hb.fences = fences_.All();
    hb.epochs = KnownEpochs();
    hb.clock = h.value;
    // No promise about our own ops while rejoining: seqs we lost may exist with older timestamps.
    if (!rejoining_) hb.entries.push_back(HeartbeatEntry{opt_.self, h, applied_.get(opt_.self), epoch_});
    for (RegionId o = 0; o < n_; ++o) {
      if (o != opt_.self && !hb_[o].best_hlc.is_zero())
        hb.entries.push_back(HeartbeatEntry{o, hb_[o].best_hlc, hb_[o].best_seq, hb_[o].epoch});
    }
    for (RegionId r = 0; r < n_; ++r) {
      // Also what we only know through relays: a region two hops from a restarted one answers its
      // rejoin through us (NoteRelayedAnswer).
      if (r != opt_.self && (peers_[r].heard || !peers_[r].holds_epochs.empty()))
        hb.holds.push_back(HoldsEntry{r, peers_[r].holds_epoch, peers_[r].holds, peers_[r].holds_epochs,
                                      peers_[r].holds_clock});
    }
    hb.wall_ms = Wall();
    hb.mono_ms = now;
    for (RegionId p = 0; p < n_; ++p) {
      if (p == opt_.self) continue;
      const Peer& peer = peers_[p];
      hb.echo_mono_ms = peer.hb_mono_ms;
      hb.echo_hold_ms = peer.hb_mono_ms != 0 ? now - peer.hb_heard_ms : 0;
      out->send.push_back(Outbound{p, hb});
      ++stats_.messages_sent;
    }
  }

  // The peer's physical clock offset, from the wall time its heartbeat carries plus half the
  // round trip (NTP-style: our monotonic reading echoed back, less the time the peer held it).
  // Not the HLC difference: an HLC follows the fastest clock it has heard from.
  void MeasureClock(RegionId from, const Heartbeat& hb, std::uint64_t now, Effects* out) {
    Peer& p = peers_[from];
    if (hb.mono_ms != 0) {
      p.hb_mono_ms = hb.mono_ms;
      p.hb_heard_ms = now;
    }
    if (hb.echo_mono_ms != 0 && hb.echo_mono_ms <= now && now - hb.echo_mono_ms >= hb.echo_hold_ms)
      p.rtt_ms = static_cast<std::int64_t>(now - hb.echo_mono_ms - hb.echo_hold_ms);
    if (hb.wall_ms == 0) return;
    const std::int64_t offset = static_cast<std::int64_t>(hb.wall_ms) + std::max<std::int64_t>(p.rtt_ms, 0) / 2 -
                                static_cast<std::int64_t>(Wall());
    p.clock_offset_ms = offset;
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
    NoteOwnFences(from, hb.fences);
    MeasureClock(from, hb, now, out);
    LearnEpochs(from, hb.epochs, out);
    Acked(from, hb.applied, now, /*prunable=*/true, KnowsOurFence(hb.fences));
    peers_[from].holds_epochs = hb.epochs;
    peers_[from].holds_clock = hb.clock;
    // A peer that took more of our ops since it answered tells us so here.
    OwnOpsExistUpTo(hb.applied.get(opt_.self));
    for (const HoldsEntry& e : hb.holds) {
      RelayedHolds(e);
      // A region we cannot hear may hold our newest ops: a peer relays what it holds.
      if (e.region != opt_.self) OwnOpsExistUpTo(e.applied.get(opt_.self));
      if (rejoining_ && e.region < n_ && e.region != opt_.self) NoteRelayedAnswer(e.region, e, now, out);
    }
    for (const HeartbeatEntry& e : hb.entries) {
      if (e.origin >= n_) continue;
      // A promise of an incarnation the origin has left (in flight, or relayed, from before it
      // restarted) binds nothing: its new run rejoined on our clock as it was and may issue below.
      if (e.origin != opt_.self &&
          (e.epoch < peer_epoch_[e.origin] || e.epoch < fences_.NewestEpoch(e.origin)))
        continue;
      if (e.origin != from) {
        // A relayed promise: merged like any timestamp we receive, so that whoever answers a
        // rejoining region has merged every promise it relays (ours from an earlier run too).
        clock_.Update(e.hlc, Wall());
        if (e.origin == opt_.self) continue;
      } else {
        peers_[from].rejoining = false;  // it promises about its own ops only once rejoined
        clock_.Update(e.hlc, Wall());
      }
      HeartbeatState& s = hb_[e.origin];
      if (e.epoch < s.epoch) continue;
      if (e.epoch > s.epoch) {  // a new incarnation: its promises start over (confirmed stays)
        s.epoch = e.epoch;
        s.best_hlc = Hlc{};
        s.best_seq = 0;
        s.pending.clear();
      }
      if (e.hlc <= s.best_hlc) continue;
      s.best_hlc = e.hlc;
      s.best_seq = e.seq;
      if (s.pending.size() == kMaxPendingHeartbeats) s.pending.pop_front();
      s.pending.push_back(e);
      TryConfirm(e.origin);
    }
  }

  // What a third region holds, as a peer relays it: so that under a partial partition we neither
  // report it ops behind that it got through a relay nor stop pruning them. Within one incarnation
  // of that region what it holds only grows, so claims of its newest known epoch are joined; a
  // claim of an older epoch (from before it restarted, perhaps with less) counts for nothing.
  void RelayedHolds(const HoldsEntry& e) {
    if (e.region >= n_ || e.region == opt_.self) return;
    Peer& q = peers_[e.region];
    if (e.epoch < q.holds_epoch || e.epoch < peer_epoch_[e.region]) return;
    if (e.epoch > q.holds_epoch) {
      q.holds = e.applied;
      q.holds_epoch = e.epoch;
      q.holds_epochs = e.epochs;
      q.holds_clock = e.clock;
    } else {
      q.holds.JoinWith(e.applied);
      if (q.holds_epochs.size() < e.epochs.size()) q.holds_epochs.resize(e.epochs.size(), 0);
      for (std::size_t r = 0; r < e.epochs.size(); ++r) q.holds_epochs[r] = std::max(q.holds_epochs[r], e.epochs[r]);
      q.holds_clock = std::max(q.holds_clock, e.clock);
    }
  }

  // The newest epoch we know of every region, ours being the current one: what heartbeats carry.
  std::vector<std::uint64_t> KnownEpochs() const {
    std::vector<std::uint64_t> v(n_);
    for (RegionId r = 0; r < n_; ++r) v[r] = r == opt_.self ? epoch_ : std::max(NewestEpochOf(r), relayed_epoch_[r]);
    return v;
  }

  // Newest epochs a peer knows, relayed. A region that restarted is known by its new epoch also
  // where it cannot be heard, and the epochs go out with what each region holds: that answers its
  // rejoin through relays (NoteRelayedAnswer). Kept apart from the epochs we heard from the
  // regions themselves (Hello, fences), which decide what we believe of their ops. A later start
  // of ours than this one means our store is older than our last run, as in a Hello.
  void LearnEpochs(RegionId from, const std::vector<std::uint64_t>& epochs, Effects* out) {
    for (RegionId o = 0; o < n_ && o < epochs.size(); ++o) {
      if (o != opt_.self) {
        relayed_epoch_[o] = std::max(relayed_epoch_[o], epochs[o]);
      } else if (rejoining_ && epochs[o] > epoch_) {
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
    if (q >= n_ || q == opt_.self || e.epochs.size() <= opt_.self || e.epochs[opt_.self] != epoch_) return;
    if (Reachable(q, now)) return;  // a peer we hear answers with its Hello, as it knows us best
    CountAnswer(q, e.clock, e.applied, now, out);
  }

  void TryConfirm(RegionId o) {
    HeartbeatState& s = hb_[o];
    // A promise that waited here for its ops binds nothing once its origin has moved to a later
    // incarnation (as on receipt, OnHeartbeat): that one may have lost the ops the promise counts
    // and issued other ops under their seqs, and an op of the lost history still in flight would
    // confirm it (seed 302977). Promises of the new incarnation come with its fence.
    if (s.epoch < NewestEpochOf(o)) s.pending.clear();
    while (!s.pending.empty() && s.pending.front().seq <= applied_.get(o)) {
      s.confirmed = std::max(s.confirmed, s.pending.front().hlc);
      s.pending.pop_front();
    }
  }

  // The latest incarnation of region o we know of: from its Hello, or from a fence (its own,
  // relayed, or implied by one of its ops).
  std::uint64_t NewestEpochOf(RegionId o) const { return std::max(peer_epoch_[o], fences_.NewestEpoch(o)); }

  Hlc StableFrontier() const {
    Hlc f = clock_.last();  // we never issue a timestamp at or below our clock
    for (RegionId o = 0; o < n_; ++o) {
      if (o != opt_.self) f = std::min(f, hb_[o].confirmed);
    }
    return f;
  }

  // Replays journal[begin, end) onto `s`; collects fork reports if `forks` is given.
  void ReplayRange(Account& a, ReplayState* s, std::size_t begin, std::size_t end, bool final,
                   std::vector<ForkReport>* forks) {
    std::vector<DerivedEvent> events;
    std::size_t spree_begin = begin;  // first debit since the last credit: the spends that overdrew
    for (std::size_t i = begin; i < end; ++i) {
      const JournalEntry& e = a.journal[i];
      if (e.kind == OpKind::kCredit && !e.voided) spree_begin = i + 1;
      events.clear();
      ReplayStep(a.config.fee, e.replay(), s, forks ? &events : nullptr);
      for (DerivedEvent& ev : events) {
        ForkReport f{ev, final, {}};
        if (ev.kind == DerivedKind::kOverdraftFee) {
          for (std::size_t j = spree_begin; j <= i; ++j) {
            if (a.journal[j].kind == OpKind::kDebit && !a.journal[j].voided) AddOp(a.journal[j].key, &f.ops);
          }
        } else {
          AddOp(e.key, &f.ops);
          CanonicalKey by;
          if (const Op* v = LookupOp(e.key);
              v && !v->key.empty() && keys_.Predecessor(MakeKeyId(IndexOf(a), v->key), e.key, &by))
            AddOp(by, &f.ops);
        }
        forks->push_back(std::move(f));
      }
    }
  }

  const Op* LookupOp(const CanonicalKey& k) const {
    const auto& log = log_[k.origin];
    const Seq floor = log_floor_.get(k.origin);
    if (k.seq <= floor || k.seq > floor + log.size()) return nullptr;
    return &log[k.seq - floor - 1];
  }

  void AddOp(const CanonicalKey& k, std::vector<Op>* ops) const {
    if (const Op* op = LookupOp(k)) ops->push_back(*op);
  }

  // Credits turned final may let waiting debits go: retry every account that has some.
  void RetryAllPending(std::uint64_t now, Effects* out) {
    const std::vector<std::uint32_t> waiting(pending_accounts_.begin(), pending_accounts_.end());
    for (std::uint32_t idx : waiting) RetryPending(accounts_[idx], now, out);
  }

  // Folds every journal below the stable frontier into its checkpoint, in memory. Cheap, so it
  // runs on every heartbeat; persisting is SaveCheckpoints' job. True when the frontier moved.
  bool FoldToFrontier() {
    const Hlc f = StableFrontier();
    if (f <= frontier_) return false;
    frontier_ = f;
    for (std::uint32_t idx : journaled_.sorted()) {
      Account& a = accounts_[idx];
      std::size_t k = 0;
      if (opt_.bugs.order_forks_by_arrival) {
        // Arrival order is not sorted: fold the leading run below the frontier.
        while (k < a.journal.size() && a.journal[k].key.hlc < f) ++k;
      } else {
        k = static_cast<std::size_t>(
            std::lower_bound(a.journal.begin(), a.journal.end(), CanonicalKey{f, 0, 0},
                             [](const JournalEntry& e, const CanonicalKey& key) { return e.key < key; }) -
            a.journal.begin());
      }
      if (k > 0) {
        std::vector<ForkReport> forks;
        ReplayRange(a, &a.checkpoint, 0, k, /*final=*/true, &forks);
        for (std::size_t i = 0; i < k; ++i) {
          const JournalEntry& e = a.journal[i];
          const RegionId o = e.key.origin;
          UntrackTentative(a, e);  // final: its void status can no longer change
          switch (e.kind) {
            case OpKind::kCredit: a.final_counters.Credit(o, e.amount, nullptr); break;
            case OpKind::kDebit: a.final_counters.Debit(o, e.amount, nullptr); break;
            case OpKind::kTransfer: a.final_counters.Transfer(o, e.to, e.amount, nullptr); break;
            case OpKind::kOpen: break;
          }
        }
        for (ForkReport& fr : forks) {
          a.final_forks.push_back(std::move(fr));
          if (a.final_forks.size() > opt_.max_events_per_account) a.final_forks.pop_front();
        }
        a.journal.erase(a.journal.begin(), a.journal.begin() + static_cast<std::ptrdiff_t>(k));
        if (a.tip_pos >= k) {
          a.tip_pos -= k;
        } else {
          a.tip = a.checkpoint;
          a.tip_pos = 0;
        }
        unsaved_.insert(idx);
      }
    }
    journaled_.retain([this](std::uint32_t idx) { return !accounts_[idx].journal.empty(); });
    return true;
  }

  // Emits the checkpoints folded since the last save, with the frontier they are valid at, and
  // prunes the log below it. Ops are deleted from storage only below a persisted checkpoint, so
  // a restart finds every op the checkpoints do not cover.
  void SaveCheckpoints(Effects* out) {
    Fold fold;
    fold.frontier = frontier_;
    for (std::uint32_t idx : unsaved_.sorted()) fold.checkpoints.push_back(CheckpointOf(accounts_[idx]));
    unsaved_.clear();
    saved_frontier_ = frontier_;
    PruneLogs();
    SweepKeys(out);
    fold.log_floor = log_floor_;
    out->fold = std::move(fold);
  }

  // Drops log ops that are final and that every peer has acked. Nothing else may go: a lagging
  // peer must still be able to get every op from someone.
  void PruneLogs() {
    for (RegionId o = 0; o < n_; ++o) {
      Seq upto = applied_.get(o);
      for (RegionId p = 0; p < n_; ++p) {
        if (p != opt_.self && p != o) upto = std::min(upto, peers_[p].holds.get(o));
      }
      auto& log = log_[o];
      Seq floor = log_floor_.get(o);
      while (!log.empty() && floor < upto && log.front().hlc < saved_frontier_) {
        log.pop_front();
        ++floor;
      }
      log_floor_.set(o, floor);
    }
  }

  // ---- rebalancing ----------------------------------------------------------------------------

  // Moves our surplus rights toward regions whose rights are negative (covering overdraft use) and
  // toward regions that spend, in proportion to their debits since the last round. Only ever gives
  // from this region: the donor is the only one that can originate a transfer.
  //
  // Rights in flight when a link dies are stranded until the heal — money nobody can spend — so
  // rights go only to live peers (Live: link up, acks flowing), a step toward a spender is at most
  // kRebalanceDemandRounds of its last round's debits, and the account's rights in flight stay
  // within 1/kRebalanceInFlightDivisor of its balance plus lines: whatever the moment of a cut,
  // the regions alone can still spend the rest.
  void Rebalance(std::uint64_t now, Effects* out) {
    std::size_t made = 0;
    IndexSet visiting;  // giving applies ops: what they touch lands in the emptied touched_
    visiting.swap(touched_);
    IndexSet again;  // accounts with a need we could not serve this round
    for (std::uint32_t idx : visiting.sorted()) {
      if (made >= kMaxRebalanceTransfersPerTick) {
        again.insert(idx);
        continue;
      }
      Account& a = accounts_[idx];
      if (!a.open) continue;
      if (!RebalanceAccount(a, now, out, &made)) again.insert(idx);
    }
    touched_.swap(again);
  }

  // One account's round; false when a need is left for the next round. demand_mark[r] is how many
  // of r's debits were served: a step of g serves g / kRebalanceDemandRounds of them, so demand a
  // step could not cover (budget, peer not live) counts again next round, and served demand never
  // moves rights twice.
  bool RebalanceAccount(Account& a, std::uint64_t now, Effects* out, std::size_t* made) {
    std::vector<Amount> demand(n_, 0);
    Amount total_demand = 0;
    for (RegionId r = 0; r < n_; ++r) {
      demand[r] = a.counters.debits(r) - a.demand_mark[r];
      total_demand += demand[r];
    }
    std::vector<Amount> rights(n_);
    Amount total = 0;
    for (RegionId r = 0; r < n_; ++r) {
      rights[r] = EffectiveRights(a, r);
      total += rights[r];
    }
    // Target share of each region: three quarters of the balance in proportion to recent demand,
    // one quarter spread evenly, so a region that was quiet for a round keeps some rights to
    // answer its next debit at once.
    auto target = [&](RegionId r) -> Amount {
      const __int128 by_demand = static_cast<__int128>(total) * 3 * demand[r] / (4 * total_demand);
      return static_cast<Amount>(by_demand) + total / (4 * static_cast<Amount>(n_));
    };
    Amount spare = rights[opt_.self] - TentativeCredit(a);  // tentative credit is not given away
    const bool donor = spare > 0;
    if (total_demand > 0 && total > 0) spare -= target(opt_.self);
    const Amount budget = std::max<Amount>(
        1, (std::max<Amount>(total, 0) + a.config.overdraft_limit) / kRebalanceInFlightDivisor);
    Amount may_send = budget - RightsInFlightOn(a);
    // Regions spending on their line first: their floor is at stake, a spender's is not.
    std::vector<RegionId> order;
    for (RegionId r = 0; r < n_; ++r)
      if (r != opt_.self) order.push_back(r);
    std::stable_partition(order.begin(), order.end(), [&](RegionId r) { return rights[r] < 0; });
    bool done = true;
    for (RegionId r : order) {
      Amount want = rights[r] < 0 ? -rights[r] : 0;
      if (total_demand > 0 && total > 0 && demand[r] > 0)
        want = std::max(want, std::min(target(r) - rights[r], kRebalanceDemandRounds * demand[r]));
      // Small moves cost an op each and buy nothing.
      if (want <= 0 || (rights[r] >= 0 && want < std::max<Amount>(1, total / 100))) {
        a.demand_mark[r] = a.counters.debits(r);
        continue;
      }
      if (spare <= 0) {  // not ours to serve (we are no donor), or not now
        if (!donor) a.demand_mark[r] = a.counters.debits(r);
        continue;
      }
      if (!Live(r, now) || may_send <= 0) {
        // Rights sent now could be stranded, or enough are in flight: next round.
        done = false;
        continue;
      }
      const Amount give = std::min({want, spare, may_send});
      if (!GiveRights(a, r, give, now, out)) continue;
      spare -= give;
      may_send -= give;
      ++*made;
      ++stats_.rebalance_transfers;
      const Amount served = (give + kRebalanceDemandRounds - 1) / kRebalanceDemandRounds;
      a.demand_mark[r] = std::min(a.counters.debits(r), a.demand_mark[r] + served);
      if (give < want) done = false;
    }
    return done;
  }

  ReplicaOptions opt_;
  const WallClock* wall_;  // not owned: outlives the replica
  RegionId n_;
  HybridClock clock_;
  Hlc persisted_hw_;
  Hlc frontier_;
  VersionVector applied_;
  VersionVector log_floor_;
  std::vector<std::deque<Op>> log_;                  // per origin: seqs log_floor+1 .. applied
  std::vector<std::map<Seq, Op>> buffered_;          // per origin: ops beyond a gap
  std::vector<std::map<Seq, Op>> awaiting_fence_;    // per origin: ops of a run it has left
  std::vector<Account> accounts_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> index_;  // lookups only; never iterated for output
  KeyIndex keys_{opt_.idempotency_retention_ms};     // (account, key) -> binding, last use
  KeyId last_key_;                                   // the key the last Apply used
  // Our own ops voided because another region's canonically earlier op took their key (rare:
  // forks only), so a retry of our original request gets our original answer.
  std::map<std::pair<std::uint32_t, KeyHash>, KeyUse> displaced_;
  IndexSet unsaved_;                                 // accounts folded since the last save
  Hlc saved_frontier_;                               // the frontier of the persisted checkpoints
  IndexSet journaled_;                               // accounts with ops above the frontier
  IndexSet touched_;                                 // accounts debited since the last rebalance
  std::set<std::uint32_t> pending_accounts_;         // accounts with debits waiting for rights
  // (account, recipient) -> our rights transfers it has not acknowledged. Ordered: summed per
  // account by range.
  std::map<std::pair<std::uint32_t, RegionId>, RightsInFlight> rights_in_flight_;
  std::vector<HeartbeatState> hb_;
  std::vector<Peer> peers_;
  std::uint64_t epoch_ = 0;              // our incarnation (0: never recovered, a test's new replica)
  bool rejoining_ = false;               // restarted; no op originated until our own log is whole
  std::vector<std::uint64_t> peer_epoch_;  // per region: the newest epoch it told us
  std::vector<std::uint64_t> relayed_epoch_;  // per region: the newest epoch peers relayed (LearnEpochs)
  // Per region: the newest epoch of its own fences it sent us itself (its Hello or heartbeat):
  // what our Acks to it say we knew (AckFor).
  std::vector<std::uint64_t> own_fence_epoch_;
  FenceBook fences_;                     // where each region's incarnations resumed
  bool needs_snapshot_ = false;          // we hold folded ops of a lost history: only a snapshot helps
  // Per origin, the first op of a lost history we hold and cannot remove (0: none); what we claim
  // to hold stops below it (Claims) until a snapshot replaces our state.
  std::vector<Seq> lost_from_;
  Seq resumed_from_ = 0;                 // our fence: this incarnation issues own ops after this seq
  bool fences_unsaved_ = false;          // fences_ changed since the host last persisted them
  std::vector<bool> answered_;           // per region: it answered this epoch of ours
  bool any_answer_ = false;
  bool any_live_answer_ = false;         // an answer from a peer that is not rejoining itself
  std::uint64_t first_answer_ms_ = 0;    // of the first such answer
  VersionVector needed_;                 // what the answers to this epoch said they held
  // Durability "replicated": commands that asked for it, and answers held until a peer has the op.
  struct AwaitingReplication {
    std::uint64_t deadline_ms = 0;
    CommandResult result;
  };
  std::set<std::uint64_t> want_replicated_;
  std::multimap<Dot, AwaitingReplication> awaiting_;  // by op: origin, then seq
  std::uint64_t next_heartbeat_ms_ = 0;
  std::uint64_t next_rebalance_ms_ = 0;
  std::uint64_t next_checkpoint_ms_ = 0;
  mutable ReplicaStats stats_;  // the idempotency figures are filled in when read
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
Status Replica::GetAccount(std::string_view id, AccountView* out) { return impl_->GetAccount(id, out); }
std::vector<std::string> Replica::AccountIds() const { return impl_->AccountIds(); }
bool Replica::HasAccount(std::string_view id) const { return impl_->HasAccount(id); }
Status Replica::Forks(std::string_view id, std::vector<ForkReport>* out) { return impl_->Forks(id, out); }
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
