#include "node/views.h"

#include <fmt/format.h>

#include <algorithm>

namespace tally::node {

namespace {

using nlohmann::json;

std::string RegionName(const RegionNames& regions, RegionId r) {
  return r < regions.size() ? regions[r] : "r" + std::to_string(r);
}

std::string_view DerivedKindName(DerivedKind k) {
  return k == DerivedKind::kOverdraftFee ? "overdraft_fee" : "void";
}

json CanonicalJson(const CanonicalKey& k, const RegionNames& regions) {
  return json{{"hlc", k.hlc.ToString()}, {"region", RegionName(regions, k.origin)}, {"seq", k.seq}};
}

std::string Money(const json& v) {
  return v.is_number() ? fmt::format("{}", v.get<std::int64_t>()) : std::string("–");
}

json WaitFor(const std::vector<RegionId>& wait_for, const RegionNames& regions) {
  json names = json::array();
  for (RegionId r : wait_for) names.push_back(RegionName(regions, r));
  return names;
}

}  // namespace

json AccountJson(const AccountView& v, const RegionNames& regions) {
  json per_region = json::object();
  for (RegionId r = 0; r < v.regions.size(); ++r) {
    const RegionView& rv = v.regions[r];
    per_region[RegionName(regions, r)] = json{{"rights", rv.rights},
                                              {"tentative_credit", rv.tentative_credit},
                                              {"overdraft_line", rv.overdraft_line},
                                              {"fees", rv.fees},
                                              {"voids", rv.voids}};
  }
  return json{{"id", v.config.id},
              {"currency", v.config.currency},
              {"balance", v.balance},
              {"tentative", v.tentative},
              {"stale", v.stale},
              {"final_balance", v.final_balance},
              {"raw_balance", v.raw_balance},
              {"overdraft_limit", v.config.overdraft_limit},
              {"fee", {{"flat", v.config.fee.flat}, {"bps", v.config.fee.bps}}},
              {"fees", v.fees},
              {"voids", v.voids},
              {"episodes", v.episodes},
              {"regions", std::move(per_region)},
              {"frontier", v.frontier.ToString()},
              {"lines_usable", v.lines_usable},
              {"lines_wait_for", WaitFor(v.lines_wait_for, regions)},
              {"digest", fmt::format("{:016x}", v.digest)}};
}

void AppendOpResultJson(const CommandResult& r, const RegionNames& regions, std::string* out) {
  // The hot path (every credit and debit): formatted directly, no JSON tree. Region names are
  // [a-z0-9-], so they need no escaping.
  fmt::format_to(std::back_inserter(*out),
                 "{{\"op\":{{\"region\":\"{}\",\"seq\":{}}},\"balance\":{},\"overdraft\":{},"
                 "\"replicated\":{}",
                 RegionName(regions, r.op.origin), r.op.seq, r.balance,
                 r.overdraft ? "true" : "false", r.replicated ? "true" : "false");
  if (r.voided) {
    // A replay of our own op that a canonically earlier use of the key in another region voided.
    fmt::format_to(std::back_inserter(*out),
                   ",\"voided\":true,\"voided_by\":{{\"region\":\"{}\",\"seq\":{}}}",
                   RegionName(regions, r.voided_by.origin), r.voided_by.seq);
  }
  out->push_back('}');
}

json OpJson(const Op& op, const RegionNames& regions) {
  json j{{"region", RegionName(regions, op.dot.origin)},
         {"seq", op.dot.seq},
         {"hlc", op.hlc.ToString()},
         {"kind", OpKindName(op.kind)}};
  if (op.kind != OpKind::kOpen) j["amount"] = op.amount;
  if (op.kind == OpKind::kTransfer) j["to"] = RegionName(regions, op.to);
  if (!op.key.empty()) j["key"] = op.key;
  if (op.kind == OpKind::kDebit) j["overdraft"] = op.overdraft;
  return j;
}

json DerivedEventJson(const DerivedEvent& e, const RegionNames& regions) {
  json j{{"kind", DerivedKindName(e.kind)},
         {"op", CanonicalJson(e.op, regions)},
         {"op_kind", OpKindName(e.op_kind)},
         {"op_amount", e.op_amount},
         {"amount", e.amount},
         {"balance_after", e.balance_after}};
  if (e.kind == DerivedKind::kOverdraftFee) j["overdrawn"] = e.overdrawn;
  return j;
}

json ReportJson(std::string_view region, const AccountView& account,
                const std::vector<ForkReport>& forks, const std::vector<DerivedEvent>& events,
                const RegionNames& regions) {
  json fork_list = json::array();
  std::size_t final_forks = 0;
  for (const ForkReport& f : forks) {
    json ops = json::array();
    for (const Op& op : f.ops) ops.push_back(OpJson(op, regions));
    json explanation;
    if (f.event.kind == DerivedKind::kOverdraftFee) {
      explanation = fmt::format(
          "debit {}:{} of {} opened an overdraft episode, {} below zero: fee {}, balance after {}",
          RegionName(regions, f.event.op.origin), f.event.op.seq, f.event.op_amount,
          f.event.overdrawn, f.event.amount, f.event.balance_after);
    } else {
      explanation = fmt::format(
          "{} {}:{} of {} repeats an idempotency key used earlier in canonical order: voided "
          "({:+})",
          OpKindName(f.event.op_kind), RegionName(regions, f.event.op.origin), f.event.op.seq,
          f.event.op_amount, f.event.amount);
    }
    if (f.final) ++final_forks;
    fork_list.push_back(json{{"event", DerivedEventJson(f.event, regions)},
                             {"final", f.final},
                             {"explanation", std::move(explanation)},
                             {"ops", std::move(ops)}});
  }
  json event_list = json::array();
  for (const DerivedEvent& e : events) event_list.push_back(DerivedEventJson(e, regions));
  return json{{"region", region},
              {"account", AccountJson(account, regions)},
              {"forks", std::move(fork_list)},
              {"final_forks", final_forks},
              {"events", std::move(event_list)}};
}

std::string ReportHtml(const json& report) {
  const json& a = report["account"];
  const std::string id = HtmlEscape(a["id"].get<std::string>());
  const std::string region = HtmlEscape(report["region"].get<std::string>());
  std::string h;
  auto out = std::back_inserter(h);
  fmt::format_to(
      out,
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>tally report: {0}</title>"
      "<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}"
      "table{{border-collapse:collapse;margin:.5em 0 1.5em}}"
      "td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}"
      "th{{background:#f3f3f3}}td.l,th.l{{text-align:left}}"
      ".final{{color:#080}}.tentative{{color:#b60}}code{{font-size:12px}}</style></head><body>"
      "<h1>Account {0}</h1><p>Reconciliation report as seen by region <b>{1}</b>. "
      "Stable frontier <code>{2}</code>; digest <code>{3}</code>.</p>",
      id, region, HtmlEscape(a["frontier"].get<std::string>()),
      HtmlEscape(a["digest"].get<std::string>()));

  fmt::format_to(out,
                 "<h2>Balance</h2><table><tr><th class=l>currency</th><th>balance</th>"
                 "<th>final balance</th><th>raw balance</th><th>fees</th><th>voids</th>"
                 "<th>overdraft episodes</th><th>overdraft limit</th></tr>"
                 "<tr><td class=l>{}</td><td class={}>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                 "<td>{}</td><td>{}</td><td>{}</td></tr></table>",
                 HtmlEscape(a["currency"].get<std::string>()),
                 a["tentative"].get<bool>() ? "tentative" : "final", Money(a["balance"]),
                 Money(a["final_balance"]), Money(a["raw_balance"]), Money(a["fees"]),
                 Money(a["voids"]), Money(a["episodes"]), Money(a["overdraft_limit"]));

  // Rights per region as a bar chart: green right of the axis, red left of it (negative rights are
  // overdraft use), the overdraft line drawn as a grey bar to the left.
  const json& regions = a["regions"];
  std::int64_t scale = 1;
  for (auto it = regions.begin(); it != regions.end(); ++it) {
    scale = std::max<std::int64_t>(scale, std::abs((*it)["rights"].get<std::int64_t>()));
    scale = std::max<std::int64_t>(scale, (*it)["overdraft_line"].get<std::int64_t>());
  }
  const int row = 28, half = 220, label = 80;
  const int height = static_cast<int>(regions.size()) * row + 10;
  fmt::format_to(out,
                 "<h2>Rights by region</h2><svg width=\"{}\" height=\"{}\" role=\"img\" "
                 "aria-label=\"rights by region\"><line x1=\"{}\" y1=\"0\" x2=\"{}\" y2=\"{}\" "
                 "stroke=\"#888\"/>",
                 label + 2 * half + 120, height, label + half, label + half, height);
  int y = 5;
  for (auto it = regions.begin(); it != regions.end(); ++it, y += row) {
    const std::int64_t rights = (*it)["rights"].get<std::int64_t>();
    const std::int64_t line = (*it)["overdraft_line"].get<std::int64_t>();
    const int w =
        static_cast<int>(static_cast<double>(std::abs(rights)) / static_cast<double>(scale) * half);
    const int lw = static_cast<int>(static_cast<double>(line) / static_cast<double>(scale) * half);
    fmt::format_to(out, "<text x=\"0\" y=\"{}\">{}</text>", y + 16, HtmlEscape(it.key()));
    if (lw > 0)
      fmt::format_to(out, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"6\" fill=\"#ccc\"/>",
                     label + half - lw, y + 18, lw);
    fmt::format_to(out, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"{}\"/>",
                   rights >= 0 ? label + half : label + half - w, y + 3, std::max(w, 1),
                   rights >= 0 ? "#4a4" : "#c44");
    fmt::format_to(out, "<text x=\"{}\" y=\"{}\">{}</text>", label + 2 * half + 8, y + 16, rights);
  }
  h += "</svg>";

  h += "<table><tr><th class=l>region</th><th>rights</th><th>overdraft line</th><th>fees</th>"
       "<th>voids</th></tr>";
  for (auto it = regions.begin(); it != regions.end(); ++it) {
    fmt::format_to(out, "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                   HtmlEscape(it.key()), Money((*it)["rights"]), Money((*it)["overdraft_line"]),
                   Money((*it)["fees"]), Money((*it)["voids"]));
  }
  h += "</table>";

  const json& forks = report["forks"];
  fmt::format_to(out, "<h2>Forks ({}; {} final)</h2>", forks.size(),
                 report["final_forks"].get<std::size_t>());
  if (forks.empty()) h += "<p>No forks: every op was fine where it was decided, and together.</p>";
  for (const json& f : forks) {
    const bool final = f["final"].get<bool>();
    fmt::format_to(out, "<h3 class={}>{} ({})</h3><p>{}</p>", final ? "final" : "tentative",
                   HtmlEscape(f["event"]["kind"].get<std::string>()),
                   final ? "final" : "tentative, may still change",
                   HtmlEscape(f["explanation"].get<std::string>()));
    if (!f["ops"].empty()) {
      h += "<table><tr><th class=l>op</th><th class=l>hlc</th><th class=l>kind</th><th>amount</th>"
           "<th class=l>key</th><th class=l>overdraft</th></tr>";
      for (const json& op : f["ops"]) {
        fmt::format_to(
            out,
            "<tr><td class=l>{}:{}</td><td class=l><code>{}</code></td><td class=l>{}</td>"
            "<td>{}</td><td class=l>{}</td><td class=l>{}</td></tr>",
            HtmlEscape(op["region"].get<std::string>()), op["seq"].get<std::uint64_t>(),
            HtmlEscape(op["hlc"].get<std::string>()), HtmlEscape(op["kind"].get<std::string>()),
            op.contains("amount") ? Money(op["amount"]) : std::string("–"),
            op.contains("key") ? HtmlEscape(op["key"].get<std::string>()) : "",
            op.contains("overdraft") && op["overdraft"].get<bool>() ? "yes" : "");
      }
      h += "</table>";
    }
  }

  const json& events = report["events"];
  fmt::format_to(out, "<h2>Derived events ({})</h2>", events.size());
  if (!events.empty()) {
    h += "<table><tr><th class=l>kind</th><th class=l>op</th><th class=l>op kind</th>"
         "<th>op amount</th><th>amount</th><th>balance after</th></tr>";
    for (const json& e : events) {
      fmt::format_to(
          out,
          "<tr><td class=l>{}</td><td class=l>{}:{} <code>{}</code></td><td class=l>{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td></tr>",
          HtmlEscape(e["kind"].get<std::string>()),
          HtmlEscape(e["op"]["region"].get<std::string>()), e["op"]["seq"].get<std::uint64_t>(),
          HtmlEscape(e["op"]["hlc"].get<std::string>()),
          HtmlEscape(e["op_kind"].get<std::string>()), Money(e["op_amount"]), Money(e["amount"]),
          Money(e["balance_after"]));
    }
    h += "</table>";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace tally::node
