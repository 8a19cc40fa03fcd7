// Reconciliation reports: what happened to wallets, for machines (JSON) and for people (one
// self-contained HTML page with inline SVG charts and no external resources).
//
// The report is built from plain structs so any producer can fill them: tally-sim fills a whole
// RunReport (fault timeline, clock skew, every account); tallyd fills one with a single account,
// no timeline and `view_region` set, and serves it as GET /v1/accounts/{id}/report. Both fill an
// account from the replica's AccountView with AccountFromView(). Sections with no data are left out
// of the page. Rendering is a pure function of the structs: the same report renders to the same
// bytes (I5). Regions are named by `RunReport::regions` (index = RegionId) wherever an op, a dot
// or a derived event names one.
//
// Thread-compatible: distinct reports may be rendered on distinct threads.

#ifndef TALLY_REPORT_REPORT_H_
#define TALLY_REPORT_REPORT_H_

#include <cstdint>
#include <optional>
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
  Amount tentative_credit = 0;  // credits above the frontier, not yet spendable there
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
  std::optional<std::uint64_t> ops;  // ops on the account (unset: the producer cannot count them)
  std::uint64_t digest = 0;
  Hlc frontier;        // the stable frontier of the replica read: below it nothing changes
  bool stale = false;  // that replica is rejoining after a restart and may lack ops
  std::vector<RegionOutcome> regions;
  std::vector<ForkReport> forks;     // every fork, with the ops behind it and its resolution
  std::vector<DerivedEvent> events;  // every derived fee and void, in canonical order
  // Rights movements (may be capped, see rights_total); unset when the producer has no record of
  // them (tallyd keeps no ledger of transfers; the simulator does).
  std::optional<std::vector<RightsMove>> rights;
  std::uint64_t rights_total = 0;
  std::vector<Series> balance_by_region;  // charted only for the chosen account
  std::vector<Series> rights_by_region;
};

struct RunReport {
  std::string title;
  std::string producer;     // "tally-sim 0.1.0"
  std::string view_region;  // the region whose replica the outcomes were read from
  std::string result;       // "ok" or the failure
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

// An account as `view` shows it, regions named by `region_names` (index = RegionId). Forks,
// events, ops and rights movements are left for the caller to add.
AccountOutcome AccountFromView(const AccountView& view,
                               const std::vector<std::string>& region_names);

// The sentence that explains a fork, e.g. "debit us:7 of 500 opened an overdraft episode, 200
// below zero: fee 53, balance after -253", or "transfer us:9 of 200 from alice to shop repeats an
// idempotency key used by eu:4 earlier in canonical order: voided in both accounts (-200 here)".
// Regions named by `region_names`; the ops are the fork's when it holds them.
std::string ExplainFork(const ForkReport& fork, const std::vector<std::string>& region_names);

std::string RenderJson(const RunReport& report);
// The page states each account's fee policy in words, shows amounts with their currency (in minor
// units), HLC times as UTC dates, colours a level red below zero, green when final and amber when
// tentative, says for every fork which op survived and which was voided, and explains all of it in
// a legend.
std::string RenderHtml(const RunReport& report);

// Writes report.json and report.html into `dir` (created if missing). IOError on failure.
Status WriteReport(const RunReport& report, const std::string& dir);

// Escapes text for HTML element content and attribute values (& < > " ').
std::string HtmlEscape(std::string_view s);

// Unix milliseconds as an ISO 8601 UTC time, "2026-12-04T19:10:03.123Z" (0 is
// "1970-01-01T00:00:00.000Z"), in integers: no locale, time zone or clock. An HLC's wall part in
// tallyd; simulated milliseconds from 0 in tally-sim.
std::string UtcTime(std::uint64_t wall_ms);

// An amount with its currency, "1250 EUR". Amounts are integer minor units and tally knows no
// currency's exponent, so no decimal point is placed (the page's legend says so).
std::string MoneyText(Amount amount, std::string_view currency);

// An account's fee policy in words, e.g. "overdraft fee 25 EUR + 1.50% (150 bps) of the amount
// below zero (rounded up), once per episode, charged to the debit that takes the balance below
// zero"; "no overdraft fee" when both parts are 0.
std::string FeePolicyText(const FeePolicy& fee, std::string_view currency);

}  // namespace tally::report

#endif  // TALLY_REPORT_REPORT_H_
