#include "node/ws_session.h"

#include <fmt/format.h>

#include <chrono>
#include <utility>

#include "node/log.h"

namespace tally::node {

WsSession::WsSession(ApiHost* host, ApiStream stream, std::vector<std::string> accounts,
                     std::optional<CanonicalKey> after, StreamAuth auth, std::uint64_t id)
    : Responder(host),
      host_(host),
      ws_(std::move(stream)),
      accounts_(std::move(accounts)),
      after_(after),
      authorization_(std::move(auth.authorization)),
      select_protocol_(auth.select_protocol),
      id_(id),
      remote_(RemoteOf(ws_.next_layer().next_layer())),
      auth_deadline_(ws_.get_executor()) {}

void WsSession::Start(http::request<http::string_body> req) {
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.set_option(
      websocket::stream_base::decorator([select = select_protocol_](websocket::response_type& res) {
        res.set(http::field::server, "tallyd");
        // tally.v1, never the subprotocol that carried the token.
        if (select) res.set(http::field::sec_websocket_protocol, std::string(kStreamProtocol));
      }));
  ws_.read_message_max(kMaxStreamMessageBytes);
  ws_.text(true);
  ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      self->Fail("websocket handshake", ec);
      return;
    }
    self->OnAccepted();
  });
}

void WsSession::OnAccepted() {
  if (authorization_.empty()) {
    state_ = State::kAwaitingAuth;
    auth_deadline_.expires_after(kStreamAuthTimeout);
    auth_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->state_ != State::kAwaitingAuth) return;
      self->SendError({}, Status::Unauthenticated(
                              fmt::format("no auth message within {} s of the upgrade",
                                          std::chrono::seconds(kStreamAuthTimeout).count())));
      self->Close({websocket::close_code::policy_error, "authentication timed out"});
    });
  } else {
    state_ = State::kOpen;
  }
  // Counted among the streams either way; sent its accounts' state only once authenticated.
  host_->Subscribe(shared_from_this());
  DoRead();
}

void WsSession::DoRead() {
  if (state_ == State::kClosed) return;
  ws_.async_read(read_buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      // A message over kMaxStreamMessageBytes lands here too, after Beast closed with 1009.
      self->Fail("websocket read", ec);
      return;
    }
    const std::string text = beast::buffers_to_string(self->read_buf_.data());
    self->read_buf_.consume(self->read_buf_.size());
    self->OnMessage(text, !self->ws_.got_text());
  });
}

void WsSession::OnMessage(std::string_view text, bool binary) {
  if (state_ == State::kClosed) return;
  StreamMessage m;
  const Status parsed =
      binary ? Status::InvalidArgument("binary messages are not accepted: send JSON text messages")
             : ParseStreamMessage(text, &m);
  if (state_ == State::kAwaitingAuth) {
    if (OnFirstMessage(parsed, m)) DoRead();
    return;
  }
  Status s = parsed.ok() ? RefuseRequest(m) : parsed;
  if (s.ok()) {
    StartRequest(std::move(m));
  } else {
    SendError(m.request_id, s);
  }
  DoRead();
}

bool WsSession::OnFirstMessage(const Status& parsed, const StreamMessage& m) {
  Status s = parsed;
  if (s.ok() && m.kind != StreamMessageKind::kAuth)
    s = Status::Unauthenticated(
        "the upgrade carried no credentials: the first message must be "
        "{\"type\":\"auth\",\"token\":\"<token>\"}");
  std::string authorization;
  if (s.ok()) {
    authorization = "Bearer " + m.token;
    const Principal* who = nullptr;
    s = Authenticate(authorization, &who);
    if (s.ok()) s = AuthorizeStream(*who, accounts_);
  }
  if (!s.ok()) {
    SendError(m.request_id, s);
    Close({websocket::close_code::policy_error, "authentication failed"});
    return false;
  }
  auth_deadline_.cancel();
  authorization_ = std::move(authorization);
  state_ = State::kOpen;
  Enqueue(StreamAuthenticatedJson(m.request_id));
  host_->Subscribe(shared_from_this());
  return true;
}

Status WsSession::RefuseRequest(const StreamMessage& m) const {
  if (state_ != State::kOpen) return Status::Unavailable("the stream is closing");
  if (m.kind == StreamMessageKind::kAuth)
    return Status::InvalidArgument("the stream is already authenticated");
  if (requests_.size() >= host_->config().max_pipelined)
    return Status::ResourceExhausted(
        fmt::format("{} requests are in flight on this stream, the most it takes "
                    "([http] max_pipelined): wait for a result first",
                    requests_.size()));
  for (const auto& [slot, r] : requests_) {
    if (r.audit.request_id == m.request_id)
      return Status::InvalidArgument("request_id '" + m.request_id +
                                     "' is already in flight on this stream");
  }
  return Status::OK();
}

void WsSession::StartRequest(StreamMessage m) {
  const std::uint64_t slot = next_slot_++;
  Request& r = requests_[slot];
  r.route = m.match.route;
  r.start = std::chrono::steady_clock::now();
  r.audit = AuditOf(m, m.request_id, remote_);
  // The HTTP request the message stands for: the handler reads it as it reads any other.
  http::request<http::string_body> req = RequestFor(&m, authorization_);
  const Route route = m.match.route;
  host_->HandleRequest(shared_from_this(), slot, route, std::move(m.match), req);
}

AuditFacts* WsSession::audit(std::uint64_t slot) {
  auto it = requests_.find(slot);
  return it == requests_.end() || closed() ? nullptr : &it->second.audit;
}

void WsSession::DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                          std::string_view body, std::string_view extra_headers) {
  auto it = requests_.find(slot);
  if (it == requests_.end() || closed()) return;
  const Request& r = it->second;
  Enqueue(StreamResultJson(r.audit.request_id, status, content_type, body, extra_headers));
  host_->Answered(r.route, status, r.start, body, r.audit);
  requests_.erase(it);
  MaybeFinishClose();
}

void WsSession::SendError(std::string_view request_id, const Status& s) {
  Enqueue(StreamErrorJson(request_id, s));
}

void WsSession::Send(std::string message) {
  if (!open()) return;
  Enqueue(std::move(message));
}

void WsSession::Enqueue(std::string message) {
  if (closed()) return;
  if (queue_.size() >= kMaxStreamQueuedMessages) {
    Log(LogLevel::kWarn, "stream {}: client too slow ({} messages queued), closing", id_,
        queue_.size());
    CloseNow(websocket::close_code::going_away);
    return;
  }
  queue_.push_back(std::move(message));
  DoWrite();
}

void WsSession::DoWrite() {
  if (writing_ || queue_.empty() || closed()) return;
  writing_ = true;
  ws_.async_write(asio::buffer(queue_.front()),
                  [self = shared_from_this()](beast::error_code ec, std::size_t) {
                    self->writing_ = false;
                    if (ec) {
                      self->Fail("websocket write", ec);
                      return;
                    }
                    self->queue_.pop_front();
                    self->DoWrite();
                    self->MaybeFinishClose();
                  });
}

void WsSession::Close(websocket::close_reason why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  state_ = State::kClosing;
  close_reason_ = std::move(why);
  auth_deadline_.cancel();
  host_->Unsubscribe(id_);
  MaybeFinishClose();
}

void WsSession::MaybeFinishClose() {
  if (state_ != State::kClosing || !requests_.empty() || !queue_.empty() || writing_) return;
  CloseNow(close_reason_);
}

void WsSession::CloseNow(const websocket::close_reason& why) {
  if (closed()) return;
  state_ = State::kClosed;
  auth_deadline_.cancel();
  host_->Unsubscribe(id_);
  ws_.async_close(why, [self = shared_from_this()](beast::error_code) {
    beast::error_code ignored;
    self->ws_.next_layer().next_layer().close(ignored);
  });
}

void WsSession::Fail(std::string_view what, beast::error_code ec) {
  if (ec != websocket::error::closed && ec != asio::error::operation_aborted &&
      ec != asio::error::eof && ec != beast::error::timeout)
    Log(LogLevel::kDebug, "stream {}: {}: {}", id_, what, ec.message());
  if (closed()) return;
  state_ = State::kClosed;
  auth_deadline_.cancel();
  beast::error_code ignored;
  ws_.next_layer().next_layer().close(ignored);
  host_->Unsubscribe(id_);
}

}  // namespace tally::node
