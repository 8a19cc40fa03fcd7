#include "core/command_intake.h"

#include <algorithm>

#include "core/ids.h"
#include "core/validate.h"

namespace tally {

CommandResult Rejected(std::uint64_t id, Status s) {
  CommandResult r;
  r.id = id;
  r.status = std::move(s);
  return r;
}

CommandIntake::CommandIntake(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock,
                             OpLog& log, AccountBook& book, ReplicaStats& stats)
    : opt_(opt), wall_(wall), clock_(clock), log_(log), book_(book), stats_(stats) {}

Op CommandIntake::NewOp(OpKind kind, const std::string& account, const Phase& phase) {
  return NewOwnOp(kind, account, phase, opt_.self, log_, clock_, wall_);
}

// The wall time an op originated now would carry at least (the HLC never goes back): a retry is
// inside the window when even that is within it.
std::uint64_t CommandIntake::RetryWallMs() const {
  return std::max(clock_.last().wall_ms(), Wall());
}

// Originates an op of ours and answers with the balance right after it.
CommandResult CommandIntake::Originate(std::uint64_t id, Account& a, Op op, const Phase& phase,
                                       Effects* out) {
  Status s = ApplyOp(op, /*write_keys=*/phase.rejoining, &book_, &log_, out);
  if (!s.ok()) return Rejected(id, s);
  CommandResult r;
  r.id = id;
  r.op = op.dot;
  r.hlc = op.hlc;
  r.overdraft = op.overdraft;
  r.balance = book_.Tip(a).balance;
  if (!op.key.empty()) book_.SetKeyAnswer(op.dot, r.balance, out);
  if (op.kind == OpKind::kTransfer) r.payee_balance = book_.Tip(*book_.Find(op.to_account)).balance;
  r.payers = op.payers;
  r.memo = op.memo;
  r.metadata = op.metadata;
  if (op.kind == OpKind::kHold) {
    r.hold = op.dot;
    r.held = op.amount;
    r.expires_ms = op.expires_ms;
  } else if (IsHoldResolution(op.kind)) {
    r.hold = op.hold;
    r.held = op.held;
    r.captured = op.kind == OpKind::kCapture ? op.amount : 0;
  }
  return r;
}

// What credits, debits and transfers check first, alike: an open account, a valid amount,
// `extra` (the command's own checks), a valid key; then whether the key answers the command (a
// retry, or a reuse for another request); then that we are not rejoining. True when `r` is the
// command's answer already.
bool CommandIntake::AnsweredUpFront(std::uint64_t id, const std::string& account, Amount amount,
                                    const std::string& key, OpKind kind, RegionId to, Status extra,
                                    const Phase& phase, Account** a, CommandResult* r) {
  Status s = OpenAccountFor(account, phase, a);
  if (s.ok()) s = ValidateAmount(amount);
  if (s.ok()) s = std::move(extra);
  if (s.ok() && !key.empty()) s = ValidateIdempotencyKey(key);
  if (s.ok() && key.starts_with(kHoldKeyPrefix))
    s = Status::InvalidArgument("idempotency keys beginning with '" + std::string(kHoldKeyPrefix) +
                                "' are reserved for the resolutions of holds");
  if (!s.ok()) {
    *r = Rejected(id, s);
    return true;
  }
  if (CheckKey(**a, key, kind, amount, to, id, r)) return true;
  if (phase.rejoining) {
    *r = Rejected(id, Status::Unavailable(phase.rejoin_reason));
    return true;
  }
  return false;
}

// Looks the key up (AccountBook::LookupKey). Returns true when the command is answered (a replay
// or a mismatch).
bool CommandIntake::CheckKey(Account& a, const std::string& key, OpKind kind, Amount amount,
                             RegionId to, std::uint64_t id, CommandResult* r) {
  if (key.empty()) return false;
  const AccountBook::KeyLookup k =
      book_.LookupKey(a, key, kind, amount, to, Hlc::Make(RetryWallMs(), 0));
  switch (k.kind) {
    case AccountBook::KeyLookup::kNew:
      // Unknown, or its last use is past the window: a new op, in every region alike.
      for (const PendingDebit& p : a.pending) {
        if (p.key == key) {
          *r = Rejected(id, Status::Conflict("a request with this idempotency key is in progress"));
          return true;
        }
      }
      return false;
    case AccountBook::KeyLookup::kReplayDisplaced:
      // Our original request, whose op lost the key to another region's: the stored answer.
      *r = Replayed(id, k.own);
      r->voided = true;
      r->voided_by = k.binding.dot;
      r->balance = k.own.balance_after;
      return true;
    case AccountBook::KeyLookup::kMismatch:
      *r = Rejected(id, Status::IdempotencyKeyReused("idempotency key '" + key + "' was used for " +
                                                     std::string(OpKindName(k.binding.kind)) +
                                                     " of " + std::to_string(k.binding.amount) +
                                                     " (op " + k.binding.dot.ToString() + ")"));
      return true;
    case AccountBook::KeyLookup::kReplay:
      *r = Replayed(id, k.binding);
      r->balance =
          k.binding.dot.origin == opt_.self ? k.binding.balance_after : book_.Tip(a).balance;
      return true;
  }
  return false;
}

// The answer to a retry of command `id`: the op that used its key first, with what only the op
// says (a budget debit's payers, the note) while it is still held here. The retry's own note
// changes nothing: the original op's is the answer (docs/operations.md, "Memo and metadata").
CommandResult CommandIntake::Replayed(std::uint64_t id, const KeyUse& use) {
  ++stats_.replays;
  CommandResult r;
  r.id = id;
  r.op = use.dot;
  r.hlc = use.hlc;
  r.overdraft = use.overdraft;
  r.replayed = true;
  if (const Op* op = log_.Lookup(CanonicalKey{use.hlc, use.dot.origin, use.dot.seq})) {
    r.payers = op->payers;
    r.memo = op->memo;
    r.metadata = op->metadata;
  }
  return r;
}

Status CommandIntake::OpenAccountFor(std::string_view id, const Phase& phase, Account** a) {
  Status s = ValidateAccountId(id);
  if (!s.ok()) return s;
  *a = book_.Find(id);
  if (!*a || !(*a)->open) {
    // A rejoining region may not know the account yet: its store may have lost it.
    if (phase.rejoining) return Status::Unavailable(phase.rejoin_reason);
    return Status::NotFound("no account '" + std::string(id) + "'");
  }
  return Status::OK();
}

}  // namespace tally
