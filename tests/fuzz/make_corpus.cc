// Writes the seed corpus of every fuzz target, DIR/<target>/<hash>, from real encodings: what an
// in-memory three-region cluster (tests/core/cluster_fixture.h) sends and stores while it opens
// accounts, credits, transfers rights, debits into the overdraft during a partition, retries a key
// at two regions and restarts a region (fences, a rejoin) — then a few request bodies and targets
// of the client API as docs/operations.md shows them. Deterministic: the same code writes the same
// files. Usage: fuzz_make_corpus DIR (tests/fuzz/make-corpus runs it).

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "cluster_fixture.h"
#include "codec/codec.h"
#include "node/store.h"

namespace {

using namespace tally;
namespace fs = std::filesystem;

// At most this many files per target (per message kind for the message targets): a seed corpus
// is a starting point for the fuzzer, not a test suite.
constexpr std::size_t kPerKind = 6;

class Corpus {
 public:
  explicit Corpus(fs::path dir) : dir_(std::move(dir)) {}

  void Add(const std::string& target, std::string_view bytes, int kind = 0) {
    if (count_[{target, kind}] >= kPerKind) return;
    if (!seen_[target].insert(std::string(bytes)).second) return;
    ++count_[{target, kind}];
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a names the file by its content
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
    fs::create_directories(dir_ / target);
    std::ofstream(dir_ / target / name, std::ios::binary).write(bytes.data(), bytes.size());
  }

 private:
  fs::path dir_;
  std::map<std::string, std::set<std::string>> seen_;
  std::map<std::pair<std::string, int>, std::size_t> count_;
};

// fuzz_store_record's input: region count, then (1-byte key length, key, 2-byte value length,
// value) per record.
void AppendRecord(std::string_view key, std::string_view value, std::string* out) {
  if (key.size() > 0xff || value.size() > 0xffff) return;
  out->push_back(static_cast<char>(key.size()));
  out->append(key);
  out->push_back(static_cast<char>(value.size() >> 8));
  out->push_back(static_cast<char>(value.size()));
  out->append(value);
}

std::string Hlc8(Hlc h) {
  std::string s;
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(h.value >> (8 * i)));
  return s;
}

// A region's whole store as fuzz_store_record reads it, and each record on its own.
void AddStore(const testing::PersistedStore& st, RegionId regions, Corpus* corpus) {
  std::string all(1, static_cast<char>(regions - 1));
  std::vector<std::pair<std::string, std::string>> records = {
      {node::Store::MetaKey("high_water"), Hlc8(st.high_water)},
      {node::Store::MetaKey("frontier"), Hlc8(st.frontier)},
      {node::Store::MetaKey("log_floor"), codec::EncodeVersionVector(st.log_floor)},
      {node::Store::MetaKey("fences"), codec::EncodeFences(st.fences)}};
  for (const auto& [dot, op] : st.ops)
    records.emplace_back(node::Store::OpKey(dot.origin, dot.seq), codec::EncodeOp(op));
  for (const auto& [id, k] : st.keys)
    records.emplace_back(node::Store::KeyRecordKey(k.account, k.key, k.displaced),
                         codec::EncodeKeyRecord(k));
  for (const auto& [id, c] : st.checkpoints)
    records.emplace_back(node::Store::CheckpointKey(id), codec::EncodeCheckpoint(c));
  for (const auto& [key, value] : records) {
    AppendRecord(key, value, &all);
    std::string one(1, static_cast<char>(regions - 1));
    AppendRecord(key, value, &one);
    corpus->Add("fuzz_store_record", one, key[0]);
  }
  corpus->Add("fuzz_store_record", all, 'A');
}

void AddCluster(Corpus* corpus) {
  testing::Cluster c(3, [](ReplicaOptions& o) { o.rights_wait_ms = 0; });
  std::string stream(1, '\x2a');  // fuzz_frames: a cut seed, then frames back to back
  int framed = 0;
  c.observe = [&](RegionId, const Effects& e) {
    for (const Op& op : e.ops)
      corpus->Add("fuzz_op", codec::EncodeOp(op), static_cast<int>(op.kind));
    for (const KeyRecord& k : e.keys)
      corpus->Add("fuzz_key_record", codec::EncodeKeyRecord(k), k.uses.empty() ? 0 : 1);
    if (!e.fences.empty()) corpus->Add("fuzz_fences", codec::EncodeFences(e.fences));
    if (e.fold) {
      corpus->Add("fuzz_version_vector", codec::EncodeVersionVector(e.fold->log_floor));
      for (const AccountCheckpoint& cp : e.fold->checkpoints)
        corpus->Add("fuzz_checkpoint", codec::EncodeCheckpoint(cp), cp.events.empty() ? 0 : 1);
    }
    for (const Outbound& o : e.send) {
      std::string bytes;
      if (!codec::EncodeMessage(o.msg, &bytes).ok()) continue;
      const int kind = static_cast<int>(o.msg.index());
      corpus->Add("fuzz_message", bytes, kind);
      // Streams of a few frames each, cut anew every four messages.
      if (framed < 64 && codec::AppendFrame(o.msg, &stream).ok() && ++framed % 4 == 0) {
        corpus->Add("fuzz_frames", stream, framed / 4);
        stream.resize(1);
        stream[0] = static_cast<char>(framed);
      }
    }
  };
  for (RegionId r = 0; r < c.size(); ++r) {
    Effects e;
    c.at(r).OnConnected((r + 1) % c.size(), c.now, &e);
    c.Absorb(r, e);
  }
  c.Settle(3);
  c.Run(0, OpenAccount{testing::Config("alice", 90, 25, 150)});
  c.Run(1, OpenAccount{testing::Config("bob.smith:eu-1", 0)});
  c.Run(0, Credit{"alice", 100, "deposit-1"});
  c.Run(1, Credit{"bob.smith:eu-1", 5000, "deposit-2"});
  c.Settle(6);
  c.Run(0, TransferRights{"alice", 2, 30});
  c.Run(1, Debit{"bob.smith:eu-1", 1200, "order-1"});
  c.Run(1, Transfer{"bob.smith:eu-1", "alice", 700, "pay-alice"});
  const Dot held = c.Run(1, PlaceHold{"bob.smith:eu-1", 300, "auth-1", 600000}).hold;
  const Dot left = c.Run(1, PlaceHold{"bob.smith:eu-1", 40, "auth-2", 1000}).hold;  // expires
  c.Settle(4);
  c.Run(0, CaptureHold{held, 250});
  c.Run(2, ReleaseHold{held});  // loses to the capture: a fork
  (void)left;
  c.queue.clear();  // a partition: concurrent overdraft debits and one key used at two regions
  for (RegionId r = 0; r < c.size(); ++r) c.Run(r, Debit{"alice", 60, "pay-" + std::to_string(r)});
  c.Run(2, Debit{"bob.smith:eu-1", 10, "retried"});
  c.Run(0, Debit{"bob.smith:eu-1", 10, "retried"});
  c.Run(1, Transfer{"bob.smith:eu-1", "alice", 25, "retried-transfer"});
  c.Run(2, Transfer{"bob.smith:eu-1", "alice", 25, "retried-transfer"});
  c.Tick(2000);
  c.queue.clear();
  c.Settle(20);
  (void)c.Restart(1);  // fences, a rejoin
  c.Settle(20);
  c.Run(1, Credit{"alice", 7, "after-restart"});
  c.Settle(10);
  for (RegionId r = 0; r < c.size(); ++r) AddStore(c.stores[r], c.size(), corpus);

  // The two messages this story does not send: a snapshot (a rejoin behind every peer's log
  // floor) made of region 0's store, as Replica builds one, and a request for rights.
  const testing::PersistedStore& st = c.stores[0];
  Snapshot snap{st.frontier, st.log_floor, st.log_floor, {}, {}, {}, st.fences};
  for (const auto& [id, cp] : st.checkpoints) snap.accounts.push_back(cp);
  for (const auto& [dot, op] : st.ops) {
    snap.ops.push_back(op);
    snap.applied.set(dot.origin, std::max(snap.applied.get(dot.origin), dot.seq));
  }
  for (const auto& [id, k] : st.keys) snap.keys.push_back(k);
  for (const Message& m : {Message{snap}, Message{RightsRequest{"alice", 500}}}) {
    std::string bytes;
    if (codec::EncodeMessage(m, &bytes).ok()) corpus->Add("fuzz_message", bytes, 100);
  }
}

void AddApi(Corpus* corpus) {
  for (const char* b :
       {R"({"id":"alice","currency":"EUR","overdraft_limit":6000})", R"({"id":"bob.smith:eu-1"})",
        R"({"id":"a1","currency":"USD","overdraft_limit":0,"fee":{"flat":25,"bps":150}})"})
    corpus->Add("fuzz_api_open", b);
  for (const char* b :
       {R"({"amount":2500})", R"({"amount": 10000})", R"({ "amount" : 1125899906842624 })"})
    corpus->Add("fuzz_api_amount", b);
  for (const char* b : {R"({"to":"us","amount":300})", R"({"amount":1,"to":"ap"})"})
    corpus->Add("fuzz_api_rights", b);
  for (const char* b : {R"({"from":"alice","to":"shop-7","amount":500})",
                        R"({"amount":1,"to":"bob.smith:eu-1","from":"a"})"})
    corpus->Add("fuzz_api_transfer", b);
  // fuzz_api_hold: a selector byte (0 hold body, 1 capture body, 2 release body, 3 hold id).
  for (std::string_view b :
       {std::string_view("\x00{\"amount\":300,\"expires_in_ms\":600000}"),
        std::string_view("\x00{\"amount\":5}"), std::string_view("\x01{\"amount\":250}"),
        std::string_view("\x01{}"), std::string_view("\x01", 1), std::string_view("\x02", 1),
        std::string_view("\x02{}"), std::string_view("\x03eu.42"),
        std::string_view("\x03us-east.18446744073709551615"), std::string_view("\x03ap.7")})
    corpus->Add("fuzz_api_hold", b);
  for (const char* b : {R"({"dir":"/var/backups/tally-eu-1"})", R"({"dir":"/tmp/b"})"})
    corpus->Add("fuzz_api_backup", b);
  // fuzz_api_route: a method byte (0 GET, 1 POST, 2 other), then the target.
  int i = 0;
  for (const char* t :
       {"\x01/v1/accounts", "\x00/v1/accounts/alice", "\x01/v1/accounts/alice/debits",
        "\x01/v1/accounts/bob.smith%3Aeu-1/credits", "\x01/v1/accounts/alice/rights",
        "\x01/v1/transfers", "\x00/v1/accounts/alice/report?format=html", "\x00/v1/cluster",
        "\x00/v1/stream?accounts=alice,bob", "\x01/v1/admin/backup", "\x00/metrics", "\x00/healthz",
        "\x01/v1/accounts/alice/holds", "\x00/v1/holds/eu.42", "\x01/v1/holds/eu.42/capture",
        "\x01/v1/holds/us.7/release"})
    corpus->Add("fuzz_api_route", std::string_view(t, 1 + std::strlen(t + 1)), i++);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus DIR\n");
    return 2;
  }
  Corpus corpus{fs::path(argv[1])};
  AddCluster(&corpus);
  AddApi(&corpus);
  return 0;
}
