// Unit test of node/batch_request.h: what POST /v1/batch takes — a body of 1..kMaxBatchOps ops,
// each parsed as a stream request message — and what it refuses, as a whole or op by op. No
// tallyd; batch_test.cc drives a real one.
#include "node/batch_request.h"

#include <catch2/catch.hpp>
#include <string>

using namespace tally;
using namespace tally::node;

namespace {

std::string Refusal(std::string_view body) {
  std::vector<BatchOp> ops;
  const Status s = ParseBatchBody(body, &ops);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kInvalidArgument);
  return s.message();
}

bool Contains(const std::string& text, std::string_view part) {
  INFO(text);
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a batch body is 1..1000 ops, each the request its message stands for", "[batch]") {
  std::vector<BatchOp> ops;
  REQUIRE(ParseBatchBody(R"({"ops":[
      {"type":"debit","account":"shop-1","idempotency_key":"k1","amount":5},
      {"type":"transfer","request_id":"t-1","idempotency_key":"k2","from":"a","to":"b","amount":1},
      {"type":"withdraw","account":"shop-1"},
      {"type":"auth","token":"x"},
      7,
      {"type":"get_account","account":"a b"},
      {"type":"batch","ops":[{"type":"debit"}]}]})",
                         &ops)
              .ok());
  REQUIRE(ops.size() == 7);
  REQUIRE(ops[0].parsed.ok());
  CHECK(ops[0].message.target == "/v1/accounts/shop-1/debits");
  CHECK(ops[0].message.match.route == Route::kDebit);
  CHECK(ops[0].message.key == "k1");
  CHECK(ops[0].message.request_id.empty());  // optional in a batch: results are in order
  REQUIRE(ops[1].parsed.ok());
  CHECK(ops[1].message.match.route == Route::kTransfer);
  CHECK(ops[1].message.request_id == "t-1");
  // What fails is the op, named by its index; the others stand.
  CHECK(Contains(ops[2].parsed.message(), "ops[2]: unknown message type 'withdraw'"));
  CHECK(Contains(ops[3].parsed.message(), "ops[3]: an auth message has no place in a batch"));
  CHECK(Contains(ops[4].parsed.message(), "ops[4]: a request must be an object, got an integer"));
  CHECK(Contains(ops[5].parsed.message(), "ops[5]:"));
  CHECK(Contains(ops[6].parsed.message(), "ops[6]: a batch cannot hold a batch"));
  for (std::size_t i = 2; i < ops.size(); ++i)
    CHECK(ops[i].parsed.code() == Code::kInvalidArgument);

  // The batch as a whole: a JSON object with exactly an "ops" array of 1..1000.
  CHECK(Contains(Refusal(""), "batch body is empty"));
  CHECK(Contains(Refusal("{\"ops\":["), "malformed JSON"));
  CHECK(Contains(Refusal("[]"), "object"));
  CHECK(Contains(Refusal("{}"), "field 'ops' is required"));
  CHECK(Contains(Refusal(R"({"ops":{}})"), "ops must be an array, got an object"));
  CHECK(Contains(Refusal(R"({"ops":[]})"), "ops must hold 1..1000 ops, got 0"));
  CHECK(Contains(Refusal(R"({"ops":[{"type":"debit"}],"atomic":true})"), "unknown field 'atomic'"));
  CHECK(Contains(Refusal(R"({"ops":[],"ops":[]})"), "twice"));
  std::string many = R"({"ops":[)";
  for (std::size_t i = 0; i <= kMaxBatchOps; ++i) many += std::string(i ? "," : "") + "{}";
  many += "]}";
  CHECK(Contains(Refusal(many), "ops must hold 1..1000 ops, got 1001"));
}
