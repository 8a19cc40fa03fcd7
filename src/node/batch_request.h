// POST /v1/batch (docs/operations.md, "POST /v1/batch"): many ops in one request, each with its
// own idempotency key and its own result. The body is {"ops":[…]}, each op written as a request
// message of GET /v1/stream is (stream_messages.h: "type", the address, "idempotency_key",
// "durability", the route's fields; "request_id" optional), so an op of a batch is handled as the
// HTTP request it stands for — the same parsing, permissions, answers and errors.
//
// What fails is the op, never the batch: an op that cannot be made into a request is answered
// 400 in its place while the others go on. Only a body that is not {"ops":[…]} with 1..kMaxBatchOps
// ops is refused as a whole.
//
// Thread-safe: pure functions.

#ifndef TALLY_NODE_BATCH_REQUEST_H_
#define TALLY_NODE_BATCH_REQUEST_H_

#include <cstddef>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "node/stream_messages.h"

namespace tally::node {

inline constexpr std::size_t kMaxBatchOps = 1000;

// One op of a batch: the request it stands for, or why it is not one.
struct BatchOp {
  Status parsed;
  StreamMessage message;
};

// InvalidArgument for a body that is not a JSON object with exactly an "ops" array of
// 1..kMaxBatchOps elements; otherwise one BatchOp per element, in order.
Status ParseBatchBody(std::string_view body, std::vector<BatchOp>* out);

}  // namespace tally::node

#endif  // TALLY_NODE_BATCH_REQUEST_H_
