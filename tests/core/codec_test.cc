// Codec tests: every message and record round-trips unchanged, and every kind of bad input
// (truncated, garbage, oversized, out-of-range, unknown) is refused with an error, never a crash
// and never a half-filled output. Random values come from std::mt19937_64 seeded with Catch's
// --rng-seed (pinned in CTest); a failing check prints the seed.

#include "codec/codec.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cluster_fixture.h"
#include "core/ids.h"
#include "core/validate.h"
#include "tally/v1/tally.pb.h"

namespace tally::codec {
namespace {

namespace pb = ::tally::v1;

// ---------------------------------------------------------------------------------------------
// Generators of valid values.

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t U64() { return rng_(); }
  std::uint64_t Below(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
  }
  std::int64_t Range(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  bool Coin() { return Below(2) == 1; }
  RegionId Region(RegionId regions) { return static_cast<RegionId>(Below(regions)); }

  // Either a small value (the common case, short varints) or anything in range (long varints).
  Amount Money(Amount max) { return Coin() ? Range(1, 100000) : Range(1, max); }

  std::string AccountId() {
    static constexpr std::string_view kChars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
    std::string s(Coin() ? Below(20) + 1 : Below(kMaxAccountIdBytes) + 1, ' ');
    for (char& c : s) c = kChars[Below(kChars.size())];
    return s;
  }
  std::string Key() {
    std::string s(Coin() ? Below(30) + 1 : Below(kMaxIdempotencyKeyBytes) + 1, ' ');
    for (char& c : s) c = static_cast<char>(Range(0x21, 0x7e));
    return s;
  }
  std::string Currency() {
    std::string s(3, ' ');
    for (char& c : s) c = static_cast<char>('A' + Below(26));
    return s;
  }
  Hlc AnyHlc() {
    return Hlc{Coin() ? U64() : Hlc::Make(1'700'000'000'000 + Below(1'000'000), Below(8)).value};
  }
  VersionVector Vv() {
    VersionVector vv;
    const RegionId used = Region(kMaxRegions + 1);
    for (RegionId r = 0; r < used; ++r) vv.set(r, Coin() ? Below(1000) : U64());
    return vv;
  }

  AccountConfig Config(RegionId regions, std::string id) {
    AccountConfig c;
    c.id = std::move(id);
    c.currency = Currency();
    c.overdraft_limit = Coin() ? 0 : Range(0, kMaxCounter);
    if (Coin()) c.lines = SplitOverdraft(c.overdraft_limit, regions);
    c.fee.flat = Range(0, Coin() ? 1000 : kMaxOpAmount);
    c.fee.bps = static_cast<std::uint32_t>(Below(kMaxFeeBps + 1));
    if (Coin()) {
      do c.parent = AccountId();
      while (c.parent == c.id);
      c.cap = Coin();
    }
    return c;
  }

  Op MakeOp(RegionId regions, Dot dot, Hlc hlc, std::string account) {
    Op op;
    op.dot = dot;
    op.hlc = hlc;
    op.kind = static_cast<OpKind>(Range(1, 9));
    op.account = std::move(account);
    switch (op.kind) {
      case OpKind::kOpen:
        op.config = Config(regions, op.account);
        if (Coin()) op.key = Key();
        break;
      case OpKind::kCredit:
      case OpKind::kDebit:
        op.amount = Money(kMaxOpAmount);
        if (Coin()) op.key = Key();
        op.overdraft = op.kind == OpKind::kDebit && Coin();
        break;
      case OpKind::kRights:
        op.amount = Money(kMaxOpAmount);
        op.to = (dot.origin + 1 + Region(regions - 1)) % regions;
        break;
      case OpKind::kTransfer:
        op.amount = Money(kMaxOpAmount);
        if (Coin()) op.key = Key();
        do op.to_account = AccountId();
        while (op.to_account == op.account);
        break;
      case OpKind::kHold:
        op.amount = Money(kMaxOpAmount);
        op.key = Key();
        op.expires_ms = hlc.wall_ms() + 1 + Below(1'000'000'000);
        break;
      case OpKind::kCapture:
      case OpKind::kRelease:
        op.hold = Dot{Region(regions), Below(1'000'000) + 1};
        op.held = Money(kMaxOpAmount);
        op.amount = op.kind == OpKind::kRelease ? op.held : Range(1, op.held);
        op.expired = op.kind == OpKind::kRelease && Coin();
        op.key = HoldKey(op.hold);
        break;
      case OpKind::kBudgetDebit: {
        op.amount = Money(kMaxOpAmount);
        if (Coin()) op.key = Key();
        const std::size_t payers = Range(1, kMaxBudgetDepth);
        if (payers > 1 && Coin()) op.payers.push_back(op.account);  // it pays: first
        while (op.payers.size() < payers) {
          std::string p = AccountId();
          if (p != op.account &&
              std::find(op.payers.begin(), op.payers.end(), p) == op.payers.end())
            op.payers.push_back(std::move(p));
        }
        break;
      }
    }
    Note(&op);
    return op;
  }

  // UTF-8 text of at most `max` bytes, with multi-byte characters and what JSON and HTML escape.
  std::string Text(std::size_t max) {
    static const std::vector<std::string> kPieces = {
        "a", "Z", "0", " ", "\"", "<&>", "'", "\\", "\u00e9", "\u20ac", "\U0001F600"};
    const std::size_t want = Below(max + 1);
    std::string s;
    for (;;) {
      const std::string& p = kPieces[Below(kPieces.size())];
      if (s.size() + p.size() > want) return s;
      s += p;
    }
  }

  // A client's note on half the ops that may carry one: a memo, metadata, or both, up to their
  // bounds.
  void Note(Op* op) {
    if (!MayCarryNote(op->kind) || Coin()) return;
    if (Coin()) op->memo = Text(kMaxMemoBytes);
    if (op->memo.empty() || Coin()) {
      const std::size_t pairs = Below(kMaxMetadataPairs) + 1;
      std::size_t left = kMaxMetadataBytes;
      for (std::size_t i = 0; i < pairs; ++i) {
        std::string key = std::to_string(i) + ":" + Text(std::min<std::size_t>(12, left) / 2);
        if (key.size() > left) break;
        left -= key.size();
        std::string value = Text(std::min<std::size_t>(Coin() ? 8 : 120, left));
        left -= value.size();
        op->metadata.emplace_back(std::move(key), std::move(value));
      }
    }
  }

  Op AnyOp() {
    const RegionId regions = static_cast<RegionId>(Range(2, kMaxRegions));
    Op op = MakeOp(regions, Dot{Region(regions), Below(1'000'000) + 1}, AnyHlc(), AccountId());
    op.epoch = U64();
    return op;
  }

  std::vector<Fence> Fences() {
    std::vector<Fence> out(Below(8));
    for (Fence& f : out) f = Fence{Region(kMaxRegions), U64() | 1, U64()};
    return out;
  }

  // Ops the way gossip carries them: runs of consecutive seqs per origin, hot accounts repeated,
  // HLCs increasing by a few ms; sometimes arbitrary HLCs and gaps.
  std::vector<Op> Ops(std::size_t n) {
    const RegionId regions = static_cast<RegionId>(Range(2, kMaxRegions));
    std::vector<std::string> accounts;
    for (int i = 0; i < 5; ++i) accounts.push_back(AccountId());
    std::vector<Op> ops;
    RegionId origin = Region(regions);
    Seq seq = Below(1000) + 1;
    Hlc hlc = AnyHlc();
    std::uint64_t epoch = U64();
    for (std::size_t i = 0; i < n; ++i) {
      if (Below(8) == 0) origin = Region(regions);
      if (Below(16) == 0) epoch = U64();  // a new run starts at an incarnation change too
      seq = Below(8) == 0 ? Below(1'000'000) + 1 : seq + 1;
      hlc = Below(8) == 0 ? AnyHlc() : Hlc{hlc.value + Below(5u << Hlc::kLogicalBits)};
      const std::string account = Coin() ? accounts[Below(accounts.size())] : AccountId();
      ops.push_back(MakeOp(regions, Dot{origin, seq}, hlc, account));
      ops.back().epoch = epoch;
    }
    return ops;
  }

  KeyRecord AnyKeyRecord() {
    const Op op = AnyOp();
    KeyRecord k;
    k.account = op.account;
    k.key = HashKey(Key());
    k.dot = op.dot;
    k.hlc = op.hlc;
    k.kind = op.kind;
    k.amount = op.amount;
    k.to = op.to;
    k.overdraft = op.overdraft;
    k.balance_after = Range(INT64_MIN, INT64_MAX);
    return k;
  }

  std::vector<std::uint64_t> Epochs() {  // per region id, as heartbeats carry them
    std::vector<std::uint64_t> v(Below(kMaxRegions + 1));
    for (std::uint64_t& e : v) e = U64();
    return v;
  }

  CanonicalKey Canonical() { return CanonicalKey{AnyHlc(), Region(kMaxRegions), U64()}; }

  AccountCheckpoint Checkpoint() {
    const RegionId regions = static_cast<RegionId>(Range(1, kMaxRegions));
    AccountCheckpoint c;
    c.config = Config(regions, AccountId());
    c.opened = Canonical();
    c.counters = Counters(regions);
    Counters delta;
    for (RegionId r = 0; r < regions; ++r) {
      if (Coin()) REQUIRE(c.counters.Credit(r, Money(kMaxCounter), &delta).ok());
      if (Coin()) REQUIRE(c.counters.Debit(r, Money(kMaxCounter), &delta).ok());
      if (regions > 1 && Coin()) {
        const RegionId to = (r + 1 + Region(regions - 1)) % regions;
        REQUIRE(c.counters.Transfer(r, to, Money(kMaxCounter / 2), &delta).ok());
      }
    }
    c.state = ReplayState(regions);
    c.state.balance = Range(INT64_MIN, INT64_MAX);
    c.state.in_episode = Coin();
    for (Amount& f : c.state.fees) f = Range(0, INT64_MAX);
    for (Amount& v : c.state.voids) v = Range(INT64_MIN, INT64_MAX);
    c.state.refunds = Range(0, INT64_MAX);
    c.state.episodes = U64();
    c.state.ops = U64();
    const std::size_t events = Below(6);
    for (std::size_t i = 0; i < events; ++i) {
      DerivedEvent e;
      e.kind = Coin() ? DerivedKind::kOverdraftFee : DerivedKind::kVoid;
      e.op = Canonical();
      e.op_kind = static_cast<OpKind>(Range(1, 4));
      e.op_amount = Money(kMaxOpAmount);
      e.amount = Range(INT64_MIN, INT64_MAX);
      e.overdrawn = Range(0, INT64_MAX);
      e.balance_after = Range(INT64_MIN, INT64_MAX);
      c.events.push_back(e);
    }
    return c;
  }

  Message AnyMessage(int which) {
    switch (which) {
      case 0: {
        Hello h;
        h.cluster_id = Key().substr(0, kMaxClusterIdBytes);
        h.protocol_version = static_cast<std::uint32_t>(U64());
        h.region = Region(kMaxRegions);
        h.applied = Vv();
        h.fences = Fences();
        h.needs_snapshot = Coin();
        h.retention_ms = U64();
        return h;
      }
      case 1:
        return OpBatch{Ops(Below(300))};
      case 2:
        return Ack{Vv(), U64()};
      case 3: {
        Heartbeat h;
        const std::size_t n = Below(kMaxRegions + 1);
        for (std::size_t i = 0; i < n; ++i)
          h.entries.push_back(HeartbeatEntry{Region(kMaxRegions), AnyHlc(), U64(), U64()});
        h.applied = Vv();
        const std::size_t holds = Below(kMaxRegions + 1);
        for (std::size_t i = 0; i < holds; ++i)
          h.holds.push_back(HoldsEntry{Region(kMaxRegions), U64(), Vv(), Epochs(), U64()});
        h.fences = Fences();
        h.epochs = Epochs();
        h.clock = U64();
        h.wall_ms = U64();
        h.mono_ms = U64();
        h.echo_mono_ms = U64();
        h.echo_hold_ms = U64();
        return h;
      }
      case 4:
        return RightsRequest{AccountId(), Money(kMaxOpAmount)};
      default: {
        Snapshot s;
        s.frontier = AnyHlc();
        s.applied = Vv();
        s.log_floor = Vv();
        const std::size_t accounts = Below(4);
        for (std::size_t i = 0; i < accounts; ++i) s.accounts.push_back(Checkpoint());
        s.ops = Ops(Below(40));
        const std::size_t keys = Below(10);
        for (std::size_t i = 0; i < keys; ++i) s.keys.push_back(AnyKeyRecord());
        s.fences = Fences();
        return s;
      }
    }
  }
  static constexpr int kMessageKinds = 6;

  std::string Bytes(std::size_t max) {
    std::string s(Below(max + 1), '\0');
    for (char& c : s) c = static_cast<char>(Below(256));
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

std::uint64_t Seed() { return Catch::rngSeed(); }

std::string Encoded(const Message& m) {
  std::string bytes;
  const Status s = EncodeMessage(m, &bytes);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return bytes;
}

std::string Serialized(const pb::Envelope& env) {
  std::string bytes;
  REQUIRE(env.SerializeToString(&bytes));
  return bytes;
}

// A debit of 2500, op r1:7, as a client makes it.
Op Debit7(std::string account, std::string key, Hlc hlc) {
  Op op;
  op.dot = Dot{1, 7};
  op.hlc = hlc;
  op.kind = OpKind::kDebit;
  op.account = std::move(account);
  op.amount = 2500;
  op.key = std::move(key);
  return op;
}

// A valid debit, in protobuf form, to be broken by the tests below.
pb::Envelope DebitBatch() {
  const Op op = Debit7("acct-0000001", "order-7f3a9c2e41b0d5", Hlc::Make(1'700'000'000'000, 0));
  pb::Envelope env;
  REQUIRE(env.ParseFromString(Encoded(OpBatch{{op}})));
  return env;
}

// Decodes bytes that must be refused: an error, and the output left as it was.
void ExpectRefused(const std::string& bytes) {
  Message out = RightsRequest{"untouched", 1};
  const Status s = DecodeMessage(bytes, &out);
  INFO("status " << s.ToString());
  CHECK_FALSE(s.ok());
  CHECK(out == Message{RightsRequest{"untouched", 1}});
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("every gossip message round-trips unchanged", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int i = 0; i < 300; ++i) {
    const int kind = i % Gen::kMessageKinds;
    INFO("iteration " << i << " kind " << kind);
    const Message m = gen.AnyMessage(kind);
    Message back;
    const Status s = DecodeMessage(Encoded(m), &back);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(back.index() == m.index());
    REQUIRE(back == m);
  }
}

TEST_CASE("op batches keep arbitrary hlcs, gaps, origins and repeated accounts", "[codec]") {
  // Edge cases of the delta encoding: HLCs going backwards and wrapping, seq gaps, and seqs
  // reaching the top of the range.
  std::vector<Op> ops;
  const std::uint64_t hlcs[] = {UINT64_MAX, 0, 1, UINT64_MAX - 1, 1ull << 63, 5, 4};
  Seq seq = 1;
  for (std::uint64_t h : hlcs) {
    Op op;
    op.dot = Dot{static_cast<RegionId>(seq % 3), seq};
    op.hlc = Hlc{h};
    op.kind = OpKind::kCredit;
    op.account = seq % 2 ? "hot" : "cold";
    op.amount = kMaxOpAmount;
    ops.push_back(op);
    seq = seq * 3;
  }
  ops.back().dot = Dot{15, UINT64_MAX};
  Message back;
  REQUIRE(DecodeMessage(Encoded(OpBatch{ops}), &back).ok());
  REQUIRE(std::get<OpBatch>(back).ops == ops);
}

TEST_CASE("storage records round-trip unchanged", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int i = 0; i < 200; ++i) {
    INFO("iteration " << i);
    const Op op = gen.AnyOp();
    Op op_back;
    REQUIRE(DecodeOp(EncodeOp(op), &op_back).ok());
    REQUIRE(op_back == op);

    const KeyRecord k = gen.AnyKeyRecord();
    KeyRecord k_back;
    REQUIRE(DecodeKeyRecord(EncodeKeyRecord(k), &k_back).ok());
    REQUIRE(k_back == k);

    const AccountCheckpoint c = gen.Checkpoint();
    AccountCheckpoint c_back;
    const Status s = DecodeCheckpoint(EncodeCheckpoint(c), &c_back);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(c_back == c);

    const VersionVector vv = gen.Vv();
    VersionVector vv_back;
    vv_back.set(3, 99);
    REQUIRE(DecodeVersionVector(EncodeVersionVector(vv), &vv_back).ok());
    REQUIRE(vv_back == vv);
  }
}

// ---------------------------------------------------------------------------------------------
// Notes (memo and metadata, issue 14): carried by both forms, free for ops without one.

// A debit, a transfer and a hold of one origin, as a client makes them (no note).
std::vector<Op> PlainOps() {
  Op debit = Debit7("acct-1", "order-7f3a", Hlc::Make(1'700'000'000'000, 3));
  debit.epoch = 42;
  Op transfer = debit;
  transfer.dot.seq = 8;
  transfer.kind = OpKind::kTransfer;
  transfer.to_account = "shop";
  transfer.hlc = Hlc::Make(1'700'000'000'002, 0);
  Op hold = debit;
  hold.dot.seq = 9;
  hold.kind = OpKind::kHold;
  hold.expires_ms = 1'700'000'600'000;
  hold.hlc = Hlc::Make(1'700'000'000'005, 0);
  return {debit, transfer, hold};
}

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string h;
  for (unsigned char c : bytes) {
    h += kDigits[c >> 4];
    h += kDigits[c & 15];
  }
  return h;
}

TEST_CASE("an op without a note encodes to the bytes it had before notes existed",
          "[codec][note]") {
  // Encoded by the codec of 2146eae (before memo and metadata): gossip and storage bytes must not
  // grow by one byte for the ops that carry no note.
  const std::vector<Op> ops = PlainOps();
  CHECK(Hex(Encoded(OpBatch{ops})) ==
        "12700a6e080110071a230886808080adf9e78b0310031a06616363742d3128c413320a6f726465722d3766"
        "33611a1d08faff0f1005200028c413320a6f726465722d37663361520473686f701a1b0880801810062000"
        "28c413320a6f726465722d3766336160bbcf24212a00000000000000");
  CHECK(Hex(EncodeOp(ops[0])) ==
        "0a04080110071103000068e5cf8b0118032206616363742d3128c4133a0a6f726465722d37663361512a00"
        "000000000000");
  CHECK(Hex(EncodeOp(ops[1])) ==
        "0a04080110081100000268e5cf8b0118052206616363742d3128c4133a0a6f726465722d37663361512a00"
        "0000000000005a0473686f70");
  CHECK(Hex(EncodeOp(ops[2])) ==
        "0a04080110091100000568e5cf8b0118062206616363742d3128c4133a0a6f726465722d37663361512a00"
        "00000000000060c09fbaffbc31");

  // The same for random ops: with their note taken out of the protobuf, the bytes of an op with a
  // note are exactly those of the op without it (the note adds its own fields and nothing else).
  Gen gen(Seed());
  for (int i = 0; i < 200; ++i) {
    Op op = gen.AnyOp();
    if (op.memo.empty() && op.metadata.empty()) continue;
    pb::Op stored;
    REQUIRE(stored.ParseFromString(EncodeOp(op)));
    stored.clear_memo();
    stored.clear_metadata();
    Op plain = op;
    plain.memo.clear();
    plain.metadata.clear();
    CHECK(stored.SerializeAsString() == EncodeOp(plain));
    CHECK(EncodeOp(op).size() > EncodeOp(plain).size());
  }
  const std::vector<Op> batch_ops = gen.Ops(100);
  std::vector<Op> plain_ops = batch_ops;
  for (Op& op : plain_ops) {
    op.memo.clear();
    op.metadata.clear();
  }
  pb::Envelope env;
  REQUIRE(env.ParseFromString(Encoded(OpBatch{batch_ops})));
  for (pb::OpRun& run : *env.mutable_op_batch()->mutable_runs())
    for (pb::CompactOp& c : *run.mutable_ops()) {
      c.clear_memo();
      c.clear_metadata();
    }
  CHECK(Serialized(env) == Encoded(OpBatch{plain_ops}));
}

TEST_CASE("notes round-trip in batches and stored records, metadata in order", "[codec][note]") {
  std::vector<Op> ops = PlainOps();
  ops[0].memo = "rent \u00e9t\u00e9 <b>\"May\"</b> \U0001F600";
  ops[0].metadata = {{"z-last-sorted", "1"}, {"a", ""}, {"\u20ac", "euro"}};
  ops[2].memo = std::string(kMaxMemoBytes, 'm');
  Metadata full;
  for (int i = 0; i < 16; ++i)
    full.emplace_back("k" + std::to_string(i + 10), std::string(61, 'v'));
  ops[1].metadata = full;  // every bound reached: 16 pairs, 1024 bytes
  Message back;
  REQUIRE(DecodeMessage(Encoded(OpBatch{ops}), &back).ok());
  CHECK(std::get<OpBatch>(back).ops == ops);
  for (const Op& op : ops) {
    Op stored;
    REQUIRE(DecodeOp(EncodeOp(op), &stored).ok());
    CHECK(stored == op);
  }
  // A snapshot carries its ops in the batch form.
  Snapshot snap;
  snap.ops = ops;
  REQUIRE(DecodeMessage(Encoded(snap), &back).ok());
  CHECK(std::get<Snapshot>(back).ops == ops);
}

TEST_CASE("notes past their bounds or on ops that carry none are refused", "[codec][note]") {
  // Each broken op, in a batch (gossip, snapshots) and as a stored record: refused on decoding
  // with the rule it breaks, and never encoded.
  struct Case {
    const char* why;
    std::function<void(Op&)> breaks;
  };
  const std::vector<Case> cases = {
      {"memo is 141 bytes", [](Op& op) { op.memo = std::string(kMaxMemoBytes + 1, 'm'); }},
      {"memo has a control character", [](Op& op) { op.memo = "a\nb"; }},
      {"memo is not valid UTF-8", [](Op& op) { op.memo = "\xc0\xaf"; }},
      {"metadata has 17 pairs",
       [](Op& op) {
         for (int i = 0; i < 17; ++i) op.metadata.emplace_back("k" + std::to_string(i), "v");
       }},
      {"metadata is 1025 bytes",
       [](Op& op) {
         op.metadata = {{"a", std::string(600, 'v')}, {"b", std::string(423, 'v')}};
       }},
      {"metadata key 'a' appears twice",
       [](Op& op) {
         op.metadata = {{"a", "1"}, {"a", "2"}};
       }},
      {"metadata has an empty key",
       [](Op& op) {
         op.metadata = {{"", "1"}};
       }},
      {"metadata value of 'a' is not valid UTF-8",
       [](Op& op) {
         op.metadata = {{"a", "\xff"}};
       }},
      {"memo or metadata on an op of kind rights",
       [](Op& op) {
         op.kind = OpKind::kRights;
         op.to = 2;
         op.key.clear();
         op.memo = "m";
       }},
      {"memo or metadata on an op of kind release",
       [](Op& op) {
         op.kind = OpKind::kRelease;
         op.hold = Dot{1, 3};
         op.held = op.amount;
         op.key = HoldKey(op.hold);
         op.metadata = {{"a", "1"}};
       }},
  };
  for (const Case& c : cases) {
    INFO(c.why);
    Op op = PlainOps()[0];
    c.breaks(op);
    const Status v = ValidateOp(op);
    CHECK_THAT(v.message(), Catch::Matchers::Contains(c.why));
    std::string bytes;
    CHECK(EncodeMessage(OpBatch{{op}}, &bytes).code() == Code::kInvalidArgument);

    // The same bytes a hostile or broken peer would send: the op without its note, encoded, with
    // the note added through protobuf.
    Op without = op;
    without.memo.clear();
    without.metadata.clear();
    pb::Envelope env;
    REQUIRE(env.ParseFromString(Encoded(OpBatch{{without}})));
    pb::CompactOp* compact = env.mutable_op_batch()->mutable_runs(0)->mutable_ops(0);
    pb::Op stored;
    REQUIRE(stored.ParseFromString(EncodeOp(without)));
    compact->set_memo(op.memo);
    stored.set_memo(op.memo);
    for (const auto& [k, val] : op.metadata) {
      pb::MetadataPair* m = compact->add_metadata();
      m->set_key(k);
      m->set_value(val);
      *stored.add_metadata() = *m;
    }
    Message out = RightsRequest{"untouched", 1};
    const Status d = DecodeMessage(Serialized(env), &out);
    CHECK(d.code() == Code::kCorruption);
    CHECK(out == Message{RightsRequest{"untouched", 1}});
    Op record;
    std::string record_bytes;
    REQUIRE(stored.SerializeToString(&record_bytes));
    CHECK(DecodeOp(record_bytes, &record).code() == Code::kCorruption);
  }
}

TEST_CASE("a refused fence list leaves the output untouched", "[codec]") {
  // Found by tests/fuzz/fuzz_fences: DecodeFences filled *out before it checked the fences, so a
  // refused record left a half-decoded list behind, against codec.h's promise.
  const std::vector<Fence> before = {Fence{3, 77, 5}};
  for (const Fence& bad : {Fence{kMaxRegions, 1, 0}, Fence{1, 0, 0}}) {
    std::vector<Fence> out = before;
    CHECK(DecodeFences(EncodeFences({Fence{0, 1, 0}, bad}), &out).code() == Code::kCorruption);
    CHECK(out == before);
  }
}

TEST_CASE("an empty version vector and a bottom checkpoint round-trip", "[codec]") {
  VersionVector vv;
  REQUIRE(EncodeVersionVector(vv).empty());
  VersionVector back;
  back.set(0, 1);
  REQUIRE(DecodeVersionVector("", &back).ok());
  REQUIRE(back == vv);

  AccountCheckpoint c;
  c.config.id = "a";
  c.config.currency = "EUR";
  AccountCheckpoint c_back;
  REQUIRE(DecodeCheckpoint(EncodeCheckpoint(c), &c_back).ok());
  REQUIRE(c_back == c);
}

// ---------------------------------------------------------------------------------------------
// Framing

TEST_CASE("FrameReader splits a stream cut at arbitrary points", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int round = 0; round < 20; ++round) {
    std::vector<Message> sent;
    std::string stream;
    for (int i = 0; i < 12; ++i) {
      sent.push_back(gen.AnyMessage(static_cast<int>(gen.Below(Gen::kMessageKinds))));
      REQUIRE(AppendFrame(sent.back(), &stream).ok());
    }
    FrameReader reader;
    std::vector<Message> received;
    std::size_t pos = 0;
    // The first round feeds one byte at a time (every boundary); the others use chunks from 1
    // byte (splitting the length prefix) to several frames at once.
    const bool bytewise = round == 0;
    while (pos < stream.size()) {
      const std::size_t n =
          bytewise ? 1
                   : std::min<std::size_t>(stream.size() - pos,
                                           gen.Coin() ? gen.Below(6) + 1 : gen.Below(4000) + 1);
      reader.Append(std::string_view(stream).substr(pos, n));
      pos += n;
      std::string frame;
      bool ready = false;
      while (true) {
        REQUIRE(reader.Next(&frame, &ready).ok());
        if (!ready) break;
        Message m;
        REQUIRE(DecodeMessage(frame, &m).ok());
        received.push_back(std::move(m));
      }
    }
    REQUIRE(reader.buffered_bytes() == 0);
    REQUIRE(received == sent);
  }
}

TEST_CASE("a frame prefix above the limit makes the stream bad for good", "[codec]") {
  FrameReader reader;
  const std::uint32_t n = kMaxFrameBytes + 1;
  const char prefix[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  reader.Append(std::string_view(prefix, 4));
  std::string frame = "unchanged";
  bool ready = true;
  Status s = reader.Next(&frame, &ready);
  CHECK(s.code() == Code::kResourceExhausted);
  CHECK_FALSE(ready);
  CHECK(frame == "unchanged");

  // Valid frames after it are not trusted: the boundaries are lost.
  std::string good;
  REQUIRE(AppendFrame(Ack{}, &good).ok());
  reader.Append(good);
  s = reader.Next(&frame, &ready);
  CHECK(s.code() == Code::kResourceExhausted);
  CHECK_FALSE(ready);
}

TEST_CASE("a frame of exactly the limit is accepted by the reader", "[codec]") {
  FrameReader reader;
  const std::uint32_t n = kMaxFrameBytes;
  const char prefix[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  reader.Append(std::string_view(prefix, 4));
  std::string frame;
  bool ready = true;
  REQUIRE(reader.Next(&frame, &ready).ok());
  CHECK_FALSE(ready);  // waiting for the body
  reader.Append(std::string(kMaxFrameBytes, 'x'));
  REQUIRE(reader.Next(&frame, &ready).ok());
  CHECK(ready);
  CHECK(frame.size() == kMaxFrameBytes);
}

TEST_CASE("oversized messages are refused on both sides", "[codec]") {
  // ~40 000 ops with 255-byte keys: about 11 MB, well past the limit.
  std::vector<Op> ops;
  for (Seq i = 1; i <= 40000; ++i) {
    Op op;
    op.dot = Dot{0, i};
    op.hlc = Hlc{i};
    op.kind = OpKind::kDebit;
    op.account = "a" + std::to_string(i);
    op.amount = 1;
    op.key = std::string(kMaxIdempotencyKeyBytes, 'k');
    op.key.replace(0, std::to_string(i).size(), std::to_string(i));
    ops.push_back(std::move(op));
  }
  std::string out = "untouched";
  CHECK(EncodeMessage(OpBatch{ops}, &out).code() == Code::kResourceExhausted);
  CHECK(out == "untouched");
  CHECK(AppendFrame(OpBatch{ops}, &out).code() == Code::kResourceExhausted);
  CHECK(out == "untouched");

  Message m;
  CHECK(DecodeMessage(std::string(kMaxFrameBytes + 1, '\0'), &m).code() ==
        Code::kResourceExhausted);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

TEST_CASE("every truncation of an envelope is refused", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int kind = 0; kind < Gen::kMessageKinds; ++kind) {
    const std::string bytes = Encoded(gen.AnyMessage(kind));
    INFO("kind " << kind << " size " << bytes.size());
    // The body is one length-delimited field, so every strict prefix breaks it.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix " << n);
      ExpectRefused(bytes.substr(0, n));
    }
  }
}

TEST_CASE("truncated and bit-flipped storage records never crash", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int i = 0; i < 20; ++i) {
    const std::string records[] = {EncodeOp(gen.AnyOp()), EncodeKeyRecord(gen.AnyKeyRecord()),
                                   EncodeCheckpoint(gen.Checkpoint()),
                                   EncodeVersionVector(gen.Vv())};
    for (const std::string& r : records) {
      for (std::size_t n = 0; n <= r.size(); n += 1 + r.size() / 50) {
        std::string b = r.substr(0, n);
        if (!b.empty() && gen.Coin())
          b[gen.Below(b.size())] ^= static_cast<char>(1 << gen.Below(8));
        Op op;
        KeyRecord k;
        AccountCheckpoint c;
        VersionVector vv;
        // Either refused or a value that passes validation (and so encodes to a valid record).
        if (DecodeOp(b, &op).ok()) REQUIRE(DecodeOp(EncodeOp(op), &op).ok());
        if (DecodeKeyRecord(b, &k).ok()) REQUIRE(DecodeKeyRecord(EncodeKeyRecord(k), &k).ok());
        if (DecodeCheckpoint(b, &c).ok()) REQUIRE(DecodeCheckpoint(EncodeCheckpoint(c), &c).ok());
        (void)DecodeVersionVector(b, &vv);
      }
    }
  }
}

TEST_CASE("random garbage never crashes and is almost always refused", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  int refused = 0;
  const int kTries = 20000;
  for (int i = 0; i < kTries; ++i) {
    const std::string bytes = gen.Bytes(i % 2 ? 16 : 400);
    Message m;
    const Status s = DecodeMessage(bytes, &m);
    if (!s.ok()) {
      ++refused;
      CHECK((s.code() == Code::kCorruption || s.code() == Code::kResourceExhausted));
    } else {
      // Whatever got through is valid: it encodes, and decodes back to itself.
      Message again;
      REQUIRE(DecodeMessage(Encoded(m), &again).ok());
      REQUIRE(again == m);
    }
    AccountCheckpoint c;
    Op op;
    KeyRecord k;
    VersionVector vv;
    (void)DecodeCheckpoint(bytes, &c);
    (void)DecodeOp(bytes, &op);
    (void)DecodeKeyRecord(bytes, &k);
    (void)DecodeVersionVector(bytes, &vv);
  }
  CHECK(refused > kTries * 9 / 10);
}

TEST_CASE("bit flips in valid envelopes never crash", "[codec]") {
  const std::uint64_t seed = Seed();
  INFO("rng-seed " << seed);
  Gen gen(seed);
  for (int i = 0; i < 600; ++i) {
    std::string bytes = Encoded(gen.AnyMessage(i % Gen::kMessageKinds));
    const int flips = 1 + static_cast<int>(gen.Below(4));
    for (int f = 0; f < flips; ++f)
      bytes[gen.Below(bytes.size())] ^= static_cast<char>(1 << gen.Below(8));
    Message m;
    if (DecodeMessage(bytes, &m).ok()) {
      Message again;
      REQUIRE(DecodeMessage(Encoded(m), &again).ok());
      REQUIRE(again == m);
    }
  }
}

TEST_CASE("an empty envelope or an unknown body is refused", "[codec]") {
  ExpectRefused("");
  // Field 7 (not a body this build knows), length-delimited, holding an empty message.
  ExpectRefused(std::string("\x3a\x00", 2));
  // A known body field with the wrong wire type (varint instead of length-delimited).
  ExpectRefused(std::string("\x08\x01", 2));
}

TEST_CASE("unknown fields are tolerated", "[codec]") {
  const Message hello = Hello{"prod-eu", kProtocolVersion, 2, VersionVector{}};
  std::string bytes = Encoded(hello);
  // A field a newer build might add to the envelope: number 99, varint 7.
  bytes += std::string("\x98\x06\x07", 3);
  // And one inside the Hello itself, added through the protobuf API.
  pb::Envelope env;
  REQUIRE(env.ParseFromString(bytes));
  env.mutable_hello()->GetReflection()->MutableUnknownFields(env.mutable_hello())->AddVarint(50, 1);
  env.mutable_hello()
      ->GetReflection()
      ->MutableUnknownFields(env.mutable_hello())
      ->AddLengthDelimited(51, "future");
  for (const std::string& b : {bytes, Serialized(env)}) {
    Message back;
    const Status s = DecodeMessage(b, &back);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(back == hello);
  }
  // Unknown fields in a stored op too.
  Op op;
  op.dot = Dot{0, 1};
  op.kind = OpKind::kCredit;
  op.account = "a";
  op.amount = 5;
  Op back;
  REQUIRE(DecodeOp(EncodeOp(op) + std::string("\x98\x06\x07", 3), &back).ok());
  CHECK(back == op);
}

TEST_CASE("region ids out of range are refused", "[codec]") {
  Hello hello{"c", kProtocolVersion, kMaxRegions, VersionVector{}};
  std::string out;
  CHECK(EncodeMessage(hello, &out).code() == Code::kInvalidArgument);

  pb::Envelope env;
  env.mutable_hello()->set_cluster_id("c");
  env.mutable_hello()->set_region(kMaxRegions);
  ExpectRefused(Serialized(env));
  env.mutable_hello()->set_region(kMaxRegions - 1);
  Message m;
  CHECK(DecodeMessage(Serialized(env), &m).ok());

  pb::Envelope batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->set_origin(kMaxRegions);
  ExpectRefused(Serialized(batch));

  batch = DebitBatch();
  pb::CompactOp* op = batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0);
  op->set_kind(pb::OP_KIND_RIGHTS);
  op->clear_key();
  op->set_to(kMaxRegions);
  ExpectRefused(Serialized(batch));
  op->set_to(1);  // the origin itself
  ExpectRefused(Serialized(batch));
  op->set_to(2);
  CHECK(DecodeMessage(Serialized(batch), &m).ok());

  pb::Envelope hb;
  auto* e = hb.mutable_heartbeat()->add_entries();
  e->set_origin(kMaxRegions);
  ExpectRefused(Serialized(hb));

  // Fences (Hello, Heartbeat, Snapshot): a region id out of range, epoch 0, or more than 32 per
  // possible region.
  for (int which = 0; which < 3; ++which) {
    pb::Envelope with_fence;
    pb::Fence* f = which == 0   ? with_fence.mutable_hello()->add_fences()
                   : which == 1 ? with_fence.mutable_heartbeat()->add_fences()
                                : with_fence.mutable_snapshot()->add_fences();
    if (which == 0) with_fence.mutable_hello()->set_cluster_id("c");
    f->set_origin(kMaxRegions);
    f->set_epoch(1);
    ExpectRefused(Serialized(with_fence));
    f->set_origin(0);
    f->set_epoch(0);
    ExpectRefused(Serialized(with_fence));
    f->set_epoch(1);
    CHECK(DecodeMessage(Serialized(with_fence), &m).ok());
  }
  pb::Envelope many;
  for (std::size_t i = 0; i <= kMaxRegions * kMaxFencesPerRegion; ++i) {
    pb::Fence* f = many.mutable_heartbeat()->add_fences();
    f->set_origin(0);
    f->set_epoch(i + 1);
  }
  ExpectRefused(Serialized(many));
  pb::FenceList stored;  // the same list as a store's fence record
  *stored.mutable_fences() = many.heartbeat().fences();
  std::vector<Fence> fences;
  CHECK(DecodeFences(stored.SerializeAsString(), &fences).code() == Code::kCorruption);

  // Epochs per region (a heartbeat's, a relayed holds entry's): more than regions can exist.
  pb::Envelope epochs;
  for (RegionId r = 0; r <= kMaxRegions; ++r) epochs.mutable_heartbeat()->add_epochs(r + 1);
  ExpectRefused(Serialized(epochs));
  epochs.mutable_heartbeat()->mutable_epochs()->RemoveLast();
  CHECK(DecodeMessage(Serialized(epochs), &m).ok());
  pb::HoldsEntry* held = epochs.mutable_heartbeat()->add_holds();
  for (RegionId r = 0; r <= kMaxRegions; ++r) held->add_epochs(r + 1);
  ExpectRefused(Serialized(epochs));
  held->mutable_epochs()->RemoveLast();
  CHECK(DecodeMessage(Serialized(epochs), &m).ok());
  std::string encoded;
  Heartbeat too_many;
  too_many.epochs.assign(kMaxRegions + 1, 1);
  CHECK(EncodeMessage(too_many, &encoded).code() == Code::kInvalidArgument);

  pb::Envelope ack;
  for (RegionId r = 0; r <= kMaxRegions; ++r) ack.mutable_ack()->mutable_applied()->add_seqs(1);
  ExpectRefused(Serialized(ack));
  VersionVector vv;
  CHECK(DecodeVersionVector(ack.ack().applied().SerializeAsString(), &vv).code() ==
        Code::kCorruption);
}

TEST_CASE("zero, negative and overflowing amounts are refused", "[codec]") {
  for (Amount bad : {Amount{0}, Amount{-1}, INT64_MIN, kMaxOpAmount + 1, INT64_MAX}) {
    INFO("amount " << bad);
    std::string out;
    CHECK(EncodeMessage(RightsRequest{"acct", bad}, &out).code() == Code::kInvalidArgument);
    Op op;
    op.dot = Dot{0, 1};
    op.kind = OpKind::kDebit;
    op.account = "acct";
    op.amount = bad;
    CHECK(EncodeMessage(OpBatch{{op}}, &out).code() == Code::kInvalidArgument);
    Op back;
    CHECK(DecodeOp(EncodeOp(op), &back).code() == Code::kCorruption);

    // On the wire the amount is a uint64: a negative core value shows up as a huge one.
    pb::Envelope batch = DebitBatch();
    batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->set_amount(
        static_cast<std::uint64_t>(bad));
    ExpectRefused(Serialized(batch));
    pb::Envelope rr;
    rr.mutable_rights_request()->set_account("acct");
    rr.mutable_rights_request()->set_amount(static_cast<std::uint64_t>(bad));
    ExpectRefused(Serialized(rr));
  }
  pb::Envelope batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->set_amount(kMaxOpAmount);
  Message m;
  CHECK(DecodeMessage(Serialized(batch), &m).ok());
}

TEST_CASE("bad account ids, keys and cluster ids are refused", "[codec]") {
  const std::string too_long_id(kMaxAccountIdBytes + 1, 'a');
  const std::string too_long_key(kMaxIdempotencyKeyBytes + 1, 'k');
  for (const std::string& id :
       {std::string(), too_long_id, std::string("has space"), std::string("slash/no"),
        std::string("caf\xc3\xa9"), std::string("nul\0x", 5)}) {
    INFO("account id '" << id << "'");
    pb::Envelope batch = DebitBatch();
    batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->set_account(id);
    ExpectRefused(Serialized(batch));
    std::string out;
    CHECK(EncodeMessage(RightsRequest{id, 1}, &out).code() == Code::kInvalidArgument);
  }
  for (const std::string& key : {too_long_key, std::string("has space"), std::string("tab\tkey"),
                                 std::string("\x7f"), std::string("\xff\xfe")}) {
    INFO("key '" << key << "'");
    pb::Envelope batch = DebitBatch();
    batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->set_key(key);
    ExpectRefused(Serialized(batch));
  }
  // A key record must carry a key (its hash).
  KeyRecord k;
  k.account = "a";
  k.dot = Dot{0, 1};
  k.amount = 1;
  KeyRecord back;
  CHECK(DecodeKeyRecord(EncodeKeyRecord(k), &back).code() == Code::kCorruption);

  std::string out;
  CHECK_FALSE(EncodeMessage(Hello{"", 1, 0, {}}, &out).ok());
  CHECK_FALSE(EncodeMessage(Hello{std::string(kMaxClusterIdBytes + 1, 'c'), 1, 0, {}}, &out).ok());
  CHECK_FALSE(EncodeMessage(Hello{"two words", 1, 0, {}}, &out).ok());
}

TEST_CASE("unknown enum values and broken batch structure are refused", "[codec]") {
  pb::Envelope batch = DebitBatch();
  pb::CompactOp* op = batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0);
  op->set_kind(static_cast<pb::OpKind>(10));
  ExpectRefused(Serialized(batch));
  // A budget debit without payers, with five, with one named twice, paying from itself alone, or
  // referring past the batch's list of ids; payers on a plain debit. The op is the batch's first:
  // its account is id 0 of the list, a payer it names is id 1.
  op->set_kind(pb::OP_KIND_BUDGET_DEBIT);
  ExpectRefused(Serialized(batch));
  for (const char* p : {"a1", "a2", "a3", "a4", "a5"}) op->add_payer_names(p);
  for (std::uint32_t ref = 1; ref <= 5; ++ref) op->add_payer_refs(ref);
  ExpectRefused(Serialized(batch));
  op->clear_payer_names();
  op->clear_payer_refs();
  op->add_payer_names("a1");
  op->add_payer_refs(1);
  op->add_payer_refs(1);
  ExpectRefused(Serialized(batch));
  op->clear_payer_refs();
  op->add_payer_refs(0);
  ExpectRefused(Serialized(batch));
  op->clear_payer_refs();
  op->add_payer_refs(2);  // only ids 0 and 1 are named
  ExpectRefused(Serialized(batch));
  op->clear_payer_names();
  op->clear_payer_refs();
  op->add_payer_names("org-1");
  op->add_payer_refs(1);
  {
    Message ok;
    CHECK(DecodeMessage(Serialized(batch), &ok).ok());
    REQUIRE(std::holds_alternative<OpBatch>(ok));
    CHECK(std::get<OpBatch>(ok).ops[0].payers == std::vector<std::string>{"org-1"});
  }
  op->set_kind(pb::OP_KIND_DEBIT);
  ExpectRefused(Serialized(batch));
  op->set_kind(pb::OP_KIND_UNSPECIFIED);
  ExpectRefused(Serialized(batch));

  batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->set_account_ref(
      0);  // nothing named yet
  ExpectRefused(Serialized(batch));
  batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->clear_account_name();
  ExpectRefused(Serialized(batch));

  batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->set_first_seq(0);
  ExpectRefused(Serialized(batch));
  batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->set_first_seq(UINT64_MAX);
  *batch.mutable_op_batch()->mutable_runs(0)->add_ops() =
      batch.op_batch().runs(0).ops(0);  // seq would wrap past UINT64_MAX
  ExpectRefused(Serialized(batch));

  // A config on a debit, and an open whose config names another account.
  batch = DebitBatch();
  batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0)->mutable_config()->set_id("x");
  ExpectRefused(Serialized(batch));
  batch = DebitBatch();
  op = batch.mutable_op_batch()->mutable_runs(0)->mutable_ops(0);
  op->set_kind(pb::OP_KIND_OPEN);
  op->set_amount(0);
  op->mutable_config()->set_id("someone-else");
  op->mutable_config()->set_currency("EUR");
  ExpectRefused(Serialized(batch));
  op->mutable_config()->set_id("acct-0000001");
  Message m;
  CHECK(DecodeMessage(Serialized(batch), &m).ok());
  op->mutable_config()->set_currency("eur");
  ExpectRefused(Serialized(batch));
  op->mutable_config()->set_currency("EUR");
  op->mutable_config()->set_overdraft_limit(100);
  op->mutable_config()->add_lines(60);
  op->mutable_config()->add_lines(50);  // lines sum past the limit
  ExpectRefused(Serialized(batch));
}

TEST_CASE("inconsistent checkpoints are refused", "[codec]") {
  Gen gen(Seed());
  const AccountCheckpoint good = gen.Checkpoint();
  pb::AccountCheckpoint p;
  REQUIRE(p.ParseFromString(EncodeCheckpoint(good)));
  auto refused = [&](const pb::AccountCheckpoint& bad) {
    std::string bytes;
    REQUIRE(bad.SerializeToString(&bytes));
    AccountCheckpoint c;
    const Status s = DecodeCheckpoint(bytes, &c);
    INFO(s.ToString());
    return s.code() == Code::kCorruption;
  };
  pb::AccountCheckpoint bad = p;
  bad.mutable_counters()->set_regions(kMaxRegions + 1);
  CHECK(refused(bad));
  bad = p;
  bad.mutable_counters()->add_credits(1);  // one entry too many
  CHECK(refused(bad));
  bad = p;
  bad.mutable_counters()->set_credits(0, static_cast<std::uint64_t>(kMaxCounter) + 1);
  CHECK(refused(bad));
  bad = p;
  bad.mutable_counters()->set_transfers(0, 1);  // T[0][0]: to itself
  CHECK(refused(bad));
  bad = p;
  bad.mutable_state()->add_fees(1);  // fees and voids disagree on the region count
  CHECK(refused(bad));
  bad = p;
  bad.add_events()->set_kind(static_cast<pb::DerivedKind>(7));
  CHECK(refused(bad));
  bad = p;
  bad.mutable_opened()->set_origin(kMaxRegions);
  CHECK(refused(bad));
  bad = p;
  bad.mutable_config()->set_id("");
  CHECK(refused(bad));
}

// ---------------------------------------------------------------------------------------------
// What a real cluster emits

TEST_CASE("everything a replica cluster sends and persists round-trips", "[codec][replica]") {
  using testing::Cluster;
  Cluster c(3, [](ReplicaOptions& o) { o.rights_wait_ms = 0; });
  std::size_t messages[Gen::kMessageKinds] = {};
  std::size_t ops = 0, keys = 0, checkpoints = 0, events = 0;
  c.observe = [&](RegionId, const Effects& e) {
    for (const Op& op : e.ops) {
      Op back;
      REQUIRE(DecodeOp(EncodeOp(op), &back).ok());
      REQUIRE(back == op);
      ++ops;
    }
    for (const KeyRecord& k : e.keys) {
      KeyRecord back;
      REQUIRE(DecodeKeyRecord(EncodeKeyRecord(k), &back).ok());
      REQUIRE(back == k);
      ++keys;
    }
    if (e.fold) {
      VersionVector floor;
      REQUIRE(DecodeVersionVector(EncodeVersionVector(e.fold->log_floor), &floor).ok());
      REQUIRE(floor == e.fold->log_floor);
      for (const AccountCheckpoint& cp : e.fold->checkpoints) {
        AccountCheckpoint back;
        const Status s = DecodeCheckpoint(EncodeCheckpoint(cp), &back);
        INFO(s.ToString());
        REQUIRE(s.ok());
        REQUIRE(back == cp);
        ++checkpoints;
        events += cp.events.size();
      }
    }
    for (const Outbound& o : e.send) {
      std::string frame;
      const Status s = AppendFrame(o.msg, &frame);
      INFO(s.ToString());
      REQUIRE(s.ok());
      FrameReader reader;
      reader.Append(frame);
      std::string body;
      bool ready = false;
      REQUIRE(reader.Next(&body, &ready).ok());
      REQUIRE(ready);
      Message back;
      REQUIRE(DecodeMessage(body, &back).ok());
      REQUIRE(back == o.msg);
      ++messages[o.msg.index()];
    }
  };
  for (RegionId r = 0; r < c.size(); ++r) {
    Effects e;
    c.at(r).OnConnected((r + 1) % c.size(), c.now, &e);
    c.Absorb(r, e);
  }
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{testing::Config("alice", 90, 25, 150)}).status.ok());
  REQUIRE(c.Run(1, OpenAccount{testing::Config("bob.smith:eu-1", 0)}).status.ok());
  REQUIRE(c.Run(0, Credit{"alice", 100, "deposit-1"}).status.ok());
  REQUIRE(c.Run(1, Credit{"bob.smith:eu-1", 5000, "deposit-2"}).status.ok());
  c.Settle(6);
  REQUIRE(c.Run(0, TransferRights{"alice", 2, 30}).status.ok());
  REQUIRE(c.Run(1, Debit{"bob.smith:eu-1", 1200, "order-1"}).status.ok());
  c.Settle(4);
  // A partition: concurrent overdraft debits and one key used at two regions.
  c.queue.clear();
  for (RegionId r = 0; r < c.size(); ++r) c.Run(r, Debit{"alice", 60, "pay-" + std::to_string(r)});
  c.Run(2, Debit{"bob.smith:eu-1", 10, "retried"});
  c.Run(0, Debit{"bob.smith:eu-1", 10, "retried"});
  c.Tick(2000);  // peers time out: later debits use the overdraft line
  c.queue.clear();
  c.Settle(20);
  REQUIRE(c.Converged("alice"));
  REQUIRE(c.Converged("bob.smith:eu-1"));

  CHECK(ops > 0);
  CHECK(keys > 0);
  CHECK(checkpoints > 0);
  CHECK(events > 0);       // the fee and the void reached a checkpoint
  CHECK(messages[0] > 0);  // Hello
  CHECK(messages[1] > 0);  // OpBatch
  CHECK(messages[3] > 0);  // Heartbeat
}

}  // namespace
}  // namespace tally::codec
