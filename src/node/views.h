// Views: what the client API answers, rendered from the replica's reads (AccountView, ForkReport,
// DerivedEvent, PeerView) into JSON and, for reports, a self-contained HTML page.
//
// Everything a report shows comes from replicated state (no wall clock, no node-local counters),
// so two regions holding the same ops render byte-identical account reports apart from the
// "region" field: `tallyctl reconcile` compares them. Pure functions; thread-safe.

#ifndef TALLY_NODE_VIEWS_H_
#define TALLY_NODE_VIEWS_H_

#include <nlohmann/json.hpp>
#include <string>
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

// {"region","seq","hlc","kind","amount",("to"),("key"),("overdraft")}
nlohmann::json OpJson(const Op& op, const RegionNames& regions);
nlohmann::json DerivedEventJson(const DerivedEvent& e, const RegionNames& regions);

// The account's reconciliation report: the account view, its forks (each derived fee or void with
// the ops that led to it and whether it is final) and every derived event in canonical order.
nlohmann::json ReportJson(std::string_view region, const AccountView& account,
                          const std::vector<ForkReport>& forks,
                          const std::vector<DerivedEvent>& events, const RegionNames& regions);

// The same report as one HTML page with inline CSS and SVG (no external resources).
std::string ReportHtml(const nlohmann::json& report);

// Escapes text for HTML (shared with the simulator's reports).
using report::HtmlEscape;

}  // namespace tally::node

#endif  // TALLY_NODE_VIEWS_H_
