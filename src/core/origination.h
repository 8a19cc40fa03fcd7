// Origination: how this region makes an op of its own — the phase it reads of the replica's state,
// the stamp of a new op (next seq of our origin, our epoch, the HLC now) — and how any op is
// applied to the account book and the op log. The command desk originates clients' ops and the
// rights broker its transfers through these, so neither depends on the other for it; the replica
// applies peers' ops with ApplyOp.
//
// Plain values and free functions; they change only what they are handed. Not thread-safe: the
// replica's thread only.

#ifndef TALLY_CORE_ORIGINATION_H_
#define TALLY_CORE_ORIGINATION_H_

#include <cstdint>
#include <string>

#include "core/account_book.h"
#include "core/hlc.h"
#include "core/op_log.h"
#include "core/replica_types.h"
#include "core/wall_clock.h"

namespace tally {

// What the desk and the broker read of the replica's own state, as of the call.
struct ReplicaPhase {
  std::uint64_t epoch = 0;    // our incarnation: stamped on every op we originate
  bool rejoining = false;     // restarted, our log not yet known whole: originate nothing
  std::string rejoin_reason;  // why, when rejoining (the `unavailable` answer)
  Hlc frontier;               // the stable frontier: a line is usable once the open is below it
};

// A new op of ours on `account`: the next seq of origin `self` after what `log` applied, our
// epoch, the HLC read now (it advances `clock`). Applying it is the caller's (ApplyOp).
Op NewOwnOp(OpKind kind, const std::string& account, const ReplicaPhase& phase, RegionId self,
            const OpLog& log, HybridClock& clock, const WallClock& wall);

// Applies the next op of its origin (seq == applied + 1) to its account and to the log, and lists
// it in `out` (when given). Returns an error, and changes nothing, if the op breaks a counter cap.
// `write_keys`: the book writes the op's idempotency record now (a peer's op; our own only while
// rejoining — otherwise the desk writes it once the answer is known, CommandIntake::Originate).
Status ApplyOp(const Op& op, bool write_keys, AccountBook* book, OpLog* log, Effects* out);

}  // namespace tally

#endif  // TALLY_CORE_ORIGINATION_H_
