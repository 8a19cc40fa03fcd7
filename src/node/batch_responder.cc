#include "node/batch_responder.h"

#include <chrono>
#include <utility>

namespace tally::node {

BatchResponder::BatchResponder(ApiHost* host, std::shared_ptr<Responder> parent,
                               std::uint64_t parent_slot)
    : Responder(host), host_(host), parent_(std::move(parent)), parent_slot_(parent_slot) {}

void BatchResponder::Start(std::vector<BatchOp> ops, const std::string& authorization,
                           const std::string* durability) {
  AuditFacts batch;
  if (const AuditFacts* facts = parent_->audit(parent_slot_)) batch = *facts;
  ops_.resize(ops.size());
  pending_ = ops.size();
  // Every op is handed over before any answer is counted: a handler may answer at once.
  const auto self = shared_from_this();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    StreamMessage& m = ops[i].message;
    Op& op = ops_[i];
    op.route = ops[i].parsed.ok() ? m.match.route : Route::kUnknown;
    op.start = std::chrono::steady_clock::now();
    op.request_id = m.request_id;
    op.audit =
        AuditOf(m, m.request_id.empty() ? batch.request_id + "." + std::to_string(i) : m.request_id,
                batch.remote);
  }
  for (std::size_t i = 0; i < ops.size() && !closed(); ++i) {
    if (!ops[i].parsed.ok()) {
      Respond(i, 400, kJson, ErrorJson(ops[i].parsed));
      continue;
    }
    StreamMessage& m = ops[i].message;
    http::request<http::string_body> req = RequestFor(&m, authorization, durability);
    const Route route = m.match.route;
    host_->HandleRequest(self, i, route, std::move(m.match), req);
  }
}

AuditFacts* BatchResponder::audit(std::uint64_t slot) {
  if (slot >= ops_.size() || !ops_[slot].result.empty() || closed()) return nullptr;
  return &ops_[slot].audit;
}

void BatchResponder::DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                               std::string_view body, std::string_view extra_headers) {
  if (slot >= ops_.size() || !ops_[slot].result.empty()) return;
  Op& op = ops_[slot];
  op.result = StreamResultJson(op.request_id, status, content_type, body, extra_headers);
  host_->Answered(op.route, status, op.start, body, op.audit);
  if (--pending_ != 0) return;
  std::string out;
  std::size_t size = 16;
  for (const Op& o : ops_) size += o.result.size() + 1;
  out.reserve(size);
  out += R"({"results":[)";
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (i) out += ',';
    out += ops_[i].result;
  }
  out += "]}";
  parent_->Respond(parent_slot_, 200, kJson, out);
}

}  // namespace tally::node
