// The messages of GET /v1/stream beyond the account states it pushes, as pure functions of bytes
// (no socket, no replica), so every refusal can be tested without a server: how an upgrade
// authenticates, what a client may send — an auth message, or a request standing for one HTTP
// route — and the result and error messages sent back (docs/operations.md, "Streams").
//
// A request message is turned into the very request HTTP would carry: a route matched by
// MatchRoute from the path its address fields make, a body made of its other fields, the
// Idempotency-Key and Durability headers from `idempotency_key` and `durability`. The request
// handler then treats it as it treats HTTP — the same parsing, permissions, answers and errors —
// and nothing about a route's rules is written twice.
//
// Thread-safe: everything here is a pure function.

#ifndef TALLY_NODE_STREAM_MESSAGES_H_
#define TALLY_NODE_STREAM_MESSAGES_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "node/api.h"
#include "node/auth.h"

namespace tally::node {

// The subprotocol a stream speaks, and the prefix of the one that carries a bearer token: a
// browser cannot set an Authorization header on a WebSocket, but it can offer subprotocols,
// `new WebSocket(url, ["tally.v1", "tally.bearer." + token])`. The server selects tally.v1, never
// the one holding the token.
inline constexpr std::string_view kStreamProtocol = "tally.v1";
inline constexpr std::string_view kBearerProtocolPrefix = "tally.bearer.";

// How a stream's upgrade request authenticates.
struct StreamAuth {
  // "Bearer <token>", from the Authorization header or a tally.bearer.<token> subprotocol. Empty:
  // neither was sent, and the stream's first message must authenticate it.
  std::string authorization;
  bool select_protocol = false;  // tally.v1 was offered: the handshake's answer selects it
};

// `authorization`: the Authorization header ("" if absent); `protocols`: the Sec-WebSocket-Protocol
// values, comma-separated ("" if absent). Subprotocols other than tally's are ignored.
// InvalidArgument for a token subprotocol without tally.v1 (a browser would refuse the answer),
// two token subprotocols, or a token in both the header and a subprotocol.
Status ParseStreamAuth(std::string_view authorization, std::string_view protocols, StreamAuth* out);

// Whether `who` may follow every account of a stream: read permission on each. Checked at the
// upgrade, at a first-message auth and again at every reload of the tokens.
Status AuthorizeStream(const Principal& who, const std::vector<std::string>& accounts);

enum class StreamMessageKind : std::uint8_t {
  kAuth,     // {"type":"auth","token":"…"}: the stream's credentials, when the upgrade had none
  kRequest,  // {"type":"<route>","request_id":"…",…}: one HTTP request
};

struct StreamMessage {
  StreamMessageKind kind = StreamMessageKind::kRequest;
  // As sent; set as soon as it is read and valid, so that the error about the rest can name it.
  // Required on a request, optional on an auth message.
  std::string request_id;
  std::string token;  // kAuth
  // kRequest: the HTTP request it stands for.
  Method method = Method::kPost;
  std::string target;  // "/v1/accounts/shop-1/debits"
  RouteMatch match;    // MatchRoute's for target
  std::string body;    // the fields that are neither the envelope nor the address, as an object
  bool has_key = false;
  std::string key;  // idempotency_key
  bool has_durability = false;
  std::string durability;
};

// The message types a request may have: the names of the routes they stand for (RouteName).
// Reads and writes of accounts and holds; the admin, report and listing routes stay HTTP only.
const std::vector<Route>& StreamRequestRoutes();

// Parses one text message. InvalidArgument naming the problem: bad JSON, a non-object, duplicate
// fields, a missing or malformed request_id or type, an unknown type, a missing or non-string
// address (account, hold), an address MatchRoute refuses, or fields a bodiless request does not
// take. The body's own fields are left to the route's parser, as for HTTP.
Status ParseStreamMessage(std::string_view text, StreamMessage* out);
// The same, of a message already parsed as JSON (an op of POST /v1/batch, batch_request.h), whose
// request_id may be left out unless `need_request_id`.
Status ParseRequestObject(nlohmann::ordered_json j, bool need_request_id, StreamMessage* out);

// {"type":"result","request_id":"…","status":<HTTP status>,"body":<the HTTP answer's body>} and,
// when the HTTP answer had headers of its own ("Idempotent-Replayed: true\r\n"),
// "headers":{"Idempotent-Replayed":"true"}. A JSON body is spliced in as it is; any other is sent
// as a JSON string.
std::string StreamResultJson(std::string_view request_id, int status, std::string_view content_type,
                             std::string_view body, std::string_view extra_headers);
// {"type":"error","request_id":"…"|null,"error":{"code":"…","message":"…"}}: a message that could
// not be made into a request (or an auth message refused). `request_id` empty: null.
std::string StreamErrorJson(std::string_view request_id, const Status& s);
// {"type":"authenticated","request_id":"…"|null}: a first-message auth was accepted.
std::string StreamAuthenticatedJson(std::string_view request_id);

}  // namespace tally::node

#endif  // TALLY_NODE_STREAM_MESSAGES_H_
