#include "codec/codec.h"

#include <google/protobuf/arena.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/validate.h"
#include "tally/v1/tally.pb.h"

namespace tally::codec {
namespace {

namespace pb = ::tally::v1;
using google::protobuf::Arena;

// ---------------------------------------------------------------------------------------------
// Validation of core values, with the core's rules (core/validate.h) and those of the shapes only
// the codec sees (counters, events, checkpoints, fences). One set of rules for both directions:
// EncodeMessage refuses what DecodeMessage would refuse, so a region never sends what its peers
// must drop. Each returns InvalidArgument naming the problem; the decoders re-label it Corruption.

Status CheckKeyRecord(const KeyRecord& k) {
  if (k.key == KeyHash{}) return Status::InvalidArgument("key record without a key hash");
  for (const KeyUse& u : k.uses) {
    Status s = ValidateOpFields(u.dot, u.kind, k.account, u.amount, u.to);
    if (!s.ok()) return s;
  }
  return ValidateOpFields(k.dot, k.kind, k.account, k.amount, k.to);
}

Status CheckCounters(const Counters& c) {
  const RegionId n = c.regions();
  if (n > kMaxRegions) return Status::InvalidArgument("counters for more than kMaxRegions regions");
  for (RegionId r = 0; r < n; ++r) {
    Status s = ValidateWithin(c.credits(r), kMaxCounter, "credit counter");
    if (!s.ok()) return s;
    s = ValidateWithin(c.debits(r), kMaxCounter, "debit counter");
    if (!s.ok()) return s;
    Amount row = 0;
    for (RegionId to = 0; to < n; ++to) {
      const Amount t = c.transferred(r, to);
      s = ValidateWithin(t, kMaxCounter, "transfer counter");
      if (!s.ok()) return s;
      if (r == to && t != 0)
        return Status::InvalidArgument("a region transferred rights to itself");
      row += t;
    }
    s = ValidateWithin(row, kMaxCounter, "rights given by one region");
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status CheckEvent(const DerivedEvent& e) {
  if (e.kind != DerivedKind::kOverdraftFee && e.kind != DerivedKind::kVoid)
    return Status::InvalidArgument("unknown derived event kind");
  Status s = ValidateRegion(e.op.origin, "derived event origin");
  if (!s.ok()) return s;
  if (!IsKnownOpKind(e.op_kind)) return Status::InvalidArgument("unknown op kind in derived event");
  return ValidateWithin(e.op_amount, kMaxOpAmount, "derived event op amount");
}

Status CheckCheckpoint(const AccountCheckpoint& c) {
  Status s = ValidateAccountConfig(c.config);
  if (!s.ok()) return s;
  s = ValidateRegion(c.opened.origin, "open op origin");
  if (!s.ok()) return s;
  s = CheckCounters(c.counters);
  if (!s.ok()) return s;
  if (c.state.fees.size() > kMaxRegions || c.state.voids.size() != c.state.fees.size())
    return Status::InvalidArgument("replay state fees and voids must have one entry per region");
  for (const DerivedEvent& e : c.events) {
    s = CheckEvent(e);
    if (!s.ok()) return s;
  }
  for (const HoldRecord& h : c.holds) {
    s = ValidateRegion(h.hold.origin, "hold origin");
    if (s.ok() && h.hold.seq == 0) s = Status::InvalidArgument("hold seq 0");
    if (s.ok()) s = ValidateAmount(h.amount);
    if (s.ok() && h.captured > h.amount)
      s = Status::InvalidArgument("hold captured above its amount");
    if (s.ok() && h.winner.seq != 0 && !IsHoldResolution(h.resolution))
      s = Status::InvalidArgument("hold resolved by an op that is no resolution");
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status CheckOps(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    Status s = ValidateOp(op);
    if (!s.ok()) return Status::InvalidArgument("op " + op.dot.ToString() + ": " + s.message());
  }
  return Status::OK();
}

Status CheckKeyRecords(const std::vector<KeyRecord>& keys) {
  for (const KeyRecord& k : keys) {
    Status s = CheckKeyRecord(k);
    if (!s.ok()) return Status::InvalidArgument("key record: " + s.message());
  }
  return Status::OK();
}

Status CheckFences(const std::vector<Fence>& fences) {
  if (fences.size() > kMaxRegions * kMaxFencesPerRegion)
    return Status::InvalidArgument("more fences than regions allow");
  for (const Fence& f : fences) {
    Status s = ValidateRegion(f.origin, "fence origin");
    if (!s.ok()) return s;
    if (f.epoch == 0) return Status::InvalidArgument("fence with epoch 0");
  }
  return Status::OK();
}

struct MessageChecker {
  Status operator()(const Hello& h) const {
    Status s = ValidateClusterId(h.cluster_id);
    if (!s.ok()) return s;
    s = CheckFences(h.fences);
    if (!s.ok()) return s;
    return ValidateRegion(h.region, "hello region");
  }
  Status operator()(const OpBatch& b) const { return CheckOps(b.ops); }
  Status operator()(const Ack&) const { return Status::OK(); }
  Status operator()(const Heartbeat& h) const {
    if (h.entries.size() > kMaxRegions)
      return Status::InvalidArgument("heartbeat with more entries than regions");
    for (const HeartbeatEntry& e : h.entries) {
      Status s = ValidateRegion(e.origin, "heartbeat origin");
      if (!s.ok()) return s;
    }
    if (h.holds.size() > kMaxRegions)
      return Status::InvalidArgument("heartbeat with more holds entries than regions");
    for (const HoldsEntry& e : h.holds) {
      Status s = ValidateRegion(e.region, "heartbeat holds region");
      if (!s.ok()) return s;
      if (e.epochs.size() > kMaxRegions)
        return Status::InvalidArgument("heartbeat holds entry with more epochs than regions");
    }
    if (h.epochs.size() > kMaxRegions)
      return Status::InvalidArgument("heartbeat with more epochs than regions");
    return CheckFences(h.fences);
  }
  Status operator()(const RightsRequest& r) const {
    Status s = ValidateAccountId(r.account);
    if (!s.ok()) return s;
    return ValidateAmount(r.amount);
  }
  Status operator()(const Snapshot& snap) const {
    for (const AccountCheckpoint& c : snap.accounts) {
      Status s = CheckCheckpoint(c);
      if (!s.ok()) return Status::InvalidArgument("checkpoint: " + s.message());
    }
    Status s = CheckOps(snap.ops);
    if (s.ok()) s = CheckKeyRecords(snap.keys);
    if (!s.ok()) return s;
    return CheckFences(snap.fences);
  }
};

Status CheckMessage(const Message& m) { return std::visit(MessageChecker{}, m); }

// ---------------------------------------------------------------------------------------------
// Core -> protobuf. Values are assumed valid (checked above, or produced by the core).

std::uint64_t U64(Amount a) { return static_cast<std::uint64_t>(a); }

void ToProto(const VersionVector& vv, pb::VersionVector* out) {
  RegionId used = kMaxRegions;
  while (used > 0 && vv.get(used - 1) == 0) --used;
  auto* seqs = out->mutable_seqs();
  seqs->Reserve(static_cast<int>(used));
  for (RegionId r = 0; r < used; ++r) seqs->Add(vv.get(r));
}

void ToProto(const Dot& d, pb::Dot* out) {
  out->set_origin(d.origin);
  out->set_seq(d.seq);
}

void ToProto(const CanonicalKey& k, pb::CanonicalKey* out) {
  out->set_hlc(k.hlc.value);
  out->set_origin(k.origin);
  out->set_seq(k.seq);
}

void ToProto(const AccountConfig& c, pb::AccountConfig* out) {
  out->set_id(c.id);
  out->set_currency(c.currency);
  out->set_overdraft_limit(U64(c.overdraft_limit));
  for (Amount line : c.lines) out->add_lines(U64(line));
  if (!(c.fee == FeePolicy{})) {
    out->mutable_fee()->set_flat(U64(c.fee.flat));
    out->mutable_fee()->set_bps(c.fee.bps);
  }
  if (!c.parent.empty()) out->set_parent(c.parent);
  out->set_cap(c.cap);
}

pb::OpKind ToProto(OpKind k) { return static_cast<pb::OpKind>(static_cast<int>(k)); }

// An op's note (memo, metadata). Nothing is set for an op without one: its encoding is the bytes
// it had before the fields existed (tests/core/codec_test.cc pins them).
template <typename P, typename T>  // T: an Op, or a StatementLine (which copies its op's note)
void NoteToProto(const T& op, P* out) {
  if (!op.memo.empty()) out->set_memo(op.memo);
  for (const auto& [key, value] : op.metadata) {
    pb::MetadataPair* m = out->add_metadata();
    m->set_key(key);
    m->set_value(value);
  }
}

void ToProto(const Op& op, pb::Op* out) {
  ToProto(op.dot, out->mutable_dot());
  out->set_hlc(op.hlc.value);
  out->set_kind(ToProto(op.kind));
  out->set_account(op.account);
  out->set_amount(U64(op.amount));
  out->set_to(op.to);
  out->set_key(op.key);
  out->set_overdraft(op.overdraft);
  if (op.kind == OpKind::kOpen || !(op.config == AccountConfig{}))
    ToProto(*op.config, out->mutable_config());
  out->set_epoch(op.epoch);
  if (!op.to_account.empty()) out->set_to_account(op.to_account);
  out->set_expires_ms(op.expires_ms);
  if (op.hold != Dot{}) ToProto(op.hold, out->mutable_hold());
  out->set_held(U64(op.held));
  out->set_expired(op.expired);
  for (const std::string& p : op.payers) out->add_payers(p);
  NoteToProto(op, out);
}

void ToProto(const std::vector<Fence>& fences, google::protobuf::RepeatedPtrField<pb::Fence>* out) {
  for (const Fence& f : fences) {
    pb::Fence* p = out->Add();
    p->set_origin(f.origin);
    p->set_epoch(f.epoch);
    p->set_resumed_from(f.resumed_from);
  }
}

// The compact batch form (see tally.proto, "The compact op batch").
void ToProto(const std::vector<Op>& ops, pb::OpBatch* out) {
  pb::OpRun* run = nullptr;
  const Op* prev = nullptr;
  std::uint64_t prev_hlc = 0;
  // Views into `ops`, which outlives the map. Only looked up, never iterated: output order is
  // the order of `ops`.
  std::unordered_map<std::string_view, std::uint32_t> account_refs;
  account_refs.reserve(ops.size());
  std::uint32_t inline_accounts = 0;
  // The reference to `id` if the batch named it before; else nullopt, and `id` is now named (an
  // op's account and a transfer's payee share the list).
  auto ref_of = [&](const std::string& id) -> std::optional<std::uint32_t> {
    auto [it, inserted] = account_refs.try_emplace(id, inline_accounts);
    if (!inserted) return it->second;
    ++inline_accounts;
    return std::nullopt;
  };
  for (const Op& op : ops) {
    if (run == nullptr || prev->dot.origin != op.dot.origin || prev->dot.seq + 1 != op.dot.seq ||
        prev->epoch != op.epoch) {
      run = out->add_runs();
      run->set_origin(op.dot.origin);
      run->set_first_seq(op.dot.seq);
      run->set_epoch(op.epoch);
    }
    pb::CompactOp* c = run->add_ops();
    c->set_hlc_delta(static_cast<std::int64_t>(op.hlc.value - prev_hlc));  // modulo 2^64
    c->set_kind(ToProto(op.kind));
    if (auto ref = ref_of(op.account)) {
      c->set_account_ref(*ref);
    } else {
      c->set_account(op.account);
    }
    if (!op.to_account.empty()) {
      if (auto ref = ref_of(op.to_account)) {
        c->set_to_account_ref(*ref);
      } else {
        c->set_to_account(op.to_account);
      }
    }
    c->set_amount(U64(op.amount));
    // A resolution's key is its hold's, derived on decoding.
    if (!(IsHoldResolution(op.kind) && op.key == HoldKey(op.hold))) c->set_key(op.key);
    c->set_overdraft(op.overdraft);
    c->set_to(op.to);
    if (op.kind == OpKind::kHold) c->set_expires_in_ms(op.expires_ms - op.hlc.wall_ms());
    c->set_hold_origin(op.hold.origin);
    c->set_hold_seq(op.hold.seq);
    c->set_held(U64(op.held));
    c->set_expired(op.expired);
    for (const std::string& p : op.payers) {
      std::optional<std::uint32_t> ref = ref_of(p);
      if (!ref) {
        c->add_payer_names(p);
        ref = inline_accounts - 1;  // the index ref_of just gave it
      }
      c->add_payer_refs(*ref);
    }
    if (op.kind == OpKind::kOpen || !(op.config == AccountConfig{}))
      ToProto(*op.config, c->mutable_config());
    NoteToProto(op, c);
    prev = &op;
    prev_hlc = op.hlc.value;
  }
}

void ToProto(const KeyRecord& k, pb::KeyRecord* out) {
  out->set_account(k.account);
  out->set_key_h1(k.key.h1);
  out->set_key_h2(k.key.h2);
  ToProto(k.dot, out->mutable_dot());
  out->set_hlc(k.hlc.value);
  out->set_kind(ToProto(k.kind));
  out->set_amount(U64(k.amount));
  out->set_to(k.to);
  out->set_overdraft(k.overdraft);
  out->set_balance_after(k.balance_after);
  out->set_displaced(k.displaced);
  out->set_last_use(k.last_use.value);
  for (const KeyUse& u : k.uses) {
    pb::KeyUse* p = out->add_uses();
    ToProto(u.dot, p->mutable_dot());
    p->set_hlc(u.hlc.value);
    p->set_kind(ToProto(u.kind));
    p->set_amount(U64(u.amount));
    p->set_to(u.to);
    p->set_overdraft(u.overdraft);
    p->set_balance_after(u.balance_after);
    p->set_voided(u.voided);
  }
}

void ToProto(const Counters& c, pb::Counters* out) {
  const RegionId n = c.regions();
  out->set_regions(n);
  for (RegionId r = 0; r < n; ++r) out->add_credits(U64(c.credits(r)));
  for (RegionId r = 0; r < n; ++r) out->add_debits(U64(c.debits(r)));
  for (RegionId from = 0; from < n; ++from)
    for (RegionId to = 0; to < n; ++to) out->add_transfers(U64(c.transferred(from, to)));
}

void ToProto(const ReplayState& s, pb::ReplayState* out) {
  out->set_balance(s.balance);
  out->set_in_episode(s.in_episode);
  for (Amount f : s.fees) out->add_fees(f);
  for (Amount v : s.voids) out->add_voids(v);
  out->set_refunds(s.refunds);
  out->set_episodes(s.episodes);
  out->set_ops(s.ops);
}

void ToProto(const DerivedEvent& e, pb::DerivedEvent* out) {
  out->set_kind(static_cast<pb::DerivedKind>(static_cast<int>(e.kind)));
  ToProto(e.op, out->mutable_op());
  out->set_op_kind(ToProto(e.op_kind));
  out->set_op_amount(U64(e.op_amount));
  out->set_amount(e.amount);
  out->set_overdrawn(e.overdrawn);
  out->set_balance_after(e.balance_after);
}

void ToProto(const AccountCheckpoint& c, pb::AccountCheckpoint* out) {
  ToProto(c.config, out->mutable_config());
  ToProto(c.opened, out->mutable_opened());
  ToProto(c.counters, out->mutable_counters());
  ToProto(c.state, out->mutable_state());
  for (const DerivedEvent& e : c.events) ToProto(e, out->add_events());
  for (const HoldRecord& h : c.holds) {
    pb::HoldRecord* p = out->add_holds();
    ToProto(h.hold, p->mutable_hold());
    p->set_hlc(h.hlc.value);
    p->set_amount(U64(h.amount));
    p->set_expires_ms(h.expires_ms);
    p->set_voided(h.voided);
    if (h.winner.seq != 0) {
      ToProto(h.winner, p->mutable_winner());
      p->set_resolution(ToProto(h.resolution));
      p->set_captured(U64(h.captured));
      p->set_expired(h.expired);
    }
  }
}

struct EnvelopeWriter {
  pb::Envelope* env;
  void operator()(const Hello& h) const {
    pb::Hello* p = env->mutable_hello();
    p->set_cluster_id(h.cluster_id);
    p->set_protocol_version(h.protocol_version);
    p->set_region(h.region);
    ToProto(h.applied, p->mutable_applied());
    p->set_epoch(h.epoch);
    p->set_peer_epoch(h.peer_epoch);
    p->set_rejoining(h.rejoining);
    p->set_clock(h.clock);
    ToProto(h.fences, p->mutable_fences());
    p->set_needs_snapshot(h.needs_snapshot);
    p->set_retention_ms(h.retention_ms);
  }
  void operator()(const OpBatch& b) const { ToProto(b.ops, env->mutable_op_batch()); }
  void operator()(const Ack& a) const {
    ToProto(a.applied, env->mutable_ack()->mutable_applied());
    env->mutable_ack()->set_fence_epoch(a.fence_epoch);
  }
  void operator()(const Heartbeat& h) const {
    pb::Heartbeat* p = env->mutable_heartbeat();
    for (const HeartbeatEntry& e : h.entries) {
      pb::HeartbeatEntry* pe = p->add_entries();
      pe->set_origin(e.origin);
      pe->set_hlc(e.hlc.value);
      pe->set_seq(e.seq);
      pe->set_epoch(e.epoch);
    }
    ToProto(h.applied, p->mutable_applied());
    for (const HoldsEntry& e : h.holds) {
      pb::HoldsEntry* pe = p->add_holds();
      pe->set_region(e.region);
      pe->set_epoch(e.epoch);
      ToProto(e.applied, pe->mutable_applied());
      for (std::uint64_t x : e.epochs) pe->add_epochs(x);
      pe->set_clock(e.clock);
    }
    for (std::uint64_t x : h.epochs) p->add_epochs(x);
    p->set_clock(h.clock);
    ToProto(h.fences, p->mutable_fences());
    p->set_wall_ms(h.wall_ms);
    p->set_mono_ms(h.mono_ms);
    p->set_echo_mono_ms(h.echo_mono_ms);
    p->set_echo_hold_ms(h.echo_hold_ms);
  }
  void operator()(const RightsRequest& r) const {
    pb::RightsRequest* p = env->mutable_rights_request();
    p->set_account(r.account);
    p->set_amount(U64(r.amount));
  }
  void operator()(const Snapshot& s) const {
    pb::Snapshot* p = env->mutable_snapshot();
    p->set_frontier(s.frontier.value);
    ToProto(s.applied, p->mutable_applied());
    ToProto(s.log_floor, p->mutable_log_floor());
    for (const AccountCheckpoint& c : s.accounts) ToProto(c, p->add_accounts());
    ToProto(s.ops, p->mutable_ops());
    for (const KeyRecord& k : s.keys) ToProto(k, p->add_keys());
    ToProto(s.fences, p->mutable_fences());
  }
};

// ---------------------------------------------------------------------------------------------
// Protobuf -> core: structural checks (sizes, enum and integer ranges) that must hold before a
// value can be represented at all. The semantic rules run afterwards, on the core value.

Status Malformed(std::string what) { return Status::Corruption(std::move(what)); }

Status FromProto(const pb::VersionVector& p, VersionVector* out) {
  if (p.seqs_size() > static_cast<int>(kMaxRegions))
    return Malformed("version vector with " + std::to_string(p.seqs_size()) + " entries; at most " +
                     std::to_string(kMaxRegions) + " regions");
  VersionVector vv;
  for (int r = 0; r < p.seqs_size(); ++r) vv.set(static_cast<RegionId>(r), p.seqs(r));
  *out = vv;
  return Status::OK();
}

Status AmountFromProto(std::uint64_t v, Amount max, std::string_view what, Amount* out) {
  if (v > static_cast<std::uint64_t>(max))
    return Malformed(std::string(what) + " " + std::to_string(v) + " exceeds " +
                     std::to_string(max));
  *out = static_cast<Amount>(v);
  return Status::OK();
}

Status OpKindFromProto(int v, OpKind* out) {
  if (v < static_cast<int>(OpKind::kOpen) || v > static_cast<int>(OpKind::kBudgetDebit))
    return Malformed("unknown op kind " + std::to_string(v));
  *out = static_cast<OpKind>(v);
  return Status::OK();
}

Status FromProto(const pb::AccountConfig& p, AccountConfig* out) {
  AccountConfig c;
  c.id = p.id();
  c.currency = p.currency();
  Status s =
      AmountFromProto(p.overdraft_limit(), kMaxCounter, "overdraft limit", &c.overdraft_limit);
  if (!s.ok()) return s;
  if (p.lines_size() > static_cast<int>(kMaxRegions))
    return Malformed("more overdraft lines than regions");
  c.lines.resize(static_cast<std::size_t>(p.lines_size()));
  for (int i = 0; i < p.lines_size(); ++i) {
    s = AmountFromProto(p.lines(i), kMaxCounter, "overdraft line", &c.lines[i]);
    if (!s.ok()) return s;
  }
  s = AmountFromProto(p.fee().flat(), kMaxOpAmount, "flat fee", &c.fee.flat);
  if (!s.ok()) return s;
  c.fee.bps = p.fee().bps();
  c.parent = p.parent();
  c.cap = p.cap();
  *out = std::move(c);
  return Status::OK();
}

Status FromProto(const google::protobuf::RepeatedPtrField<pb::Fence>& p, std::vector<Fence>* out) {
  if (p.size() > static_cast<int>(kMaxRegions * kMaxFencesPerRegion))
    return Malformed("more fences than regions allow (" + std::to_string(p.size()) + ")");
  out->clear();
  for (const pb::Fence& f : p) out->push_back(Fence{f.origin(), f.epoch(), f.resumed_from()});
  return Status::OK();
}

Status FromProto(const pb::CanonicalKey& p, CanonicalKey* out) {
  out->hlc.value = p.hlc();
  out->origin = p.origin();
  out->seq = p.seq();
  return Status::OK();
}

// A budget debit's payers: bounded here, checked by the core's rules (ValidateOp) after.
Status PayersFromProto(const google::protobuf::RepeatedPtrField<std::string>& p,
                       std::vector<std::string>* out) {
  if (p.size() > static_cast<int>(kMaxBudgetDepth))
    return Malformed("more than " + std::to_string(kMaxBudgetDepth) + " payers");
  out->assign(p.begin(), p.end());
  return Status::OK();
}

// An op's note: the pair count bounded here (before anything is copied), the rest checked by the
// core's rules (ValidateOp) after.
template <typename P, typename T>
Status NoteFromProto(const P& p, T* op) {
  if (p.metadata_size() > static_cast<int>(kMaxMetadataPairs))
    return Malformed("metadata with " + std::to_string(p.metadata_size()) + " pairs; at most " +
                     std::to_string(kMaxMetadataPairs));
  op->memo = p.memo();
  op->metadata.reserve(static_cast<std::size_t>(p.metadata_size()));
  for (const pb::MetadataPair& m : p.metadata()) op->metadata.emplace_back(m.key(), m.value());
  return Status::OK();
}

Status FromProto(const pb::Op& p, Op* out) {
  Op op;
  op.dot.origin = p.dot().origin();
  op.dot.seq = p.dot().seq();
  op.hlc.value = p.hlc();
  Status s = OpKindFromProto(p.kind(), &op.kind);
  if (!s.ok()) return s;
  op.account = p.account();
  s = AmountFromProto(p.amount(), kMaxOpAmount, "amount", &op.amount);
  if (!s.ok()) return s;
  op.to = p.to();
  op.key = p.key();
  op.overdraft = p.overdraft();
  op.epoch = p.epoch();
  op.to_account = p.to_account();
  op.expires_ms = p.expires_ms();
  op.hold = Dot{p.hold().origin(), p.hold().seq()};
  s = AmountFromProto(p.held(), kMaxOpAmount, "held", &op.held);
  if (!s.ok()) return s;
  op.expired = p.expired();
  s = PayersFromProto(p.payers(), &op.payers);
  if (!s.ok()) return s;
  s = NoteFromProto(p, &op);
  if (!s.ok()) return s;
  if (p.has_config()) {
    s = FromProto(p.config(), &op.config.mutable_value());
    if (!s.ok()) return s;
  }
  *out = std::move(op);
  return Status::OK();
}

// An account id named inline in a batch: appended to the batch's list of ids (the op's account
// and a transfer's payee share it).
std::string Named(std::string_view id, std::vector<std::string_view>* accounts) {
  accounts->push_back(id);
  return std::string(id);
}

// The id `ref` refers to in the batch's list; `what` ("account", "payee") names it in the error.
Status Referred(std::uint32_t ref, const char* what, const std::vector<std::string_view>& accounts,
                std::string* out) {
  if (ref >= accounts.size())
    return Malformed(std::string(what) + " reference " + std::to_string(ref) + " past the " +
                     std::to_string(accounts.size()) + " accounts named so far");
  *out = std::string(accounts[ref]);
  return Status::OK();
}

Status FromProto(const pb::OpBatch& p, std::vector<Op>* out) {
  std::vector<Op> ops;
  std::size_t total = 0;
  for (const pb::OpRun& run : p.runs()) total += static_cast<std::size_t>(run.ops_size());
  ops.reserve(total);
  std::vector<std::string_view> accounts;  // inline account ids of this batch, in order
  std::uint64_t prev_hlc = 0;
  for (const pb::OpRun& run : p.runs()) {
    const std::uint64_t first = run.first_seq();
    const auto count = static_cast<std::uint64_t>(run.ops_size());
    if (first == 0 && count > 0) return Malformed("op run starting at seq 0");
    if (count > 0 && first > std::numeric_limits<std::uint64_t>::max() - (count - 1))
      return Malformed("op run past the largest seq");
    for (int i = 0; i < run.ops_size(); ++i) {
      const pb::CompactOp& c = run.ops(i);
      Op op;
      op.dot.origin = run.origin();
      op.dot.seq = first + static_cast<std::uint64_t>(i);
      op.epoch = run.epoch();
      prev_hlc += static_cast<std::uint64_t>(c.hlc_delta());  // modulo 2^64, as encoded
      op.hlc.value = prev_hlc;
      Status s = OpKindFromProto(c.kind(), &op.kind);
      if (!s.ok()) return s;
      switch (c.account_name_case()) {
        case pb::CompactOp::kAccount:
          op.account = Named(c.account(), &accounts);
          break;
        case pb::CompactOp::kAccountRef:
          s = Referred(c.account_ref(), "account", accounts, &op.account);
          if (!s.ok()) return s;
          break;
        case pb::CompactOp::ACCOUNT_NAME_NOT_SET:
          return Malformed("op without an account");
      }
      switch (c.to_account_name_case()) {
        case pb::CompactOp::kToAccount:
          op.to_account = Named(c.to_account(), &accounts);
          break;
        case pb::CompactOp::kToAccountRef:
          s = Referred(c.to_account_ref(), "payee", accounts, &op.to_account);
          if (!s.ok()) return s;
          break;
        case pb::CompactOp::TO_ACCOUNT_NAME_NOT_SET:
          break;
      }
      s = AmountFromProto(c.amount(), kMaxOpAmount, "amount", &op.amount);
      if (!s.ok()) return s;
      op.key = c.key();
      op.overdraft = c.overdraft();
      op.to = c.to();
      op.hold = Dot{c.hold_origin(), c.hold_seq()};
      s = AmountFromProto(c.held(), kMaxOpAmount, "held", &op.held);
      if (!s.ok()) return s;
      op.expired = c.expired();
      // Budget debit: payers named here join the list after the account and payee; each payer
      // is a reference into it (bounded here, checked by the core's rules after).
      if (c.payer_names_size() > static_cast<int>(kMaxBudgetDepth) ||
          c.payer_refs_size() > static_cast<int>(kMaxBudgetDepth))
        return Malformed("more than " + std::to_string(kMaxBudgetDepth) + " payers");
      for (const std::string& name : c.payer_names()) Named(name, &accounts);
      for (std::uint32_t ref : c.payer_refs()) {
        s = Referred(ref, "payer", accounts, &op.payers.emplace_back());
        if (!s.ok()) return s;
      }
      if (IsHoldResolution(op.kind) && op.key.empty()) op.key = HoldKey(op.hold);
      if (c.expires_in_ms() != 0) {
        if (c.expires_in_ms() > std::numeric_limits<std::uint64_t>::max() - op.hlc.wall_ms())
          return Malformed("hold expiry past the largest time");
        op.expires_ms = op.hlc.wall_ms() + c.expires_in_ms();
      }
      if (c.has_config()) {
        s = FromProto(c.config(), &op.config.mutable_value());
        if (!s.ok()) return s;
      }
      s = NoteFromProto(c, &op);
      if (!s.ok()) return s;
      ops.push_back(std::move(op));
    }
  }
  *out = std::move(ops);
  return Status::OK();
}

Status FromProto(const pb::KeyRecord& p, KeyRecord* out) {
  KeyRecord k;
  k.account = p.account();
  k.key = KeyHash{p.key_h1(), p.key_h2()};
  k.dot.origin = p.dot().origin();
  k.dot.seq = p.dot().seq();
  k.hlc.value = p.hlc();
  Status s = OpKindFromProto(p.kind(), &k.kind);
  if (!s.ok()) return s;
  s = AmountFromProto(p.amount(), kMaxOpAmount, "amount", &k.amount);
  if (!s.ok()) return s;
  k.to = p.to();
  k.overdraft = p.overdraft();
  k.balance_after = p.balance_after();
  k.displaced = p.displaced();
  k.last_use.value = p.last_use();
  for (const pb::KeyUse& pu : p.uses()) {
    KeyUse u;
    u.dot.origin = pu.dot().origin();
    u.dot.seq = pu.dot().seq();
    u.hlc.value = pu.hlc();
    s = OpKindFromProto(pu.kind(), &u.kind);
    if (!s.ok()) return s;
    s = AmountFromProto(pu.amount(), kMaxOpAmount, "amount", &u.amount);
    if (!s.ok()) return s;
    u.to = pu.to();
    u.overdraft = pu.overdraft();
    u.balance_after = pu.balance_after();
    u.voided = pu.voided();
    k.uses.push_back(u);
  }
  *out = std::move(k);
  return Status::OK();
}

// Counters expose no setters: the entries are replayed through the owning-region mutators, which
// also re-check the caps.
Status FromProto(const pb::Counters& p, Counters* out) {
  const std::uint32_t n = p.regions();
  if (n > kMaxRegions) return Malformed("counters for " + std::to_string(n) + " regions");
  if (p.credits_size() != static_cast<int>(n) || p.debits_size() != static_cast<int>(n) ||
      p.transfers_size() != static_cast<int>(n * n))
    return Malformed("counters with entries that do not match " + std::to_string(n) + " regions");
  Counters c(n);
  Counters delta;
  for (RegionId r = 0; r < n; ++r) {
    Amount x;
    Status s = AmountFromProto(p.credits(r), kMaxCounter, "credit counter", &x);
    if (s.ok() && x > 0) s = c.Credit(r, x, &delta);
    if (!s.ok()) return s;
    s = AmountFromProto(p.debits(r), kMaxCounter, "debit counter", &x);
    if (s.ok() && x > 0) s = c.Debit(r, x, &delta);
    if (!s.ok()) return s;
    for (RegionId to = 0; to < n; ++to) {
      s = AmountFromProto(p.transfers(r * n + to), kMaxCounter, "transfer counter", &x);
      if (s.ok() && x > 0) s = c.Transfer(r, to, x, &delta);
      if (!s.ok()) return s;
    }
  }
  *out = std::move(c);
  return Status::OK();
}

Status FromProto(const pb::ReplayState& p, ReplayState* out) {
  if (p.fees_size() > static_cast<int>(kMaxRegions) || p.voids_size() != p.fees_size())
    return Malformed("replay state fees and voids must have one entry per region");
  ReplayState s(static_cast<RegionId>(p.fees_size()));
  s.balance = p.balance();
  s.in_episode = p.in_episode();
  for (int i = 0; i < p.fees_size(); ++i) s.fees[i] = p.fees(i);
  for (int i = 0; i < p.voids_size(); ++i) s.voids[i] = p.voids(i);
  s.refunds = p.refunds();
  s.episodes = p.episodes();
  s.ops = p.ops();
  *out = std::move(s);
  return Status::OK();
}

Status FromProto(const pb::DerivedEvent& p, DerivedEvent* out) {
  DerivedEvent e;
  if (p.kind() != pb::DERIVED_KIND_OVERDRAFT_FEE && p.kind() != pb::DERIVED_KIND_VOID)
    return Malformed("unknown derived event kind " + std::to_string(p.kind()));
  e.kind = static_cast<DerivedKind>(p.kind());
  FromProto(p.op(), &e.op);
  Status s = OpKindFromProto(p.op_kind(), &e.op_kind);
  if (!s.ok()) return s;
  s = AmountFromProto(p.op_amount(), kMaxOpAmount, "derived event op amount", &e.op_amount);
  if (!s.ok()) return s;
  e.amount = p.amount();
  e.overdrawn = p.overdrawn();
  e.balance_after = p.balance_after();
  *out = e;
  return Status::OK();
}

Status FromProto(const pb::AccountCheckpoint& p, AccountCheckpoint* out) {
  AccountCheckpoint c;
  Status s = FromProto(p.config(), &c.config);
  if (!s.ok()) return s;
  FromProto(p.opened(), &c.opened);
  s = FromProto(p.counters(), &c.counters);
  if (!s.ok()) return s;
  s = FromProto(p.state(), &c.state);
  if (!s.ok()) return s;
  c.events.resize(static_cast<std::size_t>(p.events_size()));
  for (int i = 0; i < p.events_size(); ++i) {
    s = FromProto(p.events(i), &c.events[i]);
    if (!s.ok()) return s;
  }
  for (const pb::HoldRecord& ph : p.holds()) {
    HoldRecord h;
    h.hold = Dot{ph.hold().origin(), ph.hold().seq()};
    h.hlc.value = ph.hlc();
    s = AmountFromProto(ph.amount(), kMaxOpAmount, "hold amount", &h.amount);
    if (s.ok()) s = AmountFromProto(ph.captured(), kMaxOpAmount, "captured", &h.captured);
    if (!s.ok()) return s;
    h.expires_ms = ph.expires_ms();
    h.voided = ph.voided();
    if (ph.has_winner()) {
      FromProto(ph.winner(), &h.winner);
      s = OpKindFromProto(ph.resolution(), &h.resolution);
      if (!s.ok()) return s;
      if (h.winner.seq == 0) return Malformed("hold resolution with seq 0");
    }
    h.expired = ph.expired();
    c.holds.push_back(h);
  }
  *out = std::move(c);
  return Status::OK();
}

Status FromProto(const pb::Envelope& env, Message* out) {
  switch (env.body_case()) {
    case pb::Envelope::kHello: {
      const pb::Hello& p = env.hello();
      Hello h;
      h.cluster_id = p.cluster_id();
      h.protocol_version = p.protocol_version();
      h.region = p.region();
      h.epoch = p.epoch();
      h.peer_epoch = p.peer_epoch();
      h.rejoining = p.rejoining();
      h.clock = p.clock();
      h.needs_snapshot = p.needs_snapshot();
      h.retention_ms = p.retention_ms();
      Status s = FromProto(p.applied(), &h.applied);
      if (!s.ok()) return s;
      s = FromProto(p.fences(), &h.fences);
      if (!s.ok()) return s;
      *out = std::move(h);
      return Status::OK();
    }
    case pb::Envelope::kOpBatch: {
      OpBatch b;
      Status s = FromProto(env.op_batch(), &b.ops);
      if (!s.ok()) return s;
      *out = std::move(b);
      return Status::OK();
    }
    case pb::Envelope::kAck: {
      Ack a;
      a.fence_epoch = env.ack().fence_epoch();
      Status s = FromProto(env.ack().applied(), &a.applied);
      if (!s.ok()) return s;
      *out = std::move(a);
      return Status::OK();
    }
    case pb::Envelope::kHeartbeat: {
      const pb::Heartbeat& p = env.heartbeat();
      if (p.entries_size() > static_cast<int>(kMaxRegions))
        return Malformed("heartbeat with more entries than regions");
      Heartbeat h;
      for (const pb::HeartbeatEntry& pe : p.entries())
        h.entries.push_back(HeartbeatEntry{pe.origin(), Hlc{pe.hlc()}, pe.seq(), pe.epoch()});
      Status s = FromProto(p.applied(), &h.applied);
      if (!s.ok()) return s;
      if (p.holds_size() > static_cast<int>(kMaxRegions))
        return Malformed("heartbeat with more holds entries than regions");
      for (const pb::HoldsEntry& pe : p.holds()) {
        if (pe.epochs_size() > static_cast<int>(kMaxRegions))
          return Malformed("heartbeat holds entry with more epochs than regions");
        HoldsEntry e{
            pe.region(), pe.epoch(), {}, {pe.epochs().begin(), pe.epochs().end()}, pe.clock()};
        s = FromProto(pe.applied(), &e.applied);
        if (!s.ok()) return s;
        h.holds.push_back(e);
      }
      if (p.epochs_size() > static_cast<int>(kMaxRegions))
        return Malformed("heartbeat with more epochs than regions");
      h.epochs.assign(p.epochs().begin(), p.epochs().end());
      h.clock = p.clock();
      s = FromProto(p.fences(), &h.fences);
      if (!s.ok()) return s;
      h.wall_ms = p.wall_ms();
      h.mono_ms = p.mono_ms();
      h.echo_mono_ms = p.echo_mono_ms();
      h.echo_hold_ms = p.echo_hold_ms();
      *out = std::move(h);
      return Status::OK();
    }
    case pb::Envelope::kRightsRequest: {
      const pb::RightsRequest& p = env.rights_request();
      RightsRequest r;
      r.account = p.account();
      Status s = AmountFromProto(p.amount(), kMaxOpAmount, "amount", &r.amount);
      if (!s.ok()) return s;
      *out = std::move(r);
      return Status::OK();
    }
    case pb::Envelope::kSnapshot: {
      const pb::Snapshot& p = env.snapshot();
      Snapshot snap;
      snap.frontier.value = p.frontier();
      Status s = FromProto(p.applied(), &snap.applied);
      if (s.ok()) s = FromProto(p.log_floor(), &snap.log_floor);
      if (!s.ok()) return s;
      snap.accounts.resize(static_cast<std::size_t>(p.accounts_size()));
      for (int i = 0; i < p.accounts_size(); ++i) {
        s = FromProto(p.accounts(i), &snap.accounts[i]);
        if (!s.ok()) return s;
      }
      s = FromProto(p.ops(), &snap.ops);
      if (!s.ok()) return s;
      snap.keys.resize(static_cast<std::size_t>(p.keys_size()));
      for (int i = 0; i < p.keys_size(); ++i) {
        s = FromProto(p.keys(i), &snap.keys[i]);
        if (!s.ok()) return s;
      }
      s = FromProto(p.fences(), &snap.fences);
      if (!s.ok()) return s;
      *out = std::move(snap);
      return Status::OK();
    }
    case pb::Envelope::BODY_NOT_SET:
      break;
  }
  return Malformed("envelope without a known message body");
}

// Parses `bytes` into `msg` (an arena message). False on malformed protobuf.
bool Parse(std::string_view bytes, google::protobuf::MessageLite* msg) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
  return msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

std::string Serialize(const google::protobuf::MessageLite& msg) {
  std::string out;
  msg.SerializeToString(&out);
  return out;
}

void ToProto(const StatementLine& l, pb::StatementLine* out) {
  out->set_account(l.account);
  ToProto(l.key, out->mutable_key());
  out->set_kind(static_cast<pb::OpKind>(l.kind));
  out->set_change(l.change);
  out->set_amount(U64(l.amount));
  out->set_voided(l.voided);
  out->set_final(l.final);
  out->set_crossing(l.crossing);
  out->set_fee(l.fee);
  out->set_void_amount(l.void_amount);
  out->set_balance_after(l.balance_after);
  if (!l.idempotency_key.empty()) out->set_idempotency_key(l.idempotency_key);
  if (!l.counterparty.empty()) out->set_counterparty(l.counterparty);
  if (l.hold.seq != 0) ToProto(l.hold, out->mutable_hold());
  NoteToProto(l, out);
}

Status FromProto(const pb::StatementLine& p, StatementLine* out) {
  StatementLine l;
  l.account = p.account();
  Status s = FromProto(p.key(), &l.key);
  if (s.ok()) s = OpKindFromProto(p.kind(), &l.kind);
  if (s.ok()) s = AmountFromProto(p.amount(), kMaxOpAmount, "amount", &l.amount);
  if (!s.ok()) return s;
  l.change = p.change();
  l.voided = p.voided();
  l.final = p.final();
  l.crossing = p.crossing();
  l.fee = p.fee();
  l.void_amount = p.void_amount();
  l.balance_after = p.balance_after();
  l.idempotency_key = p.idempotency_key();
  l.counterparty = p.counterparty();
  l.hold = Dot{p.hold().origin(), p.hold().seq()};
  if (Status n = NoteFromProto(p, &l); !n.ok()) return n;
  *out = std::move(l);
  return Status::OK();
}

// What a stored line may be: ids as the API takes them, amounts within an op's bounds.
Status CheckStatementLine(const StatementLine& l) {
  Status s = ValidateAccountId(l.account);
  if (s.ok() && !l.counterparty.empty()) s = ValidateAccountId(l.counterparty);
  if (!s.ok()) return s;
  if (l.idempotency_key.size() > kMaxIdempotencyKeyBytes) return Malformed("key too long");
  if (l.key.origin >= kMaxRegions || l.hold.origin >= kMaxRegions)
    return Malformed("region out of range");
  if (l.change < -kMaxOpAmount || l.change > kMaxOpAmount) return Malformed("change out of range");
  if (Status n = ValidateMemo(l.memo); !n.ok()) return n;
  return ValidateMetadata(l.metadata);
}

// Decodes a storage record of proto type P into core type T, validated by `check`.
template <typename P, typename T, typename Check>
Status DecodeRecord(std::string_view bytes, std::string_view what, T* out, Check check) {
  Arena arena;
  P* p = Arena::CreateMessage<P>(&arena);
  if (!Parse(bytes, p)) return Status::Corruption(std::string(what) + ": malformed protobuf");
  T value;
  Status s = FromProto(*p, &value);
  if (s.ok()) s = check(value);
  if (!s.ok()) return Status::Corruption(std::string(what) + ": " + s.message());
  *out = std::move(value);
  return Status::OK();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Gossip messages

Status EncodeMessage(const Message& m, std::string* out) {
  Status s = CheckMessage(m);
  if (!s.ok()) return s;
  Arena arena;
  pb::Envelope* env = Arena::CreateMessage<pb::Envelope>(&arena);
  std::visit(EnvelopeWriter{env}, m);
  const std::size_t size = env->ByteSizeLong();
  if (size > kMaxFrameBytes)
    return Status::ResourceExhausted("message of " + std::to_string(size) +
                                     " bytes exceeds the frame limit of " +
                                     std::to_string(kMaxFrameBytes));
  std::string bytes;
  if (!env->SerializeToString(&bytes)) return Status::Internal("protobuf serialization failed");
  *out = std::move(bytes);
  return Status::OK();
}

Status DecodeMessage(std::string_view bytes, Message* out) {
  if (bytes.size() > kMaxFrameBytes)
    return Status::ResourceExhausted("message of " + std::to_string(bytes.size()) +
                                     " bytes exceeds the frame limit of " +
                                     std::to_string(kMaxFrameBytes));
  Arena arena;
  pb::Envelope* env = Arena::CreateMessage<pb::Envelope>(&arena);
  if (!Parse(bytes, env)) return Status::Corruption("message: malformed protobuf");
  Message m;
  Status s = FromProto(*env, &m);
  if (s.ok()) s = CheckMessage(m);
  if (!s.ok()) return Status::Corruption("message: " + s.message());
  *out = std::move(m);
  return Status::OK();
}

Status AppendFrame(const Message& m, std::string* out) {
  std::string body;
  Status s = EncodeMessage(m, &body);
  if (!s.ok()) return s;
  const auto n = static_cast<std::uint32_t>(body.size());  // <= kMaxFrameBytes
  const char header[kFrameHeaderBytes] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                          static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(header, kFrameHeaderBytes);
  out->append(body);
  return Status::OK();
}

void FrameReader::Append(std::string_view bytes) {
  if (!error_.ok()) return;  // the stream is bad; nothing more will be read from it
  // Drop consumed bytes once they dominate, so the buffer stays about one frame long.
  if (read_pos_ > 0 && read_pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, read_pos_);
    read_pos_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

Status FrameReader::Next(std::string* frame, bool* ready) {
  *ready = false;
  if (!error_.ok()) return error_;
  const std::size_t available = buffer_.size() - read_pos_;
  if (available < kFrameHeaderBytes) return Status::OK();
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + read_pos_);
  const std::size_t length = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                             (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (length > kMaxFrameBytes) {
    error_ =
        Status::ResourceExhausted("frame of " + std::to_string(length) +
                                  " bytes exceeds the limit of " + std::to_string(kMaxFrameBytes));
    buffer_.clear();
    read_pos_ = 0;
    return error_;
  }
  if (available - kFrameHeaderBytes < length) return Status::OK();
  frame->assign(buffer_, read_pos_ + kFrameHeaderBytes, length);
  read_pos_ += kFrameHeaderBytes + length;
  if (read_pos_ == buffer_.size()) {
    buffer_.clear();
    read_pos_ = 0;
  }
  *ready = true;
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Storage records

std::string EncodeOp(const Op& op) {
  Arena arena;
  pb::Op* p = Arena::CreateMessage<pb::Op>(&arena);
  ToProto(op, p);
  return Serialize(*p);
}

Status DecodeOp(std::string_view bytes, Op* out) {
  return DecodeRecord<pb::Op>(bytes, "op record", out, ValidateOp);
}

std::string EncodeKeyRecord(const KeyRecord& record) {
  Arena arena;
  pb::KeyRecord* p = Arena::CreateMessage<pb::KeyRecord>(&arena);
  ToProto(record, p);
  return Serialize(*p);
}

Status DecodeKeyRecord(std::string_view bytes, KeyRecord* out) {
  return DecodeRecord<pb::KeyRecord>(bytes, "key record", out, CheckKeyRecord);
}

std::string EncodeCheckpoint(const AccountCheckpoint& checkpoint) {
  Arena arena;
  pb::AccountCheckpoint* p = Arena::CreateMessage<pb::AccountCheckpoint>(&arena);
  ToProto(checkpoint, p);
  return Serialize(*p);
}

Status DecodeCheckpoint(std::string_view bytes, AccountCheckpoint* out) {
  return DecodeRecord<pb::AccountCheckpoint>(bytes, "checkpoint", out, CheckCheckpoint);
}

std::string EncodeStatementLine(const StatementLine& line) {
  pb::StatementLine p;
  ToProto(line, &p);
  return Serialize(p);
}

Status DecodeStatementLine(std::string_view bytes, StatementLine* out) {
  return DecodeRecord<pb::StatementLine>(bytes, "statement line", out, CheckStatementLine);
}

std::string EncodeFences(const std::vector<Fence>& fences) {
  pb::FenceList p;
  ToProto(fences, p.mutable_fences());
  return Serialize(p);
}

Status DecodeFences(std::string_view bytes, std::vector<Fence>* out) {
  pb::FenceList p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::Corruption("fence list: not a valid FenceList record");
  // Decoded aside and checked before *out is touched: a refused record must leave it as it was.
  std::vector<Fence> fences;
  Status s = FromProto(p.fences(), &fences);
  if (s.ok()) s = CheckFences(fences);
  if (!s.ok()) return Status::Corruption("fence list: " + s.message());
  *out = std::move(fences);
  return Status::OK();
}

std::string EncodeVersionVector(const VersionVector& vv) {
  pb::VersionVector p;
  ToProto(vv, &p);
  return Serialize(p);
}

Status DecodeVersionVector(std::string_view bytes, VersionVector* out) {
  return DecodeRecord<pb::VersionVector>(bytes, "version vector", out,
                                         [](const VersionVector&) { return Status::OK(); });
}

}  // namespace tally::codec
