// tallyctl: the command line for operators and scripts. One subcommand per tallyd endpoint
// (`backup` is POST /v1/admin/backup), plus `reconcile` (do the regions agree about an account?)
// and `health`.
//
// Human output by default; --json prints the server's JSON (one document per line for `watch`).
// Errors go to stderr as "tallyctl: HTTP <status> <code>: <message>"; in --json mode the server's
// error document is also printed to stdout so scripts can read its numbers. Exit codes are in
// ctl/exit_codes.h and are the contract.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "ctl/agreement.h"
#include "ctl/exit_codes.h"
#include "ctl/http_client.h"
#include "ctl/tls_client.h"
#include "version/version.h"

namespace {

using nlohmann::json;
using nlohmann::ordered_json;  // request bodies: a note's metadata goes in the order given
using namespace tally::ctl;

constexpr const char* kDefaultUrl = "http://127.0.0.1:8081";
// `backup` waits this long for its answer when --timeout-ms is not given.
constexpr std::chrono::milliseconds kBackupTimeout{600000};

constexpr const char* kExitCodeHelp =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  answered \"no\": insufficient funds (HTTP 402), regions disagree (reconcile),\n"
    "     not healthy / not connected in time (health --wait-s,\n"
    "     cluster status --wait-connected)\n"
    "  2  usage error (bad option or argument)\n"
    "  3  no answer: connection refused, reset or timed out, or the TLS handshake\n"
    "     failed (retrying with the same idempotency key is safe)\n"
    "  4  refused by the server: HTTP 4xx other than 402 (the error code is printed)\n"
    "  5  server error: HTTP 5xx or a reply that is not the documented JSON\n"
    "Environment: TALLY_URL (default for --url), TALLY_TOKEN (default for --token),\n"
    "TALLY_CACERT (default for --cacert). An https:// URL, including those of\n"
    "`reconcile --nodes`, is verified against the --cacert file (a PEM CA bundle, e.g. the\n"
    "cluster's ca.pem) or, without one, the system's trust store.";

// CLI11's own PositiveNumber prints its range as a 300-digit double; say it plainly.
const CLI::Validator kPositiveAmount(
    [](std::string& v) -> std::string {
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
          v.find_first_not_of('0') == std::string::npos)
        return "must be a positive integer number of minor units, got '" + v + "'";
      // Checked here, before the number is read: a value past int64 would be clamped to its
      // largest value and sent as if asked for. Smaller ones are the server's to bound.
      std::int64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size())
        return "is too large: " + v + " does not fit a 64-bit amount of minor units";
      return "";
    },
    "AMOUNT");

struct Options {
  std::string get;
  std::string url_text;
  std::string token;
  std::string token_file;
  std::string cacert;
  bool json_output = false;
  long long timeout_ms = 10000;
};

struct Session {
  Url url;
  ClientTls tls;  // for https:// URLs, every client this run makes
  std::string token;
  bool json_output = false;
  std::string get;  // --get: JSON pointer into the answer, "" for the whole answer
  std::chrono::milliseconds timeout{10000};
};

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string GenerateIdempotencyKey() {
  std::random_device rd;
  std::uniform_int_distribution<int> nibble(0, 15);
  std::string key = "tallyctl-";
  for (int i = 0; i < 32; ++i) key += "0123456789abcdef"[nibble(rd)];
  return key;
}

std::string Scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// YAML-like rendering of any JSON document, for human output of shapes tallyctl does not know.
void PrintTree(const json& j, int depth, std::ostream& os) {
  const std::string pad(static_cast<std::size_t>(depth) * 2, ' ');
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_structured() && !v.empty() &&
          !(v.is_array() &&
            std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_primitive(); }))) {
        os << pad << k << ":\n";
        PrintTree(v, depth + 1, os);
      } else if (v.is_array()) {
        os << pad << k << ": [";
        for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << Scalar(v[i]);
        os << "]\n";
      } else {
        os << pad << k << ": " << (v.is_structured() ? v.dump() : Scalar(v)) << "\n";
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (v.is_object()) {
        os << pad << "-\n";
        PrintTree(v, depth + 1, os);
      } else {
        os << pad << "- " << Scalar(v) << "\n";
      }
    }
  } else {
    os << pad << Scalar(j) << "\n";
  }
}

// The outcome of one API call, classified into an exit code.
struct CallResult {
  int exit_code = kExitOk;
  int status = 0;
  json body;  // parsed body (null if empty or not JSON)
  std::string raw_body;
};

int ExitCodeForStatus(int status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status == 402) return kExitNotOk;
  if (status >= 400 && status < 500) return kExitClientError;
  return kExitServerError;
}

// Performs the call; prints transport and HTTP errors (stderr; and the error JSON on stdout in
// --json mode). The caller prints successful answers.
CallResult Call(const Session& s, std::string_view method, const std::string& target,
                const std::string& body, Headers headers = {}, bool expect_json = true,
                bool quiet = false) {
  CallResult r;
  if (!s.token.empty()) headers.emplace_back("Authorization", "Bearer " + s.token);
  HttpClient client(s.url, s.timeout, s.tls);
  HttpResponse res;
  std::string error;
  if (!client.Request(method, target, body, headers, &res, &error)) {
    if (!quiet) std::cerr << "tallyctl: " << error << "\n";
    r.exit_code = kExitUnreachable;
    return r;
  }
  r.status = res.status;
  r.raw_body = res.body;
  r.exit_code = ExitCodeForStatus(res.status);
  if (expect_json || r.exit_code != kExitOk) {
    r.body = json::parse(res.body, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
  }
  if (quiet) return r;
  if (r.exit_code == kExitOk) {
    if (expect_json && r.body.is_null() && !res.body.empty()) {
      std::cerr << "tallyctl: " << method << " " << target << ": HTTP " << res.status
                << " with a body that is not JSON\n";
      r.exit_code = kExitServerError;
    }
    return r;
  }
  std::string code = "http_" + std::to_string(res.status), message = res.body;
  if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()) {
    const json& e = r.body["error"];
    if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
    message = e.contains("message") ? Scalar(e["message"]) : "";
  }
  std::cerr << "tallyctl: HTTP " << res.status << " " << code << ": " << message << "\n";
  if (s.json_output && !r.body.is_null()) {
    std::cout << r.body.dump() << "\n";
  } else if (r.body.is_object() && r.body.contains("error")) {
    // The numbers that explain a refusal (rights, overdraft line) are worth showing to people.
    json details = r.body["error"];
    if (details.is_object()) {
      details.erase("code");
      details.erase("message");
      if (!details.empty()) PrintTree(details, 1, std::cerr);
    }
  }
  return r;
}

std::string AccountPath(const std::string& id) { return "/v1/accounts/" + PercentEncode(id); }

void PrintAccount(const json& a) {
  auto get = [&](const char* k) { return a.contains(k) ? Scalar(a[k]) : std::string("?"); };
  std::cout << "account " << get("id") << " (" << get("currency") << ")\n";
  std::cout << "  balance:       " << get("balance");
  if (a.contains("tentative")) {
    const json& t = a["tentative"];
    if (t.is_boolean())
      std::cout << (t.get<bool>() ? "  (tentative)" : "  (final)");
    else
      std::cout << "  (tentative part: " << Scalar(t) << ")";
  }
  std::cout << "\n  final balance: " << get("final_balance") << "\n";
  if (a.contains("regions") && a["regions"].is_object()) {
    std::cout << "  regions:\n";
    for (const auto& [name, r] : a["regions"].items()) {
      std::cout << "    " << name << ": rights "
                << (r.contains("rights") ? Scalar(r["rights"]) : "?") << ", overdraft line "
                << (r.contains("overdraft_line") ? Scalar(r["overdraft_line"]) : "?") << "\n";
    }
  }
  json rest = a;
  for (const char* k : {"id", "currency", "balance", "tentative", "final_balance", "regions"})
    rest.erase(k);
  if (!rest.empty()) PrintTree(rest, 1, std::cout);
}

// "regions.eu.rights" or "/regions/eu/rights" -> a JSON pointer.
std::string ToPointer(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  std::string out;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) out += "/" + part;
  return out;
}

// Prints the value at --get (strings bare, for shell variables). Usage error if it is not there.
int PrintField(const Session& s, const json& body) {
  json::json_pointer p;
  try {
    p = json::json_pointer(ToPointer(s.get));
  } catch (const json::exception& e) {
    std::cerr << "tallyctl: --get " << s.get << ": " << e.what() << "\n";
    return kExitUsage;
  }
  if (!body.contains(p)) {
    std::cerr << "tallyctl: --get " << s.get << ": no such field in the answer\n";
    return kExitUsage;
  }
  const json& v = body.at(p);
  std::cout << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  return kExitOk;
}

int Output(const Session& s, const CallResult& r, const std::function<void(const json&)>& human) {
  if (r.exit_code != kExitOk) return r.exit_code;
  if (!s.get.empty()) return PrintField(s, r.body);
  if (s.json_output) {
    std::cout << (r.body.is_null() ? json::object() : r.body).dump() << "\n";
  } else {
    human(r.body);
  }
  return kExitOk;
}

// `parent` empty: a root account. `cap`: a spending cap inside the parent's money.
int CmdOpen(const Session& s, const std::string& id, const std::string& currency, long long limit,
            long long fee_flat, long long fee_bps, const std::string& parent, bool cap) {
  json body = {{"id", id},
               {"currency", currency},
               {"overdraft_limit", limit},
               {"fee", {{"flat", fee_flat}, {"bps", fee_bps}}}};
  if (!parent.empty()) body["parent"] = parent;
  if (cap) body["cap"] = true;
  CallResult r = Call(s, "POST", "/v1/accounts", body.dump());
  return Output(s, r, [&](const json& b) {
    std::cout << (r.status == 201 ? "opened" : "already open:") << " account " << id << " ("
              << currency << ", overdraft limit " << limit << ", fee " << fee_flat << " + "
              << fee_bps << " bps";
    if (!parent.empty()) std::cout << (cap ? ", a cap inside " : ", parent ") << parent;
    std::cout << ")\n";
  });
}

// GET /v1/accounts: one page, an account a line, and the command for the next page.
int CmdList(const Session& s, const std::string& prefix, long long limit,
            const std::string& cursor) {
  std::string target = "/v1/accounts?limit=" + std::to_string(limit);
  if (!prefix.empty()) target += "&prefix=" + PercentEncode(prefix);
  if (!cursor.empty()) target += "&cursor=" + PercentEncode(cursor);
  CallResult r = Call(s, "GET", target, "");
  return Output(s, r, [&](const json& b) {
    const json& list = b.contains("accounts") ? b["accounts"] : json::array();
    for (const json& a : list) {
      std::cout << std::setw(24) << std::left << Scalar(a.value("id", json("?"))) << " "
                << Scalar(a.value("currency", json("?"))) << "  balance "
                << Scalar(a.value("balance", json("?"))) << ", available "
                << Scalar(a.value("available", json("?")));
      if (a.contains("parent"))
        std::cout << (a.value("cap", false) ? ", a cap inside " : ", parent ")
                  << Scalar(a["parent"]);
      std::cout << "\n";
    }
    if (list.empty()) std::cout << "no accounts\n";
    if (b.contains("next_cursor") && b["next_cursor"].is_string())
      std::cout << "more: tallyctl account list" << (prefix.empty() ? "" : " --prefix " + prefix)
                << " --limit " << limit << " --cursor " << b["next_cursor"].get<std::string>()
                << "\n";
  });
}

// GET /v1/accounts/{id}/history: a statement line a row, and the command for the next page; with
// `as_of`, the final balance at that time.
int CmdHistory(const Session& s, const std::string& id, long long limit, const std::string& order,
               const std::string& cursor, const std::string& as_of) {
  std::string target = AccountPath(id) + "/history";
  if (!as_of.empty()) {
    target += "?as_of=" + PercentEncode(as_of);
  } else {
    target += "?limit=" + std::to_string(limit) + "&order=" + order;
    if (!cursor.empty()) target += "&cursor=" + PercentEncode(cursor);
  }
  CallResult r = Call(s, "GET", target, "");
  auto row = [](const json& l) {
    std::cout << Scalar(l.value("time", json("?"))) << "  " << std::setw(10) << std::left
              << (Scalar(l.value("region", json("?"))) + ":" + Scalar(l.value("seq", json("?"))))
              << std::setw(13) << Scalar(l.value("kind", json("?"))) << std::setw(10) << std::right
              << Scalar(l.value("change", json("?"))) << "  balance "
              << Scalar(l.value("balance_after", json("?")));
    if (l.value("fee", 0) != 0) std::cout << "  fee " << Scalar(l["fee"]);
    if (l.value("voided", false))
      std::cout << "  voided (" << Scalar(l.value("void", json(0))) << ")";
    if (!l.value("final", true)) std::cout << "  tentative";
    if (l.contains("counterparty")) std::cout << "  with " << Scalar(l["counterparty"]);
    if (l.contains("hold")) std::cout << "  hold " << Scalar(l["hold"]);
    if (l.contains("idempotency_key")) std::cout << "  key " << Scalar(l["idempotency_key"]);
    std::cout << std::left << "\n";
  };
  return Output(s, r, [&](const json& b) {
    if (!as_of.empty()) {
      std::cout << id << " at " << Scalar(b.value("as_of", json("?"))) << ": balance "
                << Scalar(b.value("balance", json("?"))) << " "
                << Scalar(b.value("currency", json(""))) << ", after\n";
      if (b.contains("line")) row(b["line"]);
      return;
    }
    const json& lines = b.contains("lines") ? b["lines"] : json::array();
    for (const json& l : lines) row(l);
    if (lines.empty()) std::cout << "no lines\n";
    if (b.contains("next_cursor") && b["next_cursor"].is_string())
      std::cout << "more: tallyctl account history " << id << " --limit " << limit << " --order "
                << order << " --cursor " << b["next_cursor"].get<std::string>() << "\n";
  });
}

int CmdShow(const Session& s, const std::string& id) {
  CallResult r = Call(s, "GET", AccountPath(id), "");
  return Output(s, r, [](const json& b) { PrintAccount(b); });
}

// A money request's note: --memo TEXT and --meta KEY=VALUE (repeatable), sent as the body's
// "memo" and "metadata" (in the order given). Their bounds are the server's to check.
struct NoteOptions {
  std::string memo;
  std::vector<std::string> meta;
};

void AddNoteOptions(CLI::App* c, NoteOptions* n) {
  c->add_option("--memo", n->memo, "a note stored with the op (at most 140 bytes of UTF-8)");
  c->add_option("--meta", n->meta,
                "a metadata pair stored with the op; repeat for more (at most 16 pairs, 1 KiB)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        return v.find('=') == std::string::npos || v.front() == '='
                   ? "must be KEY=VALUE with a non-empty KEY, got '" + v + "'"
                   : std::string();
      });
}

// The body of a money request with its note. Usage error (false, *error set) for a key given
// twice: a JSON object would keep only one of them.
bool WithNote(const NoteOptions& n, ordered_json body, ordered_json* out, std::string* error) {
  if (!n.memo.empty()) body["memo"] = n.memo;
  for (const std::string& pair : n.meta) {
    const std::size_t eq = pair.find('=');
    const std::string k = pair.substr(0, eq);
    if (body.contains("metadata") && body["metadata"].contains(k)) {
      *error = "--meta " + k + " is given twice";
      return false;
    }
    body["metadata"][k] = pair.substr(eq + 1);
  }
  *out = std::move(body);
  return true;
}

// A money request that needs an idempotency key (credit, debit, transfer): generates one if none
// is given and prints it, so a retry after a lost answer is safe. `done` says what happened
// ("debited 5 from alice").
int CmdMove(const Session& s, const std::string& path, const ordered_json& body, std::string key,
            const std::string& done) {
  const bool generated = key.empty();
  if (generated) key = GenerateIdempotencyKey();
  CallResult r = Call(s, "POST", path, body.dump(), {{"Idempotency-Key", key}});
  if (r.exit_code == kExitUnreachable && generated) {
    // The request may have been applied: the key is what makes a retry safe.
    std::cerr << "tallyctl: retry with --idempotency-key " << key << "\n";
  }
  if (r.exit_code == kExitOk && (s.json_output || !s.get.empty())) {
    json out = r.body.is_object() ? r.body : json::object();
    out["idempotency_key"] = key;
    if (!s.get.empty()) return PrintField(s, out);
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  return Output(s, r, [&](const json& b) {
    std::cout << done;
    if (b.contains("op") && b["op"].is_object())
      std::cout << " as op " << Scalar(b["op"].value("region", json("?"))) << ":"
                << Scalar(b["op"].value("seq", json("?")));
    if (b.contains("balance")) std::cout << "; balance " << Scalar(b["balance"]);
    if (b.contains("payee_balance")) std::cout << ", payee's " << Scalar(b["payee_balance"]);
    if (b.contains("hold")) std::cout << "; hold " << Scalar(b["hold"]);
    if (b.contains("source")) std::cout << "; paid by " << Scalar(b["source"]);
    if (b.contains("payers") && b["payers"].is_array() && b["payers"].size() > 1) {
      std::cout << " (debited:";
      for (const json& p : b["payers"]) std::cout << " " << Scalar(p);
      std::cout << ")";
    }
    if (b.value("overdraft", false)) std::cout << " (on the overdraft line)";
    if (b.contains("memo")) std::cout << "; memo " << b["memo"].dump();
    if (b.value("replayed", false))
      std::cout << " (replayed: the stored answer to the first request with this key; nothing "
                   "new was done)";
    std::cout << "\n";
    std::cout << "idempotency key: " << key << (generated ? " (generated)" : "") << "\n";
  });
}

// A capture or release: the hold is their key, so none is sent.
int CmdResolve(const Session& s, const std::string& hold, const std::string& verb, const json& body,
               const std::string& done) {
  CallResult r = Call(s, "POST", "/v1/holds/" + PercentEncode(hold) + "/" + verb, body.dump());
  return Output(s, r, [&](const json& b) {
    std::cout << done;
    if (b.contains("captured")) std::cout << " " << Scalar(b["captured"]);
    if (b.contains("balance")) std::cout << "; balance " << Scalar(b["balance"]);
    // A retry of a resolution that lost to another (or went with a duplicate hold).
    if (b.value("voided", false)) std::cout << " (voided: see the account's report)";
    std::cout << "\n";
  });
}

int CmdHoldStatus(const Session& s, const std::string& hold) {
  CallResult r = Call(s, "GET", "/v1/holds/" + PercentEncode(hold), "");
  return Output(s, r, [](const json& b) { PrintTree(b, 0, std::cout); });
}

int CmdRights(const Session& s, const std::string& id, const std::string& to, long long amount,
              const std::string& key) {
  json body = {{"to", to}, {"amount", amount}};
  Headers h;
  if (!key.empty()) h.emplace_back("Idempotency-Key", key);
  CallResult r = Call(s, "POST", AccountPath(id) + "/rights", body.dump(), h);
  return Output(s, r, [&](const json& b) {
    std::cout << "moved rights of " << amount << " on " << id << " to region " << to << "\n";
    if (b.is_object() && !b.empty()) PrintTree(b, 1, std::cout);
  });
}

// The report for people: the numbers, then each fork with its explanation. The JSON is the
// report renderer's (src/report), with tallyd's one account in "accounts".
void PrintReport(const json& rep) {
  if (!rep.is_object() || !rep.contains("accounts") || !rep["accounts"].is_array() ||
      rep["accounts"].size() != 1 || !rep["accounts"][0].is_object()) {
    PrintTree(rep, 0, std::cout);
    return;
  }
  const json& a = rep["accounts"][0];
  const json config = a.value("config", json::object());
  auto get = [](const json& j, const char* k) {
    return j.contains(k) ? Scalar(j[k]) : std::string("?");
  };
  std::cout << "reconciliation report for " << get(config, "id") << " (" << get(config, "currency")
            << "), as region " << get(rep, "view_region") << " sees it"
            << (a.value("stale", false) ? " (rejoining: it may lack ops)" : "") << "\n";
  std::cout << "  balance " << get(a, "balance")
            << (a.value("tentative", false) ? " (tentative)" : " (final)") << ", final balance "
            << get(a, "final_balance") << ", raw balance " << get(a, "raw_balance")
            << " (credits - debits, before fees and voids)\n";
  std::cout << "  fees " << get(a, "fees") << ", voids " << get(a, "voids")
            << ", overdraft episodes " << get(a, "episodes") << ", overdraft limit "
            << get(config, "overdraft_limit") << "\n";
  if (a.contains("regions") && a["regions"].is_array()) {
    for (const auto& r : a["regions"]) {
      std::cout << "    " << std::left << std::setw(6) << get(r, "region") << " rights "
                << std::setw(8) << get(r, "rights") << " line " << std::setw(6)
                << get(r, "overdraft_line") << " fees " << std::setw(6) << get(r, "fees")
                << " voids " << get(r, "voids") << "\n";
    }
  }
  if (a.contains("forks") && a["forks"].is_array()) {
    std::size_t final_forks = 0;
    for (const auto& f : a["forks"]) final_forks += f.value("final", false) ? 1 : 0;
    std::cout << "  forks: " << a["forks"].size() << " (" << final_forks << " final)\n";
    for (const auto& f : a["forks"]) {
      std::cout << "    - " << (f.value("final", false) ? "[final] " : "[tentative] ")
                << (f.contains("explanation") ? Scalar(f["explanation"]) : f.dump()) << "\n";
      if (f.contains("ops") && f["ops"].is_array()) {
        for (const auto& op : f["ops"]) {
          std::cout << "        op " << get(op, "region") << ":" << get(op, "seq") << " "
                    << get(op, "kind");
          if (op.contains("amount")) std::cout << " " << Scalar(op["amount"]);
          if (op.contains("key")) std::cout << " key " << Scalar(op["key"]);
          if (op.value("overdraft", false)) std::cout << " (overdraft)";
          std::cout << " at hlc " << get(op, "hlc") << "\n";
        }
      }
    }
  }
  if (a.contains("events") && a["events"].is_array())
    std::cout << "  derived events: " << a["events"].size()
              << " (fees and voids, in canonical order)\n";
  std::cout << "  state digest " << get(a, "digest") << ", frontier " << get(a, "frontier") << "\n";
}

int CmdReport(const Session& s, const std::string& id, bool html, const std::string& out_file) {
  CallResult r =
      Call(s, "GET", AccountPath(id) + "/report" + (html ? "?format=html" : ""), "", {}, !html);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (!out_file.empty()) {
    std::ofstream f(out_file, std::ios::binary);
    f << r.raw_body;  // as tallyd's report renderer (src/report) wrote it, JSON or HTML
    if (!f) {
      std::cerr << "tallyctl: cannot write " << out_file << "\n";
      return kExitUsage;
    }
    if (!s.json_output)
      std::cout << "wrote " << (html ? "HTML" : "JSON") << " report for " << id << " to "
                << out_file << "\n";
    return kExitOk;
  }
  if (html)
    std::cout << r.raw_body;
  else if (!s.get.empty())
    return PrintField(s, r.body);
  else if (s.json_output)
    std::cout << r.body.dump() << "\n";
  else
    PrintReport(r.body);
  return kExitOk;
}

void PrintCluster(const json& c) {
  auto get = [&](const json& j, const char* k) {
    return j.contains(k) ? Scalar(j[k]) : std::string("?");
  };
  std::cout << "region " << get(c, "region") << " of cluster " << get(c, "cluster_id") << "\n";
  for (const char* k : {"applied", "frontier", "clock", "accounts"}) {
    if (!c.contains(k)) continue;
    std::cout << "  " << k << ": " << (c[k].is_structured() ? c[k].dump() : Scalar(c[k])) << "\n";
  }
  if (c.contains("peers") && c["peers"].is_array()) {
    std::cout << "  peers:\n";
    for (const auto& p : c["peers"]) {
      std::cout << "    " << get(p, "region") << ": "
                << (p.value("connected", false) ? "connected" : "NOT connected") << ", "
                << (p.value("reachable", false) ? "reachable" : "UNREACHABLE") << ", "
                << get(p, "ops_behind") << " ops behind, last heard " << get(p, "last_heard_ago_ms")
                << " ms ago, clock offset " << get(p, "clock_offset_ms") << " ms\n";
    }
  }
}

// True when every peer is connected and reachable and the node has rejoined (serves writes).
bool AllPeersUp(const json& cluster) {
  if (!cluster.is_object() || !cluster.contains("peers") || !cluster["peers"].is_array())
    return false;
  if (cluster.value("rejoining", false)) return false;
  for (const auto& p : cluster["peers"])
    if (!p.value("connected", false) || !p.value("reachable", false)) return false;
  return true;
}

// True when the node reports every peer disconnected and unreachable (a partition it has noticed).
bool AllPeersDown(const json& cluster) {
  if (!cluster.is_object() || !cluster.contains("peers") || !cluster["peers"].is_array())
    return false;
  for (const auto& p : cluster["peers"])
    if (p.value("connected", true) || p.value("reachable", true)) return false;
  return true;
}

int CmdCluster(const Session& s, double wait_connected_s, double wait_disconnected_s) {
  const bool waiting = wait_connected_s > 0 || wait_disconnected_s > 0;
  const double wait_s = std::max(wait_connected_s, wait_disconnected_s);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  CallResult r;
  for (;;) {
    // While waiting, failures are retried silently; the last one is reported below.
    r = Call(s, "GET", "/v1/cluster", "", {}, true, /*quiet=*/waiting);
    if (!waiting) break;
    if (r.exit_code == kExitOk &&
        (wait_connected_s > 0 ? AllPeersUp(r.body) : AllPeersDown(r.body)))
      break;
    if (std::chrono::steady_clock::now() >= deadline) {
      if (r.exit_code == kExitOk) {
        std::cerr << "tallyctl: " << s.url.ToString() << " still sees "
                  << (wait_connected_s > 0 ? "a peer disconnected"
                                           : "a peer connected or reachable")
                  << " after " << wait_s << " s\n";
        Output(s, r, [](const json& b) { PrintCluster(b); });
        return kExitNotOk;
      }
      r = Call(s, "GET", "/v1/cluster", "");  // once more, reporting why it fails
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Output(s, r, [](const json& b) { PrintCluster(b); });
}

// POST /v1/admin/backup. The directory is on tallyd's host and sent as given: tallyd decides
// whether it is acceptable (absolute, new or empty, outside its data directory).
int CmdBackup(const Session& s, const std::string& dir) {
  CallResult r = Call(s, "POST", "/v1/admin/backup", json{{"dir", dir}}.dump());
  return Output(s, r, [&](const json& b) {
    auto get = [&](const char* k) { return b.contains(k) ? Scalar(b[k]) : std::string("?"); };
    std::cout << "backup of region " << get("region") << " written to " << get("dir") << ": "
              << get("keys") << " records (" << get("ops") << " ops, " << get("bytes")
              << " bytes) in " << get("elapsed_ms") << " ms\n";
    if (b.contains("newest") && b["newest"].is_object()) {
      std::cout << "  newest ops held:";
      for (const auto& [region, seq] : b["newest"].items())
        std::cout << " " << region << ":" << Scalar(seq);
      std::cout << "\n";
    }
  });
}

int CmdMetrics(const Session& s) {
  CallResult r = Call(s, "GET", "/metrics", "", {}, false);
  if (r.exit_code == kExitOk) std::cout << r.raw_body;
  return r.exit_code;
}

int CmdHealth(const Session& s, double wait_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  int last = kExitUnreachable;
  std::string last_error;
  for (;;) {
    HttpClient client(s.url, s.timeout, s.tls);
    HttpResponse res;
    std::string error;
    if (client.Request("GET", "/healthz", "", {}, &res, &error)) {
      if (res.status == 200) {
        if (s.json_output) {
          json b = json::parse(res.body, nullptr, false);
          std::cout << (b.is_discarded() ? json{{"status", "ok"}} : b).dump() << "\n";
        } else {
          std::cout << s.url.ToString() << " is healthy\n";
        }
        return kExitOk;
      }
      last = kExitServerError;
      last_error = "HTTP " + std::to_string(res.status) + " " + res.body;
    } else {
      last = kExitUnreachable;
      last_error = error;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "tallyctl: " << s.url.ToString() << " not healthy: " << last_error << "\n";
  return wait_s > 0 ? kExitNotOk : last;
}

// One stream message as a person reads it: an account's state ("shop-1: balance 1205, …"), the ops
// of an event ("shop-1: debit 100 eu:42 key order-77 (tentative)") or its final lines ("shop-1:
// final debit 100 eu:42, fee 0, void 0, balance after 1205"), then the accounts' state; anything
// else as its JSON.
void PrintStreamMessage(const std::string& text) {
  json m = json::parse(text, nullptr, false);
  auto state = [](const json& a) {
    if (!a.is_object() || !a.contains("id") || !a.contains("balance")) return false;
    std::cout << Scalar(a["id"]) << ": balance " << Scalar(a["balance"]);
    for (const char* f : {"available", "held", "final_balance", "fees", "voids"})
      if (a.contains(f)) std::cout << ", " << f << " " << Scalar(a[f]);
    if (a.value("tentative", false)) std::cout << " (tentative)";
    std::cout << "\n";
    return true;
  };
  auto op = [](const json& o, bool final) {
    if (!o.is_object()) return;
    std::cout << Scalar(o.value("account", json(""))) << ": " << (final ? "final " : "")
              << Scalar(o.value("kind", json(""))) << " " << Scalar(o.value("amount", json(0)))
              << " " << Scalar(o.value("region", json(""))) << ":"
              << Scalar(o.value("seq", json(0)));
    if (o.contains("to")) std::cout << " to " << Scalar(o["to"]);
    if (o.contains("counterparty")) std::cout << " with " << Scalar(o["counterparty"]);
    if (o.contains("idempotency_key")) std::cout << " key " << Scalar(o["idempotency_key"]);
    if (o.contains("memo")) std::cout << " \"" << Scalar(o["memo"]) << "\"";
    if (final) {
      std::cout << ", fee " << Scalar(o.value("fee", json(0))) << ", void "
                << Scalar(o.value("void", json(0))) << ", balance after "
                << Scalar(o.value("balance_after", json(0)));
      if (o.value("voided", false)) std::cout << " (voided)";
    } else {
      std::cout << " (tentative)";
    }
    std::cout << "\n";
  };
  bool shown = false;
  if (m.is_object() && m.value("type", "") == "account") shown = state(m["account"]);
  if (m.is_object() && m.value("type", "") == "event") {
    const bool final = m.value("final", false);
    for (const json& o : m.value(final ? "lines" : "ops", json::array())) op(o, final);
    for (const json& a : m.value("accounts", json::array())) state(a);
    shown = true;
  }
  if (!shown) std::cout << (m.is_discarded() ? text : m.dump()) << "\n";
  std::cout << std::flush;
}

int CmdWatch(const Session& s, const std::string& accounts, const std::string& after,
             long long count, double for_s) {
  WsReader ws(s.url, s.timeout, s.tls);
  Headers h;
  if (!s.token.empty()) h.emplace_back("Authorization", "Bearer " + s.token);
  std::string error;
  std::string target = "/v1/stream?accounts=";
  bool first = true;
  std::stringstream list(accounts);
  for (std::string a; std::getline(list, a, ',');) {
    target += (first ? "" : ",") + PercentEncode(a);
    first = false;
  }
  if (!after.empty()) target += "&after=" + PercentEncode(after);
  if (!ws.Open(target, h, &error)) {
    std::cerr << "tallyctl: " << error << "\n";
    if (error.find("(HTTP 4") != std::string::npos) return kExitClientError;
    if (error.find("(HTTP 5") != std::string::npos) return kExitServerError;
    return kExitUnreachable;
  }
  if (!s.json_output) std::cerr << "watching " << accounts << " (Ctrl-C to stop)\n";
  const bool bounded = for_s > 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(for_s);
  long long seen = 0;
  while (count <= 0 || seen < count) {
    auto slice = std::chrono::milliseconds(500);
    if (bounded) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      slice = std::min(slice, left);
    }
    std::string msg;
    int got = ws.Next(slice, &msg, &error);
    if (got < 0) {
      std::cerr << "tallyctl: stream ended: " << error << "\n";
      return kExitUnreachable;
    }
    if (got == 0) continue;
    ++seen;
    if (s.json_output) {
      std::cout << msg << std::endl;
      continue;
    }
    PrintStreamMessage(msg);
  }
  return kExitOk;
}

// Asks one node for everything reconcile compares.
NodeAnswer AskNode(const Session& base, const std::string& url_text, const std::string& id) {
  NodeAnswer a;
  a.url = url_text;
  Session s = base;
  if (!Url::Parse(url_text, &s.url, &a.error)) return a;
  HttpClient client(s.url, s.timeout, s.tls);
  Headers h;
  if (!s.token.empty()) h.emplace_back("Authorization", "Bearer " + s.token);
  auto get = [&](const std::string& target, json* out) -> bool {
    HttpResponse res;
    std::string error;
    if (!client.Request("GET", target, "", h, &res, &error)) {
      a.error = error;
      return false;
    }
    *out = json::parse(res.body, nullptr, false);
    if (res.status != 200 || out->is_discarded()) {
      a.error = "GET " + target + ": HTTP " + std::to_string(res.status) + " " + res.body;
      *out = nullptr;
      return false;
    }
    return true;
  };
  json cluster;
  HttpResponse res;
  std::string ignored;
  if (client.Request("GET", "/v1/cluster", "", h, &res, &ignored) && res.status == 200) {
    cluster = json::parse(res.body, nullptr, false);
    if (cluster.is_object() && cluster.contains("region")) {
      const json& r = cluster["region"];
      a.region = r.is_string()
                     ? r.get<std::string>()
                     : (r.is_object() && r.contains("name") ? Scalar(r["name"]) : r.dump());
    }
  }
  if (get(AccountPath(id), &a.account)) get(AccountPath(id) + "/report", &a.report);
  return a;
}

int CmdReconcile(const Session& s, const std::vector<std::string>& nodes, const std::string& id,
                 double wait_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  Agreement agreement;
  std::vector<NodeAnswer> answers;
  for (;;) {
    answers.clear();
    for (const auto& n : nodes) answers.push_back(AskNode(s, n, id));
    agreement = CompareAnswers(id, answers);
    if (agreement.agree || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  bool unreachable = false;
  for (const auto& a : answers) unreachable |= !a.error.empty();
  if (s.json_output) {
    std::cout << agreement.summary.dump() << "\n";
  } else {
    std::cout << "account " << id << " across " << nodes.size() << " regions:\n";
    // Columns people read; every field of AgreementFields() is compared all the same.
    struct Column {
      const char* label;
      int width;
    };
    const Column columns[] = {
        {"balance", 12}, {"fees", 8}, {"voids", 8}, {"events", 8}, {"digest", 18}};
    std::ostringstream header;
    header << "  " << std::setw(26) << std::left << "node" << std::setw(8) << "region";
    for (const auto& c : columns) header << std::setw(c.width) << c.label;
    std::cout << header.str() << "\n";
    for (const auto& n : agreement.summary["nodes"]) {
      std::ostringstream row;
      row << "  " << std::setw(26) << std::left << n["url"].get<std::string>() << std::setw(8)
          << n["region"].get<std::string>();
      if (n.contains("error")) {
        row << "error: " << n["error"].get<std::string>();
      } else {
        for (const auto& c : columns) {
          const json& v = n.contains(c.label) ? n[c.label] : json(nullptr);
          std::string text = v.is_null()    ? "-"
                             : v.is_array() ? std::to_string(v.size())
                                            : Scalar(v);
          row << std::setw(c.width) << text;
        }
      }
      std::cout << row.str() << "\n";
    }
    if (agreement.agree) {
      std::cout << "AGREE: every region reports the same balance, fees, voids, derived events and "
                   "state digest\n";
    } else {
      std::cout << "DISAGREE:\n";
      for (const auto& d : agreement.differences) std::cout << "  " << d << "\n";
    }
  }
  if (agreement.agree) return kExitOk;
  return unreachable ? kExitUnreachable : kExitNotOk;
}

// "A subcommand is required" is CLI11's word for a subcommand it does not know, too: say which
// word was not understood and what would have been. True when that was said.
bool UnknownSubcommand(CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr) return false;
  CLI::App* at = &app;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (CLI::App* sub : at->get_subcommands()) {
      at = sub;
      deeper = true;
      break;
    }
  }
  std::vector<std::string> rest = app.remaining();
  if (rest.empty() || at->get_subcommands({}).empty()) return false;
  std::string names;
  for (const CLI::App* sub : at->get_subcommands({}))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  std::cerr << "tallyctl: unknown subcommand '" << rest.front() << "'"
            << (at == &app ? std::string() : " of '" + at->get_name() + "'")
            << " (expected one of: " << names << ")\nRun with --help for more information.\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tallyctl: drive a tally cluster (tallyd) from the command line."};
  app.set_version_flag("--version", tally::VersionLine("tallyctl"));
  app.footer(kExitCodeHelp);
  app.require_subcommand(1);
  app.fallthrough();

  Options opt;
  const char* env_url = std::getenv("TALLY_URL");
  const char* env_token = std::getenv("TALLY_TOKEN");
  opt.url_text = env_url && *env_url ? env_url : kDefaultUrl;
  if (env_token) opt.token = env_token;
  app.add_option("--url", opt.url_text,
                 "tallyd client API, http://HOST:PORT or https://HOST:PORT (env TALLY_URL)")
      ->capture_default_str();
  app.add_option("--token", opt.token, "bearer token (env TALLY_TOKEN)");
  app.add_option("--token-file", opt.token_file, "read the bearer token from this file");
  app.add_option("--cacert", opt.cacert,
                 "PEM CA bundle to verify an https server with (default: the system's trust "
                 "store)")
      ->type_name("FILE")
      ->envname("TALLY_CACERT");
  app.add_flag("--json", opt.json_output, "print JSON instead of text");
  app.add_option("--get", opt.get,
                 "print only this field of the JSON answer, e.g. regions.eu.rights or /balance");
  app.add_option("--timeout-ms", opt.timeout_ms, "deadline for each request")
      ->check(CLI::Range(1LL, 3600000LL))
      ->capture_default_str();

  // account
  auto* account = app.add_subcommand("account", "open, list, history, show, credit, debit, rights");
  account->require_subcommand(1);
  std::string id, currency, to, key;
  long long amount = 0, limit = 0, fee_flat = 0, fee_bps = 0;
  auto* open = account->add_subcommand("open", "open an account");
  open->add_option("id", id, "account id")->required();
  open->add_option("--currency", currency, "ISO 4217 code, e.g. EUR")->required();
  open->add_option("--overdraft-limit", limit, "overdraft limit in minor units")
      ->capture_default_str();
  open->add_option("--fee-flat", fee_flat, "overdraft fee: flat part, minor units")
      ->capture_default_str();
  open->add_option("--fee-bps", fee_bps, "overdraft fee: basis points of the overdrawn amount")
      ->capture_default_str();
  std::string parent;
  bool cap = false;
  open->add_option("--parent", parent,
                   "the budget above this one (an open account, same currency)");
  open->add_flag("--cap", cap, "a spending cap inside the parent: a debit takes from both")
      ->needs(open->get_option("--parent"));
  std::string prefix, cursor;
  long long list_limit = 100;
  auto* list = account->add_subcommand("list", "list the accounts the token may read, by id");
  list->add_option("--prefix", prefix, "only ids that start with this");
  list->add_option("--limit", list_limit, "at most this many (1..1000)")
      ->check(CLI::Range(1LL, 1000LL))
      ->capture_default_str();
  list->add_option("--cursor", cursor, "the page after the one that printed this cursor");
  long long history_limit = 20;
  std::string order = "desc", as_of;
  auto* history = account->add_subcommand(
      "history", "the account's statement: its ops with fees, voids and the balance after each");
  history->add_option("id", id, "account id")->required();
  history->add_option("--limit", history_limit, "at most this many lines (1..1000)")
      ->check(CLI::Range(1LL, 1000LL))
      ->capture_default_str();
  history->add_option("--order", order, "desc (newest first) or asc")
      ->check(CLI::IsMember({"asc", "desc"}))
      ->capture_default_str();
  history->add_option("--cursor", cursor, "the page after the one that printed this cursor");
  history->add_option("--as-of", as_of,
                      "the final balance at a UTC time (2026-12-05T07:00:00Z) or Unix ms");
  auto* show = account->add_subcommand("show", "show balance, rights and overdraft lines");
  NoteOptions note;  // credit, debit, transfer, hold
  show->add_option("id", id, "account id")->required();
  auto add_move = [&](const char* name, const char* help) {
    auto* c = account->add_subcommand(name, help);
    c->add_option("id", id, "account id")->required();
    c->add_option("amount", amount, "amount in minor units (a positive integer)")
        ->required()
        ->check(kPositiveAmount);
    c->add_option("--idempotency-key", key,
                  "reuse to retry safely; generated and printed if absent");
    AddNoteOptions(c, &note);
    return c;
  };
  auto* credit = add_move("credit", "credit an account");
  auto* debit = add_move("debit", "debit an account (exit 1 on insufficient funds)");
  bool fallback = false;
  debit->add_flag(
      "--fallback", fallback,
      "let the first ancestor budget that covers the amount here pay (one the token may "
      "debit)");
  // "account transfer" was its name before 0.2 (kept as an alias for one version): money between
  // accounts is the top-level "transfer".
  auto* rights =
      account->add_subcommand("rights", "move spending rights from this region to another");
  rights->alias("transfer");
  rights->add_option("id", id, "account id")->required();
  rights->add_option("amount", amount, "amount in minor units")->required()->check(kPositiveAmount);
  rights->add_option("--to", to, "receiving region")->required();
  rights->add_option("--idempotency-key", key, "optional idempotency key");

  // transfer: money between accounts (the rights move is "account rights")
  std::string payee;
  auto* transfer = app.add_subcommand(
      "transfer", "move money from one account to another (exit 1 on insufficient funds)");
  transfer->add_option("from", id, "the account paying")->required();
  transfer->add_option("to", payee, "the account paid")->required();
  transfer->add_option("amount", amount, "amount in minor units (a positive integer)")
      ->required()
      ->check(kPositiveAmount);
  transfer->add_option("--idempotency-key", key,
                       "reuse to retry safely; generated and printed if absent");
  AddNoteOptions(transfer, &note);

  // holds: place, capture, release, look up
  long long expires_in_ms = 600000;
  std::string hold_id;
  auto* hold =
      app.add_subcommand("hold",
                         "reserve an amount of an account, to capture or release later (exit 1 on "
                         "insufficient funds)");
  hold->add_option("id", id, "account id")->required();
  hold->add_option("amount", amount, "amount in minor units (a positive integer)")
      ->required()
      ->check(kPositiveAmount);
  hold->add_option("--expires-in-ms", expires_in_ms, "released unless captured by then")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  hold->add_option("--idempotency-key", key,
                   "reuse to retry safely; generated and printed if absent");
  AddNoteOptions(hold, &note);
  long long capture_amount = 0;
  auto* capture = app.add_subcommand("capture", "take a hold's amount, or part of it");
  capture->add_option("hold", hold_id, "hold id, as `hold` printed it (eu.42)")->required();
  capture->add_option("amount", capture_amount, "at most the held amount; all of it if absent")
      ->check(kPositiveAmount);
  auto* release = app.add_subcommand("release", "give a hold back");
  release->add_option("hold", hold_id, "hold id")->required();
  auto* hold_status = app.add_subcommand("hold-status", "a hold: amount, expiry, state");
  hold_status->add_option("hold", hold_id, "hold id")->required();

  // report
  bool html = false;
  std::string out_file;
  auto* report = app.add_subcommand("report", "an account's reconciliation report");
  report->add_option("id", id, "account id")->required();
  report->add_flag("--html", html, "the HTML page instead of JSON");
  report->add_option("--out", out_file, "write to this file instead of stdout");

  // cluster status
  auto* cluster = app.add_subcommand("cluster", "cluster state");
  cluster->require_subcommand(1);
  auto* cluster_status =
      cluster->add_subcommand("status", "this region, its peers, vectors, frontier");
  double wait_connected_s = 0;
  double wait_disconnected_s = 0;
  auto* wc = cluster_status->add_option(
      "--wait-connected", wait_connected_s,
      "wait up to this many seconds for every peer to be connected (exit 1 if not)");
  wc->check(CLI::NonNegativeNumber);
  cluster_status
      ->add_option("--wait-disconnected", wait_disconnected_s,
                   "wait up to this many seconds until no peer is connected or reachable")
      ->check(CLI::NonNegativeNumber)
      ->excludes(wc);

  // watch
  std::string accounts;
  long long count = 0;
  double for_s = 0;
  auto* watch = app.add_subcommand("watch", "stream changes to accounts (WebSocket /v1/stream)");
  watch->add_option("accounts", accounts, "comma-separated account ids")->required();
  watch->add_option("--count", count, "stop after this many messages")
      ->check(CLI::NonNegativeNumber);
  watch->add_option("--for-s", for_s, "stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  std::string watch_after;
  watch->add_option("--after", watch_after,
                    "resume after this cursor (a message's \"cursor\"): replays the final lines "
                    "missed since");

  // reconcile
  std::vector<std::string> nodes;
  double wait_s = 0;
  auto* reconcile =
      app.add_subcommand("reconcile", "do the regions agree about an account? (exit 1 if not)");
  reconcile
      ->add_option("--nodes", nodes,
                   "client URLs of the regions, comma-separated (env TALLY_NODES, as "
                   "`scripts/cluster env` sets it)")
      ->required()
      ->delimiter(',')
      ->envname("TALLY_NODES");
  reconcile->add_option("--account", id, "account id")->required();
  reconcile
      ->add_option("--wait-s", wait_s, "keep asking until they agree or this many seconds pass")
      ->check(CLI::NonNegativeNumber);

  // health, metrics
  double health_wait_s = 0;
  auto* health = app.add_subcommand("health", "GET /healthz (no token needed)");
  health->add_option("--wait-s", health_wait_s, "keep trying for this many seconds")
      ->check(CLI::NonNegativeNumber);
  auto* metrics = app.add_subcommand("metrics", "GET /metrics (Prometheus text)");

  // backup
  std::string backup_to;
  auto* backup = app.add_subcommand(
      "backup", "copy this region's store, while it serves, into a new directory on its host");
  backup
      ->add_option("--to", backup_to,
                   "absolute path on tallyd's host: a new or empty directory outside its data "
                   "directory")
      ->required();
  auto* timeout_option = app.get_option("--timeout-ms");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (UnknownSubcommand(app, e)) return kExitUsage;
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  Session s;
  std::string error;
  if (!Url::Parse(opt.url_text, &s.url, &error)) {
    std::cerr << "tallyctl: --url: " << error << "\n";
    return kExitUsage;
  }
  if (!opt.token_file.empty() && !ReadTokenFile(opt.token_file, &opt.token)) {
    std::cerr << "tallyctl: cannot read a token from " << opt.token_file << "\n";
    return kExitUsage;
  }
  // A CA file that cannot be used is a mistake in the command, not an unreachable server.
  s.tls.ca_file = opt.cacert;
  if (!opt.cacert.empty()) {
    std::unique_ptr<boost::asio::ssl::context> probe;
    if (!MakeClientTlsContext(s.tls, &probe, &error)) {
      std::cerr << "tallyctl: --cacert: " << error << "\n";
      return kExitUsage;
    }
  }
  TrimToken(&opt.token);
  s.token = opt.token;
  s.json_output = opt.json_output;
  s.get = opt.get;
  s.timeout = std::chrono::milliseconds(opt.timeout_ms);
  // A copy of a large store takes longer than any other request: unless told otherwise, wait.
  if (backup->parsed() && timeout_option->count() == 0) s.timeout = kBackupTimeout;

  if (open->parsed()) return CmdOpen(s, id, currency, limit, fee_flat, fee_bps, parent, cap);
  if (show->parsed()) return CmdShow(s, id);
  if (list->parsed()) return CmdList(s, prefix, list_limit, cursor);
  if (history->parsed()) return CmdHistory(s, id, history_limit, order, cursor, as_of);
  // A money request: its body with the note, sent by CmdMove.
  auto send_move = [&](const std::string& path, ordered_json body, const std::string& done) {
    if (!WithNote(note, std::move(body), &body, &error)) {
      std::cerr << "tallyctl: " << error << "\n";
      return kExitUsage;
    }
    return CmdMove(s, path, body, key, done);
  };
  if (credit->parsed())
    return send_move(AccountPath(id) + "/credits", {{"amount", amount}},
                     "credited " + std::to_string(amount) + " to " + id);
  if (debit->parsed())
    return send_move(AccountPath(id) + "/debits",
                     fallback ? ordered_json{{"amount", amount}, {"fallback", true}}
                              : ordered_json{{"amount", amount}},
                     "debited " + std::to_string(amount) + " from " + id);
  if (transfer->parsed())
    return send_move("/v1/transfers", {{"from", id}, {"to", payee}, {"amount", amount}},
                     "transferred " + std::to_string(amount) + " from " + id + " to " + payee);
  if (rights->parsed()) return CmdRights(s, id, to, amount, key);
  if (hold->parsed())
    return send_move(AccountPath(id) + "/holds",
                     {{"amount", amount}, {"expires_in_ms", expires_in_ms}},
                     "held " + std::to_string(amount) + " of " + id);
  if (capture->parsed())
    return CmdResolve(s, hold_id, "capture",
                      capture_amount > 0 ? json{{"amount", capture_amount}} : json::object(),
                      "captured hold " + hold_id + ":");
  if (release->parsed())
    return CmdResolve(s, hold_id, "release", json::object(), "released hold " + hold_id);
  if (hold_status->parsed()) return CmdHoldStatus(s, hold_id);
  if (report->parsed()) return CmdReport(s, id, html, out_file);
  if (cluster_status->parsed()) return CmdCluster(s, wait_connected_s, wait_disconnected_s);
  if (watch->parsed()) return CmdWatch(s, accounts, watch_after, count, for_s);
  if (reconcile->parsed()) return CmdReconcile(s, nodes, id, wait_s);
  if (health->parsed()) return CmdHealth(s, health_wait_s);
  if (metrics->parsed()) return CmdMetrics(s);
  if (backup->parsed()) return CmdBackup(s, backup_to);
  return kExitUsage;
}
