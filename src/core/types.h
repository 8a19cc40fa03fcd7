// The vocabulary of the core: regions, dots, version vectors, account configs and ops.
//
// Regions are a fixed, configured set numbered 0..n-1 (n <= kMaxRegions). Every change to the
// replicated state is an Op originated by exactly one region; its Dot (origin, seq) is unique and
// each origin numbers its ops 1, 2, 3, ... across all accounts. Ops are totally ordered everywhere
// by the canonical key (hlc, origin, seq). Plain values; no I/O, no protobuf.

#ifndef TALLY_CORE_TYPES_H_
#define TALLY_CORE_TYPES_H_

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/boxed.h"
#include "core/hlc.h"
#include "core/money.h"

namespace tally {

using RegionId = std::uint32_t;
using Seq = std::uint64_t;

inline constexpr RegionId kMaxRegions = 16;
// Fences a replica keeps per region (the newest ones; see Fence in core/messages.h).
inline constexpr std::size_t kMaxFencesPerRegion = 32;
inline constexpr std::uint32_t kProtocolVersion =
    3;  // 2: ops carry their epoch; fences. 3: promises too

struct Dot {
  RegionId origin = 0;
  Seq seq = 0;  // 0 means "no op"
  auto operator<=>(const Dot&) const = default;
  std::string ToString() const;  // "r1:42"
};

// The canonical order of ops: by HLC, then origin, then seq. Total and the same on every replica.
struct CanonicalKey {
  Hlc hlc;
  RegionId origin = 0;
  Seq seq = 0;
  auto operator<=>(const CanonicalKey&) const = default;
};

// An idempotency key as replicas remember it once its op is gone from memory: two independent
// 64-bit hashes of the key's bytes (FNV-1a and a murmur-style mix). A collision of both within one
// account is ~2^-64 at a billion keys, and keys are scoped per account, so a client could only ever
// collide with itself. Records and snapshots carry the hash, never the key: it is all a replica
// needs to answer a retry, and it is small.
struct KeyHash {
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  auto operator<=>(const KeyHash&) const = default;
};
KeyHash HashKey(std::string_view key);

// Per origin, the highest seq applied (contiguously) from that origin.
class VersionVector {
 public:
  VersionVector() { seqs_.fill(0); }
  Seq get(RegionId r) const { return seqs_[r]; }
  void set(RegionId r, Seq s) { seqs_[r] = s; }
  void JoinWith(const VersionVector& o) {
    for (RegionId r = 0; r < kMaxRegions; ++r)
      seqs_[r] = seqs_[r] > o.seqs_[r] ? seqs_[r] : o.seqs_[r];
  }
  // True when every entry of this is >= the matching entry of `o`.
  bool Dominates(const VersionVector& o) const {
    for (RegionId r = 0; r < kMaxRegions; ++r)
      if (seqs_[r] < o.seqs_[r]) return false;
    return true;
  }
  bool operator==(const VersionVector&) const = default;
  std::string ToString(RegionId regions) const;  // "[3,0,7]"

 private:
  std::array<Seq, kMaxRegions> seqs_;
};

struct FeePolicy {
  Amount flat = 0;        // charged once per overdraft episode
  std::uint32_t bps = 0;  // basis points of the overdrawn amount at the crossing debit
  bool operator==(const FeePolicy&) const = default;
};

// The account's policy, fixed when it is opened. The overdraft limit is split into per-region lines
// (lines.size() == region count, sum == overdraft_limit); see SplitOverdraft.
// Budgets (docs/design.md, "Budgets in a hierarchy"): an account may name a `parent` (open when it
// is opened, of its currency; a path of at most kMaxBudgetDepth accounts from a root). A `cap`
// account is a spending cap inside its parent's money: each debit of it debits its parent too, in
// the same op (and the parent's parent, while they are caps).
inline constexpr std::size_t kMaxBudgetDepth = 4;
struct AccountConfig {
  std::string id;
  std::string currency;  // ISO 4217 code, "EUR"
  Amount overdraft_limit = 0;
  std::vector<Amount> lines;
  FeePolicy fee;
  std::string parent;  // empty: a root
  bool cap = false;    // needs a parent
  bool operator==(const AccountConfig&) const = default;
};

// Splits `limit` into `regions` equal lines; the remainder goes to the lowest region ids.
std::vector<Amount> SplitOverdraft(Amount limit, RegionId regions);

enum class OpKind : std::uint8_t {
  kOpen = 1,      // creates the account with `config`
  kCredit = 2,    // P[origin] += amount
  kDebit = 3,     // N[origin] += amount
  kRights = 4,    // T[origin][to] += amount: rights handed from origin to `to`
  kTransfer = 5,  // money between accounts: N[origin] += amount on `account`, P[origin] += amount
                  // on `to_account`; one op, so atomic with nothing to lock
  kHold = 6,      // reserves `amount` of origin's rights on `account` until wall time `expires_ms`
  kCapture = 7,   // takes `amount` (<= `held`) of hold `hold`: N[hold.origin] += amount, whatever
                  // region originates it (the money was reserved there)
  kRelease = 8,   // gives hold `hold` back (a client's release, or the hold's region's at expiry)
  kBudgetDebit = 9,  // N[origin] += amount on every account of `payers` (a budget's path): a debit
                     // of `account` paid through its budgets; `account` owns the key
};
std::string_view OpKindName(OpKind k);

// A client's note on a credit, debit, transfer or hold (issue 14): a memo, and metadata as string
// pairs. Both are UTF-8 text without control characters (core/validate.h, ValidateMemo and
// ValidateMetadata). Metadata keeps the order the client sent its pairs in, and refuses a key
// given twice. The bounds keep an op's note under 1.3 KiB, so a gossip batch (max_batch_ops, 256)
// stays far below a frame whatever its notes; a snapshot, which carries every op still held, gets
// closer to its one-frame bound (docs/design.md, "Left out"). An op without a note costs no byte
// more on the wire or on disk.
using Metadata = std::vector<std::pair<std::string, std::string>>;
inline constexpr std::size_t kMaxMemoBytes = 140;
inline constexpr std::size_t kMaxMetadataPairs = 16;
inline constexpr std::size_t kMaxMetadataBytes = 1024;  // Σ key bytes + value bytes
// The kinds that may carry a note: the ops a client's credit, debit, transfer or hold makes.
bool MayCarryNote(OpKind k);

struct Op {
  Dot dot;
  Hlc hlc;
  OpKind kind = OpKind::kCredit;
  std::string account;
  Amount amount = 0;
  RegionId to = 0;         // kRights only
  std::string to_account;  // kTransfer only: the account credited (`account` is debited)
  std::string key;         // idempotency key; empty if none (rights moves, rebalancer, opens)
  bool overdraft = false;  // kDebit: accepted on the overdraft line (informational)
  // Holds (docs/design.md, "Two-phase holds"). A hold is named by its op's dot. Its resolutions
  // (capture, release) carry the hold's dot and amount, and HoldKey(hold) as their key, so the
  // canonically first resolution of a hold wins and any other is voided, by the key rule.
  std::uint64_t expires_ms = 0;  // kHold: the wall time from which it can no longer be captured
  Dot hold;                      // kCapture, kRelease: the hold
  Amount held = 0;               // kCapture, kRelease: the hold's amount
  bool expired = false;          // kRelease: originated by the hold's region at expiry
  // kBudgetDebit: the accounts debited, 1..kMaxBudgetDepth, distinct: the account that paid (the
  // one named, or the ancestor a fallback chose), then the parents it is a cap inside. `account`
  // is payers[0] or, for a fallback, not among them (it keeps the key, and a marker entry).
  std::vector<std::string> payers;
  Boxed<AccountConfig> config;  // kOpen only (out of line: most ops carry none)
  // The client's note (kCredit, kDebit, kTransfer, kHold, kBudgetDebit; docs/operations.md,
  // "Memo and metadata"): carried, stored and shown, never interpreted. Not part of the key's
  // identity: a retry with the same key and another memo replays the original op, memo and all.
  std::string memo;   // empty: none; at most kMaxMemoBytes
  Metadata metadata;  // in the order the client sent, keys distinct; see kMaxMetadataPairs
  // The incarnation of its origin that issued it (that region's Hello epoch then). Not part of
  // the op's content: it tells an op of a history its origin lost (a restored disk) from the op
  // the origin issued again under the same seq (see Fence).
  std::uint64_t epoch = 0;

  CanonicalKey canonical() const { return {hlc, dot.origin, dot.seq}; }
  bool operator==(const Op&) const = default;
};

// What an idempotency record keeps of a keyed op's target, so that a retry naming another target
// is refused as a reuse of the key rather than replayed: the region of a rights move, and for a
// transfer an 8-bit tag of the payee's id (AccountTag). The key index has 8 bits for it (issue 9's
// 64 bytes a key), so a retry naming another payee is caught with probability 255/256; a missed one
// is answered as a replay of the original transfer, whose answer names its payee. A replay moves
// no money either way.
inline constexpr std::uint32_t kAccountTagLimit = 256;
std::uint32_t AccountTag(std::string_view account);
RegionId KeyTarget(const Op& op);

// The idempotency key every resolution of hold `hold` carries: "~hold:<origin>:<seq>". Clients may
// not use keys that begin with kHoldKeyPrefix (the desk refuses them).
inline constexpr std::string_view kHoldKeyPrefix = "~hold:";
std::string HoldKey(Dot hold);
bool IsHoldResolution(OpKind k);  // kCapture or kRelease
// The kind a client's request had: a budget debit is a debit (its key answers a debit's retry).
OpKind RequestKind(OpKind k);

}  // namespace tally

#endif  // TALLY_CORE_TYPES_H_
