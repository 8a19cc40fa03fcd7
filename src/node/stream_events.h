// Stream events: the messages GET /v1/stream pushes when its accounts change (docs/operations.md,
// "GET /v1/stream"), rendered from values — an op, a statement line, an account's state — so the
// StreamHub only decides who gets what, and when.
//
// Every message carries a `cursor`, a resume point: every final line at or before it has reached
// the stream. Cursors are positions in the canonical order of ops, which is the same in every
// region, so a client may resume in another region than the one it left. The cursor of a
// non-final message is the frontier's: the final lines below the last fold.
//
// Thread-safe: pure functions.

#ifndef TALLY_NODE_STREAM_EVENTS_H_
#define TALLY_NODE_STREAM_EVENTS_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "core/types.h"

namespace tally::node {

// The position just below every op at or after `frontier` (lines below it are final): the key
// sorts before any op's (no op has seq 0).
CanonicalKey FrontierKey(Hlc frontier);

// {"account","kind","amount","region","seq","time","hlc","idempotency_key"?,"to"? (a transfer's
// payee),"payers"? (a budget debit's),"to_region"? (a rights move's),"hold"?,"memo"?,
// "metadata"?}: an op as it arrived, before replay says what it did.
std::string OpEventJson(const Op& op, const std::vector<std::string>& regions);

// {"account", then the fields of a statement line (statement_view.h)}.
std::string LineEventJson(const StatementLine& line, const std::vector<std::string>& regions);

// {"id","balance","available","held","tentative","final_balance"}: an account's state.
std::string AccountStateJson(const AccountView& v);

// What changed, for one stream: the ops (`final` false) or the final lines (`final` true), each
// already rendered, and the state of the accounts they touched.
struct StreamEvent {
  bool final = false;
  bool replay = false;  // sent on subscribing, for what the client missed
  CanonicalKey cursor;
  Hlc frontier;  // final events: the fold's
  std::vector<const std::string*> items;
  std::vector<const std::string*> accounts;
};

// {"type":"event","final","replay"?,"cursor","frontier_utc"? (final),"ops"|"lines":[…],
//  "accounts":[…]}.
std::string StreamEventJson(const StreamEvent& e);

// {"type":"account","cursor","account":AccountJson}: an account's state when a stream opens.
std::string AccountSnapshotJson(const AccountView& v, const std::vector<std::string>& regions,
                                const CanonicalKey& cursor);

}  // namespace tally::node

#endif  // TALLY_NODE_STREAM_EVENTS_H_
