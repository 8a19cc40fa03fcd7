#include "node/ws_session.h"

#include "node/log.h"

namespace tally::node {

WsSession::WsSession(ApiHost* host, ApiStream stream, std::vector<std::string> accounts,
                     std::uint64_t id)
    : host_(host), ws_(std::move(stream)), accounts_(std::move(accounts)), id_(id) {}

void WsSession::Start(http::request<http::string_body> req) {
  authorization_ = std::string(ToStd(req[http::field::authorization]));
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "tallyd"); }));
  ws_.read_message_max(4096);
  ws_.text(true);
  auto self = shared_from_this();
  ws_.async_accept(req, [self](beast::error_code ec) {
    if (ec) {
      self->Fail("websocket handshake", ec);
      return;
    }
    self->open_ = true;
    self->host_->Subscribe(self);
    self->DoRead();
  });
}

void WsSession::DoRead() {
  ws_.async_read(read_buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      self->Fail("websocket read", ec);
      return;
    }
    // The stream is one-way: whatever a client sends is read (to see pings and close frames) and
    // dropped.
    self->read_buf_.consume(self->read_buf_.size());
    self->DoRead();
  });
}

void WsSession::Send(std::string message) {
  if (!open_ || closed_) return;
  if (queue_.size() >= kMaxStreamQueuedMessages) {
    Log(LogLevel::kWarn, "stream {}: client too slow ({} messages queued), closing", id_,
        queue_.size());
    Close();
    return;
  }
  queue_.push_back(std::move(message));
  DoWrite();
}

void WsSession::DoWrite() {
  if (writing_ || queue_.empty() || closed_) return;
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
                  });
}

void WsSession::Fail(std::string_view what, beast::error_code ec) {
  if (ec != websocket::error::closed && ec != asio::error::operation_aborted &&
      ec != asio::error::eof && ec != beast::error::timeout)
    Log(LogLevel::kDebug, "stream {}: {}: {}", id_, what, ec.message());
  if (!closed_) {
    closed_ = true;
    beast::error_code ignored;
    ws_.next_layer().next_layer().close(ignored);
    host_->Unsubscribe(id_);
  }
}

void WsSession::Close() {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  auto self = shared_from_this();
  ws_.async_close(websocket::close_code::going_away, [self](beast::error_code) {
    beast::error_code ignored;
    self->ws_.next_layer().next_layer().close(ignored);
  });
  host_->Unsubscribe(id_);
}

}  // namespace tally::node
