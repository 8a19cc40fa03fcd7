// Statements (GET /v1/accounts/{id}/history, docs/operations.md, "GET /v1/accounts/{id}/history"):
// an account's lines gathered from the three places they live — the history store (final lines
// synced), the batches the storage thread has not synced yet (final lines folded and handed over),
// and the replica (final lines folded since its last Fold, and the tentative lines above the
// frontier) — and merged by canonical key, so no line is missing or shown twice whatever the fold
// and the storage thread are doing meanwhile. The memory is read first, then the store: a batch
// synced in between is in both (the same final lines), and nothing can move from memory to the
// store unseen.
//
// Threading: io thread (it reads the replica and the commit gate); the store read may run
// concurrently with the storage thread's writes.

#ifndef TALLY_NODE_STATEMENT_VIEW_H_
#define TALLY_NODE_STATEMENT_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit_gate.h"
#include "core/replica.h"
#include "core/status.h"
#include "node/history_query.h"
#include "node/history_store.h"

namespace tally::node {

// Where an account's statement lines are read from.
struct StatementSources {
  Replica* replica = nullptr;
  const CommitGate* gate = nullptr;
  const HistoryStore* store = nullptr;
  const std::vector<std::string>* regions = nullptr;  // names, by RegionId
};

// A region's name; "?" for an id past the list.
std::string_view RegionOf(RegionId r, const std::vector<std::string>& regions);
// An op's note as fields of `j`: "memo" and "metadata" (an object, in the client's order), each
// only when set.
void AddNoteJson(const std::string& memo, const Metadata& metadata, nlohmann::ordered_json* j);

// One line: {"cursor","kind","change","amount","region","seq","time","hlc","final","voided",
// "fee","overdraft_crossing","void","balance_after","idempotency_key"?,"counterparty"?,"hold"?}.
nlohmann::ordered_json StatementLineJson(const StatementLine& line,
                                         const std::vector<std::string>& regions);

// A page: {"account","currency","order","lines":[…],"next_cursor":"…"|null,"frontier",
// "frontier_utc"}. NotFound for an account this region does not hold.
Status StatementPageBody(const StatementSources& from, std::string_view account,
                         const HistoryQuery& q, std::string* out);

// The final balance at `as_of_ms`: {"account","currency","as_of","balance","line":{…}}, the line
// being the last op at or before that time. FailedPrecondition when that time is not below the
// stable frontier yet (the balance then may still change); NotFound when this region holds no
// line of the account at or before it (opened later, or its history here is pruned or was
// installed from a peer's snapshot).
Status BalanceAsOfBody(const StatementSources& from, std::string_view account,
                       std::uint64_t as_of_ms, std::string* out);

// The final lines of `accounts` that were handed over in a Fold (stored, or in a batch not synced
// yet) whose key is after `after` and before `below`, ordered by key then account (a transfer
// between two of them is two lines with one key): at most `max`, *more telling whether there are
// further ones. What a stream reopening with ?after= missed (stream_hub.h).
Status MissedLines(const StatementSources& from, const std::set<std::string, std::less<>>& accounts,
                   const CanonicalKey& after, const CanonicalKey& below, std::size_t max,
                   std::vector<StatementLine>* out, bool* more);

}  // namespace tally::node

#endif  // TALLY_NODE_STATEMENT_VIEW_H_
