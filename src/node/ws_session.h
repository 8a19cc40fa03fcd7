// WsSession: one GET /v1/stream connection. It pushes a JSON message on every durable change to its
// accounts (StreamHub), and takes requests over the same socket: a client sends
// {"type":"debit","request_id":…,…} and gets {"type":"result","request_id":…} with the HTTP
// answer's status and body (stream_messages.h). It is a Responder: a request goes through
// ApiHost::HandleRequest as an HTTP one does, so its parsing, permissions, answer and wait for
// durability are HTTP's. Results leave as they are ready, not in request order; at most
// [http] max_pipelined requests are in flight, and one past that is refused with an error message.
//
// Authentication: the upgrade's Authorization header or tally.bearer.<token> subprotocol, checked
// by the host before the handshake; or, when the upgrade had neither, a first message
// {"type":"auth","token":…} within kStreamAuthTimeout. Until then nothing is sent, and anything
// else, a refused token or silence closes the stream with 1008 (policy violation) after an error
// message. A message over kMaxStreamMessageBytes closes it with 1009 (message too big). A consumer
// too slow to keep up (kMaxStreamQueuedMessages queued) is disconnected rather than buffered
// without bound. It subscribes through its ApiHost once the handshake is done and unsubscribes
// when it closes.
//
// Threading: io thread only. Owned by shared_ptr: its pending operations, the host's subscription
// list and the host's commands waiting to be answered hold it.

#ifndef TALLY_NODE_WS_SESSION_H_
#define TALLY_NODE_WS_SESSION_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "node/api_host.h"
#include "node/api_stream.h"
#include "node/net.h"
#include "node/responder.h"
#include "node/stream_messages.h"

namespace tally::node {

class WsSession : public Responder, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(ApiHost* host, ApiStream stream, std::vector<std::string> accounts,
            std::optional<CanonicalKey> after, StreamAuth auth, std::uint64_t id);

  void Start(http::request<http::string_body> req);
  // An account's state: queued if open(), else dropped. A consumer too slow to keep up is
  // disconnected.
  void Send(std::string message);
  // Takes no more requests and sends no more account states; closes with `why` once the results
  // still owed are sent.
  void Close(websocket::close_reason why = websocket::close_code::going_away);
  const std::vector<std::string>& accounts() const { return accounts_; }
  // The cursor it resumes from (?after=): the final lines it missed since are replayed first.
  const std::optional<CanonicalKey>& after() const { return after_; }
  // "Bearer <token>", as the upgrade or the first message authenticated it: a reload checks it
  // against the new tokens.
  const std::string& authorization() const { return authorization_; }
  // Authenticated and not closing: it follows its accounts and takes requests.
  bool open() const { return state_ == State::kOpen; }
  // Opened without credentials, its first message not read yet.
  bool awaiting_auth() const { return state_ == State::kAwaitingAuth; }
  std::uint64_t id() const { return id_; }

  bool closed() const override { return state_ == State::kClosed; }
  AuditFacts* audit(std::uint64_t slot) override;

 private:
  enum class State : std::uint8_t { kHandshake, kAwaitingAuth, kOpen, kClosing, kClosed };
  struct Request {  // one in flight
    Route route = Route::kUnknown;
    SteadyTime start;
    AuditFacts audit;
  };

  void DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                 std::string_view body, std::string_view extra_headers) override;
  void OnAccepted();
  void DoRead();
  void OnMessage(std::string_view text, bool binary);
  // The first message of a stream opened without credentials; false when it refused it.
  bool OnFirstMessage(const Status& parsed, const StreamMessage& m);
  Status RefuseRequest(const StreamMessage& m) const;  // OK: it may be handled
  void StartRequest(StreamMessage m);
  void SendError(std::string_view request_id, const Status& s);
  void Enqueue(std::string message);
  void DoWrite();
  void MaybeFinishClose();
  void CloseNow(const websocket::close_reason& why);
  void Fail(std::string_view what, beast::error_code ec);

  ApiHost* const host_;
  websocket::stream<ApiStream> ws_;
  const std::vector<std::string> accounts_;
  const std::optional<CanonicalKey> after_;
  std::string authorization_;
  const bool select_protocol_;
  const std::uint64_t id_;
  const std::string remote_;  // "ip:port", for the audit log
  State state_ = State::kHandshake;
  asio::steady_timer auth_deadline_;  // kAwaitingAuth only
  beast::flat_buffer read_buf_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  std::map<std::uint64_t, Request> requests_;  // in flight, by slot
  std::uint64_t next_slot_ = 0;
  websocket::close_reason close_reason_;  // kClosing: what the close frame will say
};

}  // namespace tally::node

#endif  // TALLY_NODE_WS_SESSION_H_
