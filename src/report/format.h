// Text and HTML pieces shared by the report page (report.cc) and its charts (charts.cc): numbers,
// durations, money, HLC times, region and op names. Internal to src/report; the functions a
// producer or a test may want (UtcTime, MoneyText, FeePolicyText, HtmlEscape) are in report.h.
//
// Every function here is pure: no locale, no clock, no time zone, so a report renders to the same
// bytes wherever and whenever it is rendered (I5).

#ifndef TALLY_REPORT_FORMAT_H_
#define TALLY_REPORT_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hlc.h"
#include "core/money.h"
#include "core/types.h"

namespace tally::report {

// A coordinate or a tick for an SVG chart ("-0" printed as "0"). Never used for money.
std::string Num(double v, int decimals = 0);

// Virtual time since the start of a run, "12 s" or "12.35 s".
std::string Seconds(std::uint64_t ms);

// A signed clock offset, "+1.5 s", "−250 ms".
std::string Duration(std::int64_t ms);

// The colour of region `i` on charts. It leaves out red and green, which the page reserves for
// negative and final values.
std::string Color(std::size_t i);

// A region by name; "r<id>" for an id the report has no name for.
std::string RegionName(const std::vector<std::string>& names, RegionId r);

// "us:7": an op's origin region and sequence number.
std::string DotText(const std::vector<std::string>& names, RegionId origin, Seq seq);

// An HLC as a <time> element: its wall part as a UTC date, the raw HLC in the title (the logical
// counter orders ops within one millisecond).
std::string HlcHtml(Hlc h);

// An amount with its currency, escaped, with no colour of its own (a flow: an op, a fee, a void).
std::string MoneyHtml(Amount v, std::string_view currency);

// A level (a balance, rights) with its currency, coloured by what it says: red when below zero,
// otherwise green when final and amber when tentative. A tentative level is also set in italics,
// so a negative one still shows it is tentative.
std::string LevelHtml(Amount v, std::string_view currency, bool tentative);

// The CSS class LevelHtml gives `v`: "neg", "final" or "tent" (colour), plus " tm" if tentative.
std::string LevelClass(Amount v, bool tentative);

// A fee policy for a table cell: "25 EUR + 1.50% per episode", or "none".
std::string FeePolicyBrief(const FeePolicy& fee, std::string_view currency);

}  // namespace tally::report

#endif  // TALLY_REPORT_FORMAT_H_
