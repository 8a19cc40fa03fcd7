#include "core/key_book.h"

#include "core/digest.h"

namespace tally {

namespace {

// The record of our own op that lost its key (KeyRecord::displaced).
KeyRecord DisplacedRecord(const KeyUse& u, const std::string& account, const KeyHash& key) {
  KeyRecord r{account,  key,  u.dot,       u.hlc,           u.kind,
              u.amount, u.to, u.overdraft, u.balance_after, /*displaced=*/true};
  r.last_use = u.hlc;
  return r;
}

// What a retry must repeat to replay a key's answer: the same kind, amount and target (region, or
// the payee's tag: KeyTarget).
std::uint64_t Fingerprint(OpKind kind, Amount amount, RegionId to) {
  Fnv64 h;
  h.Add(static_cast<std::uint64_t>(kind));
  h.Add(static_cast<std::uint64_t>(amount));
  h.Add(static_cast<std::uint64_t>(to));
  return h.value();
}

}  // namespace

KeyBook::KeyBook(const ReplicaOptions& opt)
    : self_(opt.self), bugs_(opt.bugs), keys_(opt.idempotency_retention_ms) {}

KeyIndex::Outcome KeyBook::Use(std::uint32_t account, const Op& op, bool write_keys, Effects* out) {
  const RegionId o = op.dot.origin;
  const KeyHash key = HashKey(op.key);
  const KeyId id = MakeKeyId(account, key);
  last_key_ = id;
  last_account_ = op.account;
  const VoidRule rule = bugs_.order_forks_by_arrival ? VoidRule::kArrival
                        : bugs_.expiry_decides_voids ? VoidRule::kIndex
                                                     : VoidRule::kWindow;
  // A budget debit answers as the debit its client asked for (RequestKind).
  const KeyUse use{op.dot, op.hlc, RequestKind(op.kind), op.amount, KeyTarget(op), op.overdraft,
                   0,      false};
  const KeyIndex::Outcome u = keys_.AddUse(id, use, rule);
  if (u.known) return u;
  // Our own op applied after a use that voids it (recovery, rejoin): keep its answer.
  if (u.voided && o == self_) {
    KeyUse own = use;
    own.voided = true;
    if (displaced_.try_emplace({account, key}, own).second && out)
      out->keys.push_back(DisplacedRecord(own, op.account, key));
  }
  if (u.voids_next && u.next.dot.origin == self_ && o != self_) {
    // Another region's canonically earlier op takes the key from ours: keep our answer.
    displaced_[{account, key}] = u.next;
    if (out) out->keys.push_back(DisplacedRecord(u.next, op.account, key));
  }
  if (out && write_keys) out->keys.push_back(RecordOf(id, op.account));
  return u;
}

void KeyBook::SetAnswer(Dot op, Amount balance_after, Effects* out) {
  keys_.SetAnswer(last_key_, op, balance_after);
  out->keys.push_back(RecordOf(last_key_, last_account_));
}

// Inside the window of the key's last use, a retry replays the key's binding (its latest unvoided
// use); past it, the request is a new op, in every region alike.
KeyBook::Lookup KeyBook::Find(std::uint32_t account, const std::string& key, OpKind kind,
                              Amount amount, RegionId to, Hlc retry_at) const {
  Lookup r;
  KeyIndex::State st;
  if (!keys_.Find(MakeKeyId(account, key), &st) || !keys_.WithinWindow(st.last_use, retry_at))
    return r;
  r.binding = st.binding;
  const std::uint64_t fingerprint = Fingerprint(kind, amount, to);
  if (auto own = displaced_.find({account, HashKey(key)});
      own != displaced_.end() && r.binding.canonical() < own->second.canonical() &&
      Fingerprint(own->second.kind, own->second.amount, own->second.to) == fingerprint) {
    // Our original request, whose op lost the key to another region's: the stored answer.
    r.kind = Lookup::kReplayDisplaced;
    r.own = own->second;
    return r;
  }
  r.kind = Fingerprint(r.binding.kind, r.binding.amount, r.binding.to) == fingerprint
               ? Lookup::kReplay
               : Lookup::kMismatch;
  return r;
}

// Keys whose retention window the frontier has passed are forgotten, and the uses of keys used
// several times below it folded; the host deletes and rewrites their records in the batch that
// persists that frontier, so a restart compares new uses only with what it can still need. Our own
// displaced op of a forgotten key is forgotten with it.
std::uint64_t KeyBook::Sweep(Hlc frontier, const std::vector<Account>& accounts, Effects* out) {
  std::uint64_t expired = 0;
  keys_.Sweep(
      frontier,
      [&](const KeyId& id) {
        const std::string& account = accounts[id.account].config.id;
        const KeyHash key{id.h1, id.h2};
        out->forget_keys.push_back(KeyRecordId{account, key, false});
        if (displaced_.erase({id.account, key}) > 0)
          out->forget_keys.push_back(KeyRecordId{account, key, true});
        ++expired;
      },
      [&](const KeyId& id) { out->keys.push_back(RecordOf(id, accounts[id.account].config.id)); });
  return expired;
}

std::vector<KeyRecord> KeyBook::Records(bool with_displaced,
                                        const std::vector<Account>& accounts) const {
  std::vector<KeyRecord> out;
  keys_.ForEach(
      [&](const KeyId& id) { out.push_back(RecordOf(id, accounts[id.account].config.id)); });
  if (with_displaced) {
    for (const auto& [k, e] : displaced_)
      out.push_back(DisplacedRecord(e, accounts[k.first].config.id, k.second));
  }
  return out;
}

Status KeyBook::Load(std::uint32_t account, const KeyRecord& k) {
  if (k.displaced) {
    if (k.dot.origin != self_)
      return Status::InvalidArgument("displaced key record of another region");
    displaced_[{account, k.key}] =
        KeyUse{k.dot, k.hlc, k.kind, k.amount, k.to, k.overdraft, k.balance_after, true};
  } else if (!keys_.Load(MakeKeyId(account, k.key), k)) {
    return Status::InvalidArgument("inconsistent uses");
  }
  return Status::OK();
}

// The stored record of key `id`, as the index holds it now.
KeyRecord KeyBook::RecordOf(const KeyId& id, const std::string& account) const {
  KeyRecord r;
  r.account = account;
  r.key = KeyHash{id.h1, id.h2};
  keys_.FillRecord(id, &r);
  return r;
}

}  // namespace tally
