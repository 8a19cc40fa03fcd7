// A client's note (memo and metadata, issue 14) through the in-memory cluster of
// cluster_fixture.h: credits, debits (waiting ones and budget debits too), transfers and holds
// carry the note into their op, their answer, every region's store and a restart; a retry with
// another note replays the original op and answers with its note while the op is held (not once
// it is folded away: key records keep no note); a voided duplicate's fork shows each op with its
// own note.
#include <catch2/catch.hpp>
#include <string>

#include "cluster_fixture.h"
#include "replica_checks.h"

using namespace tally;
using namespace tally::testing;

namespace {

const Metadata kMeta = {{"order", "o-77"}, {"customer", "c\u00e9line"}, {"a", ""}};

// NoWaits, and no folds: every op stays in the log and in the stores for the test to read.
void NoFolds(ReplicaOptions& o) {
  NoWaits(o);
  o.checkpoint_interval_ms = 3'600'000;
}

// Opens alice and shop at r0, final everywhere, and gives each region 300 of alice's money.
void Setup(Cluster& c) {
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{Config("shop")}).status.ok());
  c.Settle(6);
  for (RegionId r = 0; r < c.size(); ++r) REQUIRE(c.Run(r, Credit{"alice", 300, ""}).status.ok());
  c.Settle(8);
  REQUIRE(c.Converged("alice"));
}

// The op `dot` as region r persisted it.
const Op& Stored(Cluster& c, RegionId r, Dot dot) {
  const auto it = c.stores[r].ops.find(dot);
  INFO("op " << dot.ToString() << " at r" << r);
  REQUIRE(it != c.stores[r].ops.end());
  return it->second;
}

void CheckNote(const CommandResult& r, const std::string& memo, const Metadata& metadata) {
  INFO(r.status.ToString());
  REQUIRE(r.status.ok());
  CHECK(r.memo == memo);
  CHECK(r.metadata == metadata);
}

}  // namespace

TEST_CASE("a note rides with its op: answered, replicated, persisted, recovered",
          "[replica][note]") {
  Cluster c(3, NoFolds);
  Setup(c);
  const CommandResult credit = c.Run(0, Credit{"alice", 10, "n-1", "salary \u20ac", kMeta});
  CheckNote(credit, "salary \u20ac", kMeta);
  Debit d{"alice", 20, "n-2"};
  d.memo = "coffee";
  const CommandResult debit = c.Run(1, d);
  CheckNote(debit, "coffee", {});
  const CommandResult transfer =
      c.Run(2, Transfer{"alice", "shop", 30, "n-3", "", {{"invoice", "INV-9"}}});
  CheckNote(transfer, "", {{"invoice", "INV-9"}});
  const CommandResult hold = c.Run(0, PlaceHold{"alice", 40, "n-4", 60'000, "deposit", kMeta});
  CheckNote(hold, "deposit", kMeta);
  // No note: nothing in the answer either.
  const CommandResult plain = c.Run(1, Credit{"alice", 5, "n-5"});
  CheckNote(plain, "", {});
  c.Settle(8);
  REQUIRE(c.Converged("alice"));

  for (RegionId r = 0; r < 3; ++r) {
    INFO("region " << r);
    CHECK(Stored(c, r, credit.op).memo == "salary \u20ac");
    CHECK(Stored(c, r, credit.op).metadata == kMeta);
    CHECK(Stored(c, r, debit.op).memo == "coffee");
    CHECK(Stored(c, r, transfer.op).metadata == Metadata{{"invoice", "INV-9"}});
    CHECK(Stored(c, r, hold.op).memo == "deposit");
    CHECK(Stored(c, r, plain.op).memo.empty());
    CHECK(Stored(c, r, plain.op).metadata.empty());
  }
  // A resolution carries no note of its own; the hold keeps its note.
  const CommandResult captured = c.Run(1, CaptureHold{hold.op, 40});
  CheckNote(captured, "", {});

  // Restarted from its store, r1 still answers a retry with the op's note.
  REQUIRE(c.Restart(1).ok());
  const CommandResult again = c.Run(1, Credit{"alice", 10, "n-1"});
  REQUIRE(again.replayed);
  CheckNote(again, "salary \u20ac", kMeta);
}

TEST_CASE("a retry with another note replays the original op and its note", "[replica][note]") {
  Cluster c(2, NoFolds);
  Setup(c);
  const CommandResult first = c.Run(0, Credit{"alice", 10, "k-1", "first", kMeta});
  CheckNote(first, "first", kMeta);
  // The note is not part of the key's identity: the same key and request with another note (or
  // none) is a retry, answered with the original op, its note included.
  const CommandResult retry = c.Run(0, Credit{"alice", 10, "k-1", "second", {{"x", "y"}}});
  REQUIRE(retry.replayed);
  CHECK(retry.op == first.op);
  CheckNote(retry, "first", kMeta);
  CheckNote(c.Run(0, Credit{"alice", 10, "k-1"}), "first", kMeta);
  // At the other region too, once the op is there.
  c.Settle(6);
  const CommandResult elsewhere = c.Run(1, Credit{"alice", 10, "k-1", "third"});
  REQUIRE(elsewhere.replayed);
  CheckNote(elsewhere, "first", kMeta);
  // Another amount with the key is still a reuse, whatever the note.
  CHECK(c.Run(0, Credit{"alice", 11, "k-1", "first", kMeta}).status.code() ==
        Code::kIdempotencyKeyReused);
  CHECK(View(c, 0, "alice").balance == 610);
}

TEST_CASE("once its op is folded away, a replay answers without the note", "[replica][note]") {
  Cluster c(2, [](ReplicaOptions& o) {
    NoWaits(o);
    o.checkpoint_interval_ms = 100;
  });
  Setup(c);
  CheckNote(c.Run(0, Credit{"alice", 10, "k-1", "first", kMeta}), "first", kMeta);
  c.Settle(20);  // final everywhere, folded into the checkpoints, pruned from the log
  const CommandResult retry = c.Run(0, Credit{"alice", 10, "k-1", "second"});
  REQUIRE(retry.replayed);
  CheckNote(retry, "", {});
}

TEST_CASE("a debit that waits for rights keeps its note", "[replica][note]") {
  Cluster c(3, [](ReplicaOptions& o) {
    o.rebalance_interval_ms = 0;
    o.rights_wait_ms = 50;
  });
  c.Settle(3);
  REQUIRE(c.Run(0, OpenAccount{Config("alice")}).status.ok());
  REQUIRE(c.Run(0, Credit{"alice", 100, ""}).status.ok());
  c.Settle(6);
  const std::uint64_t id = c.next_id + 1;
  Debit d{"alice", 20, "w-1"};
  d.memo = "waited";
  d.metadata = {{"why", "rights at r0"}};
  CHECK(c.Run(1, d).status.code() == Code::kUnavailable);  // no completion yet: it waits
  c.Deliver();
  const auto done = c.CompletionOf(id);
  REQUIRE(done);
  CheckNote(*done, "waited", {{"why", "rights at r0"}});
  CHECK(Stored(c, 1, done->op).memo == "waited");
}

TEST_CASE("a budget debit carries the note of the debit asked", "[replica][note]") {
  Cluster c(2, NoWaits);
  c.Settle(3);
  AccountConfig team = Config("team");
  team.parent = "org";
  team.cap = true;
  REQUIRE(c.Run(0, OpenAccount{Config("org")}).status.ok());
  REQUIRE(c.Run(0, OpenAccount{team}).status.ok());
  c.Settle(6);
  REQUIRE(c.Run(0, Credit{"org", 100, ""}).status.ok());
  REQUIRE(c.Run(0, Credit{"team", 50, ""}).status.ok());
  Debit d{"team", 25, "b-1"};
  d.memo = "offsite";
  const CommandResult r = c.Run(0, d);
  CheckNote(r, "offsite", {});
  CHECK(r.payers == std::vector<std::string>{"team", "org"});
  CHECK(Stored(c, 0, r.op).kind == OpKind::kBudgetDebit);
  CHECK(Stored(c, 0, r.op).memo == "offsite");
  // Its retry names the payers and the note, from the op.
  const CommandResult retry = c.Run(0, Debit{"team", 25, "b-1"});
  REQUIRE(retry.replayed);
  CHECK(retry.payers == r.payers);
  CheckNote(retry, "offsite", {});
}

TEST_CASE("a voided duplicate's fork shows each op with its own note", "[replica][note]") {
  Cluster c(2, NoWaits);
  Setup(c);
  // The same key at both regions while they are cut off: the canonically later use is voided.
  const CommandResult a = c.Run(0, Credit{"alice", 10, "dup", "at r0"});
  const CommandResult b = c.Run(1, Credit{"alice", 10, "dup", "at r1", {{"r", "1"}}});
  CheckNote(a, "at r0", {});
  CheckNote(b, "at r1", {{"r", "1"}});
  c.Settle(8);
  REQUIRE(c.Converged("alice"));
  std::vector<ForkReport> forks;
  REQUIRE(c.at(0).Forks("alice", &forks).ok());
  REQUIRE(forks.size() == 1);
  REQUIRE(forks[0].ops.size() == 2);
  for (const Op& op : forks[0].ops) {
    INFO("op " << op.dot.ToString());
    CHECK(op.memo == (op.dot == a.op ? "at r0" : "at r1"));
    CHECK(op.metadata == (op.dot == a.op ? Metadata{} : Metadata{{"r", "1"}}));
  }
}
