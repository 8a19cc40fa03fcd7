#include "node/views.h"

#include <fmt/format.h>

#include <utility>

namespace tally::node {

namespace {

using nlohmann::json;

std::string RegionName(const RegionNames& regions, RegionId r) {
  return r < regions.size() ? regions[r] : "r" + std::to_string(r);
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

report::RunReport AccountReport(std::string_view region, const AccountView& account,
                                std::vector<ForkReport> forks, std::vector<DerivedEvent> events,
                                const RegionNames& regions) {
  report::RunReport r;
  r.title = "tally report: account " + account.config.id + ", as region " + std::string(region) +
            " sees it";
  r.producer = "tallyd, region " + std::string(region);
  r.view_region = std::string(region);
  r.regions = regions;
  report::AccountOutcome a = report::AccountFromView(account, regions);
  a.forks = std::move(forks);
  a.events = std::move(events);
  r.chart_account = a.config.id;
  r.accounts.push_back(std::move(a));
  return r;
}

}  // namespace tally::node
