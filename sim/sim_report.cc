// What the run report shows: samples taken during the run and the outcome gathered at the end.

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

// Accounts whose views are sampled for the charts (the first opened are the hottest).
constexpr std::size_t kChartCandidates = 6;
// Points kept per charted series; the rest are thinned out (value changes are kept first).
constexpr std::size_t kMaxPointsPerSeries = 2500;
constexpr std::size_t kMaxRightsMovesPerAccount = 500;

std::string R(RegionId r) { return "r" + std::to_string(r); }

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::vector<report::Point> Thin(const std::vector<report::Point>& pts) {
  if (pts.size() <= kMaxPointsPerSeries) return pts;
  std::vector<report::Point> changes;
  for (std::size_t i = 0; i < pts.size(); ++i)
    if (i == 0 || i + 1 == pts.size() || pts[i].value != pts[i - 1].value ||
        pts[i].t_ms - changes.back().t_ms > 5000)
      changes.push_back(pts[i]);
  if (changes.size() <= kMaxPointsPerSeries) return changes;
  std::vector<report::Point> out;
  double stride = static_cast<double>(changes.size()) / kMaxPointsPerSeries;
  for (std::size_t k = 0; k < kMaxPointsPerSeries; ++k)
    out.push_back(changes[static_cast<std::size_t>(k * stride)]);
  out.push_back(changes.back());
  return out;
}

}  // namespace

void Simulation::Impl::SampleForReport() {
  const RegionId n = config.regions;
  report::ClockSample cs;
  cs.t_ms = now;
  for (const Host& h : hosts) cs.offset_ms.push_back(h.clock.OffsetAt(now));
  clocks.push_back(std::move(cs));

  std::vector<std::uint32_t> candidates;
  if (!config.report_account.empty()) {
    auto it = account_index.find(config.report_account);
    if (it != account_index.end()) candidates.push_back(it->second);
  }
  for (std::size_t i = 0; i < opened.size() && i < kChartCandidates; ++i)
    candidates.push_back(opened[i]);
  for (std::uint32_t idx : candidates) {
    SampleSeries& ss = samples[idx];
    if (ss.balance.empty()) {
      for (RegionId r = 0; r < n; ++r) {
        ss.balance.push_back(report::Series{R(r) + "'s view", {}});
        ss.rights.push_back(report::Series{R(r), {}});
      }
    }
    for (RegionId r = 0; r < n; ++r) {
      Host& h = hosts[r];
      if (!h.up) continue;
      AccountView v;
      if (!h.replica->GetAccount(accounts[idx].id, &v).ok()) continue;
      ss.balance[r].points.push_back(report::Point{now, v.balance, v.tentative});
      ss.rights[r].points.push_back(report::Point{now, v.regions[r].rights, v.tentative});
    }
  }
  for (Host& h : hosts) {
    if (!h.up) continue;
    for (const PeerView& pv : h.replica->Peers(Mono())) {
      h.max_ahead[pv.region] = std::max(h.max_ahead[pv.region], pv.clock_offset_ms);
      h.max_behind[pv.region] = std::min(h.max_behind[pv.region], pv.clock_offset_ms);
    }
  }
}

void Simulation::Impl::BuildReport() {
  const RegionId n = config.regions;
  report::RunReport& rep = report;
  rep = report::RunReport{};
  rep.title = "tally-sim run, seed " + std::to_string(config.seed);
  rep.producer = "tally-sim · " + ReproduceCommand(config);
  rep.ok = !failure.has_value();
  rep.result = failure
                   ? failure->invariant + " at " + Fmt("%.3f", failure->time_ms / 1000.0) +
                         " s: " + failure->message
                   : "I1–I7 held; converged " +
                         (summary.convergence_ms ? std::to_string(*summary.convergence_ms) + " ms"
                                                 : std::string("-")) +
                         " after the heal";
  const FaultParams& f = config.faults;
  const WorkloadParams& w = config.workload;
  auto& c = rep.config;
  c = {{"seed", std::to_string(config.seed)},
       {"regions", std::to_string(n)},
       {"accounts", std::to_string(config.accounts)},
       {"client ops", std::to_string(config.ops)},
       {"fault profile", config.profile},
       {"planted bug", config.plant_bug.empty() ? "none" : config.plant_bug},
       {"final topology", FinalTopologyName(config.final_topology)},
       {"links", config.links},
       {"durability", config.durability},
       {"link delay",
        std::to_string(f.link.delay_min_ms) + "–" + std::to_string(f.link.delay_max_ms) + " ms"},
       {"loss / duplicate / reorder", Fmt("%.4f", f.link.loss) + " / " +
                                          Fmt("%.4f", f.link.duplicate) + " / " +
                                          Fmt("%.4f", f.link.reorder)},
       {"link capacity", std::to_string(f.link.capacity) + " messages"},
       {"partitions", Fmt("%.2f", f.partitions_per_min) + "/min, " +
                          std::to_string(f.partition_min_ms) + "–" +
                          std::to_string(f.partition_max_ms) + " ms"},
       {"crashes", Fmt("%.2f", f.crashes_per_min) + "/min, down " +
                       std::to_string(f.downtime_min_ms) + "–" + std::to_string(f.downtime_max_ms) +
                       " ms; in a sync window " + Fmt("%.2f", f.sync_crashes_per_min) + "/min"},
       {"clock offsets / drift", "±" + std::to_string(f.offset_max_ms) + " ms / ±" +
                                     std::to_string(f.drift_max_ppm) + " ppm"},
       {"clock steps", Fmt("%.2f", f.steps_per_min) + "/min, " +
                           std::to_string(f.step_min_ms / 1000) + "–" +
                           std::to_string(f.step_max_ms / 1000) + " s"},
       {"amnesia", Fmt("%.2f", f.amnesia_per_min) + "/min"},
       {"lying hellos", Fmt("%.2f", f.lying_hellos_per_min) + "/min"},
       {"fsync", std::to_string(f.fsync_min_ms) + "–" + std::to_string(f.fsync_max_ms) +
                     " ms, slow " + Fmt("%.3f", f.fsync_slow_p)},
       {"reply loss",
        Fmt("%.4f", f.reply_loss) + ", from a cut-off region " + Fmt("%.4f", f.cutoff_reply_loss)},
       {"clients", std::to_string(w.clients_per_region) + " per region, timeout " +
                       std::to_string(w.timeout_ms) + " ms, retry elsewhere " +
                       Fmt("%.2f", w.retry_elsewhere_p) + ", spend a credit retried elsewhere " +
                       Fmt("%.2f", w.spend_retried_credit_p)},
       {"mix", "credits " + Fmt("%.2f", w.credit_weight) + ", debits " +
                   Fmt("%.2f", w.debit_weight) + ", transfers between accounts " +
                   Fmt("%.2f", w.transfer_weight) + ", holds " + Fmt("%.2f", w.hold_weight) +
                   ", rights moves " + Fmt("%.2f", w.rights_weight)}};
  const RunSummary& s = summary;
  char trace_hex[17];
  std::snprintf(trace_hex, sizeof trace_hex, "%016" PRIx64, trace.value());
  std::string conv =
      s.convergence_ms ? std::to_string(*s.convergence_ms) + " ms" : std::string("-");
  rep.summary = {
      {"requests", std::to_string(s.requests) + " (" + std::to_string(s.transfers) +
                       " transfers, " + std::to_string(s.attempts) + " attempts, " +
                       std::to_string(s.retries) + " retries, " +
                       std::to_string(s.retries_elsewhere) + " elsewhere, " +
                       std::to_string(s.credit_retries_elsewhere) + " of them credits and " +
                       std::to_string(s.transfer_retries_elsewhere) + " transfers, spent by " +
                       std::to_string(s.retried_credit_spends) + " debits)"},
      {"accepted", std::to_string(s.accepted) + " (overdraft " +
                       std::to_string(s.overdraft_debits) + ", replays " +
                       std::to_string(s.replays) + ")"},
      {"rejected", std::to_string(s.rejected)},
      {"durable ops", std::to_string(ledger.op_count())},
      {"overdraft fees", std::to_string(s.fee_events) + " (total " + std::to_string(s.fees) + ")"},
      {"voids", std::to_string(s.void_events) + " (net " + std::to_string(s.voids) + ")"},
      {"transfers between accounts", std::to_string(s.durable_transfers) + " (voided " +
                                         std::to_string(s.transfers_voided) + ")"},
      {"budget debits", std::to_string(s.budget_debits) + " (voided " +
                            std::to_string(s.budget_voided) + "; paid by an ancestor " +
                            std::to_string(s.budget_fallbacks) + ", through a cap " +
                            std::to_string(s.budget_caps) + ")"},
      {"holds", std::to_string(s.durable_holds) + " (voided " + std::to_string(s.holds_voided) +
                    "; captured " + std::to_string(s.holds_captured) + ", released " +
                    std::to_string(s.holds_released) + ", expired " +
                    std::to_string(s.holds_expired) + ", open " + std::to_string(s.holds_open) +
                    "; resolution conflicts " + std::to_string(s.resolution_conflicts) + ")"},
      {"partitions", std::to_string(s.partitions)},
      {"crashes", std::to_string(s.crashes)},
      {"clock steps",
       std::to_string(s.clock_steps) + " (amnesia " + std::to_string(s.amnesias) + ")"},
      {"messages", std::to_string(network.stats().sent) + " (" +
                       std::to_string(network.stats().bytes) + " bytes)"},
      {"workload ended", Fmt("%.3f s", s.workload_end_ms / 1000.0)},
      {"heal", Fmt("%.3f s", heal_ms / 1000.0) + " → " + s.final_topology},
      {"converged after heal", conv},
      {"every op final after heal",
       s.finality_ms ? std::to_string(*s.finality_ms) + " ms" : std::string("-")},
      {"trace", trace_hex}};
  for (RegionId r = 0; r < n; ++r) rep.regions.push_back(R(r));
  rep.end_ms = now;
  rep.heal_ms = heal_ms;
  rep.converged_ms = converged_ms.value_or(0);
  rep.timeline = timeline;
  for (report::TimelineSpan& span : rep.timeline) {
    if (span.kind == "final" || (span.kind == "crash" && span.end_ms == span.start_ms))
      span.end_ms = now;
  }
  rep.clocks = clocks;
  for (const Host& h : hosts)
    for (RegionId q = 0; q < n; ++q)
      if (q != h.id && (h.max_ahead[q] != 0 || h.max_behind[q] != 0))
        rep.offsets_seen.push_back(
            report::OffsetSeen{R(h.id), R(q), h.max_ahead[q], h.max_behind[q]});

  // Outcomes as r0 sees them (every replica agrees once the run converged), forks with their ops.
  Replica* view = nullptr;
  for (Host& h : hosts)
    if (h.up) {
      view = h.replica.get();
      break;
    }
  for (const Host& h : hosts)
    if (h.replica.get() == view) rep.view_region = R(h.id);
  std::size_t best_events = 0;
  std::string chart;
  for (const std::string& id : ledger.Accounts()) {
    AccountView v;
    if (!view || !view->GetAccount(id, &v).ok()) continue;
    report::AccountOutcome ao = report::AccountFromView(v, rep.regions);
    view->Forks(id, &ao.forks);
    view->DerivedEvents(id, &ao.events);
    // A replica that restarted keeps its final forks without the ops behind them; take each fork's
    // ops from a replica that still has them (every replica derives the same events).
    for (Host& h : hosts) {
      if (!h.up || h.replica.get() == view) continue;
      std::vector<ForkReport> other;
      if (!h.replica->Forks(id, &other).ok() || other.size() != ao.forks.size()) continue;
      for (std::size_t i = 0; i < other.size(); ++i)
        if (other[i].event == ao.forks[i].event && other[i].ops.size() > ao.forks[i].ops.size())
          ao.forks[i].ops = std::move(other[i].ops);
    }
    ao.rights.emplace();
    ao.ops = 0;
    if (const auto* ops = ledger.Ops(id)) {
      ao.ops = ops->size();
      for (const LedgerOp& op : *ops) {
        if (op.kind != OpKind::kRights) continue;
        ++ao.rights_total;
        if (ao.rights->size() < kMaxRightsMovesPerAccount)
          ao.rights->push_back(report::RightsMove{
              op.durable_ms,
              "r" + std::to_string(op.canonical.origin) + ":" + std::to_string(op.canonical.seq),
              op.canonical.hlc, R(op.canonical.origin), R(op.to), op.amount});
      }
    }
    auto it = account_index.find(id);
    if (it != account_index.end() && samples.count(it->second)) {
      if (chart.empty() || ao.forks.size() > best_events) {
        best_events = ao.forks.size();
        chart = id;
      }
    }
    rep.accounts.push_back(std::move(ao));
  }
  // A failure that names a charted account is the story to show.
  if (failure) {
    for (const auto& [idx, series] : samples) {
      const std::string& id = accounts[idx].id;
      if (failure->message.find(id + ":") != std::string::npos ||
          failure->message.find(id + " ") != std::string::npos) {
        chart = id;
        break;
      }
    }
  }
  if (!config.report_account.empty() && account_index.count(config.report_account))
    chart = config.report_account;
  rep.chart_account = chart;
  for (report::AccountOutcome& ao : rep.accounts) {
    if (ao.config.id != chart) continue;
    const SampleSeries& ss = samples[account_index.at(chart)];
    for (const report::Series& se : ss.balance)
      ao.balance_by_region.push_back(report::Series{se.name, Thin(se.points)});
    for (const report::Series& se : ss.rights)
      ao.rights_by_region.push_back(report::Series{se.name, Thin(se.points)});
  }
}

}  // namespace tally::sim
