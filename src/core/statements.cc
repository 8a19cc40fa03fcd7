#include "core/statements.h"

namespace tally {

bool IsStatementEntry(OpKind entry_kind) { return entry_kind != OpKind::kRights; }

namespace {

// The balance change of an entry: a transfer's sides and a budget debit's payers are journaled as
// the debits and credits they are; a capture debits; the rest move nothing.
Amount ChangeOf(const JournalEntry& e) {
  switch (e.kind) {
    case OpKind::kCredit:
      return e.amount;
    case OpKind::kDebit:
    case OpKind::kCapture:
      return -e.amount;
    default:
      return 0;
  }
}

// The other account a line names: a transfer's other side; for a budget debit, the account named
// on a payer's line, and the account that paid on the named account's marker.
std::string CounterpartyOf(const std::string& account, const JournalEntry& e, const Op& op) {
  if (op.kind == OpKind::kTransfer) return account == op.account ? op.to_account : op.account;
  if (op.kind != OpKind::kBudgetDebit) return {};
  if (e.kind == OpKind::kBudgetDebit) return op.payers.empty() ? std::string() : op.payers.front();
  return account == op.account ? std::string() : op.account;
}

}  // namespace

StatementLine MakeStatementLine(const std::string& account, const JournalEntry& e, bool final,
                                Amount balance_after, std::span<const DerivedEvent> events,
                                const Op* op) {
  StatementLine line;
  line.account = account;
  line.key = e.key;
  line.kind = op ? op->kind : e.kind;
  line.change = ChangeOf(e);
  line.amount = e.amount;
  line.voided = e.voided;
  line.final = final;
  line.balance_after = balance_after;
  for (const DerivedEvent& ev : events) {
    if (ev.kind == DerivedKind::kOverdraftFee) {
      line.crossing = true;
      line.fee += ev.amount;  // one crossing per debit: a sum of one
    } else {
      line.void_amount += ev.amount;
    }
  }
  if (e.kind == OpKind::kHold || IsHoldResolution(e.kind)) line.hold = Dot{e.to, e.hold_seq};
  if (op) {
    if (!op->key.starts_with(kHoldKeyPrefix)) line.idempotency_key = op->key;
    line.counterparty = CounterpartyOf(account, e, *op);
    line.memo = op->memo;
    line.metadata = op->metadata;
  }
  return line;
}

}  // namespace tally
