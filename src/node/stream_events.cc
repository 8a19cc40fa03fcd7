#include "node/stream_events.h"

#include <nlohmann/json.hpp>

#include "node/api.h"
#include "node/history_query.h"
#include "node/statement_view.h"
#include "node/views.h"
#include "report/report.h"

namespace tally::node {

namespace {

using ojson = nlohmann::ordered_json;

void AppendJoined(const std::vector<const std::string*>& items, std::string* out) {
  out->push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out->push_back(',');
    out->append(*items[i]);
  }
  out->push_back(']');
}

}  // namespace

CanonicalKey FrontierKey(Hlc frontier) { return CanonicalKey{frontier, 0, 0}; }

std::string OpEventJson(const Op& op, const std::vector<std::string>& regions) {
  ojson j{{"account", op.account},
          {"kind", OpKindName(op.kind)},
          {"amount", op.amount},
          {"region", RegionOf(op.dot.origin, regions)},
          {"seq", op.dot.seq},
          {"time", report::UtcTime(op.hlc.wall_ms())},
          {"hlc", std::to_string(op.hlc.value)}};  // a string: past 2^53, JSON numbers round
  if (!op.key.empty()) j["idempotency_key"] = op.key;
  if (op.kind == OpKind::kTransfer) j["to"] = op.to_account;
  if (op.kind == OpKind::kRights) j["to_region"] = RegionOf(op.to, regions);
  if (!op.payers.empty()) j["payers"] = op.payers;
  if (op.kind == OpKind::kHold) j["hold"] = HoldId(op.dot, regions);
  if (op.kind == OpKind::kCapture || op.kind == OpKind::kRelease)
    j["hold"] = HoldId(op.hold, regions);
  AddNoteJson(op.memo, op.metadata, &j);
  return j.dump();
}

std::string LineEventJson(const StatementLine& line, const std::vector<std::string>& regions) {
  const ojson fields = StatementLineJson(line, regions);
  ojson j{{"account", line.account}};
  for (const auto& field : fields.items()) j[field.key()] = field.value();
  return j.dump();
}

std::string AccountStateJson(const AccountView& v) {
  return ojson{{"id", v.config.id}, {"balance", v.balance},     {"available", v.available},
               {"held", v.held},    {"tentative", v.tentative}, {"final_balance", v.final_balance}}
      .dump();
}

std::string StreamEventJson(const StreamEvent& e) {
  std::string out =
      e.final ? R"({"type":"event","final":true,)" : R"({"type":"event","final":false,)";
  if (e.replay) out += R"("replay":true,)";
  out += R"("cursor":")" + HistoryCursor(e.cursor) + "\",";
  if (e.final) out += R"("frontier_utc":")" + report::UtcTime(e.frontier.wall_ms()) + "\",";
  out += e.final ? R"("lines":)" : R"("ops":)";
  AppendJoined(e.items, &out);
  out += R"(,"accounts":)";
  AppendJoined(e.accounts, &out);
  out += '}';
  return out;
}

std::string AccountSnapshotJson(const AccountView& v, const std::vector<std::string>& regions,
                                const CanonicalKey& cursor) {
  return nlohmann::json{
      {"type", "account"}, {"cursor", HistoryCursor(cursor)}, {"account", AccountJson(v, regions)}}
      .dump();
}

}  // namespace tally::node
