#include "sim/store.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "codec/codec.h"

namespace tally::sim {
namespace {

std::string KeyId(const std::string& account, const KeyHash& key, bool displaced) {
  std::string id;
  id.reserve(account.size() + 1 + 2 * 20 + 1);
  id += account;
  id += '\n';
  id += std::to_string(key.h1);
  id += ':';
  id += std::to_string(key.h2);
  if (displaced) id += '\x01';  // beside the record of the op that took the key
  return id;
}

}  // namespace

std::size_t SimStore::KeyRecordIdHash::operator()(const KeyRecordId& id) const {
  std::uint64_t h = std::hash<std::string>{}(id.account);
  h ^= id.key.h1 + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= id.key.h2 + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return static_cast<std::size_t>(h ^ (id.displaced ? 0x5bd1e995ULL : 0));
}

std::uint64_t SimStore::Write(PersistBatch batch) {
  pending_.push_back(Pending{std::move(batch), nullptr});
  return written();
}

std::uint64_t SimStore::WriteBorrowed(const PersistBatch* batch) {
  pending_.push_back(Pending{PersistBatch{}, batch});
  return written();
}

void SimStore::Crash() { pending_.clear(); }

void SimStore::ReplaceDisk(Durable state) {
  assert(pending_.empty());
  d_ = std::move(state);
}

void SimStore::Apply(const PersistBatch& batch) {
  if (batch.replaces_store) {
    // A snapshot was installed: what the batch carries is the whole state, valid at its fold's
    // frontier and log floor. The floor goes first, so the retained log starts right above it.
    Durable fresh;
    fresh.high_water = d_.high_water;
    fresh.fences = d_.fences;
    d_ = std::move(fresh);
    if (!batch.folds.empty()) {  // the snapshot's own fold comes first (PersistBatch::TakeFrom)
      d_.frontier = batch.folds.front().frontier;
      d_.log_floor = batch.folds.front().log_floor;
    }
  }
  for (const Op& op : batch.ops) {
    const RegionId o = op.dot.origin;
    auto& log = d_.ops[o];
    if (log.empty()) d_.first_seq[o] = std::max(d_.first_seq[o], d_.log_floor.get(o) + 1);
    const Seq next = d_.first_seq[o] + log.size();
    if (op.dot.seq == next) {
      log.push_back(codec::EncodeOp(op));
    } else if (op.dot.seq >= d_.first_seq[o] && op.dot.seq < next) {
      log[op.dot.seq - d_.first_seq[o]] = codec::EncodeOp(op);
    } else if (op.dot.seq > d_.log_floor.get(o) && write_error_.empty()) {
      write_error_ = "op " + op.dot.ToString() + " written after seq " + std::to_string(next - 1) +
                     " of its origin: a gap in the stored log";
    }
  }
  for (const KeyRecordId& k : batch.forget_keys) d_.keys.erase(k);
  for (const KeyRecord& k : batch.keys)
    d_.keys.insert_or_assign(KeyRecordId{k.account, k.key, k.displaced}, codec::EncodeKeyRecord(k));
  if (!batch.high_water.is_zero()) d_.high_water = batch.high_water;
  if (!batch.fences.empty()) d_.fences = codec::EncodeFences(batch.fences);
  for (const Fold& fold : batch.folds) {
    d_.frontier = fold.frontier;
    d_.log_floor = fold.log_floor;
    for (const AccountCheckpoint& c : fold.checkpoints) {
      auto [it, inserted] = d_.checkpoint_index.try_emplace(c.config.id, d_.checkpoints.size());
      if (inserted) {
        d_.checkpoints.push_back(codec::EncodeCheckpoint(c));
      } else {
        d_.checkpoints[it->second] = codec::EncodeCheckpoint(c);
      }
    }
    for (RegionId r = 0; r < kMaxRegions; ++r) {
      auto& log = d_.ops[r];
      while (!log.empty() && d_.first_seq[r] <= d_.log_floor.get(r)) {
        log.pop_front();
        ++d_.first_seq[r];
      }
    }
  }
}

Status SimStore::Recover(RecoveredState* out) const {
  RecoveredState s;
  auto bad = [](const char* what, const Status& st) {
    return Status::Corruption(std::string("stored ") + what + " does not decode: " + st.ToString());
  };
  s.high_water = d_.high_water;
  if (!d_.fences.empty())
    if (Status st = codec::DecodeFences(d_.fences, &s.fences); !st.ok()) return bad("fences", st);
  s.frontier = d_.frontier;
  s.log_floor = d_.log_floor;
  s.checkpoints.resize(d_.checkpoints.size());
  for (std::size_t i = 0; i < d_.checkpoints.size(); ++i)
    if (Status st = codec::DecodeCheckpoint(d_.checkpoints[i], &s.checkpoints[i]); !st.ok())
      return bad("checkpoint", st);
  std::size_t n = 0;
  for (const auto& log : d_.ops) n += log.size();
  s.ops.resize(n);
  std::size_t i = 0;
  for (const auto& log : d_.ops)
    for (const std::string& bytes : log)
      if (Status st = codec::DecodeOp(bytes, &s.ops[i++]); !st.ok()) return bad("op", st);
  // In the order of KeyId, the order records were always read back in (see Durable::keys).
  std::vector<std::pair<std::string, const std::string*>> keys;
  keys.reserve(d_.keys.size());
  for (const auto& [id, bytes] : d_.keys)
    keys.emplace_back(KeyId(id.account, id.key, id.displaced), &bytes);
  std::sort(keys.begin(), keys.end());
  s.keys.resize(keys.size());
  i = 0;
  for (const auto& [id, bytes] : keys)
    if (Status st = codec::DecodeKeyRecord(*bytes, &s.keys[i++]); !st.ok())
      return bad("idempotency record", st);
  *out = std::move(s);
  return Status::OK();
}

std::vector<Op> SimStore::Durable::Ops(RegionId origin) const {
  std::vector<Op> out;
  if (origin >= kMaxRegions) return out;
  out.resize(ops[origin].size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    Status s = codec::DecodeOp(ops[origin][i], &out[i]);
    assert(s.ok());
    (void)s;
  }
  return out;
}

std::vector<Fence> SimStore::Durable::Fences() const {
  std::vector<Fence> out;
  if (fences.empty()) return out;
  Status s = codec::DecodeFences(fences, &out);
  assert(s.ok());
  (void)s;
  return out;
}

std::optional<Op> SimStore::FindOp(Dot dot) const {
  if (dot.origin >= kMaxRegions) return std::nullopt;
  const auto& log = d_.ops[dot.origin];
  const Seq first = d_.first_seq[dot.origin];
  if (dot.seq < first || dot.seq >= first + log.size()) return std::nullopt;
  Op op;
  Status s = codec::DecodeOp(log[dot.seq - first], &op);
  assert(s.ok());
  (void)s;
  return op;
}

Seq SimStore::Extent(RegionId origin) const {
  if (origin >= kMaxRegions) return 0;
  const auto& log = d_.ops[origin];
  const Seq floor = d_.log_floor.get(origin);
  return log.empty() ? floor : std::max(floor, d_.first_seq[origin] + log.size() - 1);
}

std::size_t SimStore::retained_ops() const {
  std::size_t n = 0;
  for (const auto& log : d_.ops) n += log.size();
  return n;
}

}  // namespace tally::sim
