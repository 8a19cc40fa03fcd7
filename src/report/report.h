// Reconciliation reports: what happened to wallets, for machines (JSON) and for people (one
// self-contained HTML page with inline SVG charts and no external resources).
//
// The report is built from plain structs so any producer can fill them: tally-sim fills a whole
// RunReport (fault timeline, clock skew, every account); tallyd can fill one with a single account
// and no timeline for its per-account report. Sections with no data are left out of the page.
// Rendering is a pure function of the structs: the same report renders to the same bytes (I5).
//
// Thread-compatible: distinct reports may be rendered on distinct threads.

#ifndef TALLY_REPORT_REPORT_H_
#define TALLY_REPORT_REPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/replica.h"
#include "core/status.h"

namespace tally::report {

// A span on the timeline: a partition, a region being down, a clock step (start == end), ...
struct TimelineSpan {
  std::uint64_t start_ms = 0;
  std::uint64_t end_ms = 0;  // == start_ms for an instant
  std::string lane;          // "network" or a region name
  std::string kind;          // "partition", "crash", "clock-step", "amnesia", "liveness"
  std::string label;
};

struct Point {
  std::uint64_t t_ms = 0;
  Amount value = 0;
  bool tentative = false;
};

// One line of a chart: e.g. the balance of an account as one region sees it.
struct Series {
  std::string name;
  std::vector<Point> points;
};

// Clock readings minus true time, per region, at one instant.
struct ClockSample {
  std::uint64_t t_ms = 0;
  std::vector<std::int64_t> offset_ms;
};

// The largest clock offset one region saw in a peer's heartbeats.
struct OffsetSeen {
  std::string observer;
  std::string peer;
  std::int64_t max_ahead_ms = 0;
  std::int64_t max_behind_ms = 0;  // <= 0
};

struct RightsMove {
  std::uint64_t t_ms = 0;  // when it became durable at its donor (0: unknown)
  std::string dot;
  Hlc hlc;
  std::string from, to;
  Amount amount = 0;
};

struct RegionOutcome {
  std::string region;
  Amount rights = 0;
  Amount overdraft_line = 0;
  Amount fees = 0;
  Amount voids = 0;
};

struct AccountOutcome {
  AccountConfig config;
  Amount balance = 0;
  Amount final_balance = 0;
  Amount raw_balance = 0;
  bool tentative = false;
  Amount fees = 0;
  Amount voids = 0;
  std::uint64_t episodes = 0;
  std::uint64_t ops = 0;
  std::uint64_t digest = 0;
  std::vector<RegionOutcome> regions;
  std::vector<ForkReport> forks;   // every fork, with the ops behind it and its resolution
  std::vector<RightsMove> rights;  // rights movements (may be capped, see rights_total)
  std::uint64_t rights_total = 0;
  std::vector<Series> balance_by_region;  // charted only for the chosen account
  std::vector<Series> rights_by_region;
};

struct RunReport {
  std::string title;
  std::string producer;  // "tally-sim 0.1.0"
  std::string result;    // "ok" or the failure
  bool ok = true;
  std::vector<std::pair<std::string, std::string>> config;  // shown and exported in this order
  std::vector<std::pair<std::string, std::string>> summary;
  std::vector<std::string> regions;
  std::uint64_t end_ms = 0;
  std::uint64_t heal_ms = 0;       // liveness phase start (0: none)
  std::uint64_t converged_ms = 0;  // (0: not converged / not applicable)
  std::vector<TimelineSpan> timeline;
  std::vector<ClockSample> clocks;
  std::vector<OffsetSeen> offsets_seen;
  std::vector<AccountOutcome> accounts;  // id order
  std::string chart_account;             // the account whose views are charted
};

std::string RenderJson(const RunReport& report);
std::string RenderHtml(const RunReport& report);

// Writes report.json and report.html into `dir` (created if missing). IOError on failure.
Status WriteReport(const RunReport& report, const std::string& dir);

// Escapes text for HTML element content and attribute values (& < > " ').
std::string HtmlEscape(std::string_view s);

}  // namespace tally::report

#endif  // TALLY_REPORT_REPORT_H_
