#include "node/http_session.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <iterator>
#include <limits>

#include "node/ws_session.h"

namespace tally::node {

namespace {

constexpr std::string_view kPlainHttpBody =
    R"({"error":{"code":"tls_required","message":"this port speaks HTTPS: use https://"}})";

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

std::string_view ClientRefusalName(ClientRefusal reason) {
  switch (reason) {
    case ClientRefusal::kTlsHandshake:
      return "tls_handshake";
    case ClientRefusal::kPlainHttp:
      return "plain_http";
    case ClientRefusal::kHandshakeTimeout:
      return "handshake_timeout";
  }
  return "unknown";
}

HttpSession::HttpSession(ApiHost* host, tcp::socket socket, std::uint64_t id)
    : Responder(host),
      host_(host),
      id_(id),
      stream_(std::move(socket), host->api_tls()),
      remote_(RemoteOf(stream_.next_layer())),
      last_activity_(std::chrono::steady_clock::now()) {}

HttpSession::HttpSession(std::shared_ptr<ApiHost> host, tcp::socket socket, std::uint64_t id)
    : HttpSession(host.get(), std::move(socket), id) {
  owned_host_ = std::move(host);
}

HttpSession::HttpSession(ApiHost* host, ApiStream stream, std::uint64_t id, std::string remote,
                         beast::flat_buffer buffer, Slot slot, std::uint64_t slot_number)
    : Responder(host),
      host_(host),
      id_(id),
      stream_(std::move(stream)),
      remote_(std::move(remote)),
      buffer_(std::move(buffer)),
      first_slot_(slot_number),
      last_activity_(std::chrono::steady_clock::now()) {
  slots_.push_back(std::move(slot));
}

void HttpSession::Start() {
  beast::error_code ec;
  stream_.next_layer().set_option(tcp::no_delay(true), ec);
  if (!stream_.secure()) return DoRead();
  handshaking_ = true;
  stream_.AsyncHandshake(
      [self = shared_from_this()](beast::error_code hec) { self->OnHandshake(hec); });
}

void HttpSession::OnHandshake(beast::error_code ec) {
  if (closed_) return;
  handshaking_ = false;
  last_activity_ = std::chrono::steady_clock::now();
  if (!ec) return DoRead();
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
    // A plain HTTP client: say so in its own protocol rather than leave it with a reset.
    host_->NoteClientRefusal(ClientRefusal::kPlainHttp, remote_, "plain HTTP on the HTTPS port");
    out_ = fmt::format(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: "
        "{}\r\nConnection: close\r\n\r\n{}",
        kPlainHttpBody.size(), kPlainHttpBody);
    writing_ = true;
    asio::async_write(stream_.next_layer(), asio::buffer(out_),
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        self->writing_ = false;
                        self->Close();
                      });
    return;
  }
  host_->NoteClientRefusal(ClientRefusal::kTlsHandshake, remote_, ec.message());
  Close();
}

void HttpSession::DoRead() {
  if (reading_ || read_closed_ || closed_) return;
  if (slots_.size() >= host_->config().max_pipelined) return;  // resumes after a write
  reading_ = true;
  parser_.emplace();
  // The parser would check a Content-Length against its limit as the header ends, before the
  // route is known: no limit until then, the route's right after (no body byte is read before).
  // (Not boost::none: Beast compares a length with it as an optional, and every length is larger.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  parser_->header_limit(kMaxHeaderBytes);
  batch_body_ = false;
  // The header first: it is routed (once: OnRead uses the match), and the route says which bound
  // the body has (POST /v1/batch's is larger), so no other route's body is ever read past
  // max_body_bytes.
  http::async_read_header(
      stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->OnRead(ec);
        const auto& req = self->parser_->get();
        const NodeConfig& config = self->host_->config();
        self->match_ = RouteMatch{};
        self->matched_ = MatchRoute(MethodOf(req.method()), ToStd(req.target()), &self->match_);
        self->batch_body_ = self->matched_.ok() && self->match_.route == Route::kBatch;
        const std::size_t limit =
            self->batch_body_ ? config.max_batch_bytes : config.max_body_bytes;
        if (const auto length = self->parser_->content_length(); length && *length > limit)
          return self->OnRead(http::error::body_limit);
        self->parser_->body_limit(limit);  // a chunked body is counted as it comes
        http::async_read(self->stream_, self->buffer_, *self->parser_,
                         [self](beast::error_code ec2, std::size_t) { self->OnRead(ec2); });
      });
}

std::uint64_t HttpSession::AddSlot(Route route, bool keep_alive, SteadyTime start) {
  Slot s;
  s.route = route;
  s.start = start;
  s.close = !keep_alive;
  s.audit.request_id = host_->NewRequestId();
  s.audit.remote = remote_;
  slots_.push_back(std::move(s));
  return first_slot_ + slots_.size() - 1;
}

void HttpSession::RespondError(std::uint64_t slot, const Status& s, bool close) {
  if (close) slots_[slot - first_slot_].close = true;
  Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
}

Status HttpSession::BodyTooLarge(bool batch) const {
  const NodeConfig& c = host_->config();
  if (batch)
    return Status::InvalidArgument(
        fmt::format("request body exceeds {} bytes ([http] max_batch_bytes)", c.max_batch_bytes));
  return Status::InvalidArgument(
      fmt::format("request body exceeds {} bytes ([http] max_body_bytes)", c.max_body_bytes));
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
    const std::uint64_t slot = AddSlot(Route::kUnknown, false, start);
    if (ec == http::error::body_limit) {
      // 413, not 400: the request may be fine but for its size.
      slots_[slot - first_slot_].close = true;
      Respond(slot, 413, kJson, ErrorJson(BodyTooLarge(batch_body_)));
      return;
    }
    Status s = ec == http::error::header_limit
                   ? Status::InvalidArgument(
                         fmt::format("request header exceeds {} bytes", kMaxHeaderBytes))
                   : Status::InvalidArgument("malformed HTTP request: " + ec.message());
    RespondError(slot, s, true);
    return;
  }
  http::request<http::string_body> req = parser_->release();
  parser_.reset();
  RouteMatch match = std::move(match_);  // routed as its header was read
  const Status s = std::move(matched_);
  const std::uint64_t slot = AddSlot(match.route, req.keep_alive(), start);
  AuditFacts& facts = slots_.back().audit;
  if (auto id = req.find("X-Request-Id"); id != req.end() && IsValidRequestId(ToStd(id->value())))
    facts.request_id = std::string(ToStd(id->value()));
  if (auto key = req.find("Idempotency-Key"); key != req.end())
    facts.idempotency_key = std::string(ToStd(key->value()).substr(0, kMaxAuditedKeyBytes));
  facts.account = match.account.substr(0, kMaxAuditedKeyBytes);
  if (!s.ok()) {
    if (IsMethodNotAllowed(s)) {
      Respond(slot, 405, kJson,
              ErrorJson(Status::InvalidArgument(
                  fmt::format("method {} is not allowed on {}", std::string(req.method_string()),
                              std::string(req.target().substr(0, 256))))),
              "Allow: " + std::string(AllowedMethods(match.route)) + "\r\n");
    } else {
      Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
    }
  } else if (match.route == Route::kStream) {
    host_->OpenStream(shared_from_this(), slot, std::move(match), req);
  } else {
    host_->HandleRequest(shared_from_this(), slot, match.route, std::move(match), req);
  }
  DoRead();
}

SteadyTime HttpSession::started(std::uint64_t slot) const {
  if (slot < first_slot_ || slot - first_slot_ >= slots_.size())
    return std::chrono::steady_clock::now();
  return slots_[slot - first_slot_].start;
}

void HttpSession::RespondCounted(std::uint64_t slot, int status, std::string_view content_type,
                                 std::string_view body, std::string_view extra_headers) {
  if (closed_ || slot < first_slot_ || slot - first_slot_ >= slots_.size()) return;
  slots_[slot - first_slot_].counted = true;
  DoRespond(slot, status, content_type, body, extra_headers);
}

std::shared_ptr<HttpSession> HttpSession::HandOver(ApiHost* host) {
  if (closed_ || slots_.size() != 1 || writing_ || reading_) return nullptr;
  stream_.RunOn(host->io().get_executor());
  std::shared_ptr<HttpSession> moved(new HttpSession(host, std::move(stream_), id_, remote_,
                                                     std::move(buffer_), std::move(slots_.front()),
                                                     first_slot_));
  slots_.clear();
  closed_ = true;  // this object no longer owns the connection
  read_closed_ = true;
  host_->SessionClosed(id_);
  return moved;
}

AuditFacts* HttpSession::audit(std::uint64_t slot) {
  if (closed_ || slot < first_slot_ || slot - first_slot_ >= slots_.size()) return nullptr;
  Slot& s = slots_[slot - first_slot_];
  return s.ready ? nullptr : &s.audit;
}

void HttpSession::DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                            std::string_view body, std::string_view extra_headers) {
  if (closed_ || slot < first_slot_ || slot - first_slot_ >= slots_.size()) return;
  Slot& s = slots_[slot - first_slot_];
  if (s.ready) return;
  s.ready = true;
  if (host_->stopping()) s.close = true;
  s.bytes.reserve(160 + body.size());
  fmt::format_to(std::back_inserter(s.bytes),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Request-Id: "
                 "{}\r\n{}{}{}\r\n",
                 status, ReasonPhrase(status), content_type, body.size(), s.audit.request_id,
                 extra_headers, status == 401 ? "WWW-Authenticate: Bearer\r\n" : "",
                 s.close ? "Connection: close\r\n" : "");
  s.bytes.append(body);
  if (!s.counted) host_->Answered(s.route, status, s.start, body, s.audit);
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
      stream_, asio::buffer(out_),
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
  stream_.next_layer().shutdown(tcp::socket::shutdown_send, ec);
  if (ec || reading_) {
    Close();
    return;
  }
  if (!lingering_) {
    lingering_ = true;
    linger_deadline_ = std::chrono::steady_clock::now() + kLingerTimeout;
  }
  stream_.async_read_some(asio::buffer(linger_buf_),
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
  if (handshaking_ &&
      now - last_activity_ > std::chrono::milliseconds(host_->config().idle_timeout_ms)) {
    host_->NoteClientRefusal(
        ClientRefusal::kHandshakeTimeout, remote_,
        fmt::format("no finished TLS handshake within {} ms (http.idle_timeout_ms)",
                    host_->config().idle_timeout_ms));
    Close();
    return;
  }
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
    stream_.next_layer().cancel(ec);
  }
  if (slots_.empty() && !writing_) Close();
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  slots_.clear();
  beast::error_code ec;
  stream_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
  stream_.next_layer().close(ec);
  host_->SessionClosed(id_);
}

bool HttpSession::Upgrade(std::uint64_t slot, http::request<http::string_body> req,
                          std::vector<std::string> accounts, std::optional<CanonicalKey> after,
                          StreamAuth auth) {
  if (slots_.size() != 1 || slot != first_slot_ || writing_) return false;
  host_->Answered(Route::kStream, 101, slots_.front().start, {}, slots_.front().audit);
  slots_.clear();
  ++first_slot_;
  closed_ = true;  // this object no longer owns the connection
  read_closed_ = true;
  auto ws = std::make_shared<WsSession>(host_, std::move(stream_), std::move(accounts), after,
                                        std::move(auth), id_);
  host_->SessionClosed(id_);
  ws->Start(std::move(req));
  return true;
}

}  // namespace tally::node
