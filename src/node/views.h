// Views: what the client API answers, rendered from the replica's reads (AccountView, ForkReport,
// DerivedEvent, PeerView) into JSON. The per-account reconciliation report is filled here as a
// one-account report::RunReport and rendered (JSON or HTML) by src/report, the renderer the
// simulator's run reports use too.
//
// A report's forks and derived events come from replicated state (no wall clock, no node-local
// counters), so two regions holding the same ops report the same ones: `tallyctl reconcile`
// compares them. Pure functions; thread-safe.

#ifndef TALLY_NODE_VIEWS_H_
#define TALLY_NODE_VIEWS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "report/report.h"

namespace tally::node {

// Region names indexed by RegionId.
using RegionNames = std::vector<std::string>;

// {"id","currency","balance","tentative","final_balance","raw_balance","overdraft_limit",
//  "fee":{"flat","bps"},"fees","voids","episodes","regions":{"<name>":{"rights","overdraft_line",
//  "fees","voids"}},"frontier","digest"}
nlohmann::json AccountJson(const AccountView& v, const RegionNames& regions);

// The answer to an accepted (or replayed) credit, debit or transfer:
// {"op":{"region","seq"},"balance","overdraft"}.
void AppendOpResultJson(const CommandResult& r, const RegionNames& regions, std::string* out);

// The account's reconciliation report as `region` sees it: a report with that one account (its
// view, its forks, each derived fee or void with the ops that led to it and whether it is final,
// and every derived event in canonical order), no timeline. Render it with report::RenderJson or
// report::RenderHtml; docs/operations.md shows the JSON.
report::RunReport AccountReport(std::string_view region, const AccountView& account,
                                std::vector<ForkReport> forks, std::vector<DerivedEvent> events,
                                const RegionNames& regions);

}  // namespace tally::node

#endif  // TALLY_NODE_VIEWS_H_
