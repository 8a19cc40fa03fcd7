// Agreement between regions about one account: what `tallyctl reconcile` and the node tests use to
// decide that every region reports the same balance, fees and voids.
//
// The comparison is a pure function of what each node answered (its account view and its
// reconciliation report), so it is tested without a cluster. Only fields that every replica must
// derive identically once it holds the same ops are compared; node-local fields (the answering
// region, clock offsets, generation time, peer state) are not.

#ifndef TALLY_CTL_AGREEMENT_H_
#define TALLY_CTL_AGREEMENT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tally::ctl {

// What one node answered. `error` is set (and the JSON left null) when it could not be asked.
struct NodeAnswer {
  std::string url;
  std::string region;  // from /v1/cluster, "" if unknown
  std::string error;
  nlohmann::json account;  // GET /v1/accounts/{id}
  nlohmann::json report;   // GET /v1/accounts/{id}/report
};

// One compared quantity, e.g. {"balance", "/account/balance"}. The pointer addresses the object
// {"account": ..., "report": ...}.
struct ComparedField {
  std::string label;
  std::string pointer;
};

// The fields every region must agree on.
const std::vector<ComparedField>& AgreementFields();

struct Agreement {
  bool agree = false;
  std::vector<std::string> differences;  // one readable line per field that differs
  // {"account": id, "agree": bool, "differences": [...], "nodes": [{url, region, error, <label>:
  // value...}]}
  nlohmann::json summary;
};

// Compares the answers. No answers, an unreachable node, or a field present at one node and
// missing at another all count as disagreement.
Agreement CompareAnswers(const std::string& account, const std::vector<NodeAnswer>& answers);

}  // namespace tally::ctl

#endif  // TALLY_CTL_AGREEMENT_H_
