#include "core/command_desk.h"

#include <algorithm>
#include <cassert>

#include "core/budgets.h"
#include "core/ids.h"
#include "core/validate.h"

namespace tally {

namespace {
// A debit, transfer or hold as it waits and is decided: its amount, key and note.
template <typename C>
PendingDebit PendingFor(std::uint64_t id, const C& cmd, std::uint64_t deadline_ms) {
  PendingDebit p{id, cmd.amount, cmd.key, deadline_ms};
  p.memo = cmd.memo;
  p.metadata = cmd.metadata;
  return p;
}
}  // namespace

CommandDesk::CommandDesk(const ReplicaOptions& opt, const WallClock& wall, HybridClock& clock,
                         OpLog& log, AccountBook& book, const PeerTable& peers,
                         const Finality& finality, ReplicaStats& stats, RightsBroker& broker)
    : opt_(opt),
      wall_(wall),
      log_(log),
      book_(book),
      peers_(peers),
      finality_(finality),
      stats_(stats),
      broker_(broker),
      n_(static_cast<RegionId>(opt.regions.size())),
      intake_(opt, wall, clock, log, book, stats) {}

CommandResult CommandDesk::Submit(const Command& cmd, const Phase& phase, std::uint64_t now,
                                  Effects* out) {
  CommandResult r;
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, OpenAccount>) {
          r = DoOpen(cmd.id, body, phase, out);
        } else if constexpr (std::is_same_v<T, Credit>) {
          r = DoCredit(cmd.id, body, phase, out);
        } else if constexpr (std::is_same_v<T, Debit>) {
          r = DoDebit(cmd.id, body, phase, now, out);
        } else if constexpr (std::is_same_v<T, Transfer>) {
          r = DoTransfer(cmd.id, body, phase, now, out);
        } else if constexpr (std::is_same_v<T, PlaceHold>) {
          r = DoHold(cmd.id, body, phase, now, out);
        } else if constexpr (std::is_same_v<T, CaptureHold>) {
          r = DoResolve(cmd.id, body.hold, OpKind::kCapture, body.amount, phase, out);
        } else if constexpr (std::is_same_v<T, ReleaseHold>) {
          r = DoResolve(cmd.id, body.hold, OpKind::kRelease, 0, phase, out);
        } else {
          r = DoRights(cmd.id, body, phase, out);
        }
      },
      cmd.body);
  return r;
}

// ---- the commands
// ---------------------------------------------------------------------------------

CommandResult CommandDesk::DoOpen(std::uint64_t id, const OpenAccount& cmd, const Phase& phase,
                                  Effects* out) {
  AccountConfig config = cmd.config;
  if (config.lines.empty()) config.lines = SplitOverdraft(config.overdraft_limit, n_);
  Status s = ValidateConfigFor(config, n_);
  if (!s.ok()) return Rejected(id, s);
  if (phase.rejoining && !book_.IsOpen(config.id))
    return Rejected(id, Status::Unavailable(phase.rejoin_reason));
  if (Account* a = book_.Find(config.id); a && a->open) {
    if (a->config != config)
      return Rejected(
          id, Status::AlreadyExists("account '" + config.id + "' exists with a different config"));
    CommandResult r;
    r.id = id;
    r.replayed = true;
    r.balance = book_.Tip(*a).balance;
    return r;
  }
  s = CheckParent(book_, config);
  if (!s.ok()) return Rejected(id, s);
  Op op = intake_.NewOp(OpKind::kOpen, config.id, phase);
  op.config = std::move(config);
  s = ApplyOp(op, /*write_keys=*/phase.rejoining, &book_, &log_, out);
  assert(s.ok());
  CommandResult r;
  r.id = id;
  r.op = op.dot;
  r.hlc = op.hlc;
  return r;
}

CommandResult CommandDesk::DoCredit(std::uint64_t id, const Credit& cmd, const Phase& phase,
                                    Effects* out) {
  Account* a = nullptr;
  CommandResult r;
  if (intake_.AnsweredUpFront(id, cmd.account, cmd.amount, cmd.key, OpKind::kCredit, 0,
                              Status::OK(), phase, &a, &r))
    return r;
  Op op = intake_.NewOp(OpKind::kCredit, cmd.account, phase);
  op.amount = cmd.amount;
  op.key = cmd.key;
  op.memo = cmd.memo;
  op.metadata = cmd.metadata;
  r = intake_.Originate(id, *a, std::move(op), phase, out);
  if (r.status.ok()) ++stats_.accepted;
  return r;
}

CommandResult CommandDesk::DoDebit(std::uint64_t id, const Debit& cmd, const Phase& phase,
                                   std::uint64_t now, Effects* out) {
  Account* a = nullptr;
  CommandResult r;
  if (intake_.AnsweredUpFront(id, cmd.account, cmd.amount, cmd.key, OpKind::kDebit, 0, Status::OK(),
                              phase, &a, &r))
    return r;
  const PendingDebit p = PendingFor(id, cmd, now + opt_.rights_wait_ms);
  if ((cmd.fallback || a->config.cap) && DecideBudget(*a, cmd, p, phase, out, &r)) return r;
  if (Decide(*a, p, phase, now, /*may_wait=*/true, out, &r)) return r;
  CommandResult parked;
  parked.id = kParked;
  return parked;
}

// A debit through budgets (docs/design.md, "Budgets in a hierarchy"), paid as ChooseBudgetPath
// says. Returns false to leave it to Decide as a plain debit of `a`: when `a` alone pays, or when
// nothing covers it and `a` is no cap (its line, its wait, its refusal). A cap's debit never
// waits: it is refused at once, naming what fell short.
bool CommandDesk::DecideBudget(Account& a, const Debit& cmd, const PendingDebit& p,
                               const Phase& phase, Effects* out, CommandResult* r) {
  const BudgetFigures figures = [&](Account& x, bool line) {
    return DebitFigures{p.amount, book_.FreeRights(x, opt_.self), book_.TentativeCredit(x),
                        line ? UsableLine(x, phase) : 0};
  };
  BudgetChoice c = ChooseBudgetPath(book_, a, cmd, figures, opt_.bugs);
  const bool found = c.status.ok();
  if (found && c.path.size() == 1 && c.path[0] == a.config.id) return false;
  if (!found && !a.config.cap) return false;
  if (!found) {
    ++stats_.rejected;
    *r = Rejected(p.command_id, c.status);
    r->requested = p.amount;
    r->balance = book_.Tip(a).balance;
    return true;
  }
  Op op = intake_.NewOp(OpKind::kBudgetDebit, a.config.id, phase);
  op.payers = std::move(c.path);
  op.amount = p.amount;
  op.key = p.key;
  op.overdraft = c.overdraft;
  op.memo = p.memo;
  op.metadata = p.metadata;
  *r = intake_.Originate(p.command_id, a, std::move(op), phase, out);
  r->requested = p.amount;
  CountDecided(*r, c.overdraft);
  return true;
}

// A transfer is a debit of the payer that also credits the payee: the same checks, rules, waits
// and answers as a debit (PendingDebit::payee carries the payee through a wait).
CommandResult CommandDesk::DoTransfer(std::uint64_t id, const Transfer& cmd, const Phase& phase,
                                      std::uint64_t now, Effects* out) {
  Account* a = nullptr;
  CommandResult r;
  if (intake_.AnsweredUpFront(id, cmd.from, cmd.amount, cmd.key, OpKind::kTransfer,
                              AccountTag(cmd.to), CheckPayee(cmd, phase), phase, &a, &r))
    return r;
  PendingDebit p = PendingFor(id, cmd, now + opt_.rights_wait_ms);
  p.payee = cmd.to;
  if (Decide(*a, p, phase, now, /*may_wait=*/true, out, &r)) return r;
  CommandResult parked;
  parked.id = kParked;
  return parked;
}

// A hold is decided like a debit (PendingDebit::hold_ms makes Decide originate a hold), so it
// reserves only what this region could spend.
CommandResult CommandDesk::DoHold(std::uint64_t id, const PlaceHold& cmd, const Phase& phase,
                                  std::uint64_t now, Effects* out) {
  Status expiry;
  if (cmd.expires_in_ms == 0 || cmd.expires_in_ms > opt_.idempotency_retention_ms) {
    // Every resolution falls inside the hold's life, so inside one key window (key_index.h).
    expiry = Status::InvalidArgument("hold expiry " + std::to_string(cmd.expires_in_ms) +
                                     " ms is outside 1.." +
                                     std::to_string(opt_.idempotency_retention_ms) + " ms");
  } else if (cmd.key.empty()) {
    expiry = Status::InvalidArgument("a hold needs an idempotency key");
  }
  Account* a = nullptr;
  CommandResult r;
  if (intake_.AnsweredUpFront(id, cmd.account, cmd.amount, cmd.key, OpKind::kHold, 0, expiry, phase,
                              &a, &r)) {
    if (r.replayed) FillHoldReplay(r);
    return r;
  }
  PendingDebit p = PendingFor(id, cmd, now + opt_.rights_wait_ms);
  p.hold_ms = cmd.expires_in_ms;
  if (Decide(*a, p, phase, now, /*may_wait=*/true, out, &r)) return r;
  CommandResult parked;
  parked.id = kParked;
  return parked;
}

// A replayed hold names itself; its figures come from the registry while it is kept.
void CommandDesk::FillHoldReplay(CommandResult& r) {
  r.hold = r.op;
  Account* a = nullptr;
  const HoldState* h = nullptr;
  if (book_.FindHold(r.op, &a, &h) && h->placed) {
    r.held = h->amount;
    r.expires_ms = h->expires_ms;
  }
}

// A capture or release: at once, at any region that holds the hold, until it expires. Its key is
// the hold's (HoldKey), so a retry replays it and any other resolution of the hold is refused here,
// or, if concurrent, voided where the two meet (the canonically first wins).
CommandResult CommandDesk::DoResolve(std::uint64_t id, Dot hold, OpKind kind, Amount amount,
                                     const Phase& phase, Effects* out) {
  const std::string what = std::string(OpKindName(kind)) + " of hold " + hold.ToString();
  Account* a = nullptr;
  const HoldState* h = nullptr;
  if (!book_.FindHold(hold, &a, &h) || !h->placed) {
    if (phase.rejoining) return Rejected(id, Status::Unavailable(phase.rejoin_reason));
    return Rejected(id, Status::NotFound("no hold " + hold.ToString() +
                                         " here (unknown, not yet replicated here, or settled "
                                         "and forgotten)"));
  }
  if (kind == OpKind::kRelease) amount = h->amount;
  Status s = ValidateAmount(amount);
  if (s.ok() && amount > h->amount)
    s = Status::InvalidArgument(what + ": " + std::to_string(amount) + " is above the " +
                                std::to_string(h->amount) + " held");
  if (!s.ok()) return Rejected(id, s);
  const std::string key = HoldKey(hold);
  const AccountBook::KeyLookup k =
      book_.LookupKey(*a, key, kind, amount, 0, Hlc::Make(intake_.RetryWallMs(), 0));
  if (k.kind == AccountBook::KeyLookup::kReplay ||
      k.kind == AccountBook::KeyLookup::kReplayDisplaced) {
    CommandResult r =
        intake_.Replayed(id, k.kind == AccountBook::KeyLookup::kReplay ? k.binding : k.own);
    if (k.kind == AccountBook::KeyLookup::kReplayDisplaced) {
      r.voided = true;
      r.voided_by = k.binding.dot;
    }
    r.voided = r.voided || h->voided;  // the resolution of a duplicate hold took nothing
    r.balance = book_.Tip(*a).balance;
    r.hold = hold;
    r.held = h->amount;
    r.captured = kind == OpKind::kCapture ? amount : 0;
    return r;
  }
  if (h->voided)
    return Rejected(id, Status::FailedPrecondition(
                            what + ": the hold was voided as a duplicate of another hold with "
                                   "the same idempotency key, which is the one to resolve"));
  if (k.kind == AccountBook::KeyLookup::kMismatch || h->resolved()) {
    const KeyUse& b = k.binding;
    const std::string by =
        k.kind == AccountBook::KeyLookup::kMismatch
            ? std::string(OpKindName(b.kind)) +
                  (b.kind == OpKind::kCapture ? " of " + std::to_string(b.amount) : std::string()) +
                  " (op " + b.dot.ToString() + ")"
            : std::string(OpKindName(h->resolution));
    return Rejected(id, Status::FailedPrecondition(what + ": the hold is already resolved by " +
                                                   (h->expired ? "expiry, " : "") + by));
  }
  if (phase.rejoining) return Rejected(id, Status::Unavailable(phase.rejoin_reason));
  Op op = intake_.NewOp(kind, a->config.id,
                        phase);  // not yet ours: refusing it costs only a clock tick
  if (op.hlc.wall_ms() >= h->expires_ms)
    return Rejected(id, Status::FailedPrecondition(
                            what + ": the hold expired at " + std::to_string(h->expires_ms) +
                            " (its region releases it once every region has passed that time)"));
  op.hold = hold;
  op.held = h->amount;
  op.amount = amount;
  op.key = key;
  CommandResult r = intake_.Originate(id, *a, std::move(op), phase, out);
  if (r.status.ok()) ++stats_.accepted;
  return r;
}

// Releases our own holds that expired below the stable frontier with no resolution: no capture
// can still arrive (every region has passed the expiry, and one at or after it is refused where
// it is asked), so the funds are free again. One op each, like any resolution.
std::size_t CommandDesk::ReleaseExpiredHolds(const Phase& phase, Effects* out) {
  if (phase.rejoining) return 0;  // we originate nothing until our own log is whole
  const auto expired = book_.TakeExpiredOwnHolds(phase.frontier);
  for (const auto& [account, hold] : expired) {
    Account* a = nullptr;
    const HoldState* h = nullptr;
    const bool found = book_.FindHold(hold, &a, &h);
    assert(found && h->open());
    (void)found;
    Op op = intake_.NewOp(OpKind::kRelease, account, phase);
    op.hold = hold;
    op.held = op.amount = h->amount;
    op.key = HoldKey(hold);
    op.expired = true;
    const CommandResult r = intake_.Originate(0, *a, std::move(op), phase, out);
    assert(r.status.ok() && "a release moves no counter");
    (void)r;
    ++stats_.holds_expired;
  }
  return expired.size();
}

// The payee of a transfer: another account, open here, of the payer's currency (no conversion).
// A payer that is not open is AnsweredUpFront's to report.
Status CommandDesk::CheckPayee(const Transfer& cmd, const Phase& phase) {
  if (cmd.to == cmd.from)
    return Status::InvalidArgument("transfer from account '" + cmd.from + "' to itself");
  Account* b = nullptr;
  Status s = intake_.OpenAccountFor(cmd.to, phase, &b);
  if (!s.ok()) return s;
  const Account* a = book_.Find(cmd.from);
  if (a && a->open && a->config.currency != b->config.currency)
    return Status::InvalidArgument("transfer from a " + a->config.currency + " account to a " +
                                   b->config.currency + " account: currencies differ");
  return Status::OK();
}

CommandResult CommandDesk::DoRights(std::uint64_t id, const TransferRights& cmd, const Phase& phase,
                                    Effects* out) {
  Status to_ok;
  if (cmd.to >= n_) to_ok = Status::InvalidArgument("transfer to an unknown region");
  if (to_ok.ok() && cmd.to == opt_.self)
    to_ok = Status::FailedPrecondition("a region cannot transfer rights to itself");
  Account* a = nullptr;
  CommandResult r;
  if (intake_.AnsweredUpFront(id, cmd.account, cmd.amount, cmd.key, OpKind::kRights, cmd.to, to_ok,
                              phase, &a, &r))
    return r;
  const Amount spendable = book_.SpendableRights(*a);
  if (spendable < cmd.amount) {
    const Amount tentative = book_.TentativeCredit(*a);
    r = Rejected(id, Status::InsufficientFunds(
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
  Op op = intake_.NewOp(OpKind::kRights, cmd.account, phase);
  op.to = cmd.to;
  op.amount = cmd.amount;
  op.key = cmd.key;  // replay ignores transfers, so a voided duplicate of it moves nothing back
  r = intake_.Originate(id, *a, std::move(op), phase, out);
  if (r.status.ok()) ++stats_.accepted;
  return r;
}

// ---- the debit decision
// ----------------------------------------------------------------------------

// The debit rules (core/rights.h, DecideDebit). Returns false when the debit was parked to wait
// for rights.
bool CommandDesk::Decide(Account& a, const PendingDebit& p, const Phase& phase, std::uint64_t now,
                         bool may_wait, Effects* out, CommandResult* r) {
  const DebitFigures f{p.amount, book_.FreeRights(a, opt_.self) + PlantedBufferedRights(a),
                       book_.TentativeCredit(a), UsableLine(a, phase)};
  DebitVerdict v = DecideDebit(f, may_wait, opt_.bugs.skip_rights_check);
  if (v == DebitVerdict::kWait) {
    if (Park(a, p, f, now, out)) return false;
    v = DecideDebit(f, /*may_wait=*/false, opt_.bugs.skip_rights_check);
  }
  if (v == DebitVerdict::kReject) {
    ++stats_.rejected;
    *r = Refusal(a, p, f, now);
    return true;
  }
  const bool overdraft = v == DebitVerdict::kOverdraft;
  const OpKind kind = p.hold_ms != 0    ? OpKind::kHold
                      : p.payee.empty() ? OpKind::kDebit
                                        : OpKind::kTransfer;
  Op op = intake_.NewOp(kind, a.config.id, phase);
  op.to_account = p.payee;
  op.amount = p.amount;
  if (p.hold_ms != 0) op.expires_ms = op.hlc.wall_ms() + p.hold_ms;
  op.key = p.key;
  op.overdraft = overdraft;
  op.memo = p.memo;
  op.metadata = p.metadata;
  *r = intake_.Originate(p.command_id, a, std::move(op), phase, out);
  r->rights = f.rights;
  r->tentative_credit = f.tentative;
  r->overdraft_line = f.line;
  r->requested = p.amount;
  CountDecided(*r, overdraft);
  return true;
}

// The stats of a debit (or a transfer, hold or budget debit) originated: accepted, on the line.
void CommandDesk::CountDecided(const CommandResult& r, bool overdraft) {
  if (!r.status.ok()) {
    ++stats_.rejected;
    return;
  }
  ++stats_.accepted;
  if (overdraft) ++stats_.overdraft_debits;
}

// Rule 4's answer: insufficient funds, with the rights, tentative credit and line that explain it.
CommandResult CommandDesk::Refusal(Account& a, const PendingDebit& p, const DebitFigures& f,
                                   std::uint64_t now) {
  const RegionId me = opt_.self;
  const char* what = p.hold_ms != 0 ? "hold of " : p.payee.empty() ? "debit of " : "transfer of ";
  std::string why = what + std::to_string(p.amount) + " exceeds this region's spendable rights " +
                    std::to_string(f.spendable()) + " plus its overdraft line " +
                    std::to_string(f.line);
  if (f.tentative > 0) {
    why += "; its rights " + std::to_string(f.rights) + " include " + std::to_string(f.tentative) +
           " of credit not yet final, which is spendable only within the overdraft line until "
           "it is final (a duplicate of its idempotency key in another region may still void it)";
  }
  std::vector<RegionId> waits_for;
  const Amount not_yet_usable = f.line == 0 ? a.config.lines[me] : 0;
  if (not_yet_usable > 0) {
    waits_for = finality_.RegionsNotPast(a.opened.hlc);
    why += "; the overdraft line of " + std::to_string(not_yet_usable) +
           " is usable once the account's opening is final, and " +
           (waits_for.empty() ? std::string("it will be at the next heartbeat")
                              : "region" + std::string(waits_for.size() > 1 ? "s " : " ") +
                                    peers_.Describe(waits_for, now) + " must confirm it first");
  }
  CommandResult r = Rejected(p.command_id, Status::InsufficientFunds(std::move(why)));
  r.line_not_yet_usable = not_yet_usable;
  r.line_waits_for = std::move(waits_for);
  r.rights = f.rights;
  r.tentative_credit = f.tentative;
  r.overdraft_line = f.line;
  r.requested = p.amount;
  r.balance = book_.Tip(a).balance;
  return r;
}

// Parks a debit that spendable rights do not cover when waiting can help: a live peer holds
// rights (the broker asks it; wait RightsWaitMs), or our tentative credits would cover it once
// final and every peer is reachable so the frontier moves (wait finality_wait_ms). False otherwise.
bool CommandDesk::Park(Account& a, PendingDebit p, const DebitFigures& f, std::uint64_t now,
                       Effects* out) {
  if (a.pending.size() >= opt_.max_pending_debits) return false;
  std::uint64_t wait_ms = 0;
  if (opt_.rights_wait_ms > 0 &&
      broker_.RequestRights(a, p.amount - std::max<Amount>(f.spendable(), 0), now, out, &wait_ms)) {
    p.asked_rights = true;
  }
  if (opt_.finality_wait_ms > 0 && FinalityCouldCover(f) && peers_.AllReachable(now)) {
    wait_ms = std::max(wait_ms, opt_.finality_wait_ms);
  }
  if (wait_ms == 0) return false;
  p.deadline_ms = DeadlineClock(now) + wait_ms;
  a.pending.push_back(std::move(p));
  pending_accounts_.insert(book_.IndexOf(a));
  return true;
}

// Waits run on the monotonic clock; the planted bug puts them on the wall clock, where a clock
// stepped back parks a debit for as long as the step.
std::uint64_t CommandDesk::DeadlineClock(std::uint64_t now) const {
  return opt_.bugs.wall_clock_deadlines ? Wall() : now;
}

// The overdraft line this region may spend. Only once the account's open is final: until then a
// concurrent open elsewhere with another config could still win, and a line spent under the
// losing config would break the floor of the winning one. Accounts are opened long before they
// overdraw, so this costs nothing in practice; during a partition right after an open, debits
// are limited to real rights.
Amount CommandDesk::UsableLine(const Account& a, const Phase& phase) const {
  return a.opened.hlc < phase.frontier ? a.config.lines[opt_.self] : 0;
}

// Planted bug spend_buffered_transfer: rights handed to this region that it received but holds
// beyond a gap, not applied — spent as if they were (the simulator's per-answer I2 check).
Amount CommandDesk::PlantedBufferedRights(const Account& a) const {
  if (!opt_.bugs.spend_buffered_transfer) return 0;
  Amount sum = 0;
  for (RegionId o = 0; o < n_; ++o)
    for (const auto& [seq, op] : log_.Buffered(o))
      if (op.kind == OpKind::kRights && op.to == opt_.self && op.account == a.config.id)
        sum += op.amount;
  return sum;
}

// ---- waiting debits
// ------------------------------------------------------------------------------

// Decides the waiting debits whose wait is over: rights now cover them, or they waited only for
// credits to turn final and none is left tentative. In arrival order.
void CommandDesk::RetryAccount(Account& a, const Phase& phase, std::uint64_t now, Effects* out,
                               std::vector<CommandResult>* done) {
  while (!a.pending.empty()) {
    PendingDebit p = a.pending.front();
    const bool nothing_to_wait_for = !p.asked_rights && book_.TentativeCredit(a) == 0;
    if (book_.SpendableRights(a) < p.amount && !nothing_to_wait_for) break;
    a.pending.pop_front();
    CommandResult r;
    Decide(a, p, phase, now, /*may_wait=*/false, out, &r);
    done->push_back(std::move(r));
  }
  if (a.pending.empty()) pending_accounts_.erase(book_.IndexOf(a));
}

std::vector<CommandResult> CommandDesk::RetryPending(const std::string& account, const Phase& phase,
                                                     std::uint64_t now, Effects* out) {
  std::vector<CommandResult> done;
  if (Account* a = book_.Find(account)) RetryAccount(*a, phase, now, out, &done);
  return done;
}

// Credits turned final may let waiting debits go: retry every account that has some.
std::vector<CommandResult> CommandDesk::RetryAllPending(const Phase& phase, std::uint64_t now,
                                                        Effects* out) {
  std::vector<CommandResult> done;
  const std::vector<std::uint32_t> waiting(pending_accounts_.begin(), pending_accounts_.end());
  for (std::uint32_t idx : waiting) RetryAccount(book_.at(idx), phase, now, out, &done);
  return done;
}

std::vector<CommandResult> CommandDesk::ExpirePending(const Phase& phase, std::uint64_t now,
                                                      Effects* out) {
  std::vector<CommandResult> done;
  for (auto it = pending_accounts_.begin(); it != pending_accounts_.end();) {
    Account& a = book_.at(*it);
    while (!a.pending.empty() && a.pending.front().deadline_ms <= DeadlineClock(now)) {
      PendingDebit p = a.pending.front();
      a.pending.pop_front();
      CommandResult r;
      Decide(a, p, phase, now, /*may_wait=*/false, out, &r);
      done.push_back(std::move(r));
    }
    it = a.pending.empty() ? pending_accounts_.erase(it) : std::next(it);
  }
  return done;
}

std::vector<CommandResult> CommandDesk::RefuseWaiting(const Status& why) {
  std::vector<CommandResult> refused;
  for (std::uint32_t i : pending_accounts_) {
    for (const PendingDebit& d : book_.at(i).pending)
      refused.push_back(Rejected(d.command_id, why));
    book_.at(i).pending.clear();
  }
  pending_accounts_.clear();
  return refused;
}

std::vector<CommandResult> CommandDesk::CarryWaitingTo(AccountBook& fresh) {
  std::vector<CommandResult> refused;
  std::set<std::uint32_t> waiting;
  for (std::uint32_t i : pending_accounts_) {
    Account& old = book_.at(i);
    if (Account* a = fresh.Find(old.config.id); a && a->open) {
      a->pending = std::move(old.pending);
      waiting.insert(fresh.IndexOf(*a));
    } else {
      for (const PendingDebit& d : old.pending)
        refused.push_back(Rejected(
            d.command_id, Status::Unavailable("the account's open op was of a lost history")));
    }
  }
  pending_accounts_ = std::move(waiting);
  return refused;
}

}  // namespace tally
