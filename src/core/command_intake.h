// CommandIntake: what every client command passes before it is decided, and how the op that
// carries it is made. Up front: the account is open here, the amount and the idempotency key are
// valid, the key's verdict (a retry answered from the stored result, a reuse for another request
// refused, a request with that key still waiting refused as in progress), and that this region is
// not rejoining. Then a new op of ours (the next seq, our epoch, the HLC now), applied to the
// account book and the op log and answered with the balance right after it (core/origination.h).
//
// The command desk (core/command_desk.h) decides; the intake checks and originates, for every kind
// of command alike. It holds references only; every one must outlive it (the replica owns them).
// Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_COMMAND_INTAKE_H_
#define TALLY_CORE_COMMAND_INTAKE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/account_book.h"
#include "core/hlc.h"
#include "core/op_log.h"
#include "core/origination.h"
#include "core/replica_types.h"
#include "core/wall_clock.h"

namespace tally {

// A command's refusal.
CommandResult Rejected(std::uint64_t id, Status s);

class CommandIntake {
 public:
  using Phase = ReplicaPhase;

  CommandIntake(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock, OpLog& log,
                AccountBook& book, ReplicaStats& stats);
  CommandIntake(const CommandIntake&) = delete;
  CommandIntake& operator=(const CommandIntake&) = delete;

  // The checks above for command `id` on `account` (`extra`: the command's own, e.g. a transfer's
  // payee; `to`: what besides kind and amount the key binds). True when *r is the command's answer
  // already (a refusal or a replay); else *a is the open account.
  bool AnsweredUpFront(std::uint64_t id, const std::string& account, Amount amount,
                       const std::string& key, OpKind kind, RegionId to, Status extra,
                       const Phase& phase, Account** a, CommandResult* r);
  // The key's verdict alone (AccountBook::LookupKey); true when the command is answered.
  bool CheckKey(Account& a, const std::string& key, OpKind kind, Amount amount, RegionId to,
                std::uint64_t id, CommandResult* r);
  // The answer to a retry of command `id`: the op that used its key first.
  CommandResult Replayed(std::uint64_t id, const KeyUse& use);
  // The account `id` if open here; NotFound, or Unavailable while rejoining, if not.
  Status OpenAccountFor(std::string_view id, const Phase& phase, Account** a);

  // A new op of ours on `account`, not yet applied.
  Op NewOp(OpKind kind, const std::string& account, const Phase& phase);
  // Applies `op` (of ours, on account `a`) and answers command `id` with the balance right after,
  // and what a transfer, a budget debit or a hold's op says besides.
  CommandResult Originate(std::uint64_t id, Account& a, Op op, const Phase& phase, Effects* out);
  // The wall time an op originated now would carry at least (the HLC never goes back).
  std::uint64_t RetryWallMs() const;

 private:
  std::uint64_t Wall() const { return wall_.NowMs(); }

  const ReplicaOptions& opt_;
  const WallClock& wall_;
  HybridClock& clock_;
  OpLog& log_;
  AccountBook& book_;
  ReplicaStats& stats_;
};

}  // namespace tally

#endif  // TALLY_CORE_COMMAND_INTAKE_H_
