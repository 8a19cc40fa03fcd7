#include "core/validate.h"

#include "core/ids.h"

namespace tally {

Status ValidateClusterId(std::string_view id) {
  if (id.empty()) return Status::InvalidArgument("cluster id is empty");
  if (id.size() > kMaxClusterIdBytes)
    return Status::InvalidArgument("cluster id is longer than " +
                                   std::to_string(kMaxClusterIdBytes) + " bytes");
  for (char c : id)
    if (c < 0x21 || c > 0x7e)
      return Status::InvalidArgument("cluster id may contain only printable ASCII, no spaces");
  return Status::OK();
}

bool IsKnownOpKind(OpKind k) {
  return k == OpKind::kOpen || k == OpKind::kCredit || k == OpKind::kDebit ||
         k == OpKind::kRights || k == OpKind::kTransfer || k == OpKind::kHold ||
         k == OpKind::kCapture || k == OpKind::kRelease || k == OpKind::kBudgetDebit;
}

Status ValidateWithin(Amount v, Amount max, std::string_view what) {
  if (v < 0 || v > max)
    return Status::InvalidArgument(std::string(what) + " " + std::to_string(v) + " is outside 0.." +
                                   std::to_string(max));
  return Status::OK();
}

Status ValidateRegion(RegionId r, std::string_view what) {
  if (r >= kMaxRegions)
    return Status::InvalidArgument(std::string(what) + " " + std::to_string(r) +
                                   " is not a region id (must be < " + std::to_string(kMaxRegions) +
                                   ")");
  return Status::OK();
}

Status ValidateAccountConfig(const AccountConfig& c) {
  Status s = ValidateAccountId(c.id);
  if (!s.ok()) return s;
  s = ValidateCurrency(c.currency);
  if (!s.ok()) return s;
  s = ValidateWithin(c.overdraft_limit, kMaxCounter, "overdraft limit");
  if (!s.ok()) return s;
  if (c.lines.size() > kMaxRegions)
    return Status::InvalidArgument("more overdraft lines than regions");
  Amount sum = 0;
  for (Amount line : c.lines) {
    s = ValidateWithin(line, c.overdraft_limit, "overdraft line");
    if (!s.ok()) return s;
    sum += line;  // <= kMaxRegions * kMaxCounter: no overflow
  }
  if (!c.lines.empty() && sum != c.overdraft_limit)
    return Status::InvalidArgument("overdraft lines sum to " + std::to_string(sum) +
                                   ", not the limit " + std::to_string(c.overdraft_limit));
  s = ValidateWithin(c.fee.flat, kMaxOpAmount, "flat fee");
  if (!s.ok()) return s;
  if (c.fee.bps > kMaxFeeBps)
    return Status::InvalidArgument("fee of " + std::to_string(c.fee.bps) +
                                   " basis points is above " + std::to_string(kMaxFeeBps));
  if (!c.parent.empty()) {
    s = ValidateAccountId(c.parent);
    if (!s.ok()) return Status::InvalidArgument("parent: " + s.message());
    if (c.parent == c.id)
      return Status::InvalidArgument("account '" + c.id + "' cannot be its own parent");
  } else if (c.cap) {
    return Status::InvalidArgument("a cap account needs a parent (it caps spending of its money)");
  }
  return Status::OK();
}

Status ValidateOpFields(const Dot& dot, OpKind kind, const std::string& account, Amount amount,
                        RegionId to) {
  Status s = ValidateRegion(dot.origin, "origin");
  if (!s.ok()) return s;
  if (dot.seq == 0) return Status::InvalidArgument("op seq 0 (seqs start at 1)");
  if (!IsKnownOpKind(kind)) return Status::InvalidArgument("unknown op kind");
  s = ValidateAccountId(account);
  if (!s.ok()) return s;
  if (kind == OpKind::kTransfer) {
    // A key record's target of a transfer is the payee's tag (KeyTarget).
    if (to >= kAccountTagLimit) return Status::InvalidArgument("payee tag out of range");
  } else {
    s = ValidateRegion(to, "transfer target");
    if (!s.ok()) return s;
  }
  if (kind == OpKind::kOpen) {
    // An open moves no money; the amount is carried but not interpreted.
    return ValidateWithin(amount, kMaxOpAmount, "open amount");
  }
  s = ValidateAmount(amount);
  if (!s.ok()) return s;
  if (kind == OpKind::kRights && to == dot.origin)
    return Status::InvalidArgument("transfer from region " + std::to_string(to) + " to itself");
  return Status::OK();
}

namespace {
// A hold carries its expiry; a resolution its hold, the hold's amount and the hold's key; no other
// op carries any of them.
Status ValidateHoldFields(const Op& op) {
  const bool resolution = IsHoldResolution(op.kind);
  if (op.kind != OpKind::kHold && op.expires_ms != 0)
    return Status::InvalidArgument("expiry on an op that is not a hold");
  if (!resolution && (op.hold != Dot{} || op.held != 0 || op.expired))
    return Status::InvalidArgument("hold fields on an op that resolves no hold");
  if (op.kind == OpKind::kHold) {
    if (op.expires_ms <= op.hlc.wall_ms())
      return Status::InvalidArgument("hold that expires before it is placed");
    if (op.key.empty()) return Status::InvalidArgument("hold without an idempotency key");
  }
  if (!resolution) return Status::OK();
  if (op.to != 0) return Status::InvalidArgument("hold resolution with a target region");
  Status s = ValidateRegion(op.hold.origin, "hold origin");
  if (!s.ok()) return s;
  if (op.hold.seq == 0) return Status::InvalidArgument("hold seq 0");
  s = ValidateAmount(op.held);
  if (!s.ok()) return Status::InvalidArgument("held: " + s.message());
  if (op.amount > op.held)
    return Status::InvalidArgument("capture of " + std::to_string(op.amount) + " above the held " +
                                   std::to_string(op.held));
  if (op.kind == OpKind::kRelease && op.amount != op.held)
    return Status::InvalidArgument("release of another amount than the hold's");
  if (op.kind == OpKind::kCapture && op.expired)
    return Status::InvalidArgument("capture marked as an expiry");
  if (op.key != HoldKey(op.hold))
    return Status::InvalidArgument("hold resolution without its hold's key");
  return Status::OK();
}
}  // namespace

namespace {
// A budget debit names 1..kMaxBudgetDepth distinct payers, its own account first if it pays, and
// more than one account in all (a debit of one account is a kDebit); no other op names any.
Status ValidatePayers(const Op& op) {
  if (op.kind != OpKind::kBudgetDebit) {
    if (!op.payers.empty())
      return Status::InvalidArgument("payers on an op that is not a budget debit");
    return Status::OK();
  }
  if (op.payers.empty() || op.payers.size() > kMaxBudgetDepth)
    return Status::InvalidArgument("budget debit with " + std::to_string(op.payers.size()) +
                                   " payers (1.." + std::to_string(kMaxBudgetDepth) + ")");
  for (std::size_t i = 0; i < op.payers.size(); ++i) {
    Status s = ValidateAccountId(op.payers[i]);
    if (!s.ok()) return Status::InvalidArgument("payer: " + s.message());
    for (std::size_t j = 0; j < i; ++j)
      if (op.payers[j] == op.payers[i])
        return Status::InvalidArgument("budget debit names payer '" + op.payers[i] + "' twice");
    if (i > 0 && op.payers[i] == op.account)
      return Status::InvalidArgument("budget debit of '" + op.account +
                                     "' pays from it only as its first payer");
  }
  if (op.payers.size() == 1 && op.payers[0] == op.account)
    return Status::InvalidArgument("budget debit of one account only (a plain debit)");
  if (op.to != 0) return Status::InvalidArgument("budget debit with a target region");
  return Status::OK();
}
}  // namespace

namespace {
// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without control
// characters; `what` names the field. The position is a byte offset, for the client to find.
Status ValidateText(std::string_view s, std::string_view what) {
  const auto bad = [&](std::size_t at, std::string_view why) {
    return Status::InvalidArgument(std::string(what) + " " + std::string(why) + " at byte " +
                                   std::to_string(at));
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      if (b0 < 0x20 || b0 == 0x7f) return bad(i, "has a control character");
      ++i;
      continue;
    }
    // The length of the sequence and the range its second byte must be in (the first byte
    // decides both; the narrower ranges exclude overlong forms, surrogates and > U+10FFFF).
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 == 0xe0) lo = 0xa0;
      if (b0 == 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 == 0xf0) lo = 0x90;
      if (b0 == 0xf4) hi = 0x8f;
    } else {
      return bad(i, "is not valid UTF-8");
    }
    if (s.size() - i < len) return bad(i, "is not valid UTF-8");
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi) return bad(i, "is not valid UTF-8");
    for (std::size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80)
        return bad(i, "is not valid UTF-8");
    if (b0 == 0xc2 && b1 < 0xa0) return bad(i, "has a control character");  // C1: U+0080..U+009F
    i += len;
  }
  return Status::OK();
}
}  // namespace

Status ValidateMemo(std::string_view memo) {
  if (memo.size() > kMaxMemoBytes)
    return Status::InvalidArgument("memo is " + std::to_string(memo.size()) + " bytes; at most " +
                                   std::to_string(kMaxMemoBytes));
  return ValidateText(memo, "memo");
}

Status ValidateMetadata(const Metadata& metadata) {
  if (metadata.size() > kMaxMetadataPairs)
    return Status::InvalidArgument("metadata has " + std::to_string(metadata.size()) +
                                   " pairs; at most " + std::to_string(kMaxMetadataPairs));
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    const auto& [key, value] = metadata[i];
    // Keys are shown in messages: cut to what a message may quote.
    const std::string shown = "metadata key '" + key.substr(0, 64) + "'";
    if (key.empty()) return Status::InvalidArgument("metadata has an empty key");
    Status s = ValidateText(key, shown);
    if (!s.ok()) return s;
    s = ValidateText(value, "metadata value of '" + key.substr(0, 64) + "'");
    if (!s.ok()) return s;
    for (std::size_t j = 0; j < i; ++j)
      if (metadata[j].first == key) return Status::InvalidArgument(shown + " appears twice");
    bytes += key.size() + value.size();
  }
  if (bytes > kMaxMetadataBytes)
    return Status::InvalidArgument("metadata is " + std::to_string(bytes) +
                                   " bytes (keys and values); at most " +
                                   std::to_string(kMaxMetadataBytes));
  return Status::OK();
}

namespace {
// A memo and metadata within their bounds, on the kinds that carry them only.
Status ValidateNote(const Op& op) {
  if (op.memo.empty() && op.metadata.empty()) return Status::OK();
  if (!MayCarryNote(op.kind))
    return Status::InvalidArgument("memo or metadata on an op of kind " +
                                   std::string(OpKindName(op.kind)) +
                                   " (only credits, debits, transfers and holds carry them)");
  Status s = ValidateMemo(op.memo);
  return s.ok() ? ValidateMetadata(op.metadata) : s;
}
}  // namespace

Status ValidateOp(const Op& op) {
  Status s = ValidateOpFields(op.dot, op.kind, op.account, op.amount, op.to);
  if (!s.ok()) return s;
  if (!op.key.empty()) {
    s = ValidateIdempotencyKey(op.key);
    if (!s.ok()) return s;
  }
  if (op.kind == OpKind::kOpen) {
    s = ValidateAccountConfig(*op.config);
    if (!s.ok()) return s;
    if (op.config->id != op.account)
      return Status::InvalidArgument("open op for account '" + op.account +
                                     "' carries the config of '" + op.config->id + "'");
  } else if (!(op.config == AccountConfig{})) {
    return Status::InvalidArgument("config on an op that is not an open");
  }
  if (op.kind == OpKind::kTransfer) {
    s = ValidateAccountId(op.to_account);
    if (!s.ok()) return Status::InvalidArgument("payee: " + s.message());
    if (op.to_account == op.account)
      return Status::InvalidArgument("transfer from account '" + op.account + "' to itself");
    if (op.to != 0) return Status::InvalidArgument("transfer with a target region");
  } else if (!op.to_account.empty()) {
    return Status::InvalidArgument("payee on an op that is not a transfer");
  }
  s = ValidatePayers(op);
  if (!s.ok()) return s;
  s = ValidateNote(op);
  if (!s.ok()) return s;
  return ValidateHoldFields(op);
}

namespace {
Status ValidateLineCount(const AccountConfig& c, RegionId regions) {
  if (c.lines.size() != regions)
    return Status::InvalidArgument("overdraft lines: one per region is needed");
  return Status::OK();
}
}  // namespace

Status ValidateConfigFor(const AccountConfig& c, RegionId regions) {
  Status s = ValidateAccountConfig(c);
  return s.ok() ? ValidateLineCount(c, regions) : s;
}

Status ValidateOpFor(const Op& op, RegionId regions) {
  Status s = ValidateOp(op);
  if (!s.ok()) return s;
  if (op.dot.origin >= regions) return Status::InvalidArgument("origin out of range");
  if (op.kind == OpKind::kRights && op.to >= regions)
    return Status::InvalidArgument("transfer to an invalid region");
  if (IsHoldResolution(op.kind) && op.hold.origin >= regions)
    return Status::InvalidArgument("hold of an invalid region");
  // ValidateOp checked the config by the core's rules already.
  if (op.kind == OpKind::kOpen) return ValidateLineCount(*op.config, regions);
  return Status::OK();
}

Status ValidateKeyRecordFor(const KeyRecord& k, RegionId regions) {
  Status s = ValidateAccountId(k.account);
  if (s.ok() && (k.dot.origin >= regions || k.dot.seq == 0)) s = Status::InvalidArgument("bad dot");
  if (s.ok() && k.key == KeyHash{}) s = Status::InvalidArgument("no key hash");
  return s;
}

}  // namespace tally
