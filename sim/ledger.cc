#include "sim/ledger.h"

#include <algorithm>
#include <cassert>

namespace tally::sim {

namespace {

// The variable part of an overdraft fee: bps basis points of `overdrawn`, rounded up. Worked out
// here apart from the core's BasisPointsCeil (core/money.h), so that a rounding defect there shows
// as a fee the oracle does not expect: whole ten-thousands first, then the remainder, no 128-bit
// product. overdrawn <= kMaxCounter (2^58) and bps <= 10 000 keep both parts within int64.
Amount FeeOnOverdrawn(Amount overdrawn, std::uint32_t bps) {
  const Amount whole = overdrawn / 10000, rest = overdrawn % 10000;
  return whole * bps + (rest * bps + 9999) / 10000;
}

}  // namespace
namespace {

std::vector<Amount> LinesOf(const AccountConfig& c, RegionId n) {
  if (c.lines.size() == n) return c.lines;
  // Even split, remainder to the lowest ids (the rule of SplitOverdraft, restated here).
  std::vector<Amount> lines(n, n ? c.overdraft_limit / n : 0);
  for (RegionId r = 0; n && r < static_cast<RegionId>(c.overdraft_limit % n); ++r) ++lines[r];
  return lines;
}

std::string Describe(const Op& op) {
  std::string s = op.dot.ToString() + " " + std::string(OpKindName(op.kind)) + " " + op.account +
                  " " + std::to_string(op.amount);
  if (op.kind == OpKind::kRights) s += " to r" + std::to_string(op.to);
  if (op.kind == OpKind::kTransfer) s += " to " + op.to_account;
  if (op.kind == OpKind::kBudgetDebit) {
    s += " paid by";
    for (const std::string& p : op.payers) s += " " + p;
  }
  if (op.kind == OpKind::kHold) s += " expiring at " + std::to_string(op.expires_ms);
  if (IsHoldResolution(op.kind))
    s += " of hold " + op.hold.ToString() + " (held " + std::to_string(op.held) + ")" +
         (op.expired ? " at expiry" : "");
  if (!op.key.empty()) s += " key " + op.key;
  return s + " @" + op.hlc.ToString();
}

std::string Named(const LedgerOp& op) {
  return "r" + std::to_string(op.canonical.origin) + ":" + std::to_string(op.canonical.seq) + " " +
         std::string(OpKindName(op.kind)) + " " + std::to_string(op.amount) + " @" +
         op.canonical.hlc.ToString();
}

}  // namespace

Ledger::Ledger(RegionId regions, std::uint64_t retention_ms)
    : n_(regions), retention_ms_(retention_ms), by_dot_(regions), forgotten_(regions) {}

std::uint32_t Ledger::IndexFor(const std::string& id) {
  auto [it, inserted] =
      account_index_.try_emplace(id, static_cast<std::uint32_t>(accounts_.size()));
  if (inserted) {
    Account a;
    a.config.id = id;
    a.lines.assign(n_, 0);
    a.credits.resize(n_);
    a.debits.resize(n_);
    a.transfers.resize(static_cast<std::size_t>(n_) * n_);
    a.captures.resize(static_cast<std::size_t>(n_) * n_);
    a.rights.assign(n_, 0);
    a.refunds.assign(n_, 0);
    a.clawbacks.assign(n_, 0);
    accounts_.push_back(std::move(a));
  }
  return it->second;
}

const Ledger::Account* Ledger::FindAccount(const std::string& id) const {
  auto it = account_index_.find(id);
  return it == account_index_.end() ? nullptr : &accounts_[it->second];
}

std::uint32_t Ledger::Void(std::uint32_t ai, std::uint32_t index) {
  Account& a = accounts_[ai];
  const LedgerOp& op = a.ops[index];
  const RegionId o = op.canonical.origin;
  switch (op.kind) {
    case OpKind::kDebit:
      a.refunds[o] += op.amount;
      a.surviving_debits -= op.amount;
      return kNoOtherSide;
    case OpKind::kCredit:
      a.clawbacks[o] += op.amount;
      a.surviving_credits -= op.amount;
      return ai;
    case OpKind::kTransfer: {
      // Only the payer's key voids a transfer, so `index` is the payer's side. Both sides go: the
      // payer gets the amount back, the payee loses it, each booked to the op's origin.
      assert(!op.incoming);
      a.refunds[o] += op.amount;
      a.surviving_debits -= op.amount;
      Account& b = accounts_[op.other_account];
      b.voided[op.other_op] = true;
      b.clawbacks[o] += op.amount;
      b.surviving_credits -= op.amount;
      return op.other_account;
    }
    case OpKind::kBudgetDebit:
      // Only the key of the account named voids it, so `index` is that account's side (a payer's
      // or a marker). Every payer gets the amount back at the op's origin.
      assert(!op.incoming);
      for (auto [x, j] : budget_groups_[op.group]) {
        Account& p = accounts_[x];
        p.voided[j] = true;
        p.refunds[o] += op.amount;
        p.surviving_debits -= op.amount;
      }
      return kNoOtherSide;
    case OpKind::kCapture:
      // A capture took money reserved at the hold's region: its void refunds that region.
      a.refunds[op.hold.origin] += op.amount;
      a.surviving_debits -= op.amount;
      return kNoOtherSide;
    case OpKind::kOpen:
    case OpKind::kRights:
    case OpKind::kHold:
    case OpKind::kRelease:
      break;  // no money moved, none moves back
  }
  return kNoOtherSide;
}

std::uint32_t Ledger::VoidOp(std::uint32_t ai, std::uint32_t index, std::string* problem) {
  Account& a = accounts_[ai];
  a.voided[index] = true;
  const std::uint32_t from = Void(ai, index);
  const LedgerOp& op = a.ops[index];
  if (op.kind == OpKind::kRelease && op.expired && problem->empty()) {
    // Its region released the hold once its stable frontier was past the expiry: no resolution
    // stamped before the expiry could still appear. One that wins over the release did, and the
    // region may have spent the funds it freed.
    std::string by;
    auto it = a.holds.find(op.hold);
    if (it != a.holds.end()) {
      for (std::uint32_t j : it->second.resolutions)
        if (j != index && a.ops[j].canonical < op.canonical) by = Named(a.ops[j]);
    }
    *problem =
        "holds: the release at expiry " + Named(op) + " of hold " + op.hold.ToString() + " on " +
        a.config.id + " is voided" +
        (by.empty() ? std::string(" (its hold is voided)") : " by an earlier resolution " + by) +
        ": its region freed the funds while a resolution could still win";
  }
  if (op.kind == OpKind::kHold) {
    // A hold voided as a duplicate of its key reserves nothing: every resolution of it is voided.
    auto it = a.holds.find(Dot{op.canonical.origin, op.canonical.seq});
    if (it != a.holds.end()) {
      for (std::uint32_t j : it->second.resolutions)
        if (!a.voided[j]) VoidOp(ai, j, problem);
    }
  }
  return from;
}

std::string Ledger::CheckResolution(const Account& a, const LedgerOp& hold,
                                    const LedgerOp& res) const {
  const std::string what = Named(res) + " of hold " + Named(hold) + " on " + a.config.id;
  if (res.kind == OpKind::kCapture && res.amount > hold.amount)
    return "holds: " + what + " takes more than the hold holds";
  if (res.held != hold.amount)
    return "holds: " + what + " says the hold holds " + std::to_string(res.held);
  if (!res.expired && res.canonical.hlc.wall_ms() >= hold.expires_ms)
    return "holds: " + what + " is stamped at or after the hold's expiry " +
           std::to_string(hold.expires_ms) + " (a resolution then must be refused)";
  if (res.expired &&
      (res.kind != OpKind::kRelease || res.canonical.origin != hold.canonical.origin ||
       res.canonical.hlc.wall_ms() < hold.expires_ms))
    return "holds: " + what +
           " is a release at expiry, which only the hold's region originates, at or after "
           "the expiry " +
           std::to_string(hold.expires_ms);
  return "";
}

std::uint32_t Ledger::AddSide(std::uint32_t into, std::uint32_t owner, std::uint32_t index) {
  Account& b = accounts_[into];
  const std::uint32_t side = static_cast<std::uint32_t>(b.ops.size());
  LedgerOp in = accounts_[owner].ops[index];
  in.incoming = true;
  in.other_account = owner;
  in.other_op = index;
  b.ops.push_back(std::move(in));
  b.voided.push_back(false);
  return side;
}

bool Ledger::KeyOwnerVoids(const LedgerOp& in) const {
  if (in.key.empty()) return false;
  const Account& owner = accounts_[in.other_account];
  const auto& uses = owner.keys.at(in.key).uses;
  auto it = uses.find(in.canonical);
  assert(it != uses.end() && "a keyed op is a use of its key in the account that holds it");
  return it != uses.begin() && Within(std::prev(it)->first.hlc, in.canonical.hlc);
}

std::vector<std::string> Ledger::PayersOf(const LedgerOp& op) const {
  std::vector<std::string> ids;
  for (auto [x, j] : budget_groups_[op.group]) ids.push_back(accounts_[x].config.id);
  return ids;
}

// The effective floor of region r: what it holds once voided ops are removed — its voided debits
// refunded, its voided credits clawed back — never below its line. Fees are not subtracted: they
// are debt on top of the floor.
std::string Ledger::CheckFloor(const Account& a, RegionId r) const {
  const Amount floor_rights = a.rights[r] + a.refunds[r] - a.clawbacks[r];
  if (floor_rights >= -a.lines[r]) return "";
  return "I2 floor: " + a.config.id + " at r" + std::to_string(r) + ": raw rights " +
         std::to_string(a.rights[r]) + " + refunds " + std::to_string(a.refunds[r]) +
         " - clawbacks " + std::to_string(a.clawbacks[r]) + " = " + std::to_string(floor_rights) +
         " < -line " + std::to_string(a.lines[r]);
}

// The same summed over regions: Σ surviving credits − Σ surviving debits ≥ −ΣO.
std::string Ledger::CheckAccountFloor(const Account& a) const {
  Amount limit = 0;
  for (Amount line : a.lines) limit += line;
  const Amount surviving = a.surviving_credits - a.surviving_debits;
  if (surviving >= -limit) return "";
  return "I2 floor: " + a.config.id + ": surviving credits " + std::to_string(a.surviving_credits) +
         " - surviving debits " + std::to_string(a.surviving_debits) + " = " +
         std::to_string(surviving) + " < -overdraft limit " + std::to_string(limit);
}

std::string Ledger::CheckFloors() const {
  for (const std::string& id : Accounts()) {
    const Account& a = accounts_[account_index_.at(id)];
    for (RegionId r = 0; r < n_; ++r) {
      std::string v = CheckFloor(a, r);
      if (!v.empty()) return v + " at the end of the run";
    }
    std::string v = CheckAccountFloor(a);
    if (!v.empty()) return v + " at the end of the run";
  }
  return "";
}

std::string Ledger::AddDurable(const Op& op, std::uint64_t now_ms) {
  const RegionId o = op.dot.origin;
  if (o >= n_ || op.dot.seq == 0) return "durable op with an invalid dot: " + Describe(op);
  auto& log = by_dot_[o];
  if (op.dot.seq <= log.size()) {
    auto [ai, oi] = log[op.dot.seq - 1];
    const Account& a = accounts_[ai];
    const LedgerOp& known = a.ops[oi];
    const bool same_payee = known.kind != OpKind::kTransfer ||
                            accounts_[known.other_account].config.id == op.to_account;
    const bool same_hold = known.expires_ms == op.expires_ms && known.hold == op.hold &&
                           known.held == op.held && known.expired == op.expired;
    const bool same_payers = known.kind != OpKind::kBudgetDebit || PayersOf(known) == op.payers;
    if (a.config.id == op.account && known.kind == op.kind && known.amount == op.amount &&
        known.to == op.to && same_payee && same_payers && same_hold && known.key == op.key &&
        known.canonical == op.canonical())
      return "";
    return "I4 durability: seq " + op.dot.ToString() +
           " made durable twice with different ops: " + "first " +
           std::string(OpKindName(known.kind)) + " " + a.config.id + " " +
           std::to_string(known.amount) + " key '" + known.key + "', now " + Describe(op);
  }
  if (op.dot.seq != log.size() + 1)
    return "I4 durability: r" + std::to_string(o) + " made seq " + std::to_string(op.dot.seq) +
           " durable but its durable log ends at " + std::to_string(log.size());

  if (op.kind == OpKind::kTransfer && (op.to_account.empty() || op.to_account == op.account))
    return "durable transfer to an invalid account: " + Describe(op);
  if (op.kind == OpKind::kBudgetDebit && op.payers.empty())
    return "durable budget debit with no payer: " + Describe(op);
  const std::uint32_t ai = IndexFor(op.account);
  // A transfer's payee, a budget debit's payers, indexed before any reference is taken (IndexFor
  // may add an account).
  const std::uint32_t bi = op.kind == OpKind::kTransfer ? IndexFor(op.to_account) : kNoOtherSide;
  std::vector<std::uint32_t> payer_index;
  for (const std::string& p : op.payers) payer_index.push_back(IndexFor(p));
  Account& a = accounts_[ai];
  const std::uint32_t index = static_cast<std::uint32_t>(a.ops.size());
  a.ops.push_back(LedgerOp{op.canonical(), op.kind, op.to, op.amount, op.key, now_ms, op.epoch});
  a.ops[index].expires_ms = op.expires_ms;
  a.ops[index].hold = op.hold;
  a.ops[index].held = op.held;
  a.ops[index].expired = op.expired;
  // Durable again: no longer forgotten. Another op forgotten under the dot (a seq issued again,
  // then lost again) is kept: a restored disk may still bring it back.
  if (auto f = forgotten_[o].find(op.dot.seq); f != forgotten_[o].end()) {
    std::erase(f->second, op);
    if (f->second.empty()) forgotten_[o].erase(f);
  }
  a.voided.push_back(false);
  if (op.kind == OpKind::kOpen) a.open_configs.emplace_back(index, *op.config);
  log.emplace_back(ai, index);
  order_.push_back(op.dot);
  durable_.set(o, op.dot.seq);
  ++op_count_;
  if (op.hlc > newest_) newest_ = op.hlc;

  auto append = [&](std::vector<Prefix>& v) {
    Amount prev = v.empty() ? 0 : v.back().total;
    v.push_back(Prefix{op.dot.seq, prev + op.amount});
  };
  // Regions whose effective floor this op may lower (bit r) in its account, the account it
  // clawed a credit back from (kNoOtherSide if none: a transfer's payee, or its own) with the
  // regions there, and the op it voided so.
  std::uint32_t recheck = 0;
  std::uint32_t clawed_account = kNoOtherSide, clawed_recheck = 0;
  std::uint32_t clawed = UINT32_MAX;
  switch (op.kind) {
    case OpKind::kOpen:
      if (!a.has_config || op.canonical() < a.opened) {
        // An earlier open with another config wins: its lines are the ones to keep.
        if (a.has_config) recheck = (1u << n_) - 1;
        a.has_config = true;
        a.config = *op.config;
        a.opened = op.canonical();
        a.lines = LinesOf(*op.config, n_);
      }
      break;
    case OpKind::kCredit:
      a.rights[o] += op.amount;
      a.surviving_credits += op.amount;
      append(a.credits[o]);
      break;
    case OpKind::kDebit:
      a.rights[o] -= op.amount;
      a.surviving_debits += op.amount;
      recheck |= 1u << o;
      append(a.debits[o]);
      break;
    case OpKind::kRights:
      if (op.to >= n_ || op.to == o)
        return "durable transfer to an invalid region: " + Describe(op);
      a.rights[o] -= op.amount;
      a.rights[op.to] += op.amount;
      recheck |= 1u << o;
      append(a.transfers[o * n_ + op.to]);
      break;
    case OpKind::kTransfer: {
      // A debit of the payer and a credit of the payee, both of the op's origin. The payee's
      // floor only rises (until a void claws it back).
      Account& b = accounts_[bi];
      const std::uint32_t side = AddSide(bi, ai, index);
      a.ops[index].other_account = bi;
      a.ops[index].other_op = side;
      a.rights[o] -= op.amount;
      a.surviving_debits += op.amount;
      append(a.debits[o]);
      b.rights[o] += op.amount;
      b.surviving_credits += op.amount;
      append(b.credits[o]);
      recheck |= 1u << o;
      break;
    }
    case OpKind::kBudgetDebit: {
      // A debit of each payer, of the op's origin; the account named keeps the key (its side is
      // the first payer's, or a marker that moves no money).
      const std::uint32_t g = static_cast<std::uint32_t>(budget_groups_.size());
      budget_groups_.emplace_back();
      a.ops[index].group = g;
      for (std::uint32_t x : payer_index) {
        Account& p = accounts_[x];
        const std::uint32_t side = x == ai ? index : AddSide(x, ai, index);
        p.ops[side].pays = true;
        budget_groups_[g].emplace_back(x, side);
        p.rights[o] -= op.amount;
        p.surviving_debits += op.amount;
        append(p.debits[o]);
      }
      recheck |= 1u << o;  // the account named (a no-op check when it is only a marker)
      break;
    }
    case OpKind::kHold:
      break;  // moves no money: it reserves its origin's rights (HoldFiguresAt)
    case OpKind::kCapture: {
      // A debit booked to the hold's region, whichever region took it: the money was reserved
      // there, so that is the floor it may lower.
      const RegionId r = op.hold.origin;
      if (r >= n_ || op.hold.seq == 0) return "durable capture of an invalid hold: " + Describe(op);
      a.rights[r] -= op.amount;
      a.surviving_debits += op.amount;
      append(a.captures[o * n_ + r]);
      recheck |= 1u << r;
      break;
    }
    case OpKind::kRelease:
      break;
  }

  // Holds: the hold op or the resolution joins its hold's book before the key rule runs, so that
  // a hold voided by it takes the resolutions already known with it.
  std::string hold_problem;
  const bool hold_kind = op.kind == OpKind::kHold || IsHoldResolution(op.kind);
  const Dot hold_dot = op.kind == OpKind::kHold ? op.dot : op.hold;
  if (hold_kind) {
    auto [known, first] = hold_account_.try_emplace(hold_dot, ai);
    if (!first && known->second != ai)
      hold_problem = "holds: " + Describe(op) + " names hold " + hold_dot.ToString() +
                     " of another account, " + accounts_[known->second].config.id;
    HoldBook& hb = a.holds[hold_dot];
    if (op.kind == OpKind::kHold)
      hb.op = index;
    else
      hb.resolutions.push_back(index);
  }

  if (!op.key.empty()) {
    KeyUses& k = a.keys[op.key];
    // A region answers a retry inside the window from its index: it never originates the key
    // again less than the retention after its own use (its ops come here in seq order).
    if (auto own = k.newest_own.find(o); own != k.newest_own.end() && Within(own->second, op.hlc))
      return "I6 idempotency: r" + std::to_string(o) + " originated key '" + op.key + "' of " +
             op.account + " twice within the retention window of " + std::to_string(retention_ms_) +
             " ms (first at " + std::to_string(own->second.wall_ms()) + " ms, now as " +
             Describe(op) + ")";
    k.newest_own[o] = op.hlc;
    // The windowed rule, on the ops as they become durable: voided iff the canonical predecessor
    // is within the window; a new use can void only its canonical successor.
    auto next = k.uses.upper_bound(op.canonical());
    if (next != k.uses.begin() && Within(std::prev(next)->first.hlc, op.hlc)) {
      // Voided as it comes: no net change for its origin (nor, for a transfer, for the payee);
      // a hold takes its resolutions with it.
      VoidOp(ai, index, &hold_problem);
    }
    if (next != k.uses.end() && !a.voided[next->second] && Within(op.hlc, next->first.hlc)) {
      // A canonically earlier use within the window: the next one is voided now. If it is a
      // credit, or a transfer (credit to its payee), its origin loses it there, however long ago
      // it was spent.
      if (const std::uint32_t from = VoidOp(ai, next->second, &hold_problem);
          from != kNoOtherSide) {
        clawed = next->second;
        if (from == ai) {
          recheck |= 1u << next->first.origin;
        } else {
          clawed_account = from;
          clawed_recheck |= 1u << next->first.origin;
        }
      }
    }
    k.uses.emplace(op.canonical(), index);
  }

  if (hold_kind) {
    const HoldBook& hb = a.holds[hold_dot];
    if (IsHoldResolution(op.kind) && hb.op != kNoOtherSide && a.voided[hb.op] && !a.voided[index])
      VoidOp(ai, index, &hold_problem);  // a resolution of a voided hold takes nothing
    if (hb.op != kNoOtherSide && hold_problem.empty()) {
      if (op.kind == OpKind::kHold) {
        for (std::uint32_t j : hb.resolutions) {
          hold_problem = CheckResolution(a, a.ops[index], a.ops[j]);
          if (!hold_problem.empty()) break;
        }
      } else {
        hold_problem = CheckResolution(a, a.ops[hb.op], a.ops[index]);
      }
    }
  }
  if (!hold_problem.empty()) return hold_problem;

  // The effective floor drops only at the origin's own debits, transfers out and hand-outs, at a
  // clawback (of a credit or of a transfer in) and when an earlier open changes the lines; rights
  // and transfers in and refunds only raise it. So checking at each of these checks it at every
  // instant.
  if (!recheck && !clawed_recheck) return "";
  auto after = [&] {
    std::string s = " after " + Describe(op);
    if (clawed != UINT32_MAX) {
      const LedgerOp& c = a.ops[clawed];
      s += ", which voids r" + std::to_string(c.canonical.origin) + ":" +
           std::to_string(c.canonical.seq) + " " + std::string(OpKindName(c.kind)) + " " +
           std::to_string(c.amount);
      if (c.kind == OpKind::kTransfer) s += " to " + accounts_[c.other_account].config.id;
      s += " (a clawback)";
    }
    return s;
  };
  auto check = [&](const Account& x, std::uint32_t regions) {
    for (RegionId r = 0; r < n_; ++r) {
      if (!(regions & (1u << r))) continue;
      std::string v = CheckFloor(x, r);
      if (!v.empty()) return v + after();
    }
    std::string v = CheckAccountFloor(x);
    return v.empty() ? v : v + after();
  };
  if (recheck) {
    if (std::string v = check(a, recheck); !v.empty()) return v;
  }
  for (std::uint32_t x : payer_index) {
    if (std::string v = check(accounts_[x], 1u << o); !v.empty()) return v;
  }
  if (clawed_recheck) return check(accounts_[clawed_account], clawed_recheck);
  return "";
}

std::vector<Dot> Ledger::Truncate(const VersionVector& held) {
  std::vector<Dot> gone;
  for (RegionId o = 0; o < n_; ++o)
    for (Seq s = held.get(o) + 1; s <= by_dot_[o].size(); ++s) gone.push_back(Dot{o, s});
  if (gone.empty()) return gone;
  // Replayed into a fresh ledger in the order the ops became durable. What AddDurable says on the
  // way is not a verdict (it was checked when the ops came in); the caller checks the floors over
  // the result.
  Ledger fresh(n_, retention_ms_);
  for (Dot d : order_) {
    auto [ai, oi] = by_dot_[d.origin][d.seq - 1];
    if (d.seq > held.get(d.origin)) {
      std::vector<Op>& under = forgotten_[d.origin][d.seq];
      Op op = OpAt(d);
      std::erase(under, op);  // the newest forgotten goes last (Forgotten)
      under.push_back(std::move(op));
    } else {
      fresh.AddDurable(OpAt(d), accounts_[ai].ops[oi].durable_ms);
    }
  }
  fresh.forgotten_ = std::move(forgotten_);
  *this = std::move(fresh);
  return gone;
}

Op Ledger::OpAt(Dot d) const {
  auto [ai, oi] = by_dot_[d.origin][d.seq - 1];
  const Account& a = accounts_[ai];
  const LedgerOp& lo = a.ops[oi];
  Op op;
  op.dot = d;
  op.epoch = lo.epoch;
  op.hlc = lo.canonical.hlc;
  op.kind = lo.kind;
  op.account = a.config.id;
  op.amount = lo.amount;
  op.to = lo.to;
  if (lo.kind == OpKind::kTransfer) op.to_account = accounts_[lo.other_account].config.id;
  if (lo.kind == OpKind::kBudgetDebit) op.payers = PayersOf(lo);
  op.key = lo.key;
  op.expires_ms = lo.expires_ms;
  op.hold = lo.hold;
  op.held = lo.held;
  op.expired = lo.expired;
  if (lo.kind == OpKind::kOpen) {
    for (const auto& [index, config] : a.open_configs)
      if (index == oi) op.config = config;
  }
  return op;
}

const Op* Ledger::Forgotten(Dot dot) const {
  const std::vector<Op>* all = ForgottenAll(dot);
  return all ? &all->back() : nullptr;
}

const std::vector<Op>* Ledger::ForgottenAll(Dot dot) const {
  if (dot.origin >= n_) return nullptr;
  auto it = forgotten_[dot.origin].find(dot.seq);
  return it == forgotten_[dot.origin].end() || it->second.empty() ? nullptr : &it->second;
}

const LedgerOp* Ledger::Find(Dot dot, std::string* account) const {
  if (dot.origin >= n_ || dot.seq == 0 || dot.seq > by_dot_[dot.origin].size()) return nullptr;
  auto [ai, oi] = by_dot_[dot.origin][dot.seq - 1];
  if (account) *account = accounts_[ai].config.id;
  return &accounts_[ai].ops[oi];
}

Amount Ledger::UpTo(const std::vector<Prefix>& v, Seq seq) {
  auto it =
      std::upper_bound(v.begin(), v.end(), seq, [](Seq s, const Prefix& p) { return s < p.seq; });
  return it == v.begin() ? 0 : std::prev(it)->total;
}

bool Ledger::Raw(const std::string& account, const VersionVector& vv, RawView* out) const {
  const Account* a = FindAccount(account);
  if (!a) return false;
  out->rights.assign(n_, 0);
  out->balance = 0;
  out->opened = a->has_config && vv.get(a->opened.origin) >= a->opened.seq;
  for (RegionId o = 0; o < n_; ++o) {
    Seq s = vv.get(o);
    Amount p = UpTo(a->credits[o], s), d = UpTo(a->debits[o], s);
    out->rights[o] += p - d;
    out->balance += p - d;
    for (RegionId to = 0; to < n_; ++to) {
      const auto& t = a->transfers[o * n_ + to];
      if (t.empty()) continue;
      Amount x = UpTo(t, s);
      out->rights[o] -= x;
      out->rights[to] += x;
    }
    // Captures originated at o, each a debit of the region of its hold.
    for (RegionId r = 0; r < n_; ++r) {
      const auto& c = a->captures[o * n_ + r];
      if (c.empty()) continue;
      const Amount x = UpTo(c, s);
      out->rights[r] -= x;
      out->balance -= x;
    }
  }
  return true;
}

Amount Ledger::Line(const std::string& account, RegionId region) const {
  const Account* a = FindAccount(account);
  return a && region < n_ ? a->lines[region] : 0;
}

const std::vector<LedgerOp>* Ledger::Ops(const std::string& account) const {
  const Account* a = FindAccount(account);
  return a ? &a->ops : nullptr;
}

Amount Ledger::Refunds(const std::string& account, RegionId region) const {
  const Account* a = FindAccount(account);
  return a && region < n_ ? a->refunds[region] : 0;
}

Amount Ledger::Clawbacks(const std::string& account, RegionId region) const {
  const Account* a = FindAccount(account);
  return a && region < n_ ? a->clawbacks[region] : 0;
}

MoneyTotals Ledger::Totals() const {
  MoneyTotals t;
  for (const Account& a : accounts_) {
    for (std::uint32_t i = 0; i < a.ops.size(); ++i) {
      const LedgerOp& op = a.ops[i];
      const bool voided = a.voided[i];
      if (op.kind == OpKind::kBudgetDebit) {
        // Money out of each payer; the op counted once, at the account named.
        if (op.pays && !voided) t.debits += op.amount;
        if (op.incoming) continue;
        ++t.budget_debits;
        if (voided) ++t.budget_voided;
        if (!op.pays) ++t.budget_fallbacks;
        if (budget_groups_[op.group].size() > 1) ++t.budget_caps;
        continue;
      }
      if (op.incoming) continue;  // counted once, at its payer
      switch (op.kind) {
        case OpKind::kCredit:
          if (!voided) t.credits += op.amount;
          break;
        case OpKind::kDebit:
          if (!voided) t.debits += op.amount;
          break;
        case OpKind::kTransfer:
          ++t.transfers;
          if (voided) ++t.transfers_voided;
          if (!voided) t.transferred += op.amount;
          break;
        case OpKind::kCapture:  // money out of the account, like a debit
          if (!voided) t.debits += op.amount;
          break;
        case OpKind::kOpen:
        case OpKind::kRights:
        case OpKind::kHold:
        case OpKind::kRelease:
        case OpKind::kBudgetDebit:  // above
          break;
      }
    }
  }
  return t;
}

Amount FinalBalance(const OracleAccount& o, Hlc f) {
  for (const auto& [hlc, before] : o.balance_before)
    if (hlc >= f) return before;  // canonical order: every op from here on is at or above f
  return o.balance;
}

std::vector<std::string> Ledger::Accounts() const {
  std::vector<std::string> ids;
  ids.reserve(accounts_.size());
  for (const Account& a : accounts_) ids.push_back(a.config.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool Ledger::Oracle(const std::string& account, OracleAccount* out) const {
  const Account* a = FindAccount(account);
  if (!a) return false;
  OracleAccount r;
  if (a->has_config) r.config = a->config;
  r.region_fees.assign(n_, 0);
  r.region_voids.assign(n_, 0);
  r.region_rights = a->rights;
  r.ops = a->ops.size();

  std::vector<std::uint32_t> order(a->ops.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
    return a->ops[x].canonical < a->ops[y].canonical;
  });

  // Per key, the wall time of its last use so far in canonical order (every use counts), and of
  // its last surviving debit with how many surviving debits lie less than the retention apart
  // (I6).
  struct Seen {
    Hlc last;
    Hlc last_debit;
    std::uint64_t debits_in_window = 0;
  };
  std::map<std::string, Seen> seen;
  Amount balance = 0;
  for (std::uint32_t i : order) {
    const LedgerOp& op = a->ops[i];
    const RegionId o = op.canonical.origin;
    // A transfer is, in this account, a debit (the payer's side) or a credit (the payee's); its
    // events name it so.
    OpKind kind = op.kind;
    if (op.kind == OpKind::kTransfer) kind = op.incoming ? OpKind::kCredit : OpKind::kDebit;
    // A budget debit is, in a payer's account, a debit; in the account named that did not pay, a
    // marker that moves no money.
    if (op.kind == OpKind::kBudgetDebit && op.pays) kind = OpKind::kDebit;
    // Where its money, fee or void is booked: a capture's at its hold's region (the funds were
    // reserved there), everything else at its origin.
    const RegionId booked = kind == OpKind::kCapture ? op.hold.origin : o;
    const bool takes = kind == OpKind::kDebit || kind == OpKind::kCapture;  // money out
    r.balance_before.emplace_back(op.canonical.hlc, balance);
    if (kind == OpKind::kCredit) r.raw_balance += op.amount;
    if (takes) r.raw_balance -= op.amount;
    bool voided = false;
    if (op.incoming) {
      // The key is another account's (a transfer's payer, a budget debit's account named): its
      // uses there decide.
      voided = KeyOwnerVoids(op);
    } else if (!op.key.empty()) {
      auto [it, first] = seen.try_emplace(op.key);
      voided = !first && Within(it->second.last, op.canonical.hlc);
      it->second.last = op.canonical.hlc;
    }
    // A hold is named by its op's dot. Canonical order puts it before every resolution of it (a
    // region resolves only a hold it holds, and stamps the resolution above it), so its fate as a
    // duplicate of its key is known when they come: a resolution of a voided hold is voided.
    if (kind == OpKind::kHold) {
      OracleHold& h = r.holds[Dot{o, op.canonical.seq}];
      h.placed = true;
      h.amount = op.amount;
      h.expires_ms = op.expires_ms;
      h.voided = voided;
    } else if (kind == OpKind::kCapture || kind == OpKind::kRelease) {
      OracleHold& h = r.holds[op.hold];
      if (h.voided) voided = true;
      if (!voided) {
        // Resolutions share a key: the first one not voided wins; the key rule voids the rest.
        ++h.surviving;
        if (kind == OpKind::kCapture) h.surviving_captured += op.amount;
        if (h.winner.seq == 0) {
          h.winner = Dot{o, op.canonical.seq};
          h.resolution = kind;
          h.captured = kind == OpKind::kCapture ? op.amount : 0;
          h.expired = op.expired;
        }
      }
    }
    if (voided) {
      // A voided debit or capture is refunded, a voided credit clawed back; a voided hold or
      // release moves nothing back but is a fork all the same (an event of 0).
      const Amount v = takes ? op.amount : kind == OpKind::kCredit ? -op.amount : 0;
      if (kind != OpKind::kOpen && kind != OpKind::kRights) {
        r.region_voids[booked] += v;
        r.voids += v;
        DerivedEvent e;
        e.kind = DerivedKind::kVoid;
        e.op = op.canonical;
        e.op_kind = kind;
        e.op_amount = op.amount;
        e.amount = v;
        e.balance_after = balance;
        r.events.push_back(e);
      }
      continue;
    }
    // I6: a surviving debit of this account's key (a budget debit's marker is one, paid by an
    // ancestor); a side of another account's key is counted there.
    if ((kind == OpKind::kDebit || kind == OpKind::kBudgetDebit) && !op.key.empty() &&
        !op.incoming) {
      Seen& k = seen[op.key];
      k.debits_in_window = k.debits_in_window > 0 && Within(k.last_debit, op.canonical.hlc)
                               ? k.debits_in_window + 1
                               : 1;
      k.last_debit = op.canonical.hlc;
      r.surviving_debits_max_per_key = std::max(r.surviving_debits_max_per_key, k.debits_in_window);
    }
    switch (kind) {
      case OpKind::kCredit:
        balance += op.amount;
        break;
      case OpKind::kDebit:
      case OpKind::kCapture: {
        Amount before = balance;
        balance -= op.amount;
        if (before >= 0 && balance < 0) {
          // The debit that takes the balance from >= 0 to < 0 opens an overdraft episode.
          ++r.episodes;
          Amount overdrawn = -balance;
          const Amount fee = a->config.fee.flat + FeeOnOverdrawn(overdrawn, a->config.fee.bps);
          balance -= fee;
          r.region_fees[booked] += fee;
          r.fees += fee;
          DerivedEvent e;
          e.kind = DerivedKind::kOverdraftFee;
          e.op = op.canonical;
          e.op_kind = kind;
          e.op_amount = op.amount;
          e.amount = fee;
          e.overdrawn = overdrawn;
          e.balance_after = balance;
          r.events.push_back(e);  // even a zero fee marks the episode
        }
        break;
      }
      case OpKind::kOpen:
      case OpKind::kRights:
      case OpKind::kTransfer:     // read as its side above
      case OpKind::kHold:         // no money: reserves its region's rights
      case OpKind::kRelease:      // no money: gives the reserve back
      case OpKind::kBudgetDebit:  // a marker: the money left the payers
        break;
    }
  }
  r.balance = balance;
  for (RegionId o = 0; o < n_; ++o) r.region_rights[o] += r.region_voids[o] - r.region_fees[o];
  *out = std::move(r);
  return true;
}

}  // namespace tally::sim

namespace tally::sim {

HoldTotals Ledger::HoldCounts() const {
  HoldTotals t;
  for (const Account& a : accounts_) {
    for (const auto& [dot, hb] : a.holds) {
      t.resolutions += hb.resolutions.size();
      const bool placed = hb.op != kNoOtherSide;
      const bool voided = placed && a.voided[hb.op];
      if (placed) ++t.holds;
      if (voided) ++t.holds_voided;
      // The winner: the canonically first resolution the void rule left standing.
      const LedgerOp* winner = nullptr;
      for (std::uint32_t j : hb.resolutions) {
        if (a.voided[j]) {
          if (placed && !voided) ++t.conflicts;
          continue;
        }
        if (!winner || a.ops[j].canonical < winner->canonical) winner = &a.ops[j];
      }
      if (!placed || voided) continue;
      if (!winner) {
        ++t.open;
      } else if (winner->kind == OpKind::kCapture) {
        ++t.captured;
        t.amount_captured += winner->amount;
      } else if (winner->expired) {
        ++t.expired;
      } else {
        ++t.released;
      }
    }
  }
  return t;
}

bool Ledger::HoldFiguresAt(const std::string& account, const VersionVector& vv, Hlc frontier,
                           HoldFigures* out) const {
  const Account* a = FindAccount(account);
  if (!a) return false;
  *out = HoldFigures{};
  out->reserved_min.assign(n_, 0);
  out->reserved_max.assign(n_, 0);
  auto holds = [&](const CanonicalKey& k) { return k.seq <= vv.get(k.origin); };
  for (const auto& [dot, hb] : a->holds) {
    if (hb.op == kNoOtherSide) continue;
    const LedgerOp& h = a->ops[hb.op];
    if (!holds(h.canonical)) continue;
    ++out->holds;
    // Voided, among the ops held, by the windowed rule: the canonical predecessor of its key's
    // use, among the uses held, lies less than the retention before it.
    bool voided = false;
    if (!h.key.empty()) {
      const auto& uses = a->keys.at(h.key).uses;
      auto it = uses.find(h.canonical);
      while (it != uses.begin()) {
        --it;
        if (!holds(it->first)) continue;
        voided = Within(it->first.hlc, h.canonical.hlc);
        break;
      }
    }
    if (voided) continue;  // reserves nothing, is not held
    // Its resolutions held all lie within one window (each is stamped between the hold and its
    // expiry, at most a retention apart): the canonically first wins.
    const LedgerOp* winner = nullptr;
    for (std::uint32_t j : hb.resolutions) {
      const LedgerOp& res = a->ops[j];
      if (holds(res.canonical) && (!winner || res.canonical < winner->canonical)) winner = &res;
    }
    if (!winner) out->held += h.amount;
    const Amount left =
        h.amount - (winner && winner->kind == OpKind::kCapture ? winner->amount : 0);
    out->reserved_max[dot.origin] += left;
    // Until its winner is below the stable frontier, an earlier resolution may still come and
    // take up to the whole hold: its region keeps what the winner left reserved.
    if (!winner || !(winner->canonical.hlc < frontier)) out->reserved_min[dot.origin] += left;
  }
  return true;
}

}  // namespace tally::sim
