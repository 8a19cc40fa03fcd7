#include "report/report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "report/charts.h"
#include "report/format.h"

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
  if (!op.memo.empty()) j["memo"] = op.memo;
  for (const auto& [key, value] : op.metadata) j["metadata"][key] = value;  // the client's order
  return j;
}

// An op's memo as the HTML names the op, ` “…”` (text: escape it), or nothing.
std::string MemoText(const Op& op) {
  return op.memo.empty() ? std::string() : " “" + op.memo + "”";
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

// --- HTML ---------------------------------------------------------------------------------------

std::string Table(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string s = "<table class='kv'>";
  for (const auto& [k, v] : rows)
    s += "<tr><th>" + HtmlEscape(k) + "</th><td>" + HtmlEscape(v) + "</td></tr>";
  return s + "</table>";
}

// Colours that carry meaning, the same in text, tables and charts, and explained by the legend:
// final #2e7d32 (green), tentative #b26a00 (amber, and italic), negative #c62828 (red, whatever
// the finality: a debt must not read as settled), fee #8e24aa, void #1565c0. Region lines on the
// charts use neither red nor green (see Color).
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
.span-partition{fill:#e08e0b}.span-crash{fill:#546e7a}.span-amnesia{fill:#6a1b9a}
.span-clock-step{fill:#ef6c00}.span-final{fill:#8d6e63}
.scroll{max-height:420px;overflow:auto;display:inline-block;border:1px solid #e2e2e2}
.muted{color:#888}.fee{color:#8e24aa}.void{color:#1565c0}.keep{color:#2e7d32}
.amt{white-space:nowrap}.final{color:#2e7d32}.tent{color:#b26a00}.neg{color:#c62828;font-weight:600}
.tm{font-style:italic}
rect.final{fill:#2e7d32}rect.tent{fill:#b26a00}rect.neg{fill:#c62828}
.negzone{fill:#c62828;fill-opacity:0.05}.halo{fill:none;stroke:#c62828;stroke-opacity:0.35;stroke-width:6;stroke-linecap:round}
.legend ul{margin:4px 0;padding-left:18px}.legend li{margin:2px 0}
.sw{display:inline-block;width:22px;height:0;vertical-align:middle;margin-right:4px;border-top:2px solid #1f77b4}
.sw.dash{border-top-style:dashed}.sw.halo{border-top:6px solid rgba(198,40,40,0.35)}
)";

// The two sides of a void: the op voided (the fork's event names it) and the op that kept the key
// (the canonically earlier use of it). Either is null when the fork does not hold it: a final fork
// read back from a checkpoint keeps only its event, and a resolution voided with its hold has no
// earlier use of its key.
struct VoidSides {
  const Op* voided = nullptr;
  const Op* survivor = nullptr;
};
VoidSides SidesOf(const ForkReport& f) {
  VoidSides s;
  for (const Op& o : f.ops) {
    if (o.canonical() == f.event.op) {
      s.voided = &o;
    } else if (o.canonical() < f.event.op &&
               (!s.survivor || o.canonical() < s.survivor->canonical())) {
      s.survivor = &o;
    }
  }
  return s;
}

Json DotJson(const std::vector<std::string>& names, RegionId origin, Seq seq, Hlc hlc) {
  return {{"region", RegionName(names, origin)}, {"seq", seq}, {"hlc", hlc.ToString()}};
}

// "us:7 debit 500 EUR [k1]": an op as the fork table names it (escaped).
std::string OpHtml(const RunReport& r, const Op& op, std::string_view currency) {
  std::string s = HtmlEscape(DotText(r.regions, op.dot.origin, op.dot.seq)) + " " +
                  std::string(OpKindName(op.kind)) + " " + MoneyHtml(op.amount, currency);
  if (op.kind == OpKind::kTransfer) s += " to " + HtmlEscape(op.to_account);
  if (!op.key.empty()) s += " [" + HtmlEscape(op.key) + "]";
  s += HtmlEscape(MemoText(op));
  return s;
}

// Which op of a fork survived and which was voided, in words. An overdraft episode voids nothing:
// its spends (debits, captures, transfers out) all stand and the one that crossed zero carries the
// fee.
std::string OutcomeHtml(const RunReport& r, const ForkReport& f, std::string_view currency) {
  const DerivedEvent& e = f.event;
  const std::string dot = HtmlEscape(DotText(r.regions, e.op.origin, e.op.seq));
  if (e.kind == DerivedKind::kOverdraftFee) {
    const std::size_t n = f.ops.size();
    return "<span class='keep'>✓ kept</span> " +
           (n ? std::string(n == 1 ? "the episode's one spend"
                                   : "all " + std::to_string(n) + " spends of the episode")
              : std::string("every spend")) +
           "; none voided. <span class='fee'>fee " + MoneyHtml(e.amount, currency) +
           "</span> charged to " + dot + ", which crossed zero";
  }
  const VoidSides sides = SidesOf(f);
  std::string s = "<span class='keep'>✓ kept</span> ";
  s += sides.survivor ? OpHtml(r, *sides.survivor, currency) + " (earlier in canonical order)"
                      : std::string("the canonically earlier use of the key (not held here)");
  s += "; <span class='void'>✗ voided</span> ";
  s += sides.voided ? OpHtml(r, *sides.voided, currency)
                    : dot + " " + std::string(OpKindName(e.op_kind)) + " " +
                          MoneyHtml(e.op_amount, currency);
  return s;
}

// Forks of one account (or of every account when `only` is null), newest last.
std::string ForksTable(const RunReport& r, const AccountOutcome* only) {
  std::string h =
      "<div class='scroll'><table class='grid'><tr><th class='l'>account</th><th "
      "class='l'>resolution</th>"
      "<th class='l'>op (dot · hlc)</th><th>op amount</th><th>fee / void</th><th>overdrawn</th>"
      "<th>balance after</th><th class='l'>status</th><th class='l'>outcome</th>"
      "<th class='l'>ops involved</th></tr>";
  std::size_t rows = 0, total = 0;
  for (const AccountOutcome& a : r.accounts) {
    if (only && &a != only) continue;
    const std::string& cur = a.config.currency;
    for (const ForkReport& f : a.forks) {
      ++total;
      if (rows >= kMaxForkRows) continue;
      ++rows;
      const DerivedEvent& e = f.event;
      const bool fee = e.kind == DerivedKind::kOverdraftFee;
      std::string ops;
      for (std::size_t k = 0; k < f.ops.size() && k < 6; ++k) {
        if (k) ops += "; ";
        ops += OpHtml(r, f.ops[k], cur);
      }
      if (f.ops.size() > 6) ops += "; … " + std::to_string(f.ops.size() - 6) + " more";
      h += "<tr><td class='l'>" + HtmlEscape(a.config.id) + "</td><td class='l " +
           (fee ? "fee" : "void") + "'>" +
           (fee ? "overdraft fee" : (e.amount >= 0 ? "void (refund)" : "void (clawback)")) +
           "</td><td class='l mono'>" + HtmlEscape(DotText(r.regions, e.op.origin, e.op.seq)) +
           " · " + HlcHtml(e.op.hlc) + "</td><td>" + MoneyHtml(e.op_amount, cur) + "</td><td>" +
           MoneyHtml(e.amount, cur) + "</td><td>" + (fee ? MoneyHtml(e.overdrawn, cur) : "") +
           "</td><td>" + LevelHtml(e.balance_after, cur, !f.final) + "</td><td class='l " +
           (f.final ? "final" : "tent tm") + "'>" + (f.final ? "final" : "tentative") +
           "</td><td class='l'>" + OutcomeHtml(r, f, cur) + "</td><td class='l mono'>" + ops +
           "</td></tr>";
    }
  }
  h += "</table></div>";
  if (total > rows)
    h += "<p class='muted'>" + std::to_string(total) +
         " forks in all; the rest are in report.json.</p>";
  return h;
}

// Every derived fee and void of one account, in canonical order.
std::string EventsTable(const RunReport& r, const AccountOutcome& a) {
  const std::string& cur = a.config.currency;
  std::string h = "<h3>Derived events (" + std::to_string(a.events.size()) +
                  ")</h3><div class='scroll'><table class='grid'><tr><th class='l'>kind</th>"
                  "<th class='l'>op (dot · hlc)</th><th class='l'>op kind</th><th>op amount</th>"
                  "<th>amount</th><th>overdrawn</th><th>balance after</th></tr>";
  for (std::size_t i = 0; i < a.events.size() && i < kMaxForkRows; ++i) {
    const DerivedEvent& e = a.events[i];
    const bool fee = e.kind == DerivedKind::kOverdraftFee;
    // An event does not say whether it is final; only a negative balance gets a colour.
    const std::string after = e.balance_after < 0 ? LevelHtml(e.balance_after, cur, false)
                                                  : MoneyHtml(e.balance_after, cur);
    h += "<tr><td class='l " + std::string(fee ? "fee" : "void") + "'>" + KindName(e.kind) +
         "</td><td class='l mono'>" + HtmlEscape(DotText(r.regions, e.op.origin, e.op.seq)) +
         " · " + HlcHtml(e.op.hlc) + "</td><td class='l'>" + std::string(OpKindName(e.op_kind)) +
         "</td><td>" + MoneyHtml(e.op_amount, cur) + "</td><td>" + MoneyHtml(e.amount, cur) +
         "</td><td>" + (fee ? MoneyHtml(e.overdrawn, cur) : "") + "</td><td>" + after +
         "</td></tr>";
  }
  h += "</table></div>";
  if (a.events.size() > kMaxForkRows)
    h += "<p class='muted'>" + std::to_string(a.events.size()) +
         " events in all; the rest are in report.json.</p>";
  return h;
}

// What the colours and marks on the page mean. `run`: the report is of a simulator run, whose
// HLC dates come from simulated clocks and whose charts run over virtual time.
std::string LegendHtml(bool run) {
  std::string h =
      "<h2>Legend</h2><div class='legend' id='legend'><ul>"
      "<li><span class='amt final'>120 EUR</span> <b class='final'>final</b>: a balance or rights "
      "over ops below the stable frontier only; no op that arrives later can change it.</li>"
      "<li><span class='amt tent tm'>120 EUR</span> <b class='tent tm'>tentative</b> (amber, "
      "italic; a dashed line on charts): counts ops above the frontier; it may still change as ops "
      "from other regions arrive.</li>"
      "<li><span class='amt neg'>-16 EUR</span> <b class='neg'>negative</b> (red, final or not; "
      "italic if tentative): a balance or rights below zero, in the overdraft line. On charts a "
      "red halo <span class='sw halo'></span> marks a line below zero, over a faint red band.</li>"
      "<li><span class='fee'>overdraft fee</span>: charged once per overdraft episode, to the "
      "debit that took the balance below zero; no op is voided for it.</li>"
      "<li><span class='void'>void</span>: a later use (in canonical order: hlc, origin, seq) of "
      "an idempotency key already used is cancelled: a refund (+) of a debit, a clawback (−) of a "
      "credit. In the outcome column <span class='keep'>✓ kept</span> names the op that survived "
      "and <span class='void'>✗ voided</span> the op cancelled.</li>"
      "<li>Charts: <span class='sw'></span>solid: final, <span class='sw dash'></span>dashed: "
      "tentative; one colour per region.</li>"
      "<li>Amounts are integers in minor units of the account's currency (cents for EUR): "
      "<code>1250 EUR</code> is 1250 minor units, 12.50 euros. tally stores no currency "
      "exponent, so no decimal point is placed.</li>"
      "<li>Times of ops and the frontier are the wall-clock part of their HLC as a UTC date (ISO "
      "8601); hover one for the raw HLC (milliseconds.logical counter).";
  if (run)
    h += " In a simulator run the region clocks are simulated (each a skewed reading of virtual "
         "time from a fixed epoch), so these dates are simulated too; chart axes count seconds "
         "of virtual time since the run began.";
  return h + "</li></ul></div>";
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
    ja["frontier_utc"] = UtcTime(a.frontier.wall_ms());
    ja["fee_policy"] = FeePolicyText(a.config.fee, a.config.currency);
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
      if (f.event.kind == DerivedKind::kVoid) {
        // Which use of the key was voided and which kept it (null: the fork lacks that op).
        const VoidSides sides = SidesOf(f);
        jf["voided"] = DotJson(r.regions, f.event.op.origin, f.event.op.seq, f.event.op.hlc);
        jf["survivor"] = sides.survivor ? DotJson(r.regions, sides.survivor->dot.origin,
                                                  sides.survivor->dot.seq, sides.survivor->hlc)
                                        : Json(nullptr);
      }
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

  if (!r.accounts.empty()) h += LegendHtml(r.end_ms != 0);

  if (!r.timeline.empty() || r.heal_ms) {
    h += "<h2>Faults over virtual time</h2><p class='muted'>Partitions on the network lanes; per "
         "region: "
         "<span style='color:#546e7a'>down (crashed)</span>, "
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
    const std::string& cur = chart->config.currency;
    h += "<p>Balance <b>" + LevelHtml(chart->balance, cur, chart->tentative) + "</b> (" +
         (chart->tentative ? "<span class='tent tm'>tentative</span>; final part " +
                                 LevelHtml(chart->final_balance, cur, false)
                           : std::string("<span class='final'>final</span>")) +
         "; raw " + MoneyHtml(chart->raw_balance, cur) + ", fees " + MoneyHtml(chart->fees, cur) +
         ", voids " + MoneyHtml(chart->voids, cur) + "), overdraft limit " +
         MoneyHtml(chart->config.overdraft_limit, cur) + ", " + std::to_string(chart->episodes) +
         " overdraft episode(s)" +
         (chart->ops ? ", " + std::to_string(*chart->ops) + " ops" : std::string()) + ".</p>";
    h += "<p>Fee policy: <b class='feepolicy'>" +
         HtmlEscape(FeePolicyText(chart->config.fee, cur)) + "</b>.</p>";
    h += "<p class='muted'>" +
         (r.view_region.empty()
              ? std::string()
              : "As region <b>" + HtmlEscape(r.view_region) + "</b> sees it" +
                    std::string(chart->stale ? " (rejoining: it may lack ops)" : "") + ". ") +
         "Stable frontier " + HlcHtml(chart->frontier) + "; state digest <code>" +
         Hex(chart->digest) + "</code>.</p>";
    if (!chart->regions.empty()) {
      h += "<table class='grid'><tr><th class='l'>region</th><th>rights</th><th>overdraft "
           "line</th><th>fees</th><th>voids</th><th>tentative credit</th></tr>";
      for (const RegionOutcome& ro : chart->regions)
        h += "<tr><td class='l'>" + HtmlEscape(ro.region) + "</td><td>" +
             LevelHtml(ro.rights, cur, chart->tentative) + "</td><td>" +
             MoneyHtml(ro.overdraft_line, cur) + "</td><td>" + MoneyHtml(ro.fees, cur) +
             "</td><td>" + MoneyHtml(ro.voids, cur) + "</td><td>" +
             MoneyHtml(ro.tentative_credit, cur) + "</td></tr>";
      h += "</table>";
      if (chart->rights_by_region.empty()) h += RightsBars(*chart);
    }
    if (!chart->balance_by_region.empty()) {
      h += "<h3>Balance as each region sees it</h3><p class='muted'>Shaded: partitions. While "
           "regions cannot "
           "hear each other their views diverge; after the heal they converge to one value. Gaps: "
           "the region "
           "was down.</p>";
      h += StepChart(r, chart->balance_by_region, false, cur);
      if (r.heal_ms) {
        std::uint64_t from = r.heal_ms > 5000 ? r.heal_ms - 5000 : 0;
        h += "<h3>Around the heal</h3><p class='muted'>The last seconds of traffic and the "
             "liveness phase, "
             "enlarged.</p>";
        h += StepChart(r, chart->balance_by_region, false, cur, from, r.end_ms);
      }
    }
    if (!chart->rights_by_region.empty()) {
      h += "<h3>Spending rights of each region (as it sees its own)</h3><p class='muted'>Rights "
           "move "
           "by transfers only the donor originates; the rebalancer moves them toward the regions "
           "that "
           "spend. Below zero: the region is using its overdraft line.</p>";
      h += StepChart(r, chart->rights_by_region, false, cur);
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
             HlcHtml(m.hlc) + "</td><td class='l'>" + HtmlEscape(m.from) + "</td><td class='l'>" +
             HtmlEscape(m.to) + "</td><td>" + MoneyHtml(m.amount, cur) + "</td></tr>";
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
         "class='l'>account</th><th>balance</th><th>raw</th><th>fees</th><th>voids</th>"
         "<th>episodes</th><th>ops</th><th>limit</th><th class='l'>fee policy</th>"
         "<th class='l'>state</th><th class='l'>digest</th></tr>";
    for (std::size_t i = 0; i < r.accounts.size() && i < kMaxAccountRows; ++i) {
      const AccountOutcome& a = r.accounts[i];
      const std::string& cur = a.config.currency;
      h += "<tr><td class='l'>" + HtmlEscape(a.config.id) + "</td><td>" +
           LevelHtml(a.balance, cur, a.tentative) + "</td><td>" + MoneyHtml(a.raw_balance, cur) +
           "</td><td>" + MoneyHtml(a.fees, cur) + "</td><td>" + MoneyHtml(a.voids, cur) +
           "</td><td>" + std::to_string(a.episodes) + "</td><td>" +
           (a.ops ? std::to_string(*a.ops) : std::string("–")) + "</td><td>" +
           MoneyHtml(a.config.overdraft_limit, cur) + "</td><td class='l'>" +
           HtmlEscape(FeePolicyBrief(a.config.fee, cur)) + "</td><td class='l " +
           (a.tentative ? "tent tm'>tentative" : "final'>final") + "</td><td class='l mono'>" +
           Hex(a.digest) + "</td></tr>";
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
