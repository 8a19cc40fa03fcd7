// CommandDesk: where a region takes its clients' commands — opens, credits, debits, transfers
// between accounts, rights moves, holds and their captures and releases — and the work that follows
// from debits: the waits for rights, the waits for credit to turn final.
//
// The debit rule itself is core/rights.h (DecideDebit, a pure function); the desk gathers its
// figures, applies the verdict, and explains a refusal. A debit that waits for rights asks the
// rights broker (core/rights_broker.h) to request them from peers; answering peers' requests and
// rebalancing are the broker's, and the broker knows nothing of the desk. The desk originates our
// own ops through the account book and the op log it is given (core/origination.h), and never
// calls back into the replica: what the replica must do next comes back as values — a command's
// result (kParked: it completes later), the results of waiting debits now decided (the replica
// completes them: durability "replicated" is its business). What it reads of the replica's own
// state — our incarnation, whether we are rejoining, the stable frontier — comes in with each call
// as a Phase.
//
// Owns the index of accounts with waiting debits (the debits themselves live in their Account).
// Not thread-safe; the replica's thread only.

#ifndef TALLY_CORE_COMMAND_DESK_H_
#define TALLY_CORE_COMMAND_DESK_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/account_book.h"
#include "core/command_intake.h"
#include "core/finality.h"
#include "core/hlc.h"
#include "core/op_log.h"
#include "core/origination.h"
#include "core/peer_table.h"
#include "core/replica_types.h"
#include "core/rights.h"
#include "core/rights_broker.h"
#include "core/wall_clock.h"

namespace tally {

class CommandDesk {
 public:
  // The id of Submit's result for a debit that waits: its real result comes later.
  static constexpr std::uint64_t kParked = ~std::uint64_t{0};

  // What the desk reads of the replica's own state, as of the call (core/origination.h).
  using Phase = ReplicaPhase;

  // Every reference must outlive the desk; the replica owns them all.
  CommandDesk(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock, OpLog& log,
              AccountBook& book, const PeerTable& peers, const Finality& finality,
              ReplicaStats& stats, RightsBroker& broker);
  CommandDesk(const CommandDesk&) = delete;
  CommandDesk& operator=(const CommandDesk&) = delete;

  // A client command (not "replicated"'s wait: the replica's). Returns its result, or one with id
  // kParked for a debit that waits (its result comes later from RetryPending or ExpirePending).
  CommandResult Submit(const Command& cmd, const Phase& phase, std::uint64_t now, Effects* out);

  // Decides the waiting debits of `account` that rights now cover (a transfer to us arrived), in
  // arrival order; their results, to complete.
  std::vector<CommandResult> RetryPending(const std::string& account, const Phase& phase,
                                          std::uint64_t now, Effects* out);
  // The same for every account with waiting debits (credits turned final).
  std::vector<CommandResult> RetryAllPending(const Phase& phase, std::uint64_t now, Effects* out);
  // Decides the waiting debits whose wait is over, as they stand.
  std::vector<CommandResult> ExpirePending(const Phase& phase, std::uint64_t now, Effects* out);

  // Releases our own holds that expired below the frontier unresolved; returns how many.
  std::size_t ReleaseExpiredHolds(const Phase& phase, Effects* out);

  // Every waiting debit refused with `why` (the replica is replacing its state).
  std::vector<CommandResult> RefuseWaiting(const Status& why);
  // Our state is being replaced by `fresh` (a snapshot, or our own state less a lost history):
  // waiting debits move to the same account there; those whose account `fresh` lacks are refused.
  std::vector<CommandResult> CarryWaitingTo(AccountBook& fresh);

 private:
  std::uint64_t Wall() const { return wall_.NowMs(); }

  CommandResult DoOpen(std::uint64_t id, const OpenAccount& cmd, const Phase& phase, Effects* out);
  CommandResult DoCredit(std::uint64_t id, const Credit& cmd, const Phase& phase, Effects* out);
  CommandResult DoDebit(std::uint64_t id, const Debit& cmd, const Phase& phase, std::uint64_t now,
                        Effects* out);
  CommandResult DoRights(std::uint64_t id, const TransferRights& cmd, const Phase& phase,
                         Effects* out);
  CommandResult DoTransfer(std::uint64_t id, const Transfer& cmd, const Phase& phase,
                           std::uint64_t now, Effects* out);
  Status CheckPayee(const Transfer& cmd, const Phase& phase);
  bool DecideBudget(Account& a, const Debit& cmd, const PendingDebit& p, const Phase& phase,
                    Effects* out, CommandResult* r);
  CommandResult DoHold(std::uint64_t id, const PlaceHold& cmd, const Phase& phase,
                       std::uint64_t now, Effects* out);
  void FillHoldReplay(CommandResult& r);
  CommandResult DoResolve(std::uint64_t id, Dot hold, OpKind kind, Amount amount,
                          const Phase& phase, Effects* out);

  bool Decide(Account& a, const PendingDebit& p, const Phase& phase, std::uint64_t now,
              bool may_wait, Effects* out, CommandResult* r);
  void CountDecided(const CommandResult& r, bool overdraft);
  CommandResult Refusal(Account& a, const PendingDebit& p, const DebitFigures& f,
                        std::uint64_t now);
  bool Park(Account& a, PendingDebit p, const DebitFigures& f, std::uint64_t now, Effects* out);
  std::uint64_t DeadlineClock(std::uint64_t now) const;
  Amount UsableLine(const Account& a, const Phase& phase) const;
  Amount PlantedBufferedRights(const Account& a) const;
  void RetryAccount(Account& a, const Phase& phase, std::uint64_t now, Effects* out,
                    std::vector<CommandResult>* done);

  const ReplicaOptions& opt_;
  const WallClock& wall_;
  OpLog& log_;
  AccountBook& book_;
  const PeerTable& peers_;
  const Finality& finality_;
  ReplicaStats& stats_;
  RightsBroker& broker_;  // asks peers for the rights a waiting debit lacks
  const RegionId n_;
  CommandIntake intake_;  // the checks every command passes first, and origination

  std::set<std::uint32_t> pending_accounts_;  // accounts with debits waiting (by book index)
};

}  // namespace tally

#endif  // TALLY_CORE_COMMAND_DESK_H_
