#include "ctl/agreement.h"

#include <set>

namespace tally::ctl {

using nlohmann::json;

const std::vector<ComparedField>& AgreementFields() {
  static const std::vector<ComparedField> fields = {
      // The effective balance and the derived entries behind it.
      {"balance", "/account/balance"},
      {"fees", "/account/fees"},
      {"voids", "/account/voids"},
      {"raw_balance", "/account/raw_balance"},
      // Per region: rights, overdraft line, fees and voids booked there.
      {"regions", "/account/regions"},
      // Every derived fee and void, with the op it concerns.
      {"events", "/report/accounts/0/events"},
      // tallyd's hash of the account state: equal on every replica holding the same ops.
      {"digest", "/account/digest"},
  };
  return fields;
}

namespace {

// The value at `pointer`, or a discarded json if absent.
json At(const json& doc, const std::string& pointer) {
  json::json_pointer p(pointer);
  if (!doc.contains(p)) return json(json::value_t::discarded);
  return doc.at(p);
}

}  // namespace

Agreement CompareAnswers(const std::string& account, const std::vector<NodeAnswer>& answers) {
  Agreement out;
  out.summary = {{"account", account}, {"nodes", json::array()}};
  bool reachable = !answers.empty();
  for (const auto& a : answers) {
    json node = {{"url", a.url}, {"region", a.region}};
    if (!a.error.empty()) {
      node["error"] = a.error;
      reachable = false;
      out.differences.push_back(a.url + " could not be asked: " + a.error);
    } else {
      json doc = {{"account", a.account}, {"report", a.report}};
      for (const auto& f : AgreementFields()) {
        json v = At(doc, f.pointer);
        node[f.label] = v.is_discarded() ? json(nullptr) : v;
      }
    }
    out.summary["nodes"].push_back(std::move(node));
  }
  if (answers.empty()) out.differences.push_back("no nodes to compare");
  // Agreement of one region with itself says nothing: two URLs of one region, or one URL.
  std::set<std::string> regions;
  for (const auto& a : answers)
    if (a.error.empty()) regions.insert(a.region);
  if (reachable && regions.size() < 2)
    out.differences.push_back("only " + std::to_string(regions.size()) +
                              " distinct region answered (" +
                              (regions.empty() ? std::string("none") : *regions.begin()) +
                              "): agreement needs at least two regions");
  if (reachable) {
    for (const auto& f : AgreementFields()) {
      json first_doc = {{"account", answers[0].account}, {"report", answers[0].report}};
      json first = At(first_doc, f.pointer);
      for (std::size_t i = 1; i < answers.size(); ++i) {
        json doc = {{"account", answers[i].account}, {"report", answers[i].report}};
        json v = At(doc, f.pointer);
        if (v.is_discarded() != first.is_discarded() || (!v.is_discarded() && v != first)) {
          auto show = [](const json& x) {
            if (x.is_discarded()) return std::string("(missing)");
            std::string text = x.dump();
            return text.size() > 160 ? text.substr(0, 157) + "..." : text;
          };
          out.differences.push_back(f.label + " differs: " + answers[0].url + " says " +
                                    show(first) + ", " + answers[i].url + " says " + show(v));
        }
      }
    }
  }
  out.agree = out.differences.empty();
  out.summary["agree"] = out.agree;
  out.summary["differences"] = out.differences;
  return out;
}

}  // namespace tally::ctl
