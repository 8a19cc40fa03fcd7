// Messages regions exchange. The core produces and consumes these plain structs; the codec layer
// (src/codec) turns them into protobuf frames for tallyd, and the simulator carries them as values.
//
// The contract asked of a transport is deliberately weak: a message may be lost, duplicated,
// delayed or reordered. Every message is safe to apply twice or never.

#ifndef TALLY_CORE_MESSAGES_H_
#define TALLY_CORE_MESSAGES_H_

#include <string>
#include <variant>
#include <vector>

#include "core/counters.h"
#include "core/reconcile.h"
#include "core/types.h"

namespace tally {

// First message on every connection. A peer from another cluster, with another protocol version,
// or with an unknown region id is refused.
// A region's resume point: incarnation `epoch` of region `origin` issues its own ops from seq
// resumed_from + 1 on. Its ops of an earlier incarnation above resumed_from belong to a history
// it lost (they were never given back when it rejoined); every replica refuses them, and one that
// applied such an op before it heard of the fence removes it (docs/design.md, "Fences").
struct Fence {
  RegionId origin = 0;
  std::uint64_t epoch = 0;
  Seq resumed_from = 0;
  bool operator==(const Fence&) const = default;
};

struct Hello {
  std::string cluster_id;
  std::uint32_t protocol_version = kProtocolVersion;
  RegionId region = 0;
  VersionVector applied;         // what the sender holds: the receiver sends what it lacks
  std::uint64_t epoch = 0;       // the sender's incarnation (an HLC taken at its start)
  std::uint64_t peer_epoch = 0;  // the receiver's epoch as the sender last heard it
  bool rejoining = false;        // the sender restarted and waits for an answer to its epoch
  std::uint64_t clock = 0;       // the sender's HLC (never above its persisted high-water mark)
  std::vector<Fence> fences;     // every fence the sender knows, of every region
  bool needs_snapshot = false;   // the sender holds folded ops of a lost history: send a snapshot
  // The sender's idempotency retention: it decides voids, so it must be the same in every region
  // (0: not said, from an older sender).
  std::uint64_t retention_ms = 0;
  bool operator==(const Hello&) const = default;
};

// Ops of any origins (relayed ones included); per origin in increasing seq.
struct OpBatch {
  std::vector<Op> ops;
  bool operator==(const OpBatch&) const = default;
};

// What the sender has applied (and synced): the receiver stops sending those ops.
struct Ack {
  VersionVector applied;
  // The receiver's newest epoch whose fence the sender knew when it wrote this ack, as the receiver
  // itself sent it (0: none); not one an op implied, whose resume point may be above the real one.
  // A claim about the receiver's own ops above its resume point is believed only from a sender
  // that knew the fence: before, it may hold ops of the receiver's lost history under those seqs.
  std::uint64_t fence_epoch = 0;
  bool operator==(const Ack&) const = default;
};

// Origin `origin`, in its incarnation `epoch`, promises: none of my ops after seq `seq` has a
// timestamp below `hlc`. A promise binds only the incarnation that made it: a later one (a restart
// on a restored disk, its clock behind) may issue below it.
struct HeartbeatEntry {
  RegionId origin = 0;
  Hlc hlc;
  Seq seq = 0;
  std::uint64_t epoch = 0;
  bool operator==(const HeartbeatEntry&) const = default;
};

// What region `region`, in its incarnation `epoch`, last said it holds (relayed in heartbeats, so
// that pruning and ops_behind see what a region holds by any route), with the newest epoch it
// knew of every region and its HLC when it said so: a rejoining region whose current epoch it
// knew takes the entry as that region's answer, relayed (docs/design.md, "Rejoining").
struct HoldsEntry {
  RegionId region = 0;
  std::uint64_t epoch = 0;
  VersionVector applied;
  std::vector<std::uint64_t> epochs;  // per region id (missing: 0)
  std::uint64_t clock = 0;
  bool operator==(const HoldsEntry&) const = default;
};

// The sender's own promise plus the newest it knows from every other origin (relayed, so a partial
// partition does not stall finality), its applied vector (doubles as an ack), and what it knows the
// other regions hold.
struct Heartbeat {
  std::vector<HeartbeatEntry> entries;
  VersionVector applied;
  std::vector<HoldsEntry> holds;  // at most one per region
  std::vector<Fence> fences;      // every fence the sender knows, of every region
  // The newest epoch the sender knows of every region (its own: its current one, also while it
  // rejoins), per region id, and its HLC: relayed so that a region that cannot hear a restarted
  // one learns of its new incarnation, and the epochs it knew go with what it holds (HoldsEntry).
  std::vector<std::uint64_t> epochs;
  std::uint64_t clock = 0;
  // Clock readings for the peers' physical clock offsets, NTP-style over heartbeats both ways: the
  // sender's wall and monotonic clocks when it sent this, and the receiver's monotonic reading
  // from the receiver's last heartbeat the sender got (0: none) with how long the sender held it
  // since. The receiver's round trip is (now - echo_mono_ms) - echo_hold_ms.
  std::uint64_t wall_ms = 0;
  std::uint64_t mono_ms = 0;
  std::uint64_t echo_mono_ms = 0;
  std::uint64_t echo_hold_ms = 0;
  bool operator==(const Heartbeat&) const = default;
};

// "Please hand me `amount` of rights on `account`." Answered, if at all, by a kRights op.
struct RightsRequest {
  std::string account;
  Amount amount = 0;
  bool operator==(const RightsRequest&) const = default;
};

// One use of an idempotency key: an op that carried it, and whether the windowed rule voids it (a
// canonically earlier use of the key has a wall time within the retention before it). What a
// replica keeps of a key that was used more than once (KeyRecord::uses).
struct KeyUse {
  Dot dot;
  Hlc hlc;
  OpKind kind = OpKind::kCredit;
  Amount amount = 0;
  RegionId to = 0;
  bool overdraft = false;
  Amount balance_after = 0;  // what the origin answered (0 for another region's op)
  bool voided = false;
  CanonicalKey canonical() const { return {hlc, dot.origin, dot.seq}; }
  bool operator==(const KeyUse&) const = default;
};

// The idempotency record of a key: the op it is bound to (its latest unvoided use, which a retry
// inside the retention window replays) and the key's last use (the window runs from it). A key
// used more than once while the record's uses could still matter also lists them (`uses`, in
// canonical order, with their void status); otherwise `uses` is empty and the bound op is the
// only use. `balance_after` is what the origin answered (0 when the op came from another region).
struct KeyRecord {
  std::string account;
  KeyHash key;  // the idempotency key, hashed (HashKey)
  Dot dot;
  Hlc hlc;
  OpKind kind = OpKind::kCredit;
  Amount amount = 0;
  RegionId to = 0;
  bool overdraft = false;
  Amount balance_after = 0;
  // Our own op with this key, voided because a canonically earlier op of another region took the
  // key: kept (beside the record of the op that took it) so a retry of our original request is
  // answered with our original answer. Stored under its own key.
  bool displaced = false;
  Hlc last_use;              // the key's latest use, voided or not (zero in an older store: `hlc`)
  std::vector<KeyUse> uses;  // every use kept, when there is more than one; else empty
  CanonicalKey canonical() const { return {hlc, dot.origin, dot.seq}; }
  bool operator==(const KeyRecord&) const = default;
};

// An account folded up to the stable frontier: the counters of its final ops and the replay state
// there. What is above the frontier stays in the op journal.
// A hold whose op is final, as a checkpoint keeps it until it has expired below the frontier and
// is resolved for good (core/account.h, HoldState): what is final of it.
struct HoldRecord {
  Dot hold;
  Hlc hlc;  // the hold op's
  Amount amount = 0;
  std::uint64_t expires_ms = 0;
  bool voided = false;
  CanonicalKey winner;  // its winning resolution, once final (seq 0: none final yet)
  OpKind resolution = OpKind::kRelease;
  Amount captured = 0;
  bool expired = false;
  bool operator==(const HoldRecord&) const = default;
};

struct AccountCheckpoint {
  AccountConfig config;
  CanonicalKey opened;  // the open op that fixed the config (the canonically first one wins)
  Counters counters;
  ReplayState state;
  std::vector<DerivedEvent> events;  // derived entries of the final prefix (newest, bounded)
  std::vector<HoldRecord> holds;     // by dot
  bool operator==(const AccountCheckpoint&) const = default;
};

// Sent to a rejoining peer that lacks ops we no longer retain: our checkpoints at `frontier`, every
// op we still hold and the idempotency records. The receiver installs it only while it rejoins and
// only if it lacks what the snapshot covers; it checks the whole on a scratch state first, then
// replaces its own state and store with it (Replica::OnSnapshot).
struct Snapshot {
  Hlc frontier;
  VersionVector applied;    // everything the snapshot covers
  VersionVector log_floor;  // ops at or below these seqs are only in the checkpoints
  std::vector<AccountCheckpoint> accounts;
  std::vector<Op> ops;
  std::vector<KeyRecord> keys;
  std::vector<Fence> fences;  // every fence the sender knows (learned before the rest is checked)
  bool operator==(const Snapshot&) const = default;
};

using Message = std::variant<Hello, OpBatch, Ack, Heartbeat, RightsRequest, Snapshot>;

}  // namespace tally

#endif  // TALLY_CORE_MESSAGES_H_
