#include "node/api.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>

#include "core/ids.h"
#include "core/validate.h"

namespace tally::node {

namespace {

// Ordered: a note's metadata keeps the order of the body (docs/operations.md). Bodies are small,
// so the linear lookups cost nothing that matters.
using json = nlohmann::ordered_json;

constexpr std::array<std::string_view, kRouteCount> kRouteNames = {
    "open_account", "get_account",   "credit",   "debit",   "rights",  "report",
    "cluster",      "stream",        "metrics",  "healthz", "readyz",  "backup",
    "transfer",     "hold",          "get_hold", "capture", "release", "list_accounts",
    "history",      "operator_page", "batch",    "unknown",
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0)
      return Status::InvalidArgument("bad percent-encoding in the request target");
    out->push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
    i += 2;
  }
  return Status::OK();
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find(sep, start);
    parts.push_back(
        s.substr(start, pos == std::string_view::npos ? s.size() - start : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

Status ParseQuery(std::string_view query, const std::set<std::string_view>& allowed,
                  std::vector<std::pair<std::string, std::string>>* out) {
  if (query.empty()) return Status::OK();
  std::set<std::string> seen;
  for (std::string_view part : Split(query, '&')) {
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    std::string key, value;
    if (Status s = PercentDecode(part.substr(0, eq), &key); !s.ok()) return s;
    if (eq != std::string_view::npos) {
      if (Status s = PercentDecode(part.substr(eq + 1), &value); !s.ok()) return s;
    }
    if (!allowed.count(key))
      return Status::InvalidArgument("unknown query parameter '" + key.substr(0, 64) + "'");
    if (!seen.insert(key).second)
      return Status::InvalidArgument("query parameter '" + key + "' given twice");
    out->emplace_back(std::move(key), std::move(value));
  }
  return Status::OK();
}

Status NotAllowed(Method m) { return Status::FailedPrecondition("method not allowed"); }

}  // namespace

std::string_view JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    // JSON integers beyond 64 bits arrive as floats too.
    case json::value_t::number_float:
      return "a fraction, an exponent or a number beyond 64 bits";
    default:
      return "an unsupported value";
  }
}

Status ParseJsonObject(std::string_view body, std::string_view what, json* out) {
  if (body.empty())
    return Status::InvalidArgument(std::string(what) + " is empty; expected a JSON object");
  std::vector<std::vector<std::string>> keys_by_depth;
  std::string duplicate;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_by_depth.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_by_depth.empty()) keys_by_depth.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        auto& keys = keys_by_depth.back();
        for (const std::string& seen : keys) {
          if (seen == k && duplicate.empty()) duplicate = k;
        }
        keys.push_back(k);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    *out = json::parse(body.begin(), body.end(), callback);
  } catch (const json::exception& e) {
    // nlohmann reports syntax errors by exception: this is the library edge.
    std::string detail = e.what();
    if (std::size_t p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
    return Status::InvalidArgument("malformed JSON: " + detail);
  }
  if (!duplicate.empty())
    return Status::InvalidArgument("field '" + duplicate.substr(0, 64) + "' appears twice");
  if (!out->is_object())
    return Status::InvalidArgument(std::string(what) + " must be a JSON object, got " +
                                   std::string(JsonTypeName(*out)));
  return Status::OK();
}

namespace {

Status ParseObject(std::string_view body, json* out) {
  return ParseJsonObject(body, "request body", out);
}

Status CheckFieldsIn(const json& obj, std::string_view where,
                     std::span<const std::string_view> known) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status::InvalidArgument("unknown field '" + std::string(where) +
                                     it.key().substr(0, 64) + "' (expected: " + list + ")");
    }
  }
  return Status::OK();
}

Status CheckFields(const json& obj, std::string_view where,
                   std::initializer_list<std::string_view> known) {
  return CheckFieldsIn(obj, where, std::span(known.begin(), known.size()));
}

// The fields of a body that may carry a note: `known`, and "memo" and "metadata" when `note`.
Status CheckNoteFields(const json& obj, std::initializer_list<std::string_view> known, bool note) {
  std::vector<std::string_view> all(known);
  if (note) {
    all.push_back("memo");
    all.push_back("metadata");
  }
  return CheckFieldsIn(obj, "", all);
}

// A body's "memo" and "metadata", if present, into *out: a string, and an object of strings (in
// the body's order), within the bounds of core/validate.h, whose messages name the field and the
// bound. A key given twice never gets here: ParseObject refuses it.
Status GetNote(const json& j, Note* out) {
  Note note;
  if (auto m = j.find("memo"); m != j.end()) {
    if (!m->is_string())
      return Status::InvalidArgument("memo must be a string, got " + std::string(JsonTypeName(*m)));
    note.memo = m->get<std::string>();
    if (Status s = ValidateMemo(note.memo); !s.ok()) return s;
  }
  if (auto md = j.find("metadata"); md != j.end()) {
    if (!md->is_object())
      return Status::InvalidArgument("metadata must be an object of string values, got " +
                                     std::string(JsonTypeName(*md)));
    for (auto it = md->begin(); it != md->end(); ++it) {
      if (!it->is_string())
        return Status::InvalidArgument(
            fmt::format("metadata value of '{}' must be a string, got {}", it.key().substr(0, 64),
                        JsonTypeName(*it)));
      note.metadata.emplace_back(it.key(), it->get<std::string>());
    }
    if (Status s = ValidateMetadata(note.metadata); !s.ok()) return s;
  }
  *out = std::move(note);
  return Status::OK();
}

// An integer field in lo..hi. Anything else (string, float, exponent, out of range) is refused with
// a message that names the field and the range.
Status GetInteger(const json& v, std::string_view field, std::int64_t lo, std::int64_t hi,
                  std::int64_t* out) {
  const std::string range = fmt::format("an integer in {}..{}", lo, hi);
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi) || static_cast<std::int64_t>(u) < lo)
      return Status::InvalidArgument(
          fmt::format("{} is out of range: must be {}, got {}", field, range, u));
    *out = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    const std::int64_t i = v.get<std::int64_t>();
    if (i < lo || i > hi)
      return Status::InvalidArgument(
          fmt::format("{} is out of range: must be {}, got {}", field, range, i));
    *out = i;
  } else {
    return Status::InvalidArgument(
        fmt::format("{} must be {} (minor units), got {}", field, range, JsonTypeName(v)));
  }
  return Status::OK();
}

}  // namespace

Permission PermissionFor(Route r) {
  switch (r) {
    case Route::kOpenAccount:
      return Permission::kOpenAccounts;
    case Route::kCredit:
      return Permission::kCredit;
    case Route::kDebit:
      return Permission::kDebit;
    case Route::kRights:
      return Permission::kRights;
    case Route::kTransfer:
      // A debit of the payer that credits the payee: debit on one, credit on the other
      // (node_api.cc checks both accounts once the body names them).
      return Permission::kDebit;
    case Route::kHold:
    case Route::kCapture:
    case Route::kRelease:
      // A hold reserves what a debit would spend and a capture spends it; a release undoes the
      // hold. All on the hold's account (node_api.cc finds it for the routes that name a hold).
      return Permission::kDebit;
    case Route::kReport:
      return Permission::kReadReports;
    case Route::kCluster:
      return Permission::kCluster;
    case Route::kBackup:
      return Permission::kBackup;
    default:
      return Permission::kRead;
  }
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Method MethodOf(Route r) {
  switch (r) {
    case Route::kOpenAccount:
    case Route::kCredit:
    case Route::kDebit:
    case Route::kRights:
    case Route::kTransfer:
    case Route::kBackup:
    case Route::kHold:
    case Route::kCapture:
    case Route::kRelease:
    case Route::kBatch:
      return Method::kPost;
    default:
      return Method::kGet;
  }
}

std::string_view RouteName(Route r) { return kRouteNames[static_cast<std::size_t>(r)]; }

std::string_view AllowedMethods(Route r) {
  if (r == Route::kOpenAccount || r == Route::kListAccounts) return "GET, POST";
  return MethodOf(r) == Method::kPost ? "POST" : "GET";
}

// "c" and the id in hex: opaque to clients, and only what this API gave decodes to an id.
std::string ListCursor(std::string_view id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string c = "c";
  for (unsigned char ch : id) {
    c.push_back(kHex[ch >> 4]);
    c.push_back(kHex[ch & 15]);
  }
  return c;
}

namespace {

Status ParseListCursor(std::string_view cursor, std::string* id) {
  const Status bad = Status::InvalidArgument(
      "cursor '" + std::string(cursor.substr(0, 64)) +
      "' is not one this API gave (use next_cursor of the previous page as it is)");
  if (cursor.size() < 3 || cursor[0] != 'c' || cursor.size() % 2 != 1) return bad;
  id->clear();
  for (std::size_t i = 1; i < cursor.size(); i += 2) {
    const int hi = HexValue(cursor[i]), lo = HexValue(cursor[i + 1]);
    if (hi < 0 || lo < 0) return bad;
    id->push_back(static_cast<char>(hi * 16 + lo));
  }
  return ValidateAccountId(*id).ok() ? Status::OK() : bad;
}

}  // namespace

Status MatchRoute(Method method, std::string_view target, RouteMatch* out) {
  *out = RouteMatch{};
  if (target.empty() || target[0] != '/')
    return Status::InvalidArgument("request target must be an absolute path");
  std::string_view path = target, query;
  if (std::size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  std::vector<std::string_view> seg = Split(path.substr(1), '/');
  std::vector<std::pair<std::string, std::string>> params;
  const auto no_query = [&]() { return ParseQuery(query, {}, &params); };

  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz" || seg[0] == "metrics")) {
    out->route = seg[0] == "healthz"  ? Route::kHealth
                 : seg[0] == "readyz" ? Route::kReady
                                      : Route::kMetrics;
    if (method != Method::kGet) return NotAllowed(method);
    return no_query();
  }
  if (seg.size() == 1 && seg[0] == "ui") {
    // The page holds no data (it asks the API with the operator's token), so it needs none.
    out->route = Route::kOperatorPage;
    if (method != Method::kGet) return NotAllowed(method);
    return no_query();
  }
  if (seg.empty() || seg[0] != "v1" || seg.size() < 2)
    return Status::NotFound("no route " + std::string(path.substr(0, 256)));
  if (seg.size() == 2 && seg[1] == "cluster") {
    out->route = Route::kCluster;
    if (method != Method::kGet) return NotAllowed(method);
    return no_query();
  }
  if (seg.size() == 3 && seg[1] == "admin" && seg[2] == "backup") {
    out->route = Route::kBackup;
    if (method != Method::kPost) return NotAllowed(method);
    return no_query();
  }
  if (seg.size() == 2 && seg[1] == "stream") {
    out->route = Route::kStream;
    if (method != Method::kGet) return NotAllowed(method);
    if (Status s = ParseQuery(query, {"accounts", "after"}, &params); !s.ok()) return s;
    std::string_view list;
    for (const auto& [key, value] : params) {
      if (key == "accounts") list = value;
      if (key != "after") continue;
      CanonicalKey after;
      if (Status s = ParseHistoryCursor(value, &after); !s.ok())
        return Status::InvalidArgument("after: " + s.message());
      out->stream_after = after;
    }
    if (list.empty()) return Status::InvalidArgument("stream needs ?accounts=<id>,<id>,...");
    std::set<std::string> seen;
    for (std::string_view id : Split(list, ',')) {
      if (Status s = ValidateAccountId(id); !s.ok())
        return Status::InvalidArgument("accounts: " + s.message());
      if (seen.insert(std::string(id)).second) out->accounts.emplace_back(id);
    }
    if (out->accounts.size() > kMaxStreamAccounts)
      return Status::InvalidArgument("accounts: at most " + std::to_string(kMaxStreamAccounts) +
                                     " accounts per stream");
    return Status::OK();
  }
  if (seg.size() == 2 && seg[1] == "batch") {
    out->route = Route::kBatch;
    if (method != Method::kPost) return NotAllowed(method);
    return no_query();
  }
  if (seg.size() == 2 && seg[1] == "transfers") {
    out->route = Route::kTransfer;
    if (method != Method::kPost) return NotAllowed(method);
    return no_query();
  }
  if (seg[1] == "holds" && (seg.size() == 3 || seg.size() == 4)) {
    Method want = Method::kPost;
    if (seg.size() == 3) {
      out->route = Route::kGetHold;
      want = Method::kGet;
    } else if (seg[3] == "capture") {
      out->route = Route::kCapture;
    } else if (seg[3] == "release") {
      out->route = Route::kRelease;
    } else {
      return Status::NotFound("no route " + std::string(path.substr(0, 256)));
    }
    if (method != want) return NotAllowed(method);
    if (Status s = PercentDecode(seg[2], &out->hold); !s.ok()) return s;
    if (out->hold.empty() || out->hold.size() > 64)
      return Status::InvalidArgument("hold id must be <region>.<seq>, e.g. eu.42");
    return no_query();
  }
  if (seg[1] != "accounts") return Status::NotFound("no route " + std::string(path.substr(0, 256)));
  if (seg.size() == 2) {
    if (method != Method::kGet) {
      out->route = Route::kOpenAccount;
      if (method != Method::kPost) return NotAllowed(method);
      return no_query();
    }
    out->route = Route::kListAccounts;
    out->limit = kDefaultListLimit;
    if (Status s = ParseQuery(query, {"prefix", "limit", "cursor"}, &params); !s.ok()) return s;
    for (const auto& [key, value] : params) {
      if (key == "prefix") {
        // A prefix of an id is an id (any non-empty start of a valid id is valid).
        if (!value.empty() && !ValidateAccountId(value).ok())
          return Status::InvalidArgument("prefix: " + ValidateAccountId(value).message());
        out->prefix = value;
      } else if (key == "limit") {
        if (Status s = ParseLimit(value, kMaxListLimit, &out->limit); !s.ok()) return s;
      } else if (Status s = ParseListCursor(value, &out->after); !s.ok()) {
        return s;
      }
    }
    return Status::OK();
  }
  if (seg.size() > 4) return Status::NotFound("no route " + std::string(path.substr(0, 256)));
  Route route;
  Method want = Method::kPost;
  if (seg.size() == 3) {
    route = Route::kGetAccount;
    want = Method::kGet;
  } else if (seg[3] == "credits") {
    route = Route::kCredit;
  } else if (seg[3] == "debits") {
    route = Route::kDebit;
  } else if (seg[3] == "rights" || seg[3] == "transfers") {
    // "transfers" is the path before 0.2, kept as an alias for one version: it moves rights
    // between regions, which users confused with /v1/transfers (money between accounts).
    route = Route::kRights;
  } else if (seg[3] == "holds") {
    route = Route::kHold;
  } else if (seg[3] == "report") {
    route = Route::kReport;
    want = Method::kGet;
  } else if (seg[3] == "history") {
    route = Route::kHistory;
    want = Method::kGet;
  } else {
    return Status::NotFound("no route " + std::string(path.substr(0, 256)));
  }
  out->route = route;
  if (method != want) return NotAllowed(method);
  if (Status s = PercentDecode(seg[2], &out->account); !s.ok()) return s;
  if (Status s = ValidateAccountId(out->account); !s.ok()) {
    out->account.clear();
    return s;
  }
  if (route == Route::kReport) {
    if (Status s = ParseQuery(query, {"format"}, &params); !s.ok()) return s;
    if (!params.empty()) {
      if (params[0].second == "html") {
        out->html = true;
      } else if (params[0].second != "json") {
        return Status::InvalidArgument("format must be json or html");
      }
    }
    return Status::OK();
  }
  if (route == Route::kHistory) {
    if (Status s = ParseQuery(query, {"limit", "cursor", "order", "as_of"}, &params); !s.ok())
      return s;
    return ParseHistoryParams(params, &out->history, &out->as_of_ms);
  }
  return no_query();
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kInsufficientFunds:
      return 402;
    case Code::kIdempotencyKeyReused:
      return 422;
    case Code::kConflict:
      return 409;
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kResourceExhausted:
      return 429;
    case Code::kUnavailable:
      return 503;
    case Code::kCorruption:
      return 500;
    case Code::kIOError:
      return 500;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          *out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string ErrorJson(const Status& s, std::string_view extra_fields) {
  std::string out = "{\"error\":{\"code\":";
  AppendJsonString(s.code_name(), &out);
  out += ",\"message\":";
  AppendJsonString(s.message(), &out);
  out += extra_fields;
  out += "}}";
  return out;
}

std::string InsufficientFundsJson(const CommandResult& r, const std::vector<std::string>& regions) {
  std::string extra =
      fmt::format(",\"requested\":{},\"rights\":{},\"tentative_credit\":{},\"overdraft_line\":{}",
                  r.requested, r.rights, r.tentative_credit, r.overdraft_line);
  if (r.line_not_yet_usable > 0) {
    extra += fmt::format(",\"line_not_yet_usable\":{},\"line_waits_for\":[", r.line_not_yet_usable);
    for (std::size_t i = 0; i < r.line_waits_for.size(); ++i) {
      if (i > 0) extra += ',';
      const RegionId o = r.line_waits_for[i];
      AppendJsonString(o < regions.size() ? regions[o] : std::to_string(o), &extra);
    }
    extra += ']';
  }
  return ErrorJson(r.status, extra);
}

// An account id field (a transfer's, an open's parent): present, a string, a valid id.
Status GetAccountField(const json& j, const char* field, const char* role, std::string* out) {
  auto f = j.find(field);
  if (f == j.end())
    return Status::InvalidArgument(fmt::format("field '{}' is required (the {})", field, role));
  if (!f->is_string())
    return Status::InvalidArgument(
        fmt::format("{} must be an account id, got {}", field, JsonTypeName(*f)));
  std::string id = f->get<std::string>();
  if (Status s = ValidateAccountId(id); !s.ok())
    return Status::InvalidArgument(fmt::format("{}: {}", field, s.message()));
  *out = std::move(id);
  return Status::OK();
}

Status ParseOpenAccountBody(std::string_view body, const AccountDefaults& defaults,
                            AccountConfig* out) {
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckFields(j, "", {"id", "currency", "overdraft_limit", "fee", "parent", "cap"});
      !s.ok())
    return s;
  AccountConfig c;
  auto id = j.find("id");
  if (id == j.end()) return Status::InvalidArgument("field 'id' is required");
  if (!id->is_string())
    return Status::InvalidArgument("id must be a string, got " + std::string(JsonTypeName(*id)));
  c.id = id->get<std::string>();
  if (Status s = ValidateAccountId(c.id); !s.ok())
    return Status::InvalidArgument("id: " + s.message());
  c.currency = defaults.currency;
  if (auto cur = j.find("currency"); cur != j.end()) {
    if (!cur->is_string())
      return Status::InvalidArgument("currency must be a string, got " +
                                     std::string(JsonTypeName(*cur)));
    c.currency = cur->get<std::string>();
    if (Status s = ValidateCurrency(c.currency); !s.ok())
      return Status::InvalidArgument("currency: " + s.message());
  }
  c.overdraft_limit = defaults.overdraft_limit;
  if (auto lim = j.find("overdraft_limit"); lim != j.end()) {
    if (Status s = GetInteger(*lim, "overdraft_limit", 0, kMaxOpAmount, &c.overdraft_limit);
        !s.ok())
      return s;
  }
  c.fee = defaults.fee;
  if (auto fee = j.find("fee"); fee != j.end()) {
    if (!fee->is_object())
      return Status::InvalidArgument("fee must be an object {\"flat\", \"bps\"}, got " +
                                     std::string(JsonTypeName(*fee)));
    if (Status s = CheckFields(*fee, "fee.", {"flat", "bps"}); !s.ok()) return s;
    if (auto flat = fee->find("flat"); flat != fee->end()) {
      if (Status s = GetInteger(*flat, "fee.flat", 0, kMaxOpAmount, &c.fee.flat); !s.ok()) return s;
    }
    if (auto bps = fee->find("bps"); bps != fee->end()) {
      std::int64_t v = 0;
      if (Status s = GetInteger(*bps, "fee.bps", 0, kMaxFeeBps, &v); !s.ok()) return s;
      c.fee.bps = static_cast<std::uint32_t>(v);
    }
  }
  if (j.contains("parent")) {
    if (Status s = GetAccountField(j, "parent", "parent budget", &c.parent); !s.ok()) return s;
  }
  if (auto cap = j.find("cap"); cap != j.end()) {
    if (!cap->is_boolean())
      return Status::InvalidArgument("cap must be true or false, got " +
                                     std::string(JsonTypeName(*cap)));
    c.cap = cap->get<bool>();
  }
  *out = std::move(c);
  return Status::OK();
}

namespace {

// The shape nearly every credit and debit has, `{"amount":123}` (any JSON whitespace), parsed
// without building a JSON tree. Accepts only what the full path below accepts — a positive
// integer of at most kMaxOpAmount without leading zeros — and leaves everything else (including
// every error) to it, so both paths give the same verdict.
bool FastAmountBody(std::string_view b, Amount* amount) {
  std::size_t i = 0;
  auto ws = [&] {
    while (i < b.size() && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) ++i;
  };
  auto lit = [&](std::string_view t) {
    if (b.substr(i, t.size()) != t) return false;
    i += t.size();
    return true;
  };
  ws();
  if (!lit("{")) return false;
  ws();
  if (!lit("\"amount\"")) return false;
  ws();
  if (!lit(":")) return false;
  ws();
  if (i >= b.size() || b[i] < '1' || b[i] > '9') return false;
  Amount v = 0;
  std::size_t digits = 0;
  while (i < b.size() && b[i] >= '0' && b[i] <= '9') {
    if (++digits > 16) return false;  // kMaxOpAmount has 16 digits
    v = v * 10 + (b[i] - '0');
    ++i;
  }
  if (v > kMaxOpAmount) return false;
  ws();
  if (!lit("}")) return false;
  ws();
  if (i != b.size()) return false;
  *amount = v;
  return true;
}

}  // namespace

namespace {

// {"amount"} and, where `fallback` is not null, an optional boolean "fallback"; where `note` is
// not null, an optional note.
Status ParseAmountFields(std::string_view body, Amount* amount, bool* fallback, Note* note) {
  if (fallback) *fallback = false;
  if (note) *note = Note{};
  if (FastAmountBody(body, amount)) return Status::OK();
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = fallback ? CheckNoteFields(j, {"amount", "fallback"}, note != nullptr)
                          : CheckNoteFields(j, {"amount"}, note != nullptr);
      !s.ok())
    return s;
  if (note) {
    if (Status s = GetNote(j, note); !s.ok()) return s;
  }
  if (auto f = fallback ? j.find("fallback") : j.end(); f != j.end()) {
    if (!f->is_boolean())
      return Status::InvalidArgument("fallback must be true or false, got " +
                                     std::string(JsonTypeName(*f)));
    *fallback = f->get<bool>();
  }
  auto a = j.find("amount");
  if (a == j.end()) return Status::InvalidArgument("field 'amount' is required");
  return GetInteger(*a, "amount", 1, kMaxOpAmount, amount);
}

}  // namespace

Status ParseAmountBody(std::string_view body, Amount* amount, Note* note) {
  return ParseAmountFields(body, amount, nullptr, note);
}

Status ParseDebitBody(std::string_view body, Amount* amount, bool* fallback, Note* note) {
  return ParseAmountFields(body, amount, fallback, note);
}

Status ParseTransferBody(std::string_view body, Transfer* out) {
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckNoteFields(j, {"from", "to", "amount"}, true); !s.ok()) return s;
  Transfer t;
  if (Status s = GetAccountField(j, "from", "account paying", &t.from); !s.ok()) return s;
  if (Status s = GetAccountField(j, "to", "account paid", &t.to); !s.ok()) return s;
  if (t.from == t.to)
    return Status::InvalidArgument("from and to are the same account '" + t.from + "'");
  auto a = j.find("amount");
  if (a == j.end()) return Status::InvalidArgument("field 'amount' is required");
  if (Status s = GetInteger(*a, "amount", 1, kMaxOpAmount, &t.amount); !s.ok()) return s;
  Note note;
  if (Status s = GetNote(j, &note); !s.ok()) return s;
  t.memo = std::move(note.memo);
  t.metadata = std::move(note.metadata);
  *out = std::move(t);
  return Status::OK();
}

std::string HoldId(Dot hold, const std::vector<std::string>& regions) {
  const std::string region =
      hold.origin < regions.size() ? regions[hold.origin] : "r" + std::to_string(hold.origin);
  return region + "." + std::to_string(hold.seq);
}

Status ParseHoldId(std::string_view id, const std::vector<std::string>& regions, Dot* out) {
  const auto bad = [&] {
    return Status::InvalidArgument("hold id '" + std::string(id.substr(0, 64)) +
                                   "' is not <region>.<seq>, e.g. " +
                                   (regions.empty() ? std::string("eu") : regions[0]) + ".42");
  };
  const std::size_t dot = id.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size()) return bad();
  const std::string_view name = id.substr(0, dot), digits = id.substr(dot + 1);
  RegionId region = kMaxRegions;
  for (RegionId r = 0; r < regions.size(); ++r)
    if (regions[r] == name) region = r;
  if (region == kMaxRegions) return bad();
  Seq seq = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size() || seq == 0 || digits[0] == '0')
    return bad();
  *out = Dot{region, seq};
  return Status::OK();
}

Status ParseHoldBody(std::string_view body, Amount* amount, std::uint64_t* expires_in_ms,
                     Note* note) {
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckNoteFields(j, {"amount", "expires_in_ms"}, note != nullptr); !s.ok())
    return s;
  if (note) {
    if (Status s = GetNote(j, note); !s.ok()) return s;
  }
  auto a = j.find("amount");
  if (a == j.end()) return Status::InvalidArgument("field 'amount' is required");
  if (Status s = GetInteger(*a, "amount", 1, kMaxOpAmount, amount); !s.ok()) return s;
  *expires_in_ms = kDefaultHoldExpiryMs;
  if (auto e = j.find("expires_in_ms"); e != j.end()) {
    std::int64_t ms = 0;
    if (Status s = GetInteger(*e, "expires_in_ms", 1, kMaxHoldExpiryMs, &ms); !s.ok()) return s;
    *expires_in_ms = static_cast<std::uint64_t>(ms);
  }
  return Status::OK();
}

namespace {
bool EmptyBody(std::string_view body) {
  return body.find_first_not_of(" \t\r\n") == std::string_view::npos;
}
}  // namespace

Status ParseCaptureBody(std::string_view body, Amount* amount) {
  *amount = 0;
  if (EmptyBody(body)) return Status::OK();
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckFields(j, "", {"amount"}); !s.ok()) return s;
  auto a = j.find("amount");
  if (a == j.end()) return Status::OK();
  return GetInteger(*a, "amount", 1, kMaxOpAmount, amount);
}

Status ParseReleaseBody(std::string_view body) {
  if (EmptyBody(body)) return Status::OK();
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  return CheckFields(j, "", {});
}

Status ParseRightsBody(std::string_view body, const std::vector<std::string>& regions,
                       RegionId self, RegionId* to, Amount* amount) {
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckFields(j, "", {"to", "amount"}); !s.ok()) return s;
  auto t = j.find("to");
  if (t == j.end()) return Status::InvalidArgument("field 'to' is required (a region name)");
  if (!t->is_string())
    return Status::InvalidArgument("to must be a region name, got " +
                                   std::string(JsonTypeName(*t)));
  const std::string name = t->get<std::string>();
  RegionId found = kMaxRegions;
  for (RegionId r = 0; r < regions.size(); ++r) {
    if (regions[r] == name) found = r;
  }
  if (found == kMaxRegions) {
    std::string known;
    for (const std::string& r : regions) known += (known.empty() ? "" : ", ") + r;
    std::string shown = name.substr(0, 64);
    return Status::InvalidArgument("to: unknown region '" + shown + "' (regions: " + known + ")");
  }
  if (found == self)
    return Status::InvalidArgument("to: '" + name +
                                   "' is this region; rights move to another region");
  auto a = j.find("amount");
  if (a == j.end()) return Status::InvalidArgument("field 'amount' is required");
  if (Status s = GetInteger(*a, "amount", 1, kMaxOpAmount, amount); !s.ok()) return s;
  *to = found;
  return Status::OK();
}

Status ValidateIdempotencyKeyHeader(std::string_view value, bool present) {
  if (!present) return Status::InvalidArgument("the Idempotency-Key header is required");
  if (Status s = ValidateIdempotencyKey(value); !s.ok())
    return Status::InvalidArgument("Idempotency-Key: " + s.message());
  return Status::OK();
}

Status ParseBackupBody(std::string_view body, std::string* dir) {
  json j;
  if (Status s = ParseObject(body, &j); !s.ok()) return s;
  if (Status s = CheckFields(j, "", {"dir"}); !s.ok()) return s;
  auto d = j.find("dir");
  if (d == j.end())
    return Status::InvalidArgument("field 'dir' is required (an absolute path for the copy)");
  if (!d->is_string())
    return Status::InvalidArgument("dir must be a string, got " + std::string(JsonTypeName(*d)));
  const std::string& path = d->get_ref<const std::string&>();
  if (path.empty()) return Status::InvalidArgument("dir is empty; expected an absolute path");
  if (path.size() > kMaxBackupDirBytes)
    return Status::InvalidArgument(
        fmt::format("dir is {} bytes long, at most {}", path.size(), kMaxBackupDirBytes));
  if (path.find('\0') != std::string::npos)
    return Status::InvalidArgument("dir must not contain a NUL byte");
  if (path[0] != '/')
    return Status::InvalidArgument(
        "dir must be an absolute path (it would be resolved against "
        "tallyd's working directory), got '" +
        path.substr(0, 256) + "'");
  *dir = path;
  return Status::OK();
}

}  // namespace tally::node

namespace tally::node {

Status ParseDurabilityHeader(std::string_view value, bool present, bool by_default,
                             bool* replicated) {
  *replicated = by_default;
  if (!present) return Status::OK();
  if (value == "replicated") {
    *replicated = true;
  } else if (value == "local") {
    *replicated = false;
  } else {
    return Status::InvalidArgument("Durability must be \"local\" or \"replicated\"");
  }
  return Status::OK();
}

Status ParseWriteCommand(Route route, std::string account, const WriteRequest& req,
                         const AccountDefaults& defaults, const std::vector<std::string>& regions,
                         RegionId self, CommandBody* out) {
  switch (route) {
    case Route::kOpenAccount: {
      OpenAccount cmd;
      if (Status s = ParseOpenAccountBody(req.body, defaults, &cmd.config); !s.ok()) return s;
      *out = std::move(cmd);
      return Status::OK();
    }
    case Route::kCredit:
    case Route::kDebit: {
      if (Status s = ValidateIdempotencyKeyHeader(req.key, req.has_key); !s.ok()) return s;
      Amount amount = 0;
      Note note;
      if (route == Route::kCredit) {
        if (Status s = ParseAmountBody(req.body, &amount, &note); !s.ok()) return s;
        *out = Credit{std::move(account), amount, std::string(req.key), std::move(note.memo),
                      std::move(note.metadata)};
        return Status::OK();
      }
      Debit d{std::move(account), 0, std::string(req.key)};
      if (Status s = ParseDebitBody(req.body, &d.amount, &d.fallback, &note); !s.ok()) return s;
      d.memo = std::move(note.memo);
      d.metadata = std::move(note.metadata);
      *out = std::move(d);
      return Status::OK();
    }
    case Route::kRights: {
      // The key is optional on a rights move (tallyctl sends one when given); honoured if present.
      if (req.has_key) {
        if (Status s = ValidateIdempotencyKeyHeader(req.key, true); !s.ok()) return s;
      }
      RegionId to = 0;
      Amount amount = 0;
      if (Status s = ParseRightsBody(req.body, regions, self, &to, &amount); !s.ok()) return s;
      *out = TransferRights{std::move(account), to, amount, std::string(req.key)};
      return Status::OK();
    }
    case Route::kTransfer: {
      if (Status s = ValidateIdempotencyKeyHeader(req.key, req.has_key); !s.ok()) return s;
      Transfer t;
      if (Status s = ParseTransferBody(req.body, &t); !s.ok()) return s;
      t.key = std::string(req.key);
      *out = std::move(t);
      return Status::OK();
    }
    case Route::kHold: {
      if (Status s = ValidateIdempotencyKeyHeader(req.key, req.has_key); !s.ok()) return s;
      PlaceHold h{std::move(account), 0, std::string(req.key), 0};
      Note note;
      if (Status s = ParseHoldBody(req.body, &h.amount, &h.expires_in_ms, &note); !s.ok()) return s;
      h.memo = std::move(note.memo);
      h.metadata = std::move(note.metadata);
      *out = std::move(h);
      return Status::OK();
    }
    default:
      return Status::InvalidArgument("not a write route");
  }
}

}  // namespace tally::node
