#include "report/report.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace tally::report {
namespace {

using Json = nlohmann::ordered_json;

// Tables on the page stop here; report.json keeps everything.
constexpr std::size_t kMaxForkRows = 300;
constexpr std::size_t kMaxRightsRows = 200;
constexpr std::size_t kMaxAccountRows = 300;

std::string Hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// "2023-11-14 22:13:20.123 +4": an HLC as the UTC wall time it carries, then its logical counter.
std::string HlcText(Hlc h) {
  std::uint64_t ms = h.wall_ms();
  std::int64_t days = static_cast<std::int64_t>(ms / 86'400'000);
  std::uint64_t in_day = ms % 86'400'000;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no locale, no time zone.
  days += 719468;
  std::int64_t era = days / 146097;
  std::int64_t doe = days - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  std::int64_t y = yoe + era * 400 + (m <= 2);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld %02llu:%02llu:%02llu.%03llu +%llu",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<unsigned long long>(in_day / 3'600'000),
                static_cast<unsigned long long>(in_day / 60'000 % 60),
                static_cast<unsigned long long>(in_day / 1000 % 60),
                static_cast<unsigned long long>(in_day % 1000),
                static_cast<unsigned long long>(h.logical()));
  return buf;
}

// A region by name; "r<id>" for an id the report has no name for.
std::string RegionName(const std::vector<std::string>& names, RegionId r) {
  return r < names.size() ? names[r] : "r" + std::to_string(r);
}

// "us:7": an op's origin region and sequence number.
std::string DotText(const std::vector<std::string>& names, RegionId origin, Seq seq) {
  return RegionName(names, origin) + ":" + std::to_string(seq);
}

std::string KindName(DerivedKind k) {
  return k == DerivedKind::kOverdraftFee ? "overdraft_fee" : "void";
}

Json ConfigJson(const AccountConfig& c) {
  Json j;
  j["id"] = c.id;
  j["currency"] = c.currency;
  j["overdraft_limit"] = c.overdraft_limit;
  j["lines"] = c.lines;
  j["fee"] = {{"flat", c.fee.flat}, {"bps", c.fee.bps}};
  if (!c.parent.empty()) {
    j["parent"] = c.parent;
    j["cap"] = c.cap;
  }
  return j;
}

Json OpJson(const Op& op, const std::vector<std::string>& names) {
  Json j;
  j["region"] = RegionName(names, op.dot.origin);
  j["seq"] = op.dot.seq;
  j["hlc"] = op.hlc.ToString();
  j["kind"] = std::string(OpKindName(op.kind));
  j["account"] = op.account;
  j["amount"] = op.amount;
  if (op.kind == OpKind::kRights) j["to"] = RegionName(names, op.to);
  if (op.kind == OpKind::kTransfer) j["to_account"] = op.to_account;
  if (op.kind == OpKind::kHold) j["expires_ms"] = op.expires_ms;
  if (op.kind == OpKind::kBudgetDebit) j["payers"] = op.payers;
  if (IsHoldResolution(op.kind)) {
    j["hold"] = RegionName(names, op.hold.origin) + "." + std::to_string(op.hold.seq);
    j["held"] = op.held;
    if (op.expired) j["expired"] = true;
  }
  if (!op.key.empty()) j["key"] = op.key;
  if (op.overdraft) j["overdraft"] = true;
  return j;
}

Json EventJson(const DerivedEvent& e, const std::vector<std::string>& names) {
  Json j;
  j["kind"] = KindName(e.kind);
  j["op"] = {
      {"region", RegionName(names, e.op.origin)}, {"seq", e.op.seq}, {"hlc", e.op.hlc.ToString()}};
  j["op_kind"] = std::string(OpKindName(e.op_kind));
  j["op_amount"] = e.op_amount;
  j["amount"] = e.amount;
  if (e.kind == DerivedKind::kOverdraftFee) j["overdrawn"] = e.overdrawn;
  j["balance_after"] = e.balance_after;
  return j;
}

Json SeriesJson(const std::vector<Series>& v) {
  Json out = Json::array();
  for (const Series& s : v) {
    Json pts = Json::array();
    for (const Point& p : s.points) pts.push_back({p.t_ms, p.value, p.tentative});
    out.push_back({{"name", s.name}, {"points [t_ms, value, tentative]", pts}});
  }
  return out;
}

// --- HTML helpers -------------------------------------------------------------------------------

std::string Num(double v, int decimals = 0) {
  if (std::fabs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0;  // never print "-0"
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string Seconds(std::uint64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                        : Num(ms / 1000.0, ms < 10000 ? 2 : 1) + " s";
}

std::string Duration(std::int64_t ms) {
  std::string sign = ms < 0 ? "−" : "+";
  std::uint64_t a = ms < 0 ? static_cast<std::uint64_t>(-ms) : static_cast<std::uint64_t>(ms);
  if (a >= 3'600'000) return sign + Num(a / 3'600'000.0, 1) + " h";
  if (a >= 60'000) return sign + Num(a / 60'000.0, 1) + " min";
  if (a >= 1000) return sign + Num(a / 1000.0, 1) + " s";
  return sign + std::to_string(a) + " ms";
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939",
                          "#843c39", "#7b4173", "#3182bd", "#e6550d"};
std::string Color(std::size_t i) { return kPalette[i % (sizeof kPalette / sizeof *kPalette)]; }

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

std::string Legend(const std::vector<std::string>& names, double x, double y) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    double lx = x + 110.0 * i;
    s += "<rect x='" + Num(lx) + "' y='" + Num(y - 9) + "' width='14' height='4' fill='" +
         Color(i) + "'/><text x='" + Num(lx + 18) + "' y='" + Num(y) + "' class='tick'>" +
         HtmlEscape(names[i]) + "</text>";
  }
  return s;
}

// A step chart of several series over virtual time.
std::string StepChart(const RunReport& r, const std::vector<Series>& series, bool duration_labels,
                      std::uint64_t t_min = 0, std::uint64_t t_max = 0) {
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
  std::string s = "<svg viewBox='0 0 1270 280' class='chart'>";
  s += Backdrop(p, r) + TimeAxis(p) + ValueAxis(p, duration_labels);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    const auto& pts = series[i].points;
    if (pts.empty()) continue;
    std::string path;
    // Break the line where samples are missing (the region was down).
    std::uint64_t spacing = pts.size() > 1 ? pts[1].t_ms - pts[0].t_ms : 1000;
    for (std::size_t k = 0; k < pts.size(); ++k) {
      if (pts[k].t_ms < p.t_min || pts[k].t_ms > p.t_max) continue;
      bool gap =
          k == 0 || pts[k - 1].t_ms < p.t_min || pts[k].t_ms - pts[k - 1].t_ms > 3 * spacing + 5000;
      double x = p.X(pts[k].t_ms), y = p.Y(pts[k].value);
      if (gap) {
        path += "M" + Num(x, 1) + "," + Num(y, 1);
      } else {
        path += "H" + Num(x, 1) + "V" + Num(y, 1);
      }
    }
    s += "<path d='" + path + "' fill='none' stroke='" + Color(i) + "' stroke-width='" +
         (series.size() > 1 ? "1.6" : "2") + "' stroke-opacity='0.85'/>";
  }
  s += Legend(names, p.x0, 275);
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

std::string Table(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string s = "<table class='kv'>";
  for (const auto& [k, v] : rows)
    s += "<tr><th>" + HtmlEscape(k) + "</th><td>" + HtmlEscape(v) + "</td></tr>";
  return s + "</table>";
}

const char* kCss = R"(
body{font:13px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-bottom:12px}
.badge{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:600;margin-right:8px}
.ok{background:#2e7d32}.bad{background:#c62828}
.cols{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse;font-size:12px}
table.kv th{text-align:left;color:#555;font-weight:500;padding:2px 12px 2px 0}
table.kv td{font-family:ui-monospace,Menlo,Consolas,monospace;padding:2px 0}
table.grid th,table.grid td{border:1px solid #e2e2e2;padding:3px 7px;text-align:right}
table.grid th{background:#f5f5f5;font-weight:600}
table.grid td.l,table.grid th.l{text-align:left}
td.mono{font-family:ui-monospace,Menlo,Consolas,monospace}
.chart{width:100%;max-width:1270px;display:block}
.grid{stroke:#eee;stroke-width:1}.zero{stroke:#999;stroke-width:1}
.tick{font-size:10px;fill:#666}.lane{font-size:11px;font-weight:600}
.note{font-size:10px;fill:#2e7d32}.spanlabel{font-size:10px;fill:#fff;pointer-events:none}
.cut{fill:#f4b400;fill-opacity:0.12}.live{fill:#2e7d32;fill-opacity:0.06}
.conv{stroke:#2e7d32;stroke-dasharray:4 3}
.span-partition{fill:#e08e0b}.span-crash{fill:#c62828}.span-amnesia{fill:#6a1b9a}
.span-clock-step{fill:#ef6c00}.span-final{fill:#8d6e63}
.scroll{max-height:420px;overflow:auto;display:inline-block;border:1px solid #e2e2e2}
.muted{color:#888}.fee{color:#c62828}.void{color:#1565c0}
)";

// Forks of one account (or of every account when `only` is null), newest last.
std::string ForksTable(const RunReport& r, const AccountOutcome* only) {
  std::string h =
      "<div class='scroll'><table class='grid'><tr><th class='l'>account</th><th "
      "class='l'>resolution</th>"
      "<th class='l'>op (dot · hlc)</th><th>op amount</th><th>fee / void</th><th>overdrawn</th>"
      "<th>balance after</th><th class='l'>status</th><th class='l'>ops involved</th></tr>";
  std::size_t rows = 0, total = 0;
  for (const AccountOutcome& a : r.accounts) {
    if (only && &a != only) continue;
    for (const ForkReport& f : a.forks) {
      ++total;
      if (rows >= kMaxForkRows) continue;
      ++rows;
      const DerivedEvent& e = f.event;
      const bool fee = e.kind == DerivedKind::kOverdraftFee;
      std::string ops;
      for (std::size_t k = 0; k < f.ops.size() && k < 6; ++k) {
        const Op& op = f.ops[k];
        if (k) ops += "; ";
        ops += DotText(r.regions, op.dot.origin, op.dot.seq) + " " +
               std::string(OpKindName(op.kind)) + " " + std::to_string(op.amount);
        if (!op.key.empty()) ops += " [" + op.key + "]";
      }
      if (f.ops.size() > 6) ops += "; … " + std::to_string(f.ops.size() - 6) + " more";
      h += "<tr><td class='l'>" + HtmlEscape(a.config.id) + "</td><td class='l " +
           (fee ? "fee" : "void") + "'>" +
           (fee ? "overdraft fee" : (e.amount >= 0 ? "void (refund)" : "void (clawback)")) +
           "</td><td class='l mono'>" + HtmlEscape(DotText(r.regions, e.op.origin, e.op.seq)) +
           " · " + HtmlEscape(HlcText(e.op.hlc)) + "</td><td>" + std::to_string(e.op_amount) +
           "</td><td>" + std::to_string(e.amount) + "</td><td>" +
           (fee ? std::to_string(e.overdrawn) : "") + "</td><td>" +
           std::to_string(e.balance_after) + "</td><td class='l'>" +
           (f.final ? "final" : "tentative") + "</td><td class='l mono'>" + HtmlEscape(ops) +
           "</td></tr>";
    }
  }
  h += "</table></div>";
  if (total > rows)
    h += "<p class='muted'>" + std::to_string(total) +
         " forks in all; the rest are in report.json.</p>";
  return h;
}

// Rights per region at one moment as bars: right of the axis what a region may spend, left of it
// (red) overdraft line in use; the region's overdraft line drawn as a thin grey bar to the left.
// For a report without rights series over time (tallyd's).
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
    s += "<rect x='" + Num(ro.rights >= 0 ? label + half : label + half - w, 1) + "' y='" +
         Num(y + 3) + "' width='" + Num(std::max(w, 1.0), 1) + "' height='14' fill='" +
         (ro.rights >= 0 ? "#2e7d32" : "#c62828") + "'/>";
    s += "<text x='" + Num(label + 2 * half + 8) + "' y='" + Num(y + 16) + "' class='tick'>" +
         std::to_string(ro.rights) + "</text>";
  }
  return s + "</svg>";
}

// Every derived fee and void of one account, in canonical order.
std::string EventsTable(const RunReport& r, const AccountOutcome& a) {
  std::string h = "<h3>Derived events (" + std::to_string(a.events.size()) +
                  ")</h3><div class='scroll'><table class='grid'><tr><th class='l'>kind</th>"
                  "<th class='l'>op (dot · hlc)</th><th class='l'>op kind</th><th>op amount</th>"
                  "<th>amount</th><th>overdrawn</th><th>balance after</th></tr>";
  for (std::size_t i = 0; i < a.events.size() && i < kMaxForkRows; ++i) {
    const DerivedEvent& e = a.events[i];
    const bool fee = e.kind == DerivedKind::kOverdraftFee;
    h += "<tr><td class='l " + std::string(fee ? "fee" : "void") + "'>" + KindName(e.kind) +
         "</td><td class='l mono'>" + HtmlEscape(DotText(r.regions, e.op.origin, e.op.seq)) +
         " · " + HtmlEscape(HlcText(e.op.hlc)) + "</td><td class='l'>" +
         std::string(OpKindName(e.op_kind)) + "</td><td>" + std::to_string(e.op_amount) +
         "</td><td>" + std::to_string(e.amount) + "</td><td>" +
         (fee ? std::to_string(e.overdrawn) : "") + "</td><td>" + std::to_string(e.balance_after) +
         "</td></tr>";
  }
  h += "</table></div>";
  if (a.events.size() > kMaxForkRows)
    h += "<p class='muted'>" + std::to_string(a.events.size()) +
         " events in all; the rest are in report.json.</p>";
  return h;
}

}  // namespace

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

AccountOutcome AccountFromView(const AccountView& v, const std::vector<std::string>& names) {
  AccountOutcome a;
  a.config = v.config;
  a.balance = v.balance;
  a.final_balance = v.final_balance;
  a.raw_balance = v.raw_balance;
  a.tentative = v.tentative;
  a.fees = v.fees;
  a.voids = v.voids;
  a.episodes = v.episodes;
  a.digest = v.digest;
  a.frontier = v.frontier;
  a.stale = v.stale;
  for (RegionId r = 0; r < v.regions.size(); ++r) {
    const RegionView& rv = v.regions[r];
    a.regions.push_back(RegionOutcome{RegionName(names, r), rv.rights, rv.overdraft_line, rv.fees,
                                      rv.voids, rv.tentative_credit});
  }
  return a;
}

std::string ExplainFork(const ForkReport& f, const std::vector<std::string>& names) {
  const DerivedEvent& e = f.event;
  const std::string dot = DotText(names, e.op.origin, e.op.seq);
  // The op itself when the fork holds it (a final fork read back from a checkpoint has only the
  // event): a transfer is named with both accounts, and the op that kept a key with its dot.
  const Op* op = nullptr;
  const Op* other = nullptr;
  for (const Op& o : f.ops) (o.canonical() == e.op ? op : other) = &o;
  const bool transfer = op && op->kind == OpKind::kTransfer;
  const bool budget = op && op->kind == OpKind::kBudgetDebit;
  std::string what =
      transfer
          ? "transfer " + dot + " of " + std::to_string(e.op_amount) + " from " + op->account +
                " to " + op->to_account
          : std::string(e.kind == DerivedKind::kOverdraftFee ? "debit" : OpKindName(e.op_kind)) +
                " " + dot + " of " + std::to_string(e.op_amount);
  if (budget) {
    // Named as the client asked for it, with the budgets that paid it.
    what = "debit " + dot + " of " + std::to_string(e.op_amount) + " from " + op->account +
           ", paid by";
    for (std::size_t i = 0; i < op->payers.size(); ++i)
      what += (i == 0 ? " " : i + 1 == op->payers.size() ? " and " : ", ") + op->payers[i];
    what += ",";
  }
  if (e.kind == DerivedKind::kOverdraftFee) {
    return what + " opened an overdraft episode, " + std::to_string(e.overdrawn) +
           " below zero: fee " + std::to_string(e.amount) + ", balance after " +
           std::to_string(e.balance_after);
  }
  const std::string here =
      " (" + std::string(e.amount >= 0 ? "+" : "") + std::to_string(e.amount) + " here)";
  if (op && IsHoldResolution(op->kind)) {
    // Resolutions of one hold share its key: the canonically first one won, or the hold itself
    // was voided as a duplicate and took its resolutions with it.
    // Named as the API names holds ("eu.42").
    const std::string hold =
        RegionName(names, op->hold.origin) + "." + std::to_string(op->hold.seq);
    const std::string lost =
        std::string(OpKindName(op->kind)) + " " + dot + " of hold " + hold +
        (op->kind == OpKind::kCapture ? " for " + std::to_string(op->amount) : std::string());
    if (other && f.ops.size() == 2 && IsHoldResolution(other->kind))
      return lost + " lost to " + std::string(OpKindName(other->kind)) + " " +
             DotText(names, other->dot.origin, other->dot.seq) +
             (other->kind == OpKind::kCapture ? " for " + std::to_string(other->amount)
                                              : std::string()) +
             ", earlier in canonical order: a hold is resolved once, so it was voided" + here;
    return lost + " was voided with its hold, which repeated another hold's idempotency key" + here;
  }
  if (op && op->kind == OpKind::kHold) {
    std::string by = "another hold";
    if (other && f.ops.size() == 2)
      by = "hold " + DotText(names, other->dot.origin, other->dot.seq);
    return "hold " + dot + " of " + std::to_string(e.op_amount) +
           " repeats the idempotency key of " + by +
           ", earlier in canonical order: voided; it reserves nothing and any capture or release "
           "of it is voided too";
  }
  std::string earlier = "earlier in canonical order";
  if (other && e.kind == DerivedKind::kVoid && f.ops.size() == 2)
    earlier =
        "by " + DotText(names, other->dot.origin, other->dot.seq) + " earlier in canonical order";
  return what + " repeats an idempotency key used " + earlier + ": voided" +
         (transfer ? " in both accounts"
          : budget ? " in every account it debited"
                   : "") +
         here;
}

std::string RenderJson(const RunReport& r) {
  Json j;
  j["title"] = r.title;
  j["producer"] = r.producer;
  j["view_region"] = r.view_region;
  j["ok"] = r.ok;
  j["result"] = r.result;
  Json config = Json::object();
  for (const auto& [k, v] : r.config) config[k] = v;
  j["config"] = config;
  Json summary = Json::object();
  for (const auto& [k, v] : r.summary) summary[k] = v;
  j["summary"] = summary;
  j["regions"] = r.regions;
  j["end_ms"] = r.end_ms;
  j["heal_ms"] = r.heal_ms;
  j["converged_ms"] = r.converged_ms;
  Json timeline = Json::array();
  for (const TimelineSpan& s : r.timeline)
    timeline.push_back({{"start_ms", s.start_ms},
                        {"end_ms", s.end_ms},
                        {"lane", s.lane},
                        {"kind", s.kind},
                        {"label", s.label}});
  j["timeline"] = timeline;
  Json clocks = Json::array();
  for (const ClockSample& c : r.clocks)
    clocks.push_back({{"t_ms", c.t_ms}, {"offset_ms", c.offset_ms}});
  j["clock_offsets"] = clocks;
  Json seen = Json::array();
  for (const OffsetSeen& o : r.offsets_seen)
    seen.push_back({{"observer", o.observer},
                    {"peer", o.peer},
                    {"max_ahead_ms", o.max_ahead_ms},
                    {"max_behind_ms", o.max_behind_ms}});
  j["clock_offsets_seen"] = seen;
  j["chart_account"] = r.chart_account;
  Json accounts = Json::array();
  for (const AccountOutcome& a : r.accounts) {
    Json ja;
    ja["config"] = ConfigJson(a.config);
    ja["balance"] = a.balance;
    ja["final_balance"] = a.final_balance;
    ja["raw_balance"] = a.raw_balance;
    ja["tentative"] = a.tentative;
    ja["fees"] = a.fees;
    ja["voids"] = a.voids;
    ja["episodes"] = a.episodes;
    ja["ops"] = a.ops ? Json(*a.ops) : Json(nullptr);
    ja["digest"] = Hex(a.digest);
    ja["frontier"] = a.frontier.ToString();
    ja["stale"] = a.stale;
    Json regions = Json::array();
    for (const RegionOutcome& ro : a.regions)
      regions.push_back({{"region", ro.region},
                         {"rights", ro.rights},
                         {"overdraft_line", ro.overdraft_line},
                         {"fees", ro.fees},
                         {"voids", ro.voids},
                         {"tentative_credit", ro.tentative_credit}});
    ja["regions"] = regions;
    Json forks = Json::array();
    for (const ForkReport& f : a.forks) {
      Json jf;
      jf["resolution"] = EventJson(f.event, r.regions);
      jf["final"] = f.final;
      jf["explanation"] = ExplainFork(f, r.regions);
      Json ops = Json::array();
      for (const Op& op : f.ops) ops.push_back(OpJson(op, r.regions));
      jf["ops"] = ops;
      forks.push_back(jf);
    }
    ja["forks"] = forks;
    Json events = Json::array();
    for (const DerivedEvent& e : a.events) events.push_back(EventJson(e, r.regions));
    ja["events"] = events;
    if (a.rights) {
      Json rights = Json::array();
      for (const RightsMove& m : *a.rights)
        rights.push_back({{"t_ms", m.t_ms},
                          {"dot", m.dot},
                          {"hlc", m.hlc.ToString()},
                          {"from", m.from},
                          {"to", m.to},
                          {"amount", m.amount}});
      ja["rights_movements"] = rights;
      ja["rights_movements_total"] = a.rights_total;
    } else {
      ja["rights_movements"] = nullptr;
      ja["rights_movements_total"] = nullptr;
    }
    if (!a.balance_by_region.empty()) ja["balance_by_region"] = SeriesJson(a.balance_by_region);
    if (!a.rights_by_region.empty()) ja["rights_by_region"] = SeriesJson(a.rights_by_region);
    accounts.push_back(ja);
  }
  j["accounts"] = accounts;
  return j.dump(1) + "\n";
}

std::string RenderHtml(const RunReport& r) {
  std::string h;
  h.reserve(1 << 20);
  h += "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>" + HtmlEscape(r.title) +
       "</title><style>" + kCss + "</style></head><body>";
  h += "<h1>" + HtmlEscape(r.title) + "</h1>";
  if (!r.result.empty())  // a run's verdict; a report of one account's state has none
    h += "<div class='sub'><span class='badge " + std::string(r.ok ? "ok" : "bad") + "'>" +
         (r.ok ? "all invariants held" : "FAILED") + "</span>" + HtmlEscape(r.result) + "</div>";
  h += "<div class='sub'>" + HtmlEscape(r.producer) + "</div>";

  if (!r.config.empty() || !r.summary.empty()) {
    h += "<div class='cols'><div><h2>Configuration</h2>" + Table(r.config) +
         "</div><div><h2>Summary</h2>" + Table(r.summary) + "</div></div>";
  }

  if (!r.timeline.empty() || r.heal_ms) {
    h += "<h2>Faults over virtual time</h2><p class='muted'>Partitions on the network lanes; per "
         "region: "
         "<span style='color:#c62828'>down (crashed)</span>, "
         "<span style='color:#6a1b9a'>amnesia (isolated, clock stepped back, crashed, "
         "restarted)</span>, "
         "<span style='color:#ef6c00'>◆ clock step</span>. The green area is the liveness phase; "
         "the "
         "dashed line marks convergence. Hover for details.</p>";
    h += TimelineSvg(r);
  }

  if (!r.clocks.empty()) {
    std::vector<Series> skew(r.regions.size());
    for (std::size_t i = 0; i < r.regions.size(); ++i) skew[i].name = r.regions[i];
    for (const ClockSample& c : r.clocks)
      for (std::size_t i = 0; i < c.offset_ms.size() && i < skew.size(); ++i)
        skew[i].points.push_back(Point{c.t_ms, c.offset_ms[i], false});
    h += "<h2>Clock skew</h2><p class='muted'>Each region's wall clock minus true time: initial "
         "offset, "
         "drift and steps. The replicas only ever see these readings.</p>";
    h += StepChart(r, skew, true);
  }
  if (!r.offsets_seen.empty()) {
    h += "<h3>Clock offsets seen in heartbeats</h3><table class='grid'><tr><th "
         "class='l'>observer</th>"
         "<th class='l'>peer</th><th>max ahead</th><th>max behind</th></tr>";
    for (const OffsetSeen& o : r.offsets_seen)
      h += "<tr><td class='l'>" + HtmlEscape(o.observer) + "</td><td class='l'>" +
           HtmlEscape(o.peer) + "</td><td>" + Duration(o.max_ahead_ms) + "</td><td>" +
           Duration(o.max_behind_ms) + "</td></tr>";
    h += "</table>";
  }

  const AccountOutcome* chart = nullptr;
  for (const AccountOutcome& a : r.accounts)
    if (a.config.id == r.chart_account) chart = &a;
  if (chart) {
    h += "<h2>Account " + HtmlEscape(chart->config.id) + "</h2>";
    h += "<p>Balance <b>" + std::to_string(chart->balance) + " " +
         HtmlEscape(chart->config.currency) + "</b> (" +
         (chart->tentative ? "tentative" : "final") + "; raw " +
         std::to_string(chart->raw_balance) + ", fees " + std::to_string(chart->fees) + ", voids " +
         std::to_string(chart->voids) + "), overdraft limit " +
         std::to_string(chart->config.overdraft_limit) + ", fee policy " +
         std::to_string(chart->config.fee.flat) + " + " + std::to_string(chart->config.fee.bps) +
         " bps, " + std::to_string(chart->episodes) + " overdraft episode(s)" +
         (chart->ops ? ", " + std::to_string(*chart->ops) + " ops" : std::string()) + ".</p>";
    h += "<p class='muted'>" +
         (r.view_region.empty()
              ? std::string()
              : "As region <b>" + HtmlEscape(r.view_region) + "</b> sees it" +
                    std::string(chart->stale ? " (rejoining: it may lack ops)" : "") + ". ") +
         "Stable frontier <code>" + HtmlEscape(HlcText(chart->frontier)) +
         "</code>; state digest <code>" + Hex(chart->digest) + "</code>.</p>";
    if (!chart->regions.empty()) {
      h += "<table class='grid'><tr><th class='l'>region</th><th>rights</th><th>overdraft "
           "line</th><th>fees</th>"
           "<th>voids</th></tr>";
      for (const RegionOutcome& ro : chart->regions)
        h += "<tr><td class='l'>" + HtmlEscape(ro.region) + "</td><td>" +
             std::to_string(ro.rights) + "</td><td>" + std::to_string(ro.overdraft_line) +
             "</td><td>" + std::to_string(ro.fees) + "</td><td>" + std::to_string(ro.voids) +
             "</td></tr>";
      h += "</table>";
      if (chart->rights_by_region.empty()) h += RightsBars(*chart);
    }
    if (!chart->balance_by_region.empty()) {
      h += "<h3>Balance as each region sees it</h3><p class='muted'>Shaded: partitions. While "
           "regions cannot "
           "hear each other their views diverge; after the heal they converge to one value. Gaps: "
           "the region "
           "was down.</p>";
      h += StepChart(r, chart->balance_by_region, false);
      if (r.heal_ms) {
        std::uint64_t from = r.heal_ms > 5000 ? r.heal_ms - 5000 : 0;
        h += "<h3>Around the heal</h3><p class='muted'>The last seconds of traffic and the "
             "liveness phase, "
             "enlarged.</p>";
        h += StepChart(r, chart->balance_by_region, false, from, r.end_ms);
      }
    }
    if (!chart->rights_by_region.empty()) {
      h += "<h3>Spending rights of each region (as it sees its own)</h3><p class='muted'>Rights "
           "move "
           "by transfers only the donor originates; the rebalancer moves them toward the regions "
           "that "
           "spend. Below zero: the region is using its overdraft line.</p>";
      h += StepChart(r, chart->rights_by_region, false);
    }
    if (!chart->forks.empty()) {
      h += "<h3>Forks of " + HtmlEscape(chart->config.id) + "</h3>";
      h += ForksTable(r, chart);
    }
    if (!chart->events.empty()) h += EventsTable(r, *chart);
    if (chart->rights && !chart->rights->empty()) {
      h +=
          "<h3>Rights movements</h3><div class='scroll'><table class='grid'><tr><th>durable at</th>"
          "<th class='l'>op</th><th class='l'>hlc</th><th class='l'>from</th><th class='l'>to</th>"
          "<th>amount</th></tr>";
      for (std::size_t i = 0; i < chart->rights->size() && i < kMaxRightsRows; ++i) {
        const RightsMove& m = (*chart->rights)[i];
        h += "<tr><td>" + (m.t_ms ? Seconds(m.t_ms) : std::string("–")) +
             "</td><td class='l mono'>" + HtmlEscape(m.dot) + "</td><td class='l mono'>" +
             HtmlEscape(HlcText(m.hlc)) + "</td><td class='l'>" + HtmlEscape(m.from) +
             "</td><td class='l'>" + HtmlEscape(m.to) + "</td><td>" + std::to_string(m.amount) +
             "</td></tr>";
      }
      h += "</table></div>";
      if (chart->rights_total > std::min(chart->rights->size(), kMaxRightsRows))
        h += "<p class='muted'>" + std::to_string(chart->rights_total) +
             " movements in all; the rest are in report.json.</p>";
    }
  }

  std::size_t fork_total = 0;
  for (const AccountOutcome& a : r.accounts) fork_total += a.forks.size();
  if (fork_total && (r.accounts.size() > 1 || !chart)) {
    h += "<h2>Forks and their resolution</h2><p class='muted'>Every fee and void derived by "
         "replaying each "
         "account's ops in canonical order (hlc, origin, seq): the same on every replica. A fee "
         "charges the debit "
         "that took the balance below zero (policy: flat + basis points of the overdrawn amount); "
         "a void cancels "
         "a later use of an idempotency key (a refund of a debit, a clawback of a credit).</p>";
    h += ForksTable(r, nullptr);
  }

  if (r.accounts.size() > 1) {
    h += "<h2>Accounts</h2><div class='scroll'><table class='grid'><tr><th "
         "class='l'>account</th><th>balance</th>"
         "<th>raw</th><th>fees</th><th>voids</th><th>episodes</th><th>ops</th><th>limit</th><th "
         "class='l'>state</th>"
         "<th class='l'>digest</th></tr>";
    for (std::size_t i = 0; i < r.accounts.size() && i < kMaxAccountRows; ++i) {
      const AccountOutcome& a = r.accounts[i];
      h += "<tr><td class='l'>" + HtmlEscape(a.config.id) + "</td><td>" +
           std::to_string(a.balance) + "</td><td>" + std::to_string(a.raw_balance) + "</td><td>" +
           std::to_string(a.fees) + "</td><td>" + std::to_string(a.voids) + "</td><td>" +
           std::to_string(a.episodes) + "</td><td>" +
           (a.ops ? std::to_string(*a.ops) : std::string("–")) + "</td><td>" +
           std::to_string(a.config.overdraft_limit) + "</td><td class='l'>" +
           (a.tentative ? "tentative" : "final") + "</td><td class='l mono'>" + Hex(a.digest) +
           "</td></tr>";
    }
    h += "</table></div>";
    if (r.accounts.size() > kMaxAccountRows)
      h += "<p class='muted'>" + std::to_string(r.accounts.size()) +
           " accounts in all; the rest are in report.json.</p>";
  }
  h += "</body></html>\n";
  return h;
}

Status WriteReport(const RunReport& report, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{"report.json", RenderJson(report)},
        std::pair<std::string, std::string>{"report.html", RenderHtml(report)}}) {
    std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return Status::IOError("cannot write " + path);
  }
  return Status::OK();
}

}  // namespace tally::report
