// The report page's inline SVG charts (internal to src/report). Each returns one <svg> element
// styled by the page's CSS classes (report.cc), so the colours that mean final, tentative and
// negative are defined once, with the legend that explains them.

#ifndef TALLY_REPORT_CHARTS_H_
#define TALLY_REPORT_CHARTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "report/report.h"

namespace tally::report {

// A step chart of several series over virtual time, t_min..t_max (t_max 0: the run's end), with
// partitions, the heal and convergence behind it. Duration charts (clock skew) label their values
// as durations; amount charts name `currency` on the value axis, draw tentative stretches dashed
// and give stretches below zero a red halo.
std::string StepChart(const RunReport& r, const std::vector<Series>& series, bool duration_labels,
                      std::string_view currency = {}, std::uint64_t t_min = 0,
                      std::uint64_t t_max = 0);

// Faults over virtual time: partitions on network lanes, then a lane per region.
std::string TimelineSvg(const RunReport& r);

// Rights per region at one moment as bars (for a report without rights series over time).
std::string RightsBars(const AccountOutcome& a);

}  // namespace tally::report

#endif  // TALLY_REPORT_CHARTS_H_
