#include "report/charts.h"

#include <algorithm>
#include <cmath>

#include "report/format.h"

namespace tally::report {
namespace {

// Round tick steps: 1, 2, 5 × 10^k.
double NiceStep(double range, int target) {
  if (range <= 0) return 1;
  double raw = range / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double n = raw / mag;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}

struct Plot {
  double x0 = 70, y0 = 20, w = 1180, h = 220;  // plot area inside the svg
  double t_min = 0, t_max = 1;
  double v_min = 0, v_max = 1;
  double X(double t) const {
    return x0 + w * ((std::clamp(t, t_min, t_max) - t_min) / (t_max - t_min));
  }
  double Y(double v) const { return y0 + h * (1 - (v - v_min) / (v_max - v_min)); }
};

std::string TimeAxis(const Plot& p) {
  std::string s;
  double step = NiceStep((p.t_max - p.t_min) / 1000.0, 10) * 1000.0;
  for (double t = std::ceil(p.t_min / step) * step; t <= p.t_max + 1e-9; t += step) {
    double x = p.X(t);
    s += "<line x1='" + Num(x, 1) + "' y1='" + Num(p.y0) + "' x2='" + Num(x, 1) + "' y2='" +
         Num(p.y0 + p.h) + "' class='grid'/>";
    s += "<text x='" + Num(x, 1) + "' y='" + Num(p.y0 + p.h + 14) +
         "' class='tick' text-anchor='middle'>" + Seconds(static_cast<std::uint64_t>(t)) +
         "</text>";
  }
  return s;
}

std::string ValueAxis(const Plot& p, bool duration_labels) {
  std::string s;
  double step = NiceStep(p.v_max - p.v_min, 5);
  for (double v = std::ceil(p.v_min / step) * step; v <= p.v_max + 1e-9; v += step) {
    double y = p.Y(v);
    s += "<line x1='" + Num(p.x0) + "' y1='" + Num(y, 1) + "' x2='" + Num(p.x0 + p.w) + "' y2='" +
         Num(y, 1) + "' class='" + (std::fabs(v) < step / 2 ? "zero" : "grid") + "'/>";
    std::string label = duration_labels ? Duration(static_cast<std::int64_t>(std::llround(v)))
                                        : Num(v, step < 1 ? 2 : 0);
    if (duration_labels && std::fabs(v) < step / 2) label = "0";
    s += "<text x='" + Num(p.x0 - 6) + "' y='" + Num(y + 4, 1) +
         "' class='tick' text-anchor='end'>" + label + "</text>";
  }
  return s;
}

// Shades partitions and the liveness phase behind a chart, so divergence lines up with its cause.
std::string Backdrop(const Plot& p, const RunReport& r) {
  std::string s;
  for (const TimelineSpan& span : r.timeline) {
    if (span.kind != "partition" && span.kind != "amnesia") continue;
    if (span.end_ms < p.t_min || span.start_ms > p.t_max) continue;
    double a = p.X(span.start_ms), b = p.X(std::max(span.end_ms, span.start_ms + 1));
    s += "<rect x='" + Num(a, 1) + "' y='" + Num(p.y0) + "' width='" +
         Num(std::max(b - a, 1.0), 1) + "' height='" + Num(p.h) + "' class='cut'><title>" +
         HtmlEscape(span.label) + "</title></rect>";
  }
  if (r.heal_ms) {
    double a = p.X(r.heal_ms);
    bool right_edge = a > p.x0 + p.w - 70;
    s += "<rect x='" + Num(a, 1) + "' y='" + Num(p.y0) + "' width='" + Num(p.x0 + p.w - a, 1) +
         "' height='" + Num(p.h) + "' class='live'/>";
    s += "<text x='" + Num(right_edge ? a - 4 : a + 4, 1) + "' y='" + Num(p.y0 + 12) +
         "' class='note' text-anchor='" + (right_edge ? "end" : "start") + "'>heal</text>";
  }
  if (r.converged_ms) {
    double a = p.X(r.converged_ms);
    bool right_edge = a > p.x0 + p.w - 70;
    s += "<line x1='" + Num(a, 1) + "' y1='" + Num(p.y0) + "' x2='" + Num(a, 1) + "' y2='" +
         Num(p.y0 + p.h) + "' class='conv'/><text x='" + Num(right_edge ? a - 4 : a + 4, 1) +
         "' y='" + Num(p.y0 + 26) + "' class='note' text-anchor='" +
         (right_edge ? "end" : "start") + "'>converged</text>";
  }
  return s;
}

// Which colour is which region, under the chart.
std::string SeriesKey(const std::vector<std::string>& names, double x, double y) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    double lx = x + 110.0 * i;
    s += "<rect x='" + Num(lx) + "' y='" + Num(y - 9) + "' width='14' height='4' fill='" +
         Color(i) + "'/><text x='" + Num(lx + 18) + "' y='" + Num(y) + "' class='tick'>" +
         HtmlEscape(names[i]) + "</text>";
  }
  return s;
}

}  // namespace

std::string StepChart(const RunReport& r, const std::vector<Series>& series, bool duration_labels,
                      std::string_view currency, std::uint64_t t_min, std::uint64_t t_max) {
  Plot p;
  p.t_min = static_cast<double>(t_min);
  p.t_max = std::max<double>(p.t_min + 1, t_max ? t_max : r.end_ms);
  bool any = false;
  double lo = 0, hi = 0;
  for (const Series& s : series)
    for (const Point& pt : s.points) {
      if (pt.t_ms < p.t_min || pt.t_ms > p.t_max) continue;
      if (!any) lo = hi = static_cast<double>(pt.value);
      any = true;
      lo = std::min(lo, static_cast<double>(pt.value));
      hi = std::max(hi, static_cast<double>(pt.value));
    }
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  // A flat duration chart still gets a readable scale (±1 s), an amount chart at least 1 unit.
  const double min_range = duration_labels ? 2000 : 1;
  if (hi - lo < min_range) {
    double mid = (hi + lo) / 2;
    lo = std::min(lo, mid - min_range / 2);
    hi = lo + min_range;
  }
  double pad = (hi - lo) * 0.08;
  p.v_min = lo - pad;
  p.v_max = hi + pad;
  const bool amounts = !duration_labels;
  std::string s = "<svg viewBox='0 0 1270 280' class='chart'>";
  s += Backdrop(p, r);
  if (amounts && p.v_min < 0) {
    // Everything below zero sits on a faint red band: on amounts, red always means negative.
    const double zero = p.Y(0);
    s += "<rect x='" + Num(p.x0) + "' y='" + Num(zero, 1) + "' width='" + Num(p.w) + "' height='" +
         Num(p.y0 + p.h - zero, 1) + "' class='negzone'/>";
  }
  s += TimeAxis(p) + ValueAxis(p, duration_labels);
  if (amounts && !currency.empty())
    s += "<text x='4' y='" + Num(p.y0 - 6) + "' class='tick'>" + HtmlEscape(currency) +
         " (minor units)</text>";
  std::vector<std::string> names;
  for (std::size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    const auto& pts = series[i].points;
    if (pts.empty()) continue;
    // A step line: each point's value holds until the next point. The stretch a value holds is
    // drawn solid when that value was final and dashed when tentative; a stretch below zero gets
    // a red halo under it. Vertical steps go with the value stepped to.
    std::string solid, dashed, halo;
    // Break the line where samples are missing (the region was down).
    std::uint64_t spacing = pts.size() > 1 ? pts[1].t_ms - pts[0].t_ms : 1000;
    const Point* prev = nullptr;
    for (std::size_t k = 0; k < pts.size(); ++k) {
      if (pts[k].t_ms < p.t_min || pts[k].t_ms > p.t_max) continue;
      bool gap =
          k == 0 || pts[k - 1].t_ms < p.t_min || pts[k].t_ms - pts[k - 1].t_ms > 3 * spacing + 5000;
      const double x = p.X(pts[k].t_ms), y = p.Y(pts[k].value);
      // Every point below zero gets a halo dot, so a series that ends below zero shows it too.
      if (amounts && pts[k].value < 0) halo += "M" + Num(x, 1) + "," + Num(y, 1) + "h0";
      if (gap || !prev) {
        // A lone point still shows (a dot), so a single sample is not lost.
        (pts[k].tentative ? dashed : solid) += "M" + Num(x, 1) + "," + Num(y, 1) + "h0";
      } else {
        const double px = p.X(prev->t_ms), py = p.Y(prev->value);
        const std::string stretch = "M" + Num(px, 1) + "," + Num(py, 1) + "H" + Num(x, 1);
        (prev->tentative ? dashed : solid) += stretch;
        if (amounts && prev->value < 0) halo += stretch;
        (pts[k].tentative ? dashed : solid) += "M" + Num(x, 1) + "," + Num(py, 1) + "V" + Num(y, 1);
      }
      prev = &pts[k];
    }
    const std::string width = series.size() > 1 ? "1.6" : "2";
    if (!halo.empty()) s += "<path d='" + halo + "' class='halo'/>";
    for (const auto& [d, dash] : {std::pair{&solid, false}, std::pair{&dashed, true}}) {
      if (d->empty()) continue;
      s += "<path d='" + *d + "' fill='none' stroke='" + Color(i) + "' stroke-width='" + width +
           "' stroke-opacity='0.85' stroke-linecap='round'" +
           (dash ? " stroke-dasharray='5 3'" : "") + "/>";
    }
  }
  s += SeriesKey(names, p.x0, 275);
  s += "</svg>";
  return s;
}

std::string TimelineSvg(const RunReport& r) {
  // Lanes: network partitions packed into rows, then one lane per region.
  std::vector<const TimelineSpan*> net;
  for (const TimelineSpan& span : r.timeline)
    if (span.lane == "network") net.push_back(&span);
  std::vector<std::uint64_t> row_end;
  std::vector<int> row_of(net.size());
  for (std::size_t i = 0; i < net.size(); ++i) {
    int row = -1;
    for (std::size_t k = 0; k < row_end.size(); ++k)
      if (row_end[k] <= net[i]->start_ms) {
        row = static_cast<int>(k);
        break;
      }
    if (row < 0) {
      row = static_cast<int>(row_end.size());
      row_end.push_back(0);
    }
    row_end[row] = std::max(net[i]->end_ms, net[i]->start_ms + 1);
    row_of[i] = row;
  }
  const double lane_h = 22, label_w = 110, width = 1270, plot_w = 1140;
  std::size_t net_rows = std::max<std::size_t>(1, row_end.size());
  double height = 30 + lane_h * (net_rows + r.regions.size()) + 30;
  Plot p;
  p.x0 = label_w;
  p.w = plot_w;
  p.y0 = 10;
  p.h = height - 40;
  p.t_max = std::max<double>(1, r.end_ms);
  std::string s = "<svg viewBox='0 0 " + Num(width) + " " + Num(height) + "' class='chart'>";
  s += TimeAxis(p);
  if (r.heal_ms) {
    double a = p.X(r.heal_ms);
    s += "<rect x='" + Num(a, 1) + "' y='" + Num(p.y0) + "' width='" + Num(p.x0 + p.w - a, 1) +
         "' height='" + Num(p.h) + "' class='live'><title>liveness phase</title></rect>";
  }
  if (r.converged_ms) {
    double a = p.X(r.converged_ms);
    s += "<line x1='" + Num(a, 1) + "' y1='" + Num(p.y0) + "' x2='" + Num(a, 1) + "' y2='" +
         Num(p.y0 + p.h) + "' class='conv'/>";
  }
  auto lane_y = [&](std::size_t lane) { return p.y0 + 6 + lane_h * lane; };
  s += "<text x='4' y='" + Num(lane_y(0) + 13) + "' class='lane'>network</text>";
  for (std::size_t i = 0; i < net.size(); ++i) {
    double y = lane_y(row_of[i]);
    double a = p.X(net[i]->start_ms), b = p.X(std::max(net[i]->end_ms, net[i]->start_ms + 1));
    s += "<rect x='" + Num(a, 1) + "' y='" + Num(y, 1) + "' width='" +
         Num(std::max(b - a, 2.0), 1) + "' height='" + Num(lane_h - 6) + "' class='span-" +
         HtmlEscape(net[i]->kind) + "'><title>" + HtmlEscape(net[i]->label) + " (" +
         Seconds(net[i]->start_ms) + " – " + Seconds(net[i]->end_ms) + ")</title></rect>";
    if (b - a > 60)
      s += "<text x='" + Num(a + 3, 1) + "' y='" + Num(y + 12, 1) + "' class='spanlabel'>" +
           HtmlEscape(net[i]->label) + "</text>";
  }
  for (std::size_t ri = 0; ri < r.regions.size(); ++ri) {
    double y = lane_y(net_rows + ri);
    s += "<line x1='" + Num(p.x0) + "' y1='" + Num(y + 8, 1) + "' x2='" + Num(p.x0 + p.w) +
         "' y2='" + Num(y + 8, 1) + "' stroke='" + Color(ri) + "' stroke-opacity='0.35'/>";
    s += "<text x='4' y='" + Num(y + 13, 1) + "' class='lane' fill='" + Color(ri) + "'>" +
         HtmlEscape(r.regions[ri]) + "</text>";
    for (const TimelineSpan& span : r.timeline) {
      if (span.lane != r.regions[ri]) continue;
      double a = p.X(span.start_ms);
      if (span.end_ms > span.start_ms) {
        double b = p.X(span.end_ms);
        s += "<rect x='" + Num(a, 1) + "' y='" + Num(y, 1) + "' width='" +
             Num(std::max(b - a, 2.0), 1) + "' height='" + Num(lane_h - 6) + "' class='span-" +
             HtmlEscape(span.kind) + "'><title>" + HtmlEscape(span.label) + " (" +
             Seconds(span.start_ms) + " – " + Seconds(span.end_ms) + ")</title></rect>";
      } else {
        s += "<path d='M" + Num(a, 1) + "," + Num(y, 1) + "l5,8l-5,8l-5,-8z' class='span-" +
             HtmlEscape(span.kind) + "'><title>" + HtmlEscape(span.label) + " at " +
             Seconds(span.start_ms) + "</title></path>";
      }
    }
  }
  s += "</svg>";
  return s;
}

// Rights per region at one moment as bars: right of the axis what a region may spend, left of it
// (red: below zero) overdraft line in use; the region's overdraft line drawn as a thin grey bar to
// the left. For a report without rights series over time (tallyd's).
std::string RightsBars(const AccountOutcome& a) {
  double scale = 1;
  for (const RegionOutcome& ro : a.regions) {
    scale = std::max(scale, std::fabs(static_cast<double>(ro.rights)));
    scale = std::max(scale, static_cast<double>(ro.overdraft_line));
  }
  const double row = 28, half = 220, label = 80;
  const double height = static_cast<double>(a.regions.size()) * row + 10;
  std::string s = "<h3>Rights by region</h3><svg width='" + Num(label + 2 * half + 120) +
                  "' height='" + Num(height) + "' role='img' aria-label='rights by region'>" +
                  "<line x1='" + Num(label + half) + "' y1='0' x2='" + Num(label + half) +
                  "' y2='" + Num(height) + "' class='zero'/>";
  double y = 5;
  for (std::size_t i = 0; i < a.regions.size(); ++i, y += row) {
    const RegionOutcome& ro = a.regions[i];
    const double w = std::fabs(static_cast<double>(ro.rights)) / scale * half;
    const double lw = static_cast<double>(ro.overdraft_line) / scale * half;
    s += "<text x='0' y='" + Num(y + 16) + "' class='lane'>" + HtmlEscape(ro.region) + "</text>";
    if (lw > 0)
      s += "<rect x='" + Num(label + half - lw, 1) + "' y='" + Num(y + 18) + "' width='" +
           Num(lw, 1) + "' height='6' fill='#ccc'/>";
    // Coloured like the figure in the region table: red below zero, else final or tentative.
    s += "<rect x='" + Num(ro.rights >= 0 ? label + half : label + half - w, 1) + "' y='" +
         Num(y + 3) + "' width='" + Num(std::max(w, 1.0), 1) + "' height='14' class='bar " +
         LevelClass(ro.rights, a.tentative) + "'/>";
    s += "<text x='" + Num(label + 2 * half + 8) + "' y='" + Num(y + 16) + "' class='tick'>" +
         MoneyHtml(ro.rights, a.config.currency) + "</text>";
  }
  return s + "</svg>";
}

}  // namespace tally::report
