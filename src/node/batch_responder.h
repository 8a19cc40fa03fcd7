// BatchResponder: the answers to the ops of one POST /v1/batch (batch_request.h). Each op is
// handed to ApiHost::HandleRequest as the HTTP request it stands for, in order, in one go on the
// io thread — so they are decided in order and join one group commit (an op waiting for rights
// from a peer is decided when they come) — with this as its Responder. Each op's answer arrives
// here when the handler gives it (after the sync that makes it durable); once every op has one,
// the batch is answered 200 with {"results":[…]}, one result per op in order, each as a stream's
// result message: {"type":"result","request_id","status","body","headers"?}.
//
// Each op is counted and audited as its route (tally_http_requests_total{route="debit"}, an audit
// line with the batch's request id and the op's index), and the batch itself as route "batch".
//
// Threading: io thread only. Owned by shared_ptr: the host's commands waiting to be answered hold
// it, and it holds the session the batch came on.

#ifndef TALLY_NODE_BATCH_RESPONDER_H_
#define TALLY_NODE_BATCH_RESPONDER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "node/api_host.h"
#include "node/batch_request.h"
#include "node/responder.h"

namespace tally::node {

class BatchResponder : public Responder, public std::enable_shared_from_this<BatchResponder> {
 public:
  // Answers `parent`'s request `parent_slot` once every op is answered.
  BatchResponder(ApiHost* host, std::shared_ptr<Responder> parent, std::uint64_t parent_slot);

  // Hands every op to the host, with the batch's Authorization header and, for ops that name no
  // durability of their own, the batch's Durability header (`durability` null: none).
  void Start(std::vector<BatchOp> ops, const std::string& authorization,
             const std::string* durability);

  bool closed() const override { return parent_->closed(); }
  AuditFacts* audit(std::uint64_t slot) override;

 private:
  struct Op {
    Route route = Route::kUnknown;
    SteadyTime start;
    std::string request_id;  // the op's own, if it gave one (its result carries it back)
    AuditFacts audit;
    std::string result;  // empty until answered
  };

  void DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                 std::string_view body, std::string_view extra_headers) override;

  ApiHost* const host_;
  const std::shared_ptr<Responder> parent_;
  const std::uint64_t parent_slot_;
  std::vector<Op> ops_;
  std::size_t pending_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_BATCH_RESPONDER_H_
