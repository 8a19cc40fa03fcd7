#include "node/stream_messages.h"

#include <fmt/format.h>

#include <iterator>
#include <nlohmann/json.hpp>

namespace tally::node {

namespace {

using json = nlohmann::ordered_json;  // what ParseJsonObject reads (api.h)

// What a request message addresses, as the path of its route does.
enum class Address : std::uint8_t { kNone, kAccount, kHold };

struct RequestType {
  Route route;
  Method method;
  std::string_view path;  // "{}" where the address goes
  Address address;
  bool body;  // false: a GET, which takes no fields beyond the envelope and the address
};

constexpr RequestType kRequestTypes[] = {
    {Route::kOpenAccount, Method::kPost, "/v1/accounts", Address::kNone, true},
    {Route::kGetAccount, Method::kGet, "/v1/accounts/{}", Address::kAccount, false},
    {Route::kCredit, Method::kPost, "/v1/accounts/{}/credits", Address::kAccount, true},
    {Route::kDebit, Method::kPost, "/v1/accounts/{}/debits", Address::kAccount, true},
    {Route::kRights, Method::kPost, "/v1/accounts/{}/rights", Address::kAccount, true},
    {Route::kTransfer, Method::kPost, "/v1/transfers", Address::kNone, true},
    {Route::kHold, Method::kPost, "/v1/accounts/{}/holds", Address::kAccount, true},
    {Route::kGetHold, Method::kGet, "/v1/holds/{}", Address::kHold, false},
    {Route::kCapture, Method::kPost, "/v1/holds/{}/capture", Address::kHold, true},
    {Route::kRelease, Method::kPost, "/v1/holds/{}/release", Address::kHold, true},
    {Route::kBatch, Method::kPost, "/v1/batch", Address::kNone, true},  // {"ops":[…]}
};

constexpr std::string_view kRequestIdForm = "a string of 1..128 characters [A-Za-z0-9._:-]";

std::string TypeList() {
  std::string list = "auth";
  for (const RequestType& t : kRequestTypes) list += ", " + std::string(RouteName(t.route));
  return list;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `s` as one path segment: everything but RFC 3986's unreserved characters percent-encoded, so
// that MatchRoute, which decodes it, sees the address exactly as sent.
std::string PathSegment(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      fmt::format_to(std::back_inserter(out), "%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// A string field of the envelope, taken out of `j`: *has false when absent.
Status TakeString(json* j, const char* field, bool* has, std::string* value) {
  auto f = j->find(field);
  if (f == j->end()) return Status::OK();
  if (!f->is_string())
    return Status::InvalidArgument(
        fmt::format("{} must be a string, got {}", field, JsonTypeName(*f)));
  *has = true;
  *value = f->get<std::string>();
  j->erase(f);
  return Status::OK();
}

Status UnknownField(const json& j, std::string_view type, std::string_view expected) {
  return Status::InvalidArgument(fmt::format("unknown field '{}' in a '{}' message (expected: {})",
                                             j.begin().key().substr(0, 64), type, expected));
}

void AppendRequestId(std::string_view request_id, std::string* out) {
  if (request_id.empty()) {
    *out += "null";
  } else {
    AppendJsonString(request_id, out);
  }
}

}  // namespace

Status ParseStreamAuth(std::string_view authorization, std::string_view protocols,
                       StreamAuth* out) {
  *out = StreamAuth{};
  bool bearer = false;
  std::string_view token;
  while (!protocols.empty()) {
    const std::size_t comma = protocols.find(',');
    const std::string_view p = Trim(protocols.substr(0, comma));
    protocols = comma == std::string_view::npos ? std::string_view() : protocols.substr(comma + 1);
    if (p == kStreamProtocol) {
      out->select_protocol = true;
    } else if (p.starts_with(kBearerProtocolPrefix)) {
      if (bearer) return Status::InvalidArgument("more than one tally.bearer.<token> subprotocol");
      bearer = true;
      token = p.substr(kBearerProtocolPrefix.size());
    }
  }
  if (!bearer) {
    out->authorization = std::string(authorization);
    return Status::OK();
  }
  if (!out->select_protocol)
    return Status::InvalidArgument(
        "a tally.bearer.<token> subprotocol needs tally.v1 offered with it "
        "(Sec-WebSocket-Protocol: tally.v1, tally.bearer.<token>)");
  if (!authorization.empty())
    return Status::InvalidArgument(
        "a token in both the Authorization header and a subprotocol: send it once");
  out->authorization = "Bearer " + std::string(token);
  return Status::OK();
}

Status AuthorizeStream(const Principal& who, const std::vector<std::string>& accounts) {
  for (const std::string& account : accounts) {
    if (Status s = Authorizer::Authorize(who, PermissionFor(Route::kStream), account); !s.ok())
      return s;
  }
  return Status::OK();
}

const std::vector<Route>& StreamRequestRoutes() {
  static const std::vector<Route> routes = [] {
    std::vector<Route> r;
    for (const RequestType& t : kRequestTypes) r.push_back(t.route);
    return r;
  }();
  return routes;
}

Status ParseStreamMessage(std::string_view text, StreamMessage* out) {
  *out = StreamMessage{};
  json j;
  if (Status s = ParseJsonObject(text, "message", &j); !s.ok()) return s;
  return ParseRequestObject(std::move(j), /*need_request_id=*/true, out);
}

Status ParseRequestObject(nlohmann::ordered_json j, bool need_request_id, StreamMessage* out) {
  *out = StreamMessage{};
  if (!j.is_object())
    return Status::InvalidArgument(
        fmt::format("a request must be an object, got {}", JsonTypeName(j)));
  if (auto id = j.find("request_id"); id != j.end()) {
    if (!id->is_string())
      return Status::InvalidArgument(
          fmt::format("request_id must be {}, got {}", kRequestIdForm, JsonTypeName(*id)));
    const std::string& value = id->get_ref<const std::string&>();
    if (!IsValidRequestId(value))
      return Status::InvalidArgument(
          fmt::format("request_id must be {}, got '{}'", kRequestIdForm, value.substr(0, 64)));
    out->request_id = value;
    j.erase(id);
  }
  auto t = j.find("type");
  if (t == j.end())
    return Status::InvalidArgument(fmt::format("field 'type' is required ({})", TypeList()));
  if (!t->is_string())
    return Status::InvalidArgument(
        fmt::format("type must be a string ({}), got {}", TypeList(), JsonTypeName(*t)));
  const std::string type = t->get<std::string>();
  j.erase(t);

  if (type == "auth") {
    out->kind = StreamMessageKind::kAuth;
    bool has_token = false;
    if (Status s = TakeString(&j, "token", &has_token, &out->token); !s.ok()) return s;
    if (!has_token) return Status::InvalidArgument("field 'token' is required in an auth message");
    if (!j.empty()) return UnknownField(j, type, "type, token, request_id");
    return Status::OK();
  }
  const RequestType* rt = nullptr;
  for (const RequestType& candidate : kRequestTypes) {
    if (RouteName(candidate.route) == type) rt = &candidate;
  }
  if (!rt)
    return Status::InvalidArgument(
        fmt::format("unknown message type '{}' (expected: {})", type.substr(0, 64), TypeList()));
  if (need_request_id && out->request_id.empty())
    return Status::InvalidArgument(fmt::format(
        "field 'request_id' is required ({}; the result carries it back)", kRequestIdForm));
  out->kind = StreamMessageKind::kRequest;
  out->method = rt->method;
  if (Status s = TakeString(&j, "idempotency_key", &out->has_key, &out->key); !s.ok()) return s;
  if (Status s = TakeString(&j, "durability", &out->has_durability, &out->durability); !s.ok())
    return s;
  out->target = std::string(rt->path);
  const char* address = rt->address == Address::kAccount ? "account" : "hold";
  if (rt->address != Address::kNone) {
    bool present = false;
    std::string value;
    if (Status s = TakeString(&j, address, &present, &value); !s.ok()) return s;
    if (!present)
      return Status::InvalidArgument(fmt::format(
          "field '{}' is required in a '{}' message ({})", address, type,
          rt->address == Address::kAccount ? "an account id" : "a hold id, <region>.<seq>"));
    out->target.replace(out->target.find("{}"), 2, PathSegment(value));
  }
  if (rt->body) {
    // The remaining fields are the route's body, refused or accepted by its own parser. Dumping
    // what nlohmann parsed cannot meet bad UTF-8 (the parser refused it), so it cannot throw.
    out->body = j.dump();
  } else if (!j.empty()) {
    return UnknownField(j, type, fmt::format("type, request_id, {}", address));
  }
  return MatchRoute(rt->method, out->target, &out->match);
}

std::string StreamResultJson(std::string_view request_id, int status, std::string_view content_type,
                             std::string_view body, std::string_view extra_headers) {
  std::string out;
  out.reserve(64 + request_id.size() + body.size() + extra_headers.size());
  out += R"({"type":"result","request_id":)";
  AppendRequestId(request_id, &out);
  fmt::format_to(std::back_inserter(out), R"(,"status":{},"body":)", status);
  // Our JSON answers are spliced in as they are rather than parsed and written again.
  if (content_type.starts_with("application/json") && !body.empty()) {
    out += body;
  } else {
    AppendJsonString(body, &out);
  }
  if (!extra_headers.empty()) {
    out += R"(,"headers":{)";
    bool first = true;
    while (!extra_headers.empty()) {
      const std::size_t end = extra_headers.find("\r\n");
      const std::string_view line = extra_headers.substr(0, end);
      extra_headers =
          end == std::string_view::npos ? std::string_view() : extra_headers.substr(end + 2);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      if (!first) out += ',';
      first = false;
      AppendJsonString(Trim(line.substr(0, colon)), &out);
      out += ':';
      AppendJsonString(Trim(line.substr(colon + 1)), &out);
    }
    out += '}';
  }
  out += '}';
  return out;
}

std::string StreamErrorJson(std::string_view request_id, const Status& s) {
  std::string out = R"({"type":"error","request_id":)";
  AppendRequestId(request_id, &out);
  out += ',';
  out += std::string_view(ErrorJson(s)).substr(1);  // {"error":{…}} less its opening brace
  return out;
}

std::string StreamAuthenticatedJson(std::string_view request_id) {
  std::string out = R"({"type":"authenticated","request_id":)";
  AppendRequestId(request_id, &out);
  out += '}';
  return out;
}

}  // namespace tally::node
