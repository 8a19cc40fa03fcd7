#include "core/account_book.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <utility>

#include "core/digest.h"
#include "core/statements.h"
#include "core/validate.h"

namespace tally {

AccountBook::AccountBook(const ReplicaOptions& opt)
    : n_(static_cast<RegionId>(opt.regions.size())),
      self_(opt.self),
      bugs_(opt.bugs),
      max_events_per_account_(opt.max_events_per_account),
      hold_retention_ms_(opt.idempotency_retention_ms),
      keys_(opt),
      keep_statements_(opt.keep_statements) {}

// ---- lookup
// ---------------------------------------------------------------------------------------

Account* AccountBook::Find(std::string_view id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &accounts_[it->second];
}

Account& AccountBook::GetOrCreate(const std::string& id) {
  auto [it, inserted] = index_.try_emplace(id, static_cast<std::uint32_t>(accounts_.size()));
  if (inserted) {
    Account a;
    a.config.id = id;
    a.config.lines.assign(n_, 0);
    a.counters = Counters(n_);
    a.final_counters = Counters(n_);
    a.checkpoint = ReplayState(n_);
    a.tip = ReplayState(n_);
    a.demand_mark.assign(n_, 0);
    a.tentative.assign(n_, 0);
    a.reserved.assign(n_, 0);
    accounts_.push_back(std::move(a));
  }
  return accounts_[it->second];
}

std::uint32_t AccountBook::IndexOf(const Account& a) const {
  assert(&a >= accounts_.data() && &a < accounts_.data() + accounts_.size());
  return static_cast<std::uint32_t>(&a - accounts_.data());
}

bool AccountBook::IsOpen(std::string_view id) const {
  auto it = index_.find(id);
  return it != index_.end() && accounts_[it->second].open;
}

std::vector<std::string> AccountBook::OpenIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, i] : index_) {
    if (accounts_[i].open) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---- figures
// --------------------------------------------------------------------------------------

// Local ops append and replay one step; a remote op landing earlier in the canonical order costs a
// replay from the frontier (Invalidate).
const ReplayState& AccountBook::Tip(Account& a) {
  while (a.tip_pos < a.journal.size()) {
    Step(a, a.journal[a.tip_pos], &a.tip, nullptr);
    ++a.tip_pos;
  }
  return a.tip;
}

void AccountBook::Step(const Account& a, const JournalEntry& e, ReplayState* s,
                       std::vector<DerivedEvent>* events) const {
  const std::size_t first_event = events ? events->size() : 0;
  const ReplayEntry entry = e.replay();
  const RegionId o = entry.region();
  const Amount fees_before = s->fees[o];
  ReplayStep(a.config.fee, entry, s, events);
  if (bugs_.book_fee_elsewhere && s->fees[o] != fees_before) {
    const Amount fee = s->fees[o] - fees_before;
    s->fees[o] = fees_before;
    s->fees[(o + 1) % n_] += fee;
  }
  if (bugs_.misreport_overdrawn && events) {
    for (std::size_t i = first_event; i < events->size(); ++i)
      if ((*events)[i].kind == DerivedKind::kOverdraftFee) ++(*events)[i].overdrawn;
  }
}

void AccountBook::Invalidate(Account& a, std::size_t pos) {
  if (pos < a.tip_pos) {
    a.tip = a.checkpoint;
    a.tip_pos = 0;
  }
}

Amount AccountBook::EffectiveRights(Account& a, RegionId r) {
  const ReplayState& t = Tip(a);
  return a.counters.rights(r) - t.fees[r] + t.voids[r];
}

Amount AccountBook::TentativeCredit(const Account& a) const {
  return bugs_.spend_tentative_credit ? 0 : a.tentative[self_];
}

// Rights move between regions and fees and voids are booked to one: the regions' effective rights
// always add up to the effective balance (unless a fee saturated, which the caps rule out).
void AccountBook::CheckRightsAddUp(Account& a) {
  Amount sum = 0;
  for (RegionId r = 0; r < n_; ++r) sum += EffectiveRights(a, r);
  assert(sum == Tip(a).balance && "the regions' rights must add up to the balance");
  (void)sum;
}

std::uint64_t AccountBook::Digest(Account& a) {
  const ReplayState& t = Tip(a);
  Fnv64 h;
  h.Add(a.config.id);
  h.Add(a.config.currency);
  h.Add(static_cast<std::uint64_t>(a.config.overdraft_limit));
  for (Amount l : a.config.lines) h.Add(static_cast<std::uint64_t>(l));
  h.Add(static_cast<std::uint64_t>(a.config.fee.flat));
  h.Add(a.config.fee.bps);
  for (RegionId r = 0; r < n_; ++r) {
    h.Add(static_cast<std::uint64_t>(a.counters.credits(r)));
    h.Add(static_cast<std::uint64_t>(a.counters.debits(r)));
    for (RegionId s = 0; s < n_; ++s)
      h.Add(static_cast<std::uint64_t>(a.counters.transferred(r, s)));
    h.Add(static_cast<std::uint64_t>(t.fees[r]));
    h.Add(static_cast<std::uint64_t>(t.voids[r]));
  }
  h.Add(static_cast<std::uint64_t>(t.balance));
  h.Add(static_cast<std::uint64_t>(t.refunds));
  h.Add(t.episodes);
  h.Add(t.ops);
  h.Add(t.in_episode ? 1 : 0);
  return h.value();
}

void AccountBook::FillView(Account& a, AccountView* v) {
  CheckRightsAddUp(a);
  const ReplayState& t = Tip(a);
  v->config = a.config;
  v->balance = t.balance;
  v->final_balance = a.checkpoint.balance;
  v->raw_balance = a.counters.balance();
  v->tentative = !a.journal.empty();
  v->regions.assign(n_, RegionView{});
  for (RegionId r = 0; r < n_; ++r) {
    v->regions[r] =
        RegionView{EffectiveRights(a, r), a.tentative[r], a.config.lines[r], t.fees[r], t.voids[r],
                   Reserved(a, r)};
  }
  v->held = Held(a);
  v->available = t.balance - v->held;
  v->fees = t.total_fees();
  v->voids = t.total_voids();
  v->episodes = t.episodes;
  v->digest = Digest(a);
}

void AccountBook::Forks(Account& a, const OpLog& log, std::vector<ForkReport>* forks) {
  forks->assign(a.final_forks.begin(), a.final_forks.end());
  ReplayState s = a.checkpoint;
  ReplayRange(a, log, &s, 0, a.journal.size(), /*final=*/false, forks);
}

void AccountBook::Statement(Account& a, const OpLog& log, std::vector<StatementLine>* lines) {
  for (const StatementLine& l : unsaved_lines_) {
    if (l.account == a.config.id) lines->push_back(l);
  }
  ReplayState s = a.checkpoint;
  StatementLines tentative;
  ReplayRange(a, log, &s, 0, a.journal.size(), /*final=*/false, nullptr, &tentative);
  std::move(tentative.begin(), tentative.end(), std::back_inserter(*lines));
}

// Replays journal[begin, end) onto `s`; collects fork reports if `forks` is given, and statement
// lines if `lines` is.
void AccountBook::ReplayRange(Account& a, const OpLog& log, ReplayState* s, std::size_t begin,
                              std::size_t end, bool final, std::vector<ForkReport>* forks,
                              StatementLines* lines) const {
  std::vector<DerivedEvent> events;
  auto add_op = [&](const CanonicalKey& k, std::vector<Op>* ops) {
    if (const Op* op = log.Lookup(k)) ops->push_back(*op);
  };
  std::size_t spree_begin = begin;  // first debit since the last credit: the spends that overdrew
  for (std::size_t i = begin; i < end; ++i) {
    const JournalEntry& e = a.journal[i];
    if (e.kind == OpKind::kCredit && !e.voided) spree_begin = i + 1;
    events.clear();
    Step(a, e, s, forks || lines ? &events : nullptr);
    if (lines && IsStatementEntry(e.kind)) {
      Amount after = s->balance;
      for (const DerivedEvent& ev : events) {
        if (bugs_.statement_without_fee && ev.kind == DerivedKind::kOverdraftFee)
          after += ev.amount;
      }
      lines->push_back(MakeStatementLine(a.config.id, e, final, after, events, log.Lookup(e.key)));
    }
    if (!forks) continue;
    for (DerivedEvent& ev : events) {
      ForkReport f{ev, final, {}};
      if (ev.kind == DerivedKind::kOverdraftFee) {
        for (std::size_t j = spree_begin; j <= i; ++j) {
          const OpKind k = a.journal[j].kind;
          if ((k == OpKind::kDebit || k == OpKind::kCapture) && !a.journal[j].voided)
            add_op(a.journal[j].key, &f.ops);
        }
      } else {
        add_op(e.key, &f.ops);
        CanonicalKey by;
        const Op* v = log.Lookup(e.key);
        // A key is its op's account's (a transfer's payer's, in the payee's journal too).
        auto key_account = v ? index_.find(v->account) : index_.end();
        if (key_account != index_.end() && !v->key.empty() &&
            keys_.Predecessor(key_account->second, v->key, e.key, &by))
          add_op(by, &f.ops);
      }
      forks->push_back(std::move(f));
    }
  }
}

// ---- applying ---------------------------------------------------------------------------------

Status AccountBook::Apply(const Op& op, bool write_keys, Effects* out) {
  if (op.kind == OpKind::kTransfer) return ApplyTransfer(op, write_keys, out);
  if (op.kind == OpKind::kBudgetDebit) return ApplyBudgetDebit(op, write_keys, out);
  Account& a = GetOrCreate(op.account);
  const RegionId o = op.dot.origin;
  if (op.kind == OpKind::kHold || IsHoldResolution(op.kind)) {
    auto it = hold_accounts_.find(op.kind == OpKind::kHold ? op.dot : op.hold);
    if (it != hold_accounts_.end() && it->second != IndexOf(a))
      return Status::InvalidArgument("op on account '" + op.account + "' names hold " +
                                     (op.kind == OpKind::kHold ? op.dot : op.hold).ToString() +
                                     " of another account");
  }
  Status s;
  switch (op.kind) {
    case OpKind::kOpen:
      if (!a.open || op.canonical() < a.opened) {
        // Concurrent opens: the canonically first config wins everywhere.
        a.config = *op.config;
        a.opened = op.canonical();
        a.open = true;
        Invalidate(a, 0);
      }
      break;
    case OpKind::kCredit:
      s = a.counters.Credit(o, op.amount, nullptr);
      break;
    case OpKind::kDebit:
      s = a.counters.Debit(o, op.amount, nullptr);
      break;
    case OpKind::kRights:
      s = a.counters.Transfer(o, op.to, op.amount, nullptr);
      break;
    case OpKind::kTransfer:
    case OpKind::kBudgetDebit:
      break;  // ApplyTransfer, ApplyBudgetDebit
    case OpKind::kHold:
    case OpKind::kRelease:
      break;  // no money moves: the hold's reserve is the registry's (HoldState)
    case OpKind::kCapture:
      s = a.counters.Debit(op.hold.origin, op.amount, nullptr);  // where it was reserved
      break;
  }
  if (!s.ok()) return s;

  JournalEntry e{op.canonical(), op.kind, false, !op.key.empty(), op.to, kNoCounterpart, op.amount};
  if (op.kind == OpKind::kHold) {
    e.to = o;
    e.hold_seq = op.dot.seq;
  } else if (IsHoldResolution(op.kind)) {
    e.to = op.hold.origin;
    e.hold_seq = op.hold.seq;
  }
  const std::size_t pos = JournalPosition(a, e.key);
  if (e.keyed) e.voided = UseKey(a, op, write_keys, out);
  if (op.kind == OpKind::kHold || IsHoldResolution(op.kind)) e.voided = TrackHold(a, op, e);
  InsertEntry(a, pos, e);
  if (op.kind == OpKind::kDebit || op.kind == OpKind::kHold) touched_.insert(IndexOf(a));
  return Status::OK();
}

// ---- holds ------------------------------------------------------------------------------------

HoldState& AccountBook::HoldOf(Account& a, Dot hold) {
  hold_accounts_.emplace(hold, IndexOf(a));
  return a.holds[hold];
}

// The registry's side of a hold op or a resolution about to be journaled as `e`; returns whether
// the entry is voided. A resolution of a voided hold is voided with it; one the key rule leaves
// unvoided is the canonically first resolution held, so it is the winner (it voided the previous
// winner, if any, by that rule).
bool AccountBook::TrackHold(Account& a, const Op& op, const JournalEntry& e) {
  if (op.kind == OpKind::kHold) {
    ChangeHold(a, op.dot, [&](HoldState& h) {
      h.placed = true;
      h.at = op.canonical();
      h.amount = op.amount;
      h.expires_ms = op.expires_ms;
    });
    expiries_.emplace(op.expires_ms, op.dot);
    if (op.dot.origin == self_) own_expiries_.emplace(op.expires_ms, op.dot);
    if (e.voided) VoidHold(a, op.dot);
    return e.voided;
  }
  HoldState& h = HoldOf(a, op.hold);
  h.resolutions.push_back(e.key);
  if (h.voided || e.voided) return true;
  ChangeHold(a, op.hold, [&](HoldState& w) {
    w.winner = e.key;
    w.resolution = op.kind;
    w.captured = op.kind == OpKind::kCapture ? op.amount : 0;
    w.expired = op.expired;
  });
  return false;
}

// A hold voided as a duplicate of another hold's key: it reserves nothing, and its resolutions,
// held or to come, are voided too (a capture of it would take money nothing reserved).
void AccountBook::VoidHold(Account& a, Dot hold) {
  ChangeHold(a, hold, [](HoldState& h) { h.voided = true; });
  for (const CanonicalKey& k : a.holds.at(hold).resolutions) {
    const std::size_t j = FindEntry(a, k);
    if (j < a.journal.size() && !a.journal[j].voided) MarkVoided(a, j);
  }
}

// What a hold adds to its account's sums (Account::reserved, Account::held): taken out before it
// changes, put back after, so the sums stay exact. Each sum is bounded by what its region could
// reserve: holds are decided on rights and line, far below 2^63.
void AccountBook::CountHold(Account& a, Dot dot, const HoldState& h, int sign) {
  const bool bug = bugs_.release_reserve_early && h.resolved();
  a.reserved[dot.origin] += sign * (bug ? 0 : h.reserve());
  a.held += sign * (h.open() ? h.amount : 0);
  assert(a.reserved[dot.origin] >= 0 && a.held >= 0);
}

template <class Change>
void AccountBook::ChangeHold(Account& a, Dot dot, Change&& change) {
  HoldState& h = HoldOf(a, dot);
  CountHold(a, dot, h, -1);
  change(h);
  CountHold(a, dot, h, +1);
}

void AccountBook::EraseHold(Account& a, Dot dot) {
  const HoldState& h = a.holds.at(dot);
  CountHold(a, dot, h, -1);
  if (h.placed) {
    expiries_.erase({h.expires_ms, dot});
    own_expiries_.erase({h.expires_ms, dot});  // a frontier that jumped: settled before its round
  }
  hold_accounts_.erase(dot);
  a.holds.erase(dot);
}

bool AccountBook::FindHold(Dot hold, Account** account, const HoldState** state) {
  auto it = hold_accounts_.find(hold);
  if (it == hold_accounts_.end()) return false;
  Account& a = accounts_[it->second];
  auto h = a.holds.find(hold);
  assert(h != a.holds.end() && "the hold index names the account that keeps the hold");
  *account = &a;
  *state = &h->second;
  return true;
}

// Our holds leave own_expiries_ once past their expiry: resolved ones for good (a resolution is
// never undone, only replaced by an earlier one), open ones to be released.
std::vector<std::pair<std::string, Dot>> AccountBook::TakeExpiredOwnHolds(Hlc frontier) {
  std::vector<std::pair<std::string, Dot>> out;
  auto it = own_expiries_.begin();
  for (; it != own_expiries_.end() && it->first < frontier.wall_ms(); ++it) {
    const Account& a = accounts_[hold_accounts_.at(it->second)];
    if (a.holds.at(it->second).open()) out.emplace_back(a.config.id, it->second);
  }
  own_expiries_.erase(own_expiries_.begin(), it);
  return out;
}

// A hold op or resolution turning final.
void AccountBook::FoldHoldEntry(Account& a, const JournalEntry& e) {
  auto it = a.holds.find(Dot{e.to, e.hold_seq});
  if (it == a.holds.end()) return;
  HoldState& h = it->second;
  if (e.kind == OpKind::kHold) {
    h.placed_final = true;
    return;
  }
  std::erase(h.resolutions, e.key);
  if (e.key == h.winner) ChangeHold(a, it->first, [](HoldState& w) { w.winner_final = true; });
  if (!h.placed && h.resolutions.empty()) EraseHold(a, it->first);  // a hold never placed
}

// Forgets holds that can no longer matter: resolved for good (or voided) and expired below the
// frontier one key retention ago, so that a retry of any of their resolutions is answered from
// the hold's key until then, like every retry. Unresolved ones wait for their region's release at
// expiry (TakeExpiredOwnHolds).
void AccountBook::ForgetSettledHolds(Hlc frontier) {
  for (auto it = expiries_.begin();
       it != expiries_.end() && it->first + hold_retention_ms_ < frontier.wall_ms();) {
    const std::uint32_t idx = hold_accounts_.at(it->second);
    Account& a = accounts_[idx];
    const HoldState& h = a.holds.at(it->second);
    const bool settled = h.placed_final && h.resolutions.empty() && (h.voided || h.winner_final);
    if (!settled) {
      ++it;
      continue;
    }
    const Dot dot = it->second;
    ++it;  // EraseHold drops the hold's entry
    EraseHold(a, dot);
    unsaved_.insert(idx);
  }
}

// One op, two journals: the payer's as a debit, the payee's as a credit, both at the op's place
// in the canonical order. Both counters are checked before either changes.
Status AccountBook::ApplyTransfer(const Op& op, bool write_keys, Effects* out) {
  const std::uint32_t payer = IndexOf(GetOrCreate(op.account));
  const std::uint32_t payee = IndexOf(GetOrCreate(op.to_account));  // may move accounts_
  Account& a = accounts_[payer];
  Account& b = accounts_[payee];
  const RegionId o = op.dot.origin;
  if (op.amount > a.counters.debit_room(o) || op.amount > b.counters.credit_room(o))
    return Status::ResourceExhausted("transfer would take a counter past " +
                                     std::to_string(kMaxCounter));
  Status s = a.counters.Debit(o, op.amount, nullptr);
  assert(s.ok());
  s = b.counters.Credit(o, op.amount, nullptr);
  assert(s.ok());
  (void)s;
  const bool keyed = !op.key.empty();
  JournalEntry debit{op.canonical(), OpKind::kDebit, false, keyed, 0, payee, op.amount};
  JournalEntry credit{op.canonical(), OpKind::kCredit, false, keyed, 0, payer, op.amount};
  const std::size_t pos_a = JournalPosition(a, debit.key);
  const std::size_t pos_b = JournalPosition(b, credit.key);
  // The key is the payer's: its void rule decides both sides.
  if (keyed) debit.voided = credit.voided = UseKey(a, op, write_keys, out);
  if (bugs_.void_transfer_payer_only) credit.voided = false;
  InsertEntry(a, pos_a, debit);
  InsertEntry(b, pos_b, credit);
  touched_.insert(payer);
  return Status::OK();
}

// A budget debit: a debit entry in the journal of each payer and, when a fallback took the money
// from an ancestor, a marker entry (no money) in the named account's, which owns the key. The
// entries name each other in a ring (`counterpart`), so the key rule's void reaches all of them.
Status AccountBook::ApplyBudgetDebit(const Op& op, bool write_keys, Effects* out) {
  const bool marker = op.payers.front() != op.account;
  std::vector<std::uint32_t> ring;
  if (marker) ring.push_back(IndexOf(GetOrCreate(op.account)));
  for (const std::string& p : op.payers) ring.push_back(IndexOf(GetOrCreate(p)));
  const RegionId o = op.dot.origin;
  for (std::size_t i = marker ? 1 : 0; i < ring.size(); ++i) {
    if (op.amount > accounts_[ring[i]].counters.debit_room(o))
      return Status::ResourceExhausted("budget debit would take a counter past " +
                                       std::to_string(kMaxCounter));
  }
  const bool keyed = !op.key.empty();
  std::vector<JournalEntry> entries;
  std::vector<std::size_t> positions;
  for (std::size_t i = 0; i < ring.size(); ++i) {
    Account& a = accounts_[ring[i]];
    const bool debit = !(marker && i == 0);
    if (debit) {
      const Status s = a.counters.Debit(o, op.amount, nullptr);
      assert(s.ok());
      (void)s;
    }
    entries.push_back(JournalEntry{op.canonical(), debit ? OpKind::kDebit : OpKind::kBudgetDebit,
                                   false, keyed, 0, ring[(i + 1) % ring.size()], op.amount});
    positions.push_back(JournalPosition(a, op.canonical()));
  }
  if (keyed) {
    const bool voided = UseKey(accounts_[ring[0]], op, write_keys, out);
    for (JournalEntry& e : entries) e.voided = voided;
  }
  for (std::size_t i = 0; i < ring.size(); ++i) {
    InsertEntry(accounts_[ring[i]], positions[i], entries[i]);
    if (entries[i].kind == OpKind::kDebit) touched_.insert(ring[i]);
  }
  return Status::OK();
}

// Where an entry with canonical key `k` goes in a's journal (or at the end, under the planted
// bug that orders forks by arrival).
std::size_t AccountBook::JournalPosition(const Account& a, const CanonicalKey& k) const {
  std::size_t pos = a.journal.size();
  if (!bugs_.order_forks_by_arrival) {
    // Ops mostly arrive in canonical order: search from the back.
    while (pos > 0 && k < a.journal[pos - 1].key) --pos;
    assert((pos == 0 || a.journal[pos - 1].key < k) && "the journal is in canonical order");
  }
  return pos;
}

void AccountBook::InsertEntry(Account& a, std::size_t pos, const JournalEntry& e) {
  Invalidate(a, pos);
  // <= 2^58 per region: cannot overflow.
  if (IsTentativeCredit(e)) a.tentative[e.key.origin] += e.amount;
  a.journal.insert(a.journal.begin() + static_cast<std::ptrdiff_t>(pos), e);
  journaled_.insert(IndexOf(a));
}

// The windowed rule (key_index.h) for op's use of its key on account `a` (KeyBook): returns whether
// this use is voided (by a canonically earlier use within the retention window). A use may also
// void the next one, here and, for a transfer, in its other account too.
bool AccountBook::UseKey(Account& a, const Op& op, bool write_keys, Effects* out) {
  const KeyIndex::Outcome u = keys_.Use(IndexOf(a), op, write_keys, out);
  if (!u.known && u.voids_next) {
    const std::size_t j = FindEntry(a, u.next.canonical());
    if (j < a.journal.size()) VoidEntry(a, j);
  }
  return u.voided;
}

// Voids journal entry j of `a`, and the other entries of its op if it touches several accounts
// (a transfer, a budget debit: a ring of entries, each naming the next one's account).
void AccountBook::VoidEntry(Account& a, std::size_t j) {
  MarkVoided(a, j);
  const JournalEntry& e = a.journal[j];
  if (e.kind == OpKind::kHold) VoidHold(a, Dot{e.to, e.hold_seq});
  if (bugs_.void_transfer_payer_only) return;
  const CanonicalKey key = e.key;
  const std::uint32_t start = IndexOf(a);
  for (std::uint32_t next = e.counterpart; next != kNoCounterpart && next != start;) {
    Account& b = accounts_[next];
    const std::size_t k = FindEntry(b, key);
    assert(k < b.journal.size() && "every entry of an op folds together");
    if (k >= b.journal.size()) break;
    MarkVoided(b, k);
    next = b.journal[k].counterpart;
  }
}

void AccountBook::MarkVoided(Account& a, std::size_t j) {
  UntrackTentative(a, a.journal[j]);  // while it still counts as unvoided
  a.journal[j].voided = true;
  Invalidate(a, j);
}

void AccountBook::SetKeyAnswer(Dot op, Amount balance_after, Effects* out) {
  keys_.SetAnswer(op, balance_after, out);
}

// A credit that a canonically earlier duplicate of its key could still void (only another region
// can originate one: a region answers a repeated key from its own index).
bool AccountBook::IsTentativeCredit(const JournalEntry& e) const {
  return e.kind == OpKind::kCredit && e.keyed && !e.voided && n_ > 1;
}

void AccountBook::UntrackTentative(Account& a, const JournalEntry& e) {
  if (IsTentativeCredit(e)) a.tentative[e.key.origin] -= e.amount;
  assert(a.tentative[e.key.origin] >= 0);
}

std::size_t AccountBook::FindEntry(const Account& a, const CanonicalKey& k) const {
  for (std::size_t i = a.journal.size(); i-- > 0;) {
    if (a.journal[i].key == k) return i;
  }
  return a.journal.size();
}

AccountBook::KeyLookup AccountBook::LookupKey(Account& a, const std::string& key, OpKind kind,
                                              Amount amount, RegionId to, Hlc retry_at) const {
  return keys_.Find(IndexOf(a), key, kind, amount, to, retry_at);
}

// ---- folding
// --------------------------------------------------------------------------------------

void AccountBook::FoldBelow(Hlc f, const OpLog& log) {
  for (std::uint32_t idx : journaled_.sorted()) {
    Account& a = accounts_[idx];
    std::size_t k = 0;
    if (bugs_.order_forks_by_arrival) {
      // Arrival order is not sorted: fold the leading run below the frontier.
      while (k < a.journal.size() && a.journal[k].key.hlc < f) ++k;
    } else {
      k = static_cast<std::size_t>(
          std::lower_bound(
              a.journal.begin(), a.journal.end(), CanonicalKey{f, 0, 0},
              [](const JournalEntry& e, const CanonicalKey& key) { return e.key < key; }) -
          a.journal.begin());
    }
    if (k == 0) continue;
    std::vector<ForkReport> forks;
    ReplayRange(a, log, &a.checkpoint, 0, k, /*final=*/true, &forks,
                keep_statements_ ? &unsaved_lines_ : nullptr);
    for (std::size_t i = 0; i < k; ++i) {
      const JournalEntry& e = a.journal[i];
      const RegionId o = e.key.origin;
      UntrackTentative(a, e);  // final: its void status can no longer change
      switch (e.kind) {
        case OpKind::kCredit:
          a.final_counters.Credit(o, e.amount, nullptr);
          break;
        case OpKind::kDebit:
          a.final_counters.Debit(o, e.amount, nullptr);
          break;
        case OpKind::kRights:
          a.final_counters.Transfer(o, e.to, e.amount, nullptr);
          break;
        case OpKind::kCapture:
          a.final_counters.Debit(e.to, e.amount, nullptr);
          FoldHoldEntry(a, e);
          break;
        case OpKind::kHold:
        case OpKind::kRelease:
          FoldHoldEntry(a, e);
          break;
        case OpKind::kOpen:
        case OpKind::kTransfer:     // journaled as its debit and credit
        case OpKind::kBudgetDebit:  // a marker: the payers' entries are debits
          break;
      }
    }
    for (ForkReport& fr : forks) {
      a.final_forks.push_back(std::move(fr));
      if (a.final_forks.size() > max_events_per_account_) a.final_forks.pop_front();
    }
    a.journal.erase(a.journal.begin(), a.journal.begin() + static_cast<std::ptrdiff_t>(k));
    if (a.tip_pos >= k) {
      a.tip_pos -= k;
    } else {
      a.tip = a.checkpoint;
      a.tip_pos = 0;
    }
    unsaved_.insert(idx);
  }
  journaled_.retain([this](std::uint32_t idx) { return !accounts_[idx].journal.empty(); });
  ForgetSettledHolds(f);
}

std::vector<AccountCheckpoint> AccountBook::TakeUnsaved() {
  std::vector<AccountCheckpoint> out;
  for (std::uint32_t idx : unsaved_.sorted()) out.push_back(CheckpointOf(accounts_[idx]));
  unsaved_.clear();
  return out;
}

StatementLines AccountBook::TakeUnsavedLines() {
  // Folds append account after account, round after round, so each account's lines are already in
  // canonical order; a store needs no other order (a LevelDB batch sorts itself).
  return std::exchange(unsaved_lines_, {});
}

std::vector<AccountCheckpoint> AccountBook::FinalCheckpoints(Hlc frontier) const {
  std::vector<AccountCheckpoint> out;
  for (const Account& a : accounts_) {
    if (a.open && a.opened.hlc < frontier) out.push_back(CheckpointOf(a));
  }
  return out;
}

// An account's final prefix as stored: its config, final counters, replay state and events.
AccountCheckpoint AccountBook::CheckpointOf(const Account& a) {
  AccountCheckpoint c{a.config, a.opened, a.final_counters, a.checkpoint, {}, {}};
  for (const ForkReport& fr : a.final_forks) c.events.push_back(fr.event);
  for (const auto& [dot, h] : a.holds) {
    if (!h.placed_final) continue;
    HoldRecord r{dot, h.at.hlc, h.amount, h.expires_ms, h.voided};
    if (h.winner_final) {
      r.winner = h.winner;
      r.resolution = h.resolution;
      r.captured = h.captured;
      r.expired = h.expired;
    }
    c.holds.push_back(r);
  }
  return c;
}

std::uint64_t AccountBook::SweepKeys(Hlc frontier, Effects* out) {
  return keys_.Sweep(frontier, accounts_, out);
}

std::vector<KeyRecord> AccountBook::KeyRecords(bool with_displaced) const {
  return keys_.Records(with_displaced, accounts_);
}

// ---- loading
// --------------------------------------------------------------------------------------

Status AccountBook::LoadCheckpoint(const AccountCheckpoint& c) {
  Status s = ValidateConfigFor(c.config, n_);
  if (!s.ok()) return s;
  if (c.counters.regions() != n_ || c.state.fees.size() != n_ || c.state.voids.size() != n_)
    return Status::InvalidArgument("wrong region count");
  Account& a = GetOrCreate(c.config.id);
  a.config = c.config;
  a.opened = c.opened;
  a.open = true;
  a.counters = c.counters;
  a.final_counters = c.counters;
  a.checkpoint = c.state;
  a.tip = c.state;
  for (const DerivedEvent& e : c.events) a.final_forks.push_back(ForkReport{e, true, {}});
  for (const HoldRecord& r : c.holds) {
    if (r.hold.origin >= n_ || r.hold.seq == 0 || r.amount <= 0 || r.amount > kMaxOpAmount ||
        r.captured < 0 || r.captured > r.amount ||
        (r.winner.seq != 0 && r.resolution != OpKind::kCapture && r.resolution != OpKind::kRelease))
      return Status::InvalidArgument("bad hold " + r.hold.ToString());
    auto known = hold_accounts_.find(r.hold);
    if (known != hold_accounts_.end() && known->second != IndexOf(a))
      return Status::InvalidArgument("hold " + r.hold.ToString() + " in two accounts");
    ChangeHold(a, r.hold, [&](HoldState& h) {
      h.placed = h.placed_final = true;
      h.at = CanonicalKey{r.hlc, r.hold.origin, r.hold.seq};
      h.amount = r.amount;
      h.expires_ms = r.expires_ms;
      h.voided = r.voided;
      if (r.winner.seq != 0) {
        h.winner = r.winner;
        h.winner_final = true;
        h.resolution = r.resolution;
        h.captured = r.resolution == OpKind::kCapture ? r.captured : 0;
        h.expired = r.expired;
      }
    });
    expiries_.emplace(r.expires_ms, r.hold);
    if (r.hold.origin == self_) own_expiries_.emplace(r.expires_ms, r.hold);
  }
  return Status::OK();
}

Status AccountBook::LoadKey(const KeyRecord& k) {
  Status s = ValidateKeyRecordFor(k, n_);
  if (!s.ok()) return s;
  return keys_.Load(IndexOf(GetOrCreate(k.account)), k);
}

void AccountBook::Adopt(AccountBook&& fresh) {
  accounts_ = std::move(fresh.accounts_);
  index_ = std::move(fresh.index_);
  keys_ = std::move(fresh.keys_);
  hold_accounts_ = std::move(fresh.hold_accounts_);
  expiries_ = std::move(fresh.expiries_);
  own_expiries_ = std::move(fresh.own_expiries_);
  journaled_.swap(fresh.journaled_);
  unsaved_.clear();
  unsaved_lines_.clear();  // the host replaces its store: its history starts again from here
  touched_.clear();
}

}  // namespace tally
