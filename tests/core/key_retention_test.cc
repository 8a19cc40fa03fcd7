// Idempotency key retention (issue 9, item 3): the windowed void rule, retries inside and past the
// window, forgetting keys once the stable frontier is past their last use + retention, restarts
// after that, and the memory a retained key costs.

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "cluster_fixture.h"
#include "core/key_index.h"
#include "test_seed.h"

namespace tally::testing {
namespace {

constexpr std::uint64_t kRetentionMs = 1000;

Cluster MakeCluster(RegionId n) {
  return Cluster(n, [](ReplicaOptions& o) { o.idempotency_retention_ms = kRetentionMs; });
}

std::vector<DerivedEvent> Voids(Replica& r, const std::string& account) {
  std::vector<DerivedEvent> all, voids;
  REQUIRE(r.DerivedEvents(account, &all).ok());
  for (const DerivedEvent& e : all)
    if (e.kind == DerivedKind::kVoid) voids.push_back(e);
  return voids;
}

// The reference: the rule applied in canonical order to a set of uses (hlc wall times).
std::vector<bool> ReferenceVoids(std::vector<KeyUse> uses) {
  std::sort(uses.begin(), uses.end(),
            [](const KeyUse& a, const KeyUse& b) { return a.canonical() < b.canonical(); });
  std::vector<bool> v;
  for (std::size_t i = 0; i < uses.size(); ++i)
    v.push_back(i > 0 && uses[i].hlc.wall_ms() - uses[i - 1].hlc.wall_ms() < kRetentionMs);
  return v;
}

TEST_CASE("KeyIndex: the windowed rule decides voids the same in any arrival order",
          "[core][keys]") {
  TALLY_INFO_SEED(0);
  std::mt19937_64 rng(CaseSeed(0));
  for (int round = 0; round < 300; ++round) {
    std::vector<KeyUse> uses;
    const int n = 2 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      KeyUse u;
      u.dot = Dot{static_cast<RegionId>(i % 3), static_cast<Seq>(i + 1)};
      u.hlc = Hlc::Make(1'000'000 + rng() % 4000, rng() % 3);
      u.kind = OpKind::kDebit;
      u.amount = 1 + i;
      uses.push_back(u);
    }
    std::vector<bool> want = ReferenceVoids(uses);
    std::vector<KeyUse> sorted = uses;
    std::sort(sorted.begin(), sorted.end(),
              [](const KeyUse& a, const KeyUse& b) { return a.canonical() < b.canonical(); });
    for (int perm = 0; perm < 4; ++perm) {
      std::shuffle(uses.begin(), uses.end(), rng);
      KeyIndex index(kRetentionMs);
      const KeyId id{7, 9, 0};
      std::map<Dot, bool> voided;
      for (const KeyUse& u : uses) {
        KeyIndex::Outcome o = index.AddUse(id, u, VoidRule::kWindow);
        REQUIRE_FALSE(o.known);
        voided[u.dot] = o.voided;
        if (o.voids_next) {
          REQUIRE_FALSE(voided.at(o.next.dot));
          voided[o.next.dot] = true;
        }
      }
      for (std::size_t i = 0; i < sorted.size(); ++i) {
        INFO("round " << round << " use " << i);
        REQUIRE(voided.at(sorted[i].dot) == want[i]);
      }
      // The binding is the latest unvoided use; the last use the latest of all.
      KeyIndex::State st;
      REQUIRE(index.Find(id, &st));
      REQUIRE(st.last_use == sorted.back().hlc);
      for (std::size_t i = sorted.size(); i-- > 0;) {
        if (!want[i]) {
          REQUIRE(st.binding.dot == sorted[i].dot);
          break;
        }
      }
    }
  }
}

TEST_CASE("a key reused past the window is a new op everywhere, and within it a duplicate",
          "[core][keys]") {
  // Fails on code without retention: every later use of a key was voided, however late.
  std::uint64_t digest = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Cluster c = MakeCluster(3);
    REQUIRE(c.Run(0, OpenAccount{Config("acct")}).status.ok());
    c.Settle();
    // Nothing is delivered from here until every use is made: a partition of all three.
    const CommandResult a = c.Run(0, Credit{"acct", 100, "k"});
    c.now += kRetentionMs + 500;  // past the window of r0's use
    const CommandResult b = c.Run(1, Credit{"acct", 10, "k"});
    c.now += kRetentionMs / 2;  // inside the window of r1's use, not of r0's
    const CommandResult d = c.Run(2, Credit{"acct", 1, "k"});
    REQUIRE((a.status.ok() && b.status.ok() && d.status.ok()));
    REQUIRE_FALSE((a.replayed || b.replayed || d.replayed));
    std::mt19937_64 rng(seed);
    c.Scramble(rng, 0.3);
    c.Deliver();
    c.Settle();
    REQUIRE(c.Converged("acct"));
    for (RegionId r = 0; r < 3; ++r) {
      std::vector<DerivedEvent> v = Voids(c.at(r), "acct");
      REQUIRE(v.size() == 1);
      REQUIRE(v[0].op.origin == 2);
      REQUIRE(v[0].amount == -1);
      AccountView view;
      REQUIRE(c.at(r).GetAccount("acct", &view).ok());
      REQUIRE(view.balance == 110);
    }
    AccountView view;
    REQUIRE(c.at(0).GetAccount("acct", &view).ok());
    if (seed > 1) REQUIRE(view.digest == digest);  // whatever the arrival order
    digest = view.digest;
  }
}

TEST_CASE("a retry inside the window replays, and past it is a new op in every region",
          "[core][keys]") {
  Cluster c = MakeCluster(3);
  REQUIRE(c.Run(0, OpenAccount{Config("acct")}).status.ok());
  c.Settle(4);
  const CommandResult first = c.Run(0, Credit{"acct", 100, "k"});
  REQUIRE(first.status.ok());
  c.Settle(2);  // gossiped: 100 ms
  c.now += kRetentionMs / 2;
  for (RegionId r = 0; r < 3; ++r) {
    const CommandResult again = c.Run(r, Credit{"acct", 100, "k"});
    INFO("region " << r << " op " << again.op.ToString() << " first " << first.op.ToString());
    REQUIRE(again.status.ok());
    REQUIRE(again.replayed);
    REQUIRE(again.op == first.op);
    // Another body inside the window is a reused key.
    REQUIRE(c.Run(r, Credit{"acct", 5, "k"}).status.code() == Code::kIdempotencyKeyReused);
  }
  c.now += kRetentionMs;  // past the window of the last use; the index may still hold the key
  const CommandResult later = c.Run(1, Credit{"acct", 100, "k"});
  REQUIRE(later.status.ok());
  REQUIRE_FALSE(later.replayed);
  REQUIRE(later.op != first.op);
  c.Settle();
  REQUIRE(c.Converged("acct"));
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(Voids(c.at(r), "acct").empty());
    AccountView v;
    REQUIRE(c.at(r).GetAccount("acct", &v).ok());
    REQUIRE(v.balance == 200);
  }
}

// Found by the simulator (tally-sim run --seed 8): a key used by a transfer at two regions is
// stored with both uses, each carrying the payee's 8-bit tag as its target; KeyIndex::Load bounded
// every use's target by the region count, so the region refused its own store on restart.
TEST_CASE("KeyIndex: a stored key with two transfer uses loads back, payee tag and all",
          "[core][keys]") {
  KeyIndex keys(kRetentionMs);
  const KeyId id = MakeKeyId(0, "order-1");
  const std::uint32_t tag = 200;  // any tag >= kMaxRegions
  KeyRecord r;
  r.account = "payer";
  r.key = HashKey("order-1");
  r.dot = Dot{1, 7};
  r.hlc = Hlc::Make(1000, 0);
  r.kind = OpKind::kTransfer;
  r.amount = 5;
  r.to = tag;
  r.last_use = Hlc::Make(1100, 0);
  r.uses = {KeyUse{Dot{1, 7}, Hlc::Make(1000, 0), OpKind::kTransfer, 5, tag, false, 0, false},
            KeyUse{Dot{2, 9}, Hlc::Make(1100, 0), OpKind::kTransfer, 5, tag, false, 0, true}};
  REQUIRE(keys.Load(id, r));
  KeyIndex::State st;
  REQUIRE(keys.Find(id, &st));
  CHECK(st.binding.to == tag);
  CHECK(st.binding.dot == (Dot{1, 7}));
  CHECK(st.multi);
  // A rights move's target is still a region.
  r.uses[0].kind = r.uses[1].kind = OpKind::kRights;
  CHECK_FALSE(keys.Load(MakeKeyId(0, "move-1"), r));
}

// Every op kind survives the index's 3-bit kind, the open too: holds took the last values, and
// a peer's open may carry a key (ValidateOp allows it), which an earlier packing asserted on.
TEST_CASE("KeyIndex: every op kind round-trips through a binding", "[core][keys]") {
  KeyIndex keys(kRetentionMs);
  for (int k = static_cast<int>(OpKind::kOpen); k <= static_cast<int>(OpKind::kRelease); ++k) {
    const OpKind kind = static_cast<OpKind>(k);
    INFO(OpKindName(kind));
    const KeyId id = MakeKeyId(0, "key-" + std::to_string(k));
    const KeyUse use{Dot{1, 7}, Hlc::Make(1000, 0), kind, kMaxOpAmount, 3, false, 0, false};
    keys.AddUse(id, use, VoidRule::kWindow);
    KeyIndex::State st;
    REQUIRE(keys.Find(id, &st));
    CHECK(st.binding.kind == kind);
    CHECK(st.binding.amount == kMaxOpAmount);
    CHECK(st.binding.to == 3);
  }
}

TEST_CASE("keys are forgotten once the frontier passes their last use + retention",
          "[core][keys]") {
  Cluster c = MakeCluster(3);
  REQUIRE(c.Run(0, OpenAccount{Config("acct")}).status.ok());
  c.Settle(4);
  for (int i = 0; i < 50; ++i) {
    REQUIRE(c.Run(static_cast<RegionId>(i % 3), Credit{"acct", 1, "k" + std::to_string(i)})
                .status.ok());
  }
  c.Settle(4);  // 200 ms: final, not yet past the window
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(c.at(r).stats().idempotency_keys == 50);
    REQUIRE(c.stores[r].keys.size() == 50);
  }
  c.Settle(60);  // 3 s: past the window and a checkpoint interval
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(c.at(r).stats().idempotency_keys == 0);
    REQUIRE(c.at(r).stats().idempotency_keys_expired == 50);
    REQUIRE(c.stores[r].keys.empty());  // the host deleted the records
  }
  // A restart after expiry: the store has no records, the key is new in every region alike.
  REQUIRE(c.Restart(1).ok());
  const CommandResult again = c.Run(1, Credit{"acct", 1, "k3"});
  REQUIRE(again.status.ok());
  REQUIRE_FALSE(again.replayed);
  c.Settle();
  REQUIRE(c.Converged("acct"));
  for (RegionId r = 0; r < 3; ++r) REQUIRE(Voids(c.at(r), "acct").empty());
}

TEST_CASE("a restart with a duplicate above the frontier keeps agreement", "[core][keys]") {
  // r0 and r2 use the key inside one window while cut off; r0 restarts from its store (its record
  // lists both uses once r2's arrives) and every replica still voids the same one.
  Cluster c = MakeCluster(3);
  REQUIRE(c.Run(0, OpenAccount{Config("acct")}).status.ok());
  c.Settle(4);
  REQUIRE(c.Run(2, Credit{"acct", 7, "k"}).status.ok());
  c.now += 10;
  REQUIRE(c.Run(0, Credit{"acct", 5, "k"}).status.ok());
  c.Tick(10);
  c.Deliver([](RegionId from, RegionId to) { return !(from == 0 && to == 2); });
  REQUIRE(c.Restart(0).ok());
  c.Settle(8);  // 400 ms: still inside the window
  REQUIRE(c.Converged("acct"));
  for (RegionId r = 0; r < 3; ++r) {
    std::vector<DerivedEvent> v = Voids(c.at(r), "acct");
    REQUIRE(v.size() == 1);
    REQUIRE(v[0].op.origin == 0);
  }
  // r0's own voided op is still answered as such, inside the window.
  const CommandResult retry = c.Run(0, Credit{"acct", 5, "k"});
  REQUIRE(retry.replayed);
  REQUIRE(retry.voided);
  // Past the window everything is forgotten, displaced record included, in store and memory.
  c.Settle(60);
  for (RegionId r = 0; r < 3; ++r) {
    REQUIRE(c.at(r).stats().idempotency_keys == 0);
    REQUIRE(c.stores[r].keys.empty());
  }
  REQUIRE(c.Restart(2).ok());
  c.Settle();
  REQUIRE(c.Converged("acct"));
}

TEST_CASE("a retained key costs at most 64 bytes, and memory stays flat past the window",
          "[core][keys]") {
  REQUIRE(sizeof(KeyIndex::Dense) == 52);
  KeyIndex index(kRetentionMs);
  // Steady load: 50 keyed ops per ms of virtual time, each a new key; the frontier trails by 50 ms
  // and a sweep runs every 10 ms (the replica sweeps every checkpoint interval, 1 s against a
  // window of 24 h, so its index breathes far less than this one).
  constexpr std::uint32_t kPerMs = 50;
  constexpr std::uint64_t kSweepMs = 10;
  std::size_t low = SIZE_MAX, high = 0, dropped = 0;
  double worst_bytes_per_key = 0;
  for (std::uint64_t ms = 1; ms <= 5 * kRetentionMs; ++ms) {
    for (std::uint32_t i = 0; i < kPerMs; ++i) {
      KeyUse u;
      u.dot = Dot{0, ms * kPerMs + i};
      u.hlc = Hlc::Make(1'000'000 + ms, i);
      u.kind = OpKind::kDebit;
      u.amount = 1;
      index.AddUse(KeyId{ms * 7919 + i * 104729, ms + i, i % 5}, u, VoidRule::kWindow);
    }
    if (ms % kSweepMs == 0) {
      index.Sweep(
          Hlc::Make(1'000'000 + ms - 50, 0), [&](const KeyId&) { ++dropped; }, [](const KeyId&) {});
      if (ms > 2 * kRetentionMs) {
        low = std::min(low, index.size());
        high = std::max(high, index.size());
        const double per_key = static_cast<double>(index.MemoryBytes()) / index.size();
        worst_bytes_per_key = std::max(worst_bytes_per_key, per_key);
      }
    }
  }
  INFO("keys " << low << ".." << high << ", at most " << worst_bytes_per_key << " bytes a key");
  REQUIRE(dropped > 0);
  REQUIRE(worst_bytes_per_key <= 64);
  // Flat: the index holds one window of keys plus the frontier lag and one sweep period.
  REQUIRE(high <= kPerMs * (kRetentionMs + 50 + kSweepMs));
  REQUIRE(high - low <= kPerMs * kSweepMs);
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

TEST_CASE("a peer that keeps keys for another retention is refused", "[core][keys]") {
  // The retention decides voids: regions with different values would disagree for good.
  Cluster c = MakeCluster(2);
  Hello h = c.at(1).HelloTo(0, VersionVector{});
  REQUIRE(h.retention_ms == kRetentionMs);
  REQUIRE(c.at(0).CheckHello(h).ok());
  h.retention_ms = kRetentionMs + 1;
  REQUIRE(c.at(0).CheckHello(h).code() == Code::kFailedPrecondition);
  h.retention_ms = 0;  // an older peer says nothing: not checked
  REQUIRE(c.at(0).CheckHello(h).ok());
}

}  // namespace
}  // namespace tally::testing
