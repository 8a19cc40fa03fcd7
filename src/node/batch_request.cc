#include "node/batch_request.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "node/api.h"

namespace tally::node {

Status ParseBatchBody(std::string_view body, std::vector<BatchOp>* out) {
  out->clear();
  nlohmann::ordered_json j;
  if (Status s = ParseJsonObject(body, "batch body", &j); !s.ok()) return s;
  auto ops = j.find("ops");
  if (ops == j.end()) return Status::InvalidArgument("field 'ops' is required: {\"ops\":[…]}");
  if (!ops->is_array())
    return Status::InvalidArgument(fmt::format("ops must be an array, got {}", JsonTypeName(*ops)));
  if (ops->empty() || ops->size() > kMaxBatchOps)
    return Status::InvalidArgument(
        fmt::format("ops must hold 1..{} ops, got {}", kMaxBatchOps, ops->size()));
  for (const auto& [key, value] : j.items()) {
    if (key != "ops")
      return Status::InvalidArgument("unknown field '" + key.substr(0, 64) + "' (expected: ops)");
  }
  out->resize(ops->size());
  for (std::size_t i = 0; i < ops->size(); ++i) {
    BatchOp& op = (*out)[i];
    op.parsed = ParseRequestObject(std::move((*ops)[i]), /*need_request_id=*/false, &op.message);
    if (op.parsed.ok() && op.message.kind == StreamMessageKind::kAuth)
      op.parsed = Status::InvalidArgument(
          "an auth message has no place in a batch: send the token in its Authorization header");
    if (op.parsed.ok() && op.message.match.route == Route::kBatch)
      op.parsed = Status::InvalidArgument("a batch cannot hold a batch: put its ops in this one");
    if (!op.parsed.ok())
      op.parsed = Status::InvalidArgument(fmt::format("ops[{}]: {}", i, op.parsed.message()));
  }
  return Status::OK();
}

}  // namespace tally::node
