// The client API of tallyd: HTTP sessions, WebSocket streams and the request handler.

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "node/log.h"
#include "node/node_internal.h"

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

// ---- HttpSession
// ---------------------------------------------------------------------------------

HttpSession::HttpSession(NodeImpl* node, tcp::socket socket, std::uint64_t id)
    : node_(node),
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
  if (slots_.size() >= node_->config().max_pipelined) return;  // resumes after a write
  reading_ = true;
  parser_.emplace();
  parser_->body_limit(node_->config().max_body_bytes);
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
                                                         node_->config().max_body_bytes))
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
    node_->HandleRequest(shared_from_this(), slot, match.route, std::move(match), req);
  }
  DoRead();
}

Status HttpSession::Authenticate(std::string_view header, const Principal** out) {
  if (cached_principal_ && header == cached_auth_) {
    *out = cached_principal_;
    return Status::OK();
  }
  Status s = node_->authorizer().Authenticate(header, out);
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
  if (node_->stopping()) s.close = true;
  s.bytes.reserve(160 + body.size());
  fmt::format_to(std::back_inserter(s.bytes),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}{}\r\n", status,
                 ReasonPhrase(status), content_type, body.size(), extra_headers,
                 status == 401 ? "WWW-Authenticate: Bearer\r\n" : "",
                 s.close ? "Connection: close\r\n" : "");
  s.bytes.append(body);
  node_->CountRequest(s.route, status, s.start);
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
      now - last_activity_ > std::chrono::milliseconds(node_->config().idle_timeout_ms))
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
  node_->SessionClosed(id_);
}

bool HttpSession::Upgrade(std::uint64_t slot, http::request<http::string_body> req,
                          std::vector<std::string> accounts) {
  if (slots_.size() != 1 || slot != first_slot_ || writing_) return false;
  node_->CountRequest(Route::kStream, 101, slots_.front().start);
  slots_.clear();
  ++first_slot_;
  closed_ = true;  // this object no longer owns the connection
  read_closed_ = true;
  auto ws = std::make_shared<WsSession>(node_, std::move(socket_), std::move(accounts), id_);
  node_->SessionClosed(id_);
  ws->Start(std::move(req));
  return true;
}

// ---- WsSession
// -----------------------------------------------------------------------------------

WsSession::WsSession(NodeImpl* node, tcp::socket stream, std::vector<std::string> accounts,
                     std::uint64_t id)
    : node_(node), ws_(std::move(stream)), accounts_(std::move(accounts)), id_(id) {}

void WsSession::Start(http::request<http::string_body> req) {
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
    self->node_->StreamOpened(self);
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
    ws_.next_layer().close(ignored);
    node_->StreamClosed(id_);
  }
}

void WsSession::Close() {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  auto self = shared_from_this();
  ws_.async_close(websocket::close_code::going_away, [self](beast::error_code) {
    beast::error_code ignored;
    self->ws_.next_layer().close(ignored);
  });
  node_->StreamClosed(id_);
}

// ---- NodeImpl: client API
// ------------------------------------------------------------------------

void NodeImpl::StartAccept() {
  client_acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (!ec) {
      if (sessions_.size() >= config_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        const std::uint64_t id = next_conn_id_++;
        auto session = std::make_shared<HttpSession>(this, std::move(socket), id);
        sessions_[id] = session;
        session->Start();
      }
    } else {
      Log(LogLevel::kWarn, "accept on {}: {}", config_.listen_client.ToString(), ec.message());
    }
    StartAccept();
  });
}

void NodeImpl::SessionClosed(std::uint64_t id) { sessions_.erase(id); }

void NodeImpl::StreamClosed(std::uint64_t id) {
  // Deferred: the stream may be closing from inside NotifyStreams' loop over streams_.
  asio::post(io_, [this, id] { streams_.erase(id); });
}

void NodeImpl::CountRequest(Route route, int status, SteadyTime start) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.CountRequest(route, status, seconds);
}

namespace {

Permission PermissionFor(Route r) {
  switch (r) {
    case Route::kOpenAccount:
      return Permission::kOpenAccounts;
    case Route::kCredit:
      return Permission::kCredit;
    case Route::kDebit:
      return Permission::kDebit;
    case Route::kTransfer:
      return Permission::kTransfer;
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

}  // namespace

void NodeImpl::HandleRequest(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                             Route route, RouteMatch match, http::request<http::string_body>& req) {
  auto fail = [&](const Status& s) {
    session->Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
  };
  if (route == Route::kHealth) {
    session->Respond(slot, stopping_ ? 503 : 200, kJson,
                     fmt::format(R"({{"status":"{}","region":"{}"}})",
                                 stopping_ ? "stopping" : "ok", config_.region));
    return;
  }
  if (route == Route::kMetrics) {
    session->Respond(slot, 200, "text/plain; version=0.0.4", RenderMetrics());
    return;
  }

  const Principal* who = nullptr;
  if (Status s = session->Authenticate(ToStd(req[http::field::authorization]), &who); !s.ok())
    return fail(s);
  const Permission needed = PermissionFor(route);
  if (route == Route::kStream) {
    for (const std::string& a : match.accounts) {
      if (Status s = Authorizer::Authorize(*who, needed, a); !s.ok()) return fail(s);
    }
  } else if (Status s = Authorizer::Authorize(*who, needed, match.account); !s.ok()) {
    return fail(s);
  }
  if (stopping_) return fail(Status::Unavailable("the node is shutting down"));
  // Durability of a write: the config's default, or the request's `Durability` header.
  bool replicated = config_.replicated_by_default;
  if (auto d = req.find("Durability"); d != req.end()) {
    const std::string_view v = ToStd(d->value());
    if (v == "replicated") {
      replicated = true;
    } else if (v == "local") {
      replicated = false;
    } else {
      return fail(Status::InvalidArgument("Durability must be \"local\" or \"replicated\""));
    }
  }

  switch (route) {
    case Route::kOpenAccount: {
      OpenAccount cmd;
      AccountDefaults defaults{config_.default_currency, config_.default_overdraft_limit,
                               config_.default_fee};
      if (Status s = ParseOpenAccountBody(req.body(), defaults, &cmd.config); !s.ok())
        return fail(s);
      // The scope is checked against the id in the body.
      if (Status s = Authorizer::Authorize(*who, needed, cmd.config.id); !s.ok()) return fail(s);
      std::string id = cmd.config.id;
      Submit(std::move(cmd), PendingCommand{session, slot, route, std::move(id)}, replicated);
      return;
    }
    case Route::kCredit:
    case Route::kDebit: {
      auto key = req.find("Idempotency-Key");
      const bool present = key != req.end();
      const std::string_view key_value = present ? ToStd(key->value()) : std::string_view();
      if (Status s = ValidateIdempotencyKeyHeader(key_value, present); !s.ok()) return fail(s);
      Amount amount = 0;
      if (Status s = ParseAmountBody(req.body(), &amount); !s.ok()) return fail(s);
      PendingCommand pending{session, slot, route, {}};
      if (route == Route::kCredit) {
        Submit(Credit{std::move(match.account), amount, std::string(key_value)},
               std::move(pending), replicated);
      } else {
        Submit(Debit{std::move(match.account), amount, std::string(key_value)}, std::move(pending),
               replicated);
      }
      return;
    }
    case Route::kTransfer: {
      // The key is optional on a rights move (tallyctl sends one when given); honoured if present.
      auto key = req.find("Idempotency-Key");
      const bool present = key != req.end();
      const std::string_view key_value = present ? ToStd(key->value()) : std::string_view();
      if (present) {
        if (Status s = ValidateIdempotencyKeyHeader(key_value, true); !s.ok()) return fail(s);
      }
      RegionId to = 0;
      Amount amount = 0;
      if (Status s = ParseTransferBody(req.body(), region_names_, config_.self, &to, &amount);
          !s.ok())
        return fail(s);
      Submit(TransferRights{std::move(match.account), to, amount, std::string(key_value)},
             PendingCommand{session, slot, route, {}}, replicated);
      return;
    }
    case Route::kGetAccount: {
      DeferredResponse d{session, slot, 200, std::string(kJson), {}};
      if (Status s = RenderAccount(match.account, &d.body); !s.ok()) {
        d.status = HttpStatusFor(s.code());
        d.body = ErrorJson(s);
      }
      AfterSync(std::move(d));
      return;
    }
    case Route::kReport: {
      DeferredResponse d{session, slot, 200, {}, {}};
      if (Status s = RenderReport(match.account, match.html, &d.body, &d.content_type); !s.ok()) {
        d.status = HttpStatusFor(s.code());
        d.content_type = kJson;
        d.body = ErrorJson(s);
      }
      AfterSync(std::move(d));
      return;
    }
    case Route::kCluster: {
      AfterSync(DeferredResponse{session, slot, 200, std::string(kJson), RenderCluster()});
      return;
    }
    case Route::kBackup: {
      std::string dir;
      if (Status s = ParseBackupBody(req.body(), &dir); !s.ok()) return fail(s);
      StartBackup(session, slot, std::move(dir));
      return;
    }
    case Route::kStream: {
      if (!websocket::is_upgrade(req))
        return fail(Status::InvalidArgument("/v1/stream needs a WebSocket upgrade request"));
      if (streams_.size() >= kMaxStreams)
        return fail(
            Status::ResourceExhausted(fmt::format("at most {} streams at once", kMaxStreams)));
      if (!session->Upgrade(slot, std::move(req), std::move(match.accounts)))
        return fail(Status::InvalidArgument(
            "a WebSocket upgrade must not be pipelined behind other requests"));
      return;
    }
    default:
      return fail(Status::NotFound("no route"));
  }
}

namespace {

// `p` made absolute, with symlinks and dots resolved as far as it exists, without a trailing '/'.
std::filesystem::path Resolved(const std::string& p, std::error_code* ec) {
  std::filesystem::path r = std::filesystem::absolute(p, *ec);
  if (*ec) return r;
  r = std::filesystem::weakly_canonical(r, *ec);
  if (!r.has_filename()) r = r.parent_path();
  return r;
}

// A copy written into the live data directory would be mixed into the store it copies (and
// copied with it next time): refused. Paths that cannot be resolved are left to the store's
// checks.
Status CheckOutsideDataDir(const std::string& dir, const std::string& data_dir) {
  std::error_code ec_dir, ec_data;
  const std::filesystem::path d = Resolved(dir, &ec_dir);
  const std::filesystem::path data = Resolved(data_dir, &ec_data);
  if (ec_dir || ec_data) return Status::OK();
  auto [in_data, in_dir] = std::mismatch(data.begin(), data.end(), d.begin(), d.end());
  if (in_data != data.end()) return Status::OK();
  return Status::InvalidArgument("dir " + dir + " is the region's data directory (" + data_dir +
                                 ") or inside it; a backup goes elsewhere");
}

}  // namespace

void NodeImpl::StartBackup(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                           std::string dir) {
  if (Status s = CheckOutsideDataDir(dir, config_.data_dir); !s.ok()) {
    session->Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
    return;
  }
  Log(LogLevel::kInfo, "backup to {}: started", dir);
  Status started = backup_->Start(dir, [this, session, slot, dir](Status s, const BackupStats& st) {
    if (!s.ok()) {
      Log(LogLevel::kWarn, "backup to {}: failed: {}", dir, s.ToString());
      session->Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
      return;
    }
    Log(LogLevel::kInfo, "backup to {}: {} records ({} ops, {} bytes) in {} ms, newest ops {}", dir,
        st.keys, st.ops, st.bytes, st.elapsed_us / 1000,
        st.newest.ToString(static_cast<RegionId>(region_names_.size())));
    session->Respond(slot, 200, kJson, RenderBackup(dir, st));
  });
  if (!started.ok()) {
    Log(LogLevel::kWarn, "backup to {}: not started: {}", dir, started.ToString());
    session->Respond(slot, HttpStatusFor(started.code()), kJson, ErrorJson(started));
  }
}

std::string NodeImpl::RenderBackup(const std::string& dir, const BackupStats& st) const {
  nlohmann::json newest = nlohmann::json::object();
  for (RegionId r = 0; r < region_names_.size(); ++r) newest[region_names_[r]] = st.newest.get(r);
  return nlohmann::json{{"region", config_.region},
                        {"dir", dir},
                        {"keys", st.keys},
                        {"ops", st.ops},
                        {"bytes", st.bytes},
                        {"batches", st.batches},
                        {"elapsed_ms", st.elapsed_us / 1000},
                        {"newest", std::move(newest)}}
      .dump();
}

void NodeImpl::StreamOpened(const std::shared_ptr<WsSession>& ws) {
  if (stopping_) {
    ws->Close();
    return;
  }
  // Registered under the id of the HTTP connection it came from (ids are never reused).
  streams_[ws->id()] = ws;
  // The first messages are the accounts' current state, sent once everything before is synced.
  for (const std::string& id : ws->accounts()) {
    AccountView view;
    if (!replica_->GetAccount(id, &view).ok()) continue;
    nlohmann::json msg{{"type", "account"}, {"account", AccountJson(view, region_names_)}};
    ws->Send(msg.dump());
  }
}

void NodeImpl::NotifyStreams(const PersistBatch& batch) {
  std::set<std::string_view> changed;
  for (const Op& op : batch.ops) changed.insert(op.account);
  for (const Fold& f : batch.folds) {
    for (const AccountCheckpoint& c : f.checkpoints) changed.insert(c.config.id);
  }
  if (changed.empty()) return;
  std::map<std::string_view, std::string> rendered;  // each changed account rendered once
  for (auto& [id, ws] : streams_) {
    if (!ws->open()) continue;
    for (const std::string& account : ws->accounts()) {
      if (!changed.count(account)) continue;
      auto it = rendered.find(account);
      if (it == rendered.end()) {
        AccountView view;
        std::string msg;
        if (replica_->GetAccount(account, &view).ok()) {
          msg = nlohmann::json{{"type", "account"}, {"account", AccountJson(view, region_names_)}}
                    .dump();
        }
        it = rendered.emplace(account, std::move(msg)).first;
      }
      if (!it->second.empty()) ws->Send(it->second);
    }
  }
}

Status NodeImpl::RenderAccount(std::string_view id, std::string* out) {
  AccountView view;
  if (Status s = replica_->GetAccount(id, &view); !s.ok()) return s;
  *out = AccountJson(view, region_names_).dump();
  return Status::OK();
}

Status NodeImpl::RenderReport(std::string_view id, bool html, std::string* out,
                              std::string* content_type) {
  AccountView view;
  if (Status s = replica_->GetAccount(id, &view); !s.ok()) return s;
  std::vector<ForkReport> forks;
  if (Status s = replica_->Forks(id, &forks); !s.ok()) return s;
  std::vector<DerivedEvent> events;
  if (Status s = replica_->DerivedEvents(id, &events); !s.ok()) return s;
  const report::RunReport r =
      AccountReport(config_.region, view, std::move(forks), std::move(events), region_names_);
  if (html) {
    *out = report::RenderHtml(r);
    *content_type = "text/html; charset=utf-8";
  } else {
    *out = report::RenderJson(r);
    *content_type = kJson;
  }
  return Status::OK();
}

std::string NodeImpl::RenderCluster() {
  const std::uint64_t now = MonoMs();
  const RegionId n = static_cast<RegionId>(region_names_.size());
  auto vector_json = [&](const VersionVector& v) {
    nlohmann::json j = nlohmann::json::object();
    for (RegionId r = 0; r < n; ++r) j[region_names_[r]] = v.get(r);
    return j;
  };
  nlohmann::json regions = nlohmann::json::array();
  for (const RegionConfig& r : config_.regions)
    regions.push_back({{"id", r.id}, {"name", r.name}, {"peer", r.peer.ToString()}});
  nlohmann::json peers = nlohmann::json::array();
  for (const PeerView& p : replica_->Peers(now)) {
    if (p.region == config_.self || p.region >= n) continue;
    std::size_t inbound = 0;
    for (auto& [id, weak] : inbound_) {
      auto in = weak.lock();
      if (in && !in->closed() && in->verified() && in->region() == p.region) ++inbound;
    }
    const PeerLink* link = links_[p.region].get();
    peers.push_back({{"region", region_names_[p.region]},
                     {"connected", link && link->ready()},
                     {"inbound_connections", inbound},
                     {"reachable", p.reachable},
                     {"ops_behind", p.ops_behind},
                     {"last_heard_ms", p.last_heard_ms},
                     {"last_heard_ago_ms",
                      p.last_heard_ms ? static_cast<std::int64_t>(now - p.last_heard_ms) : -1},
                     {"clock_offset_ms", p.clock_offset_ms},
                     {"rtt_ms", p.rtt_ms},
                     {"acked", vector_json(p.acked)}});
  }
  nlohmann::json j{{"cluster_id", config_.cluster_id},
                   {"region", config_.region},
                   {"region_id", config_.self},
                   {"rejoining", replica_->rejoining()},
                   {"epoch", fmt::format("{:016x}", replica_->epoch())},
                   {"regions", std::move(regions)},
                   {"applied", vector_json(replica_->applied())},
                   {"log_floor", vector_json(replica_->log_floor())},
                   {"frontier", replica_->frontier().ToString()},
                   {"clock", replica_->clock().ToString()},
                   {"accounts", replica_->AccountIds().size()},
                   {"peers", std::move(peers)}};
  return j.dump();
}

std::string NodeImpl::RenderMetrics() {
  std::string out;
  out.reserve(16 * 1024);
  metrics_.Render(&out);
  const std::uint64_t now = MonoMs();
  const RegionId n = static_cast<RegionId>(region_names_.size());
  auto peer_label = [&](RegionId r) { return fmt::format("peer=\"{}\"", region_names_[r]); };

  AppendHelp("tally_ops_persisted_total", "counter", "Op records made durable (local and remote).",
             &out);
  AppendSample("tally_ops_persisted_total", "", static_cast<double>(ops_persisted_), &out);
  AppendHelp("tally_ops_applied", "gauge", "Ops applied per origin region (the version vector).",
             &out);
  const VersionVector& applied = replica_->applied();
  for (RegionId r = 0; r < n; ++r)
    AppendSample("tally_ops_applied", fmt::format("origin=\"{}\"", region_names_[r]),
                 static_cast<double>(applied.get(r)), &out);

  const ReplicaStats& st = replica_->stats();
  const std::pair<std::string_view, std::uint64_t> stats[] = {
      {"commands", st.commands},
      {"accepted", st.accepted},
      {"rejected", st.rejected},
      {"overdraft_debits", st.overdraft_debits},
      {"replays", st.replays},
      {"rights_requests_sent", st.rights_requests_sent},
      {"rights_granted", st.rights_granted},
      {"rebalance_transfers", st.rebalance_transfers},
      {"remote_ops_applied", st.remote_ops_applied},
      {"duplicate_ops", st.duplicate_ops},
      {"ops_sent", st.ops_sent},
      {"messages_sent", st.messages_sent},
      {"snapshots_sent", st.snapshots_sent},
      {"clock_ahead_reports", st.clock_ahead_reports},
      {"lost_history_ops", st.lost_history_ops},
      {"idempotency_keys_expired", st.idempotency_keys_expired},
  };
  for (const auto& [name, value] : stats) {
    const std::string metric = fmt::format("tally_replica_{}_total", name);
    AppendHelp(metric, "counter", "Replica statistic (core ReplicaStats).", &out);
    AppendSample(metric, "", static_cast<double>(value), &out);
  }
  AppendHelp("tally_replica_buffered_ops", "gauge",
             "Remote ops held back waiting for a gap to fill.", &out);
  AppendSample("tally_replica_buffered_ops", "", static_cast<double>(st.buffered_ops), &out);
  AppendHelp("tally_idempotency_keys", "gauge",
             "Idempotency keys held (inside their retention window, or not yet swept).", &out);
  AppendSample("tally_idempotency_keys", "", static_cast<double>(st.idempotency_keys), &out);
  AppendHelp("tally_idempotency_index_bytes", "gauge", "Memory the idempotency index holds.", &out);
  AppendSample("tally_idempotency_index_bytes", "", static_cast<double>(st.idempotency_index_bytes),
               &out);
  AppendHelp("tally_accounts", "gauge", "Accounts held.", &out);
  AppendSample("tally_accounts", "", static_cast<double>(replica_->AccountIds().size()), &out);
  const Hlc frontier = replica_->frontier();
  // Against our HLC, not the wall clock: a region whose wall clock is behind its peers' has a
  // frontier (their timestamps) ahead of it, and the lag would go negative.
  const Hlc hlc_now = replica_->clock();
  AppendHelp("tally_frontier_lag_seconds", "gauge",
             "How far the stable frontier (final prefix) trails this region's HLC.", &out);
  AppendSample("tally_frontier_lag_seconds", "",
               frontier.is_zero() || hlc_now < frontier
                   ? 0.0
                   : (static_cast<double>(hlc_now.wall_ms()) - static_cast<double>(frontier.wall_ms())) / 1000.0,
               &out);
  AppendHelp("tally_store_busy_seconds_total", "counter",
             "Time the storage thread spent writing (encoding and the synced LevelDB write).",
             &out);
  AppendSample("tally_store_busy_seconds_total", "", static_cast<double>(storage_->busy_us()) / 1e6,
               &out);
  AppendHelp("tally_store_idle_seconds_total", "counter",
             "Time the storage thread waited with nothing to write. Near zero under load: the disk "
             "is the bottleneck.",
             &out);
  AppendSample("tally_store_idle_seconds_total", "", static_cast<double>(storage_->idle_us()) / 1e6,
               &out);
  AppendHelp("tally_pending_requests", "gauge", "Commands submitted and not yet answered.", &out);
  AppendSample("tally_pending_requests", "", static_cast<double>(commands_.size()), &out);
  AppendHelp("tally_http_connections", "gauge", "Open client connections (streams excluded).",
             &out);
  AppendSample("tally_http_connections", "", static_cast<double>(sessions_.size()), &out);
  AppendHelp("tally_streams", "gauge", "Open WebSocket streams.", &out);
  AppendSample("tally_streams", "", static_cast<double>(streams_.size()), &out);

  std::vector<PeerView> peers = replica_->Peers(now);
  AppendHelp("tally_peer_connected", "gauge", "1 when our outbound gossip link to the peer is up.",
             &out);
  for (RegionId r = 0; r < n; ++r)
    if (links_[r])
      AppendSample("tally_peer_connected", peer_label(r), links_[r]->ready() ? 1 : 0, &out);
  AppendHelp("tally_peer_reachable", "gauge",
             "1 when the replica heard the peer within peer_timeout_ms.", &out);
  for (const PeerView& p : peers)
    if (p.region != config_.self && p.region < n)
      AppendSample("tally_peer_reachable", peer_label(p.region), p.reachable ? 1 : 0, &out);
  AppendHelp("tally_peer_ops_behind", "gauge",
             "Ops we hold that the peer has not acknowledged (peer lag).", &out);
  for (const PeerView& p : peers)
    if (p.region != config_.self && p.region < n)
      AppendSample("tally_peer_ops_behind", peer_label(p.region), static_cast<double>(p.ops_behind),
                   &out);
  AppendHelp("tally_peer_clock_offset_seconds", "gauge",
             "Peer wall clock minus ours, at its last heartbeat.", &out);
  for (const PeerView& p : peers)
    if (p.region != config_.self && p.region < n)
      AppendSample("tally_peer_clock_offset_seconds", peer_label(p.region),
                   static_cast<double>(p.clock_offset_ms) / 1000.0, &out);
  AppendHelp("tally_peer_last_heard_seconds", "gauge", "Seconds since the peer was last heard.",
             &out);
  for (const PeerView& p : peers)
    if (p.region != config_.self && p.region < n && p.last_heard_ms)
      AppendSample("tally_peer_last_heard_seconds", peer_label(p.region),
                   (static_cast<double>(now) - static_cast<double>(p.last_heard_ms)) / 1000.0,
                   &out);

  AppendHelp("tally_gossip_bytes_sent_total", "counter", "Gossip bytes written to the peer.", &out);
  for (RegionId r = 0; r < n; ++r)
    if (links_[r])
      AppendSample("tally_gossip_bytes_sent_total", peer_label(r),
                   static_cast<double>(links_[r]->bytes_sent), &out);
  AppendHelp("tally_gossip_bytes_received_total", "counter", "Gossip bytes read from the peer.",
             &out);
  for (RegionId r = 0; r < n; ++r)
    if (links_[r])
      AppendSample("tally_gossip_bytes_received_total", peer_label(r),
                   static_cast<double>(gossip_received_[r] + links_[r]->bytes_received), &out);
  AppendHelp("tally_gossip_messages_dropped_total", "counter",
             "Messages to the peer dropped (link down, handshake pending or send queue full); the "
             "replica re-sends what is not acknowledged.",
             &out);
  for (RegionId r = 0; r < n; ++r)
    if (links_[r])
      AppendSample("tally_gossip_messages_dropped_total", peer_label(r),
                   static_cast<double>(links_[r]->dropped), &out);
  AppendHelp("tally_gossip_connects_total", "counter", "Outbound gossip connections established.",
             &out);
  for (RegionId r = 0; r < n; ++r)
    if (links_[r])
      AppendSample("tally_gossip_connects_total", peer_label(r),
                   static_cast<double>(links_[r]->connects), &out);
  AppendHelp("tally_gossip_refused_total", "counter",
             "Peer connections refused at the handshake (wrong cluster, region or protocol).",
             &out);
  std::uint64_t refused = peer_refusals;
  for (RegionId r = 0; r < n; ++r)
    if (links_[r]) refused += links_[r]->refused;
  AppendSample("tally_gossip_refused_total", "", static_cast<double>(refused), &out);
  AppendHelp("tally_peer_connections_refused_total", "counter",
             "Connections to the peer port this region closed, by reason (handshake deadline, "
             "bounds on connections awaiting their Hello, receive budget, bad handshake or frame).",
             &out);
  for (std::size_t i = 0; i < kPeerRefusalKinds; ++i)
    AppendSample("tally_peer_connections_refused_total",
                 fmt::format("reason=\"{}\"", PeerRefusalName(static_cast<PeerRefusal>(i))),
                 static_cast<double>(refusals_[i].total), &out);
  std::size_t handshaking = 0, verified = 0;
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (!p || p->closed()) continue;
    ++(p->verified() ? verified : handshaking);
  }
  AppendHelp("tally_peer_inbound_connections", "gauge",
             "Open connections to the peer port: state=\"handshake\" (Hello not yet accepted) or "
             "\"verified\" (a region's).",
             &out);
  AppendSample("tally_peer_inbound_connections", "state=\"handshake\"",
               static_cast<double>(handshaking), &out);
  AppendSample("tally_peer_inbound_connections", "state=\"verified\"",
               static_cast<double>(verified), &out);
  AppendHelp("tally_peer_receive_buffered_bytes", "gauge",
             "Bytes of partly received frames held across connections to the peer port (at most "
             "gossip.receive_buffer_bytes).",
             &out);
  AppendSample("tally_peer_receive_buffered_bytes", "", static_cast<double>(inbound_buffered_),
               &out);
  AppendHelp("tally_notices_total", "counter", "Replica notices by kind.", &out);
  AppendSample("tally_notices_total", "kind=\"clock_ahead\"",
               static_cast<double>(notices_clock_ahead_), &out);
  AppendSample("tally_notices_total", "kind=\"peer_refused\"",
               static_cast<double>(notices_peer_refused_), &out);
  return out;
}

}  // namespace tally::node
