#include "node/http_session.h"

#include <fmt/format.h>

#include <chrono>
#include <iterator>

#include "node/ws_session.h"

namespace tally::node {

namespace {

constexpr std::string_view kJson = "application/json";

Method MethodOf(http::verb v) {
  switch (v) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::post:
      return Method::kPost;
    default:
      return Method::kOther;
  }
}

bool IsMethodNotAllowed(const Status& s) {
  return s.code() == Code::kFailedPrecondition && s.message() == "method not allowed";
}

}  // namespace

HttpSession::HttpSession(ApiHost* host, tcp::socket socket, std::uint64_t id)
    : host_(host),
      id_(id),
      socket_(std::move(socket)),
      last_activity_(std::chrono::steady_clock::now()) {}

void HttpSession::Start() {
  beast::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  DoRead();
}

void HttpSession::DoRead() {
  if (reading_ || read_closed_ || closed_) return;
  if (slots_.size() >= host_->config().max_pipelined) return;  // resumes after a write
  reading_ = true;
  parser_.emplace();
  parser_->body_limit(host_->config().max_body_bytes);
  parser_->header_limit(kMaxHeaderBytes);
  http::async_read(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
}

std::uint64_t HttpSession::AddSlot(Route route, bool keep_alive, SteadyTime start) {
  Slot s;
  s.route = route;
  s.start = start;
  s.close = !keep_alive;
  slots_.push_back(std::move(s));
  return first_slot_ + slots_.size() - 1;
}

void HttpSession::RespondError(std::uint64_t slot, const Status& s, bool close) {
  if (close) slots_[slot - first_slot_].close = true;
  Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
}

void HttpSession::OnRead(beast::error_code ec) {
  reading_ = false;
  if (closed_) return;
  const SteadyTime start = std::chrono::steady_clock::now();
  last_activity_ = start;
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    // No more requests (the client is done, or CloseWhenIdle cancelled the read); answers still
    // owed are written first.
    read_closed_ = true;
    if (slots_.empty() && !writing_) Close();
    return;
  }
  if (ec == beast::error::timeout) {
    Close();
    return;
  }
  if (ec) {
    // A request we cannot parse: answer 400 naming the problem, then close (the byte stream is no
    // longer in step with request boundaries).
    read_closed_ = true;
    if (ec.category() != http::make_error_code(http::error::body_limit).category()) {
      Close();
      return;
    }
    Status s = ec == http::error::body_limit
                   ? Status::InvalidArgument(fmt::format("request body exceeds {} bytes",
                                                         host_->config().max_body_bytes))
               : ec == http::error::header_limit
                   ? Status::InvalidArgument(
                         fmt::format("request header exceeds {} bytes", kMaxHeaderBytes))
                   : Status::InvalidArgument("malformed HTTP request: " + ec.message());
    RespondError(AddSlot(Route::kUnknown, false, start), s, true);
    return;
  }
  http::request<http::string_body> req = parser_->release();
  parser_.reset();
  RouteMatch match;
  Status s = MatchRoute(MethodOf(req.method()), ToStd(req.target()), &match);
  const std::uint64_t slot = AddSlot(match.route, req.keep_alive(), start);
  if (!s.ok()) {
    if (IsMethodNotAllowed(s)) {
      Respond(slot, 405, kJson,
              ErrorJson(Status::InvalidArgument(
                  fmt::format("method {} is not allowed on {}", std::string(req.method_string()),
                              std::string(req.target().substr(0, 256))))),
              match.route == Route::kOpenAccount || match.route == Route::kCredit ||
                      match.route == Route::kDebit || match.route == Route::kTransfer ||
                      match.route == Route::kBackup
                  ? "Allow: POST\r\n"
                  : "Allow: GET\r\n");
    } else {
      Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
    }
  } else {
    host_->HandleRequest(shared_from_this(), slot, match.route, std::move(match), req);
  }
  DoRead();
}

Status HttpSession::Authenticate(std::string_view header, const Principal** out) {
  if (cached_principal_ && header == cached_auth_) {
    *out = cached_principal_;
    return Status::OK();
  }
  Status s = host_->Authenticate(header, out);
  if (s.ok()) {
    cached_auth_ = std::string(header);
    cached_principal_ = *out;
  }
  return s;
}

void HttpSession::Respond(std::uint64_t slot, int status, std::string_view content_type,
                          std::string_view body, std::string_view extra_headers) {
  if (closed_ || slot < first_slot_ || slot - first_slot_ >= slots_.size()) return;
  Slot& s = slots_[slot - first_slot_];
  if (s.ready) return;
  s.ready = true;
  if (host_->stopping()) s.close = true;
  s.bytes.reserve(160 + body.size());
  fmt::format_to(std::back_inserter(s.bytes),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}{}\r\n", status,
                 ReasonPhrase(status), content_type, body.size(), extra_headers,
                 status == 401 ? "WWW-Authenticate: Bearer\r\n" : "",
                 s.close ? "Connection: close\r\n" : "");
  s.bytes.append(body);
  host_->CountRequest(s.route, status, s.start);
  MaybeWrite();
}

void HttpSession::MaybeWrite() {
  if (writing_ || closed_) return;
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    if (out_.empty()) {
      out_.swap(s.bytes);
    } else {
      out_.append(s.bytes);
    }
    if (s.close) close_after_write_ = true;
    slots_.pop_front();
    ++first_slot_;
    if (close_after_write_) {
      // Requests pipelined behind a "Connection: close" are not answered.
      read_closed_ = true;
      slots_.clear();
      break;
    }
  }
  if (out_.empty()) {
    if (read_closed_ && slots_.empty()) Close();
    return;
  }
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(out_),
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnWrite(ec); });
}

void HttpSession::OnWrite(beast::error_code ec) {
  writing_ = false;
  out_.clear();
  last_activity_ = std::chrono::steady_clock::now();
  if (ec) {
    Close();
    return;
  }
  if (close_after_write_) {
    Linger();
    return;
  }
  MaybeWrite();
  DoRead();
}

// Half-closes, then drains what the client still sends (for up to kLingerTimeout) before closing,
// so a client still uploading a refused body reads our answer instead of a connection reset.
void HttpSession::Linger() {
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec || reading_) {
    Close();
    return;
  }
  if (!lingering_) {
    lingering_ = true;
    linger_deadline_ = std::chrono::steady_clock::now() + kLingerTimeout;
  }
  socket_.async_read_some(asio::buffer(linger_buf_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec) {
                              self->Close();
                            } else {
                              self->Linger();
                            }
                          });
}

void HttpSession::CheckTimeouts(SteadyTime now) {
  if (closed_) return;
  if (lingering_) {
    if (now > linger_deadline_) Close();
    return;
  }
  // Idle: nothing owed to the client and no whole request for idle_timeout_ms (a request trickling
  // in byte by byte counts as idle too).
  if (slots_.empty() && !writing_ &&
      now - last_activity_ > std::chrono::milliseconds(host_->config().idle_timeout_ms))
    Close();
}

void HttpSession::CloseWhenIdle() {
  read_closed_ = true;
  if (reading_) {
    // The pending read is for a request not yet begun: cancel it.
    beast::error_code ec;
    socket_.cancel(ec);
  }
  if (slots_.empty() && !writing_) Close();
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  slots_.clear();
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  host_->SessionClosed(id_);
}

bool HttpSession::Upgrade(std::uint64_t slot, http::request<http::string_body> req,
                          std::vector<std::string> accounts) {
  if (slots_.size() != 1 || slot != first_slot_ || writing_) return false;
  host_->CountRequest(Route::kStream, 101, slots_.front().start);
  slots_.clear();
  ++first_slot_;
  closed_ = true;  // this object no longer owns the connection
  read_closed_ = true;
  auto ws = std::make_shared<WsSession>(host_, std::move(socket_), std::move(accounts), id_);
  host_->SessionClosed(id_);
  ws->Start(std::move(req));
  return true;
}

}  // namespace tally::node
