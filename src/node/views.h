// Views: what the client API answers, rendered from the replica's reads (AccountView, ForkReport,
// DerivedEvent, PeerView) into JSON. The per-account reconciliation report is filled here as a
// one-account report::RunReport and rendered (JSON or HTML) by src/report, the renderer the
// simulator's run reports use too.
//
// A report's forks and derived events come from replicated state (no wall clock, no node-local
// counters), so two regions holding the same ops report the same ones: `tallyctl reconcile`
// compares them.
//
// Also here: the bodies tallyd answers with (an account, its report, GET /v1/cluster, a backup's
// outcome, a stream message), so the node's classes only decide when to answer, not how it reads.
//
// Thread contract: the functions of values are pure and thread-safe; those reading a Replica run
// where every replica call runs (tallyd's io thread).

#ifndef TALLY_NODE_VIEWS_H_
#define TALLY_NODE_VIEWS_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "core/status.h"
#include "node/api.h"
#include "node/config.h"
#include "node/store.h"
#include "report/report.h"

namespace tally::node {

// Region names indexed by RegionId.
using RegionNames = std::vector<std::string>;

// {"id","currency","balance","tentative","final_balance","raw_balance","overdraft_limit",
//  "fee":{"flat","bps"},"fees","voids","episodes","regions":{"<name>":{"rights","overdraft_line",
//  "fees","voids","reserved"}},"frontier","digest"}, and "held" (open holds) and "available"
//  (balance − held)
nlohmann::json AccountJson(const AccountView& v, const RegionNames& regions);

// The answer to an accepted (or replayed) credit, debit, transfer, hold, capture or release:
// {"op":{"region","seq"},"balance","overdraft","replicated"}, with "payee_balance" for a transfer
// and "hold","held","expires_ms"?,"captured"? for a hold and its resolutions; "source" and
// "payers" when `r.payers` names them (a budget debit, or a fallback); "memo" and "metadata" (an
// object, in the client's order) when the op carries them; "replayed":true on the stored answer
// to a retry (its note is the original op's, while the op is held here).
void AppendOpResultJson(const CommandResult& r, const RegionNames& regions, bool transfer,
                        std::string* out);

// GET /v1/accounts: a page of the open accounts whose id starts with `m.prefix`, after `m.after`,
// that `in_scope` admits, in id order, at most `m.limit`: {"accounts":[{"id","currency","balance",
// "held","available","tentative","parent"?,"cap"?}],"next_cursor":"…"|null}.
std::string ListAccountsJson(Replica* replica, const RouteMatch& m,
                             const std::function<bool(const std::string&)>& in_scope);

// GET /v1/holds/{hold}: {"hold","account","amount","placed_at","expires_ms","state" (open,
// captured, released, expired, voided),"captured","final","resolved_by"?:{"region","seq"}}.
nlohmann::json HoldJson(const HoldView& v, const RegionNames& regions);

// The account's reconciliation report as `region` sees it: a report with that one account (its
// view, its forks, each derived fee or void with the ops that led to it and whether it is final,
// and every derived event in canonical order), no timeline. Render it with report::RenderJson or
// report::RenderHtml; docs/operations.md shows the JSON.
report::RunReport AccountReport(std::string_view region, const AccountView& account,
                                std::vector<ForkReport> forks, std::vector<DerivedEvent> events,
                                const RegionNames& regions);

// GET /v1/accounts/{id}: AccountJson of the replica's view. NotFound for an unknown account.
Status AccountBody(Replica* replica, std::string_view id, const RegionNames& regions,
                   std::string* out);

// GET /v1/accounts/{id}/report: AccountReport for region `region`, rendered as JSON or (`html`)
// HTML, with its content type.
Status ReportBody(Replica* replica, std::string_view region, std::string_view id, bool html,
                  const RegionNames& regions, std::string* out, std::string* content_type);

// What the node knows of its connections to one peer region, for GET /v1/cluster.
struct PeerConnections {
  bool connected = false;   // our outbound link is up (its handshake done)
  std::size_t inbound = 0;  // the peer's verified connections to our peer port
};

// GET /v1/cluster: identity, the replica's vectors and frontier, and per peer its PeerView with
// `connections` (indexed by region) at monotonic time `now_ms`.
std::string ClusterJson(const Replica& replica, const NodeConfig& config, std::uint64_t now_ms,
                        const std::vector<PeerConnections>& connections);

// POST /v1/admin/backup's answer: where the copy went and what it holds.
std::string BackupJson(std::string_view region, const std::string& dir, const BackupStats& stats,
                       const RegionNames& regions);

}  // namespace tally::node

#endif  // TALLY_NODE_VIEWS_H_
