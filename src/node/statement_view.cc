#include "node/statement_view.h"

#include <map>

#include "node/api.h"
#include "report/report.h"

namespace tally::node {

namespace {

using LineMap = std::map<CanonicalKey, StatementLine>;

// A final line replaces a tentative one of the same op; two final ones are the same line.
void Keep(StatementLine line, LineMap* lines) {
  auto [it, fresh] = lines->try_emplace(line.key, std::move(line));
  if (!fresh && !it->second.final) it->second = std::move(line);
}

// Every line of `account` not (or not yet known to be) in the store: those of the batches not
// synced, then the replica's.
Status MemoryLines(const StatementSources& from, std::string_view account, AccountView* view,
                   LineMap* lines) {
  if (Status s = from.replica->GetAccount(account, view); !s.ok()) return s;
  from.gate->ForEachUnsynced([&](const PersistBatch& batch) {
    for (const Fold& f : batch.folds) {
      for (const StatementLine& l : f.lines) {
        if (l.account == account) Keep(l, lines);
      }
    }
  });
  std::vector<StatementLine> held;
  if (Status s = from.replica->Statement(account, &held); !s.ok()) return s;
  for (StatementLine& l : held) Keep(std::move(l), lines);
  return Status::OK();
}

}  // namespace

std::string_view RegionOf(RegionId r, const std::vector<std::string>& regions) {
  return r < regions.size() ? std::string_view(regions[r]) : std::string_view("?");
}

void AddNoteJson(const std::string& memo, const Metadata& metadata, nlohmann::ordered_json* j) {
  if (!memo.empty()) (*j)["memo"] = memo;
  if (metadata.empty()) return;
  nlohmann::ordered_json md = nlohmann::ordered_json::object();  // in the order the client sent
  for (const auto& [k, v] : metadata) md[k] = v;
  (*j)["metadata"] = std::move(md);
}

nlohmann::ordered_json StatementLineJson(const StatementLine& line,
                                         const std::vector<std::string>& regions) {
  nlohmann::ordered_json j{
      {"cursor", HistoryCursor(line.key)},
      {"kind", OpKindName(line.kind)},
      {"change", line.change},
      {"amount", line.amount},
      {"region", RegionOf(line.key.origin, regions)},
      {"seq", line.key.seq},
      {"time", report::UtcTime(line.key.hlc.wall_ms())},
      {"hlc", std::to_string(line.key.hlc.value)},  // a string: past 2^53, JSON numbers round
      {"final", line.final},
      {"voided", line.voided},
      {"fee", line.fee},
      {"overdraft_crossing", line.crossing},
      {"void", line.void_amount},
      {"balance_after", line.balance_after},
  };
  if (!line.idempotency_key.empty()) j["idempotency_key"] = line.idempotency_key;
  if (!line.counterparty.empty()) j["counterparty"] = line.counterparty;
  if (line.hold.seq != 0) j["hold"] = HoldId(line.hold, regions);
  AddNoteJson(line.memo, line.metadata, &j);
  return j;
}

Status StatementPageBody(const StatementSources& from, std::string_view account,
                         const HistoryQuery& q, std::string* out) {
  AccountView view;
  LineMap lines;
  if (Status s = MemoryLines(from, account, &view, &lines); !s.ok()) return s;
  // Beyond the cursor only, in the page's direction.
  if (q.cursor) {
    if (q.newest_first) {
      lines.erase(lines.lower_bound(*q.cursor), lines.end());
    } else {
      lines.erase(lines.begin(), lines.upper_bound(*q.cursor));
    }
  }
  // The store's nearest q.limit lines beyond the cursor: with every line in memory, the page is
  // among them.
  std::vector<StatementLine> stored;
  bool more = false;
  if (Status s = from.store->Read(account, q, &stored, &more); !s.ok()) return s;
  for (StatementLine& l : stored) Keep(std::move(l), &lines);

  nlohmann::ordered_json page = nlohmann::ordered_json::array();
  auto add = [&](const StatementLine& l) {
    if (page.size() == q.limit) {
      more = true;
      return false;
    }
    page.push_back(StatementLineJson(l, *from.regions));
    return true;
  };
  if (q.newest_first) {
    for (auto it = lines.rbegin(); it != lines.rend() && add(it->second); ++it) {
    }
  } else {
    for (auto it = lines.begin(); it != lines.end() && add(it->second); ++it) {
    }
  }
  nlohmann::ordered_json next = nullptr;
  if (more && !page.empty()) next = page.back()["cursor"];
  *out = nlohmann::ordered_json{{"account", view.config.id},
                                {"currency", view.config.currency},
                                {"order", q.newest_first ? "desc" : "asc"},
                                {"lines", std::move(page)},
                                {"next_cursor", std::move(next)},
                                {"frontier", std::to_string(view.frontier.value)},
                                {"frontier_utc", report::UtcTime(view.frontier.wall_ms())}}
             .dump();
  return Status::OK();
}

Status BalanceAsOfBody(const StatementSources& from, std::string_view account,
                       std::uint64_t as_of_ms, std::string* out) {
  AccountView view;
  LineMap lines;
  if (Status s = MemoryLines(from, account, &view, &lines); !s.ok()) return s;
  const Hlc at = Hlc::Make(as_of_ms, Hlc::kLogicalMask);  // the last instant of that millisecond
  if (at >= view.frontier)
    return Status::FailedPrecondition(
        "as_of " + report::UtcTime(as_of_ms) + " is not below the stable frontier (" +
        report::UtcTime(view.frontier.wall_ms()) + "): the balance then may still change");
  const StatementLine* last = nullptr;
  auto past = lines.upper_bound(CanonicalKey{at, kMaxRegions, ~Seq{0}});
  if (past != lines.begin()) last = &std::prev(past)->second;
  StatementLine stored;
  bool found = false;
  if (Status s = from.store->LastAtOrBefore(account, at, &stored, &found); !s.ok()) return s;
  if (found && (!last || last->key < stored.key)) last = &stored;
  if (!last)
    return Status::NotFound("no history of '" + std::string(account) + "' at or before " +
                            report::UtcTime(as_of_ms) +
                            " here (opened later, or its history here begins later: pruned, or "
                            "installed from a peer's snapshot)");
  *out = nlohmann::ordered_json{{"account", view.config.id},
                                {"currency", view.config.currency},
                                {"as_of", report::UtcTime(as_of_ms)},
                                {"balance", last->balance_after},
                                {"line", StatementLineJson(*last, *from.regions)}}
             .dump();
  return Status::OK();
}

Status MissedLines(const StatementSources& from, const std::set<std::string, std::less<>>& accounts,
                   const CanonicalKey& after, const CanonicalKey& below, std::size_t max,
                   std::vector<StatementLine>* out, bool* more) {
  // Memory first, then the store, as StatementPageBody: a batch synced in between is in both.
  std::map<std::pair<CanonicalKey, std::string>, StatementLine> lines;
  auto keep = [&](const StatementLine& l) {
    if (after < l.key && l.key < below) lines.try_emplace({l.key, l.account}, l);
  };
  from.gate->ForEachUnsynced([&](const PersistBatch& batch) {
    for (const Fold& f : batch.folds) {
      for (const StatementLine& l : f.lines) {
        if (accounts.count(l.account)) keep(l);
      }
    }
  });
  const HistoryQuery q{.newest_first = false, .cursor = after, .limit = max + 1};
  for (const std::string& account : accounts) {
    std::vector<StatementLine> stored;
    bool further = false;
    if (Status s = from.store->Read(account, q, &stored, &further); !s.ok()) return s;
    for (const StatementLine& l : stored) keep(l);
  }
  *more = lines.size() > max;
  out->clear();
  for (auto& [key, line] : lines) {
    if (out->size() == max) break;
    out->push_back(std::move(line));
  }
  return Status::OK();
}

}  // namespace tally::node
