// NodeImpl as ApiHost: the request handler behind HttpSession and WsSession — authentication,
// authorization, commands to the replica, reads answered after the sync, backups, streams. A
// request sent as a stream message arrives here as the HTTP request it stands for and is answered
// through the same Responder calls, so nothing below knows which way it came.

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "node/batch_request.h"
#include "node/batch_responder.h"
#include "node/log.h"
#include "node/node_impl.h"
#include "node/operator_page.h"
#include "node/session_relay.h"
#include "node/statement_view.h"
#include "node/stream_messages.h"
#include "node/ws_session.h"

namespace tally::node {

void NodeImpl::StartAccept() {
  // With a client pool the socket is made on the io_context of the thread that will serve it.
  const std::size_t thread = pool_ ? pool_->Next() : 0;
  asio::io_context& on = pool_ ? pool_->context(thread) : io_;
  client_acceptor_.async_accept(on, [this, thread](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (!ec) {
      const std::size_t open = sessions_.size() + (pool_ ? pool_->connections() : 0);
      if (open >= config_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else if (pool_) {
        const std::uint64_t id = next_conn_id_++;
        auto relay = std::make_shared<SessionRelay>(this, pool_.get(), thread);
        auto session = std::make_shared<HttpSession>(relay, std::move(socket), id);
        relay->Attach(session);
        pool_->Serve(thread, std::move(session));
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

void NodeImpl::Adopt(const std::shared_ptr<HttpSession>& session) {
  sessions_[session->id()] = session;
}

void NodeImpl::NoteClientRefusal(ClientRefusal reason, std::string_view remote,
                                 std::string_view why) {
  const auto i = static_cast<std::size_t>(reason);
  ++client_refusals_[i];
  // One line per reason per kRefusalLogInterval: a scan of the port must not flood the log.
  const SteadyTime now = std::chrono::steady_clock::now();
  if (client_refusals_[i] > 1 && now - client_refusal_logged_[i] < kRefusalLogInterval) return;
  client_refusal_logged_[i] = now;
  Log(LogLevel::kWarn, "refused client connection from {} ({}): {} ({} such in all)", remote,
      ClientRefusalName(reason), why, client_refusals_[i]);
}

Status NodeImpl::Authenticate(std::string_view header, const Principal** out) const {
  return authorizer_.Authenticate(header, out);
}

void NodeImpl::Unsubscribe(std::uint64_t id) { streams_->Unsubscribe(id); }

std::string NodeImpl::NewRequestId() {
  return fmt::format("{}-{:x}-{}", config_.region, request_id_nonce_, ++request_ids_);
}

void NodeImpl::Answered(Route route, int status, SteadyTime start, std::string_view body,
                        const AuditFacts& facts) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.CountRequest(route, status, seconds);
  audit_.Answered(route, status, body, facts);
}

void NodeImpl::HandleRequest(const std::shared_ptr<Responder>& session, std::uint64_t slot,
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
  if (route == Route::kReady) {
    // Liveness (/healthz) says the process answers; readiness says it serves writes: not while
    // it rejoins after a restart (it refuses writes until its peers confirm its own ops) or stops.
    const bool rejoining = replica_->rejoining();
    const char* status = stopping_ ? "stopping" : rejoining ? "rejoining" : "ready";
    nlohmann::json body{{"status", status}, {"region", config_.region}};
    if (rejoining && !stopping_) body["reason"] = replica_->rejoin_reason();
    session->Respond(slot, stopping_ || rejoining ? 503 : 200, kJson, body.dump());
    return;
  }
  if (route == Route::kMetrics) {
    session->Respond(slot, 200, "text/plain; version=0.0.4", RenderMetrics());
    return;
  }
  if (route == Route::kOperatorPage) {
    // No token: the page holds no data, it reads the API with the operator's.
    session->Respond(slot, 200, kOperatorPageContentType, OperatorPageHtml(), kOperatorPageHeaders);
    return;
  }

  const Principal* who = nullptr;
  if (Status s = session->Authenticate(ToStd(req[http::field::authorization]), &who); !s.ok())
    return fail(s);
  AuditFacts* facts = session->audit(slot);
  if (facts) facts->token = who->name;
  if (route == Route::kBatch) return StartBatch(session, slot, req);
  const Permission needed = PermissionFor(route);
  Dot hold;
  HoldView held;  // the hold a hold route names
  if (route == Route::kGetHold || route == Route::kCapture || route == Route::kRelease) {
    // The hold names its account: found here, then checked like any route's account. A hold out
    // of the token's scope is answered as if unknown, so a token learns nothing of others' holds;
    // one in scope with a permission missing is refused as such.
    if (Status s = ParseHoldId(match.hold, region_names_, &hold); !s.ok()) return fail(s);
    HoldView v;
    Status found = replica_->GetHold(hold, &v);
    if (found.ok() && !who->CoversAccount(v.account))
      found = Status::NotFound("no hold " + match.hold + " here");
    if (!found.ok()) {
      if (found.code() == Code::kNotFound)
        found = Status::NotFound("no hold " + match.hold +
                                 " here (unknown, not yet replicated here, or settled and "
                                 "forgotten)");
      return fail(found);
    }
    match.account = v.account;
    if (facts) facts->account = v.account;
    held = v;
  }
  if (Status s = Authorizer::Authorize(*who, needed, match.account); !s.ok()) return fail(s);
  if (stopping_) return fail(Status::Unavailable("the node is shutting down"));
  // Durability of a write: the config's default, or the request's `Durability` header.
  bool replicated = false;
  auto durability = req.find("Durability");
  if (Status s = ParseDurabilityHeader(
          durability != req.end() ? ToStd(durability->value()) : std::string_view(),
          durability != req.end(), config_.replicated_by_default, &replicated);
      !s.ok())
    return fail(s);

  switch (route) {
    case Route::kOpenAccount:
    case Route::kCredit:
    case Route::kDebit:
    case Route::kRights:
    case Route::kTransfer:
    case Route::kHold: {
      auto key = req.find("Idempotency-Key");
      WriteRequest write{req.body(), key != req.end(),
                         key != req.end() ? ToStd(key->value()) : std::string_view()};
      AccountDefaults defaults{config_.default_currency, config_.default_overdraft_limit,
                               config_.default_fee};
      CommandBody body;
      if (Status s = ParseWriteCommand(route, std::move(match.account), write, defaults,
                                       region_names_, config_.self, &body);
          !s.ok())
        return fail(s);
      std::string opened;  // an open is answered with the account it opened
      if (facts) {
        if (const auto* c = std::get_if<Credit>(&body)) facts->amount = c->amount;
        if (const auto* d = std::get_if<Debit>(&body)) facts->amount = d->amount;
        if (const auto* t = std::get_if<TransferRights>(&body)) facts->amount = t->amount;
        if (const auto* t = std::get_if<Transfer>(&body)) {
          facts->amount = t->amount;
          facts->account = t->from;
          facts->payee = t->to;
        }
        if (const auto* h = std::get_if<PlaceHold>(&body)) facts->amount = h->amount;
      }
      if (const auto* t = std::get_if<Transfer>(&body)) {
        // A debit of the payer that credits the payee: each account in the token's scope, with
        // the permission for its side.
        if (Status s = Authorizer::Authorize(*who, Permission::kDebit, t->from); !s.ok())
          return fail(s);
        if (Status s = Authorizer::Authorize(*who, Permission::kCredit, t->to); !s.ok())
          return fail(s);
      }
      if (auto* d = std::get_if<Debit>(&body); d && d->fallback) {
        // A fallback may take the money only from ancestors this token could debit directly
        // (docs/design.md, "Budgets in a hierarchy"). The principal is copied: a config reload
        // may replace it while the debit is decided.
        d->may_pay = [who = *who](const std::string& ancestor) {
          return Authorizer::Authorize(who, Permission::kDebit, ancestor).ok();
        };
        opened = d->account;  // a fallback's answer names its source, this account if none other
      }
      if (route == Route::kOpenAccount) {
        opened = std::get<OpenAccount>(body).config.id;
        if (facts) facts->account = opened;
        // The scope is checked against the id in the body.
        if (Status s = Authorizer::Authorize(*who, needed, opened); !s.ok()) return fail(s);
      }
      Submit(std::move(body), PendingCommand{session, slot, route, std::move(opened)}, replicated);
      return;
    }
    case Route::kCapture:
    case Route::kRelease: {
      // The hold is the key of its resolutions: an Idempotency-Key header is checked if sent, and
      // not needed.
      if (auto key = req.find("Idempotency-Key"); key != req.end()) {
        if (Status s = ValidateIdempotencyKeyHeader(ToStd(key->value()), true); !s.ok())
          return fail(s);
      }
      CommandBody body;
      if (route == Route::kCapture) {
        Amount amount = 0;
        if (Status s = ParseCaptureBody(req.body(), &amount); !s.ok()) return fail(s);
        if (amount == 0) amount = held.amount;  // the whole hold
        if (facts) facts->amount = amount;
        body = CaptureHold{hold, amount};
      } else {
        if (Status s = ParseReleaseBody(req.body()); !s.ok()) return fail(s);
        body = ReleaseHold{hold};
      }
      Submit(std::move(body), PendingCommand{session, slot, route, {}}, replicated);
      return;
    }
    case Route::kGetHold:
      AfterSync(DeferredResponse{session, slot, 200, std::string(kJson),
                                 HoldJson(held, region_names_).dump()});
      return;
    case Route::kListAccounts: {
      // Only the accounts in the token's scope are listed (the permission was checked above).
      const Principal& scope = *who;
      AfterSync(DeferredResponse{
          session, slot, 200, std::string(kJson),
          ListAccountsJson(replica_.get(), match,
                           [&scope](const std::string& id) { return scope.CoversAccount(id); })});
      return;
    }
    case Route::kHistory: {
      DeferredResponse d{session, slot, 200, std::string(kJson), {}};
      const StatementSources from{replica_.get(), &gate_, &store_->history(), &region_names_};
      Status s = match.as_of_ms ? BalanceAsOfBody(from, match.account, *match.as_of_ms, &d.body)
                                : StatementPageBody(from, match.account, match.history, &d.body);
      if (!s.ok()) {
        d.status = HttpStatusFor(s.code());
        d.body = ErrorJson(s);
      }
      AfterSync(std::move(d));
      return;
    }
    case Route::kGetAccount: {
      DeferredResponse d{session, slot, 200, std::string(kJson), {}};
      if (Status s = AccountBody(replica_.get(), match.account, region_names_, &d.body); !s.ok()) {
        d.status = HttpStatusFor(s.code());
        d.body = ErrorJson(s);
      }
      AfterSync(std::move(d));
      return;
    }
    case Route::kReport: {
      DeferredResponse d{session, slot, 200, {}, {}};
      if (Status s = ReportBody(replica_.get(), config_.region, match.account, match.html,
                                region_names_, &d.body, &d.content_type);
          !s.ok()) {
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
    default:  // GET /v1/stream is OpenStream's
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

void NodeImpl::StartBackup(const std::shared_ptr<Responder>& session, std::uint64_t slot,
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
    session->Respond(slot, 200, kJson, BackupJson(config_.region, dir, st, region_names_));
  });
  if (!started.ok()) {
    Log(LogLevel::kWarn, "backup to {}: not started: {}", dir, started.ToString());
    session->Respond(slot, HttpStatusFor(started.code()), kJson, ErrorJson(started));
  }
}

void NodeImpl::StartBatch(const std::shared_ptr<Responder>& session, std::uint64_t slot,
                          http::request<http::string_body>& req) {
  auto fail = [&](const Status& s) {
    session->Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
  };
  // Each op is authorized, keyed and answered on its own (batch_responder.h); the batch needs
  // only a known token.
  if (req.find("Idempotency-Key") != req.end())
    return fail(Status::InvalidArgument(
        "a batch takes no Idempotency-Key header: each op carries its own idempotency_key"));
  if (stopping_) return fail(Status::Unavailable("the node is shutting down"));
  std::vector<BatchOp> ops;
  if (Status s = ParseBatchBody(req.body(), &ops); !s.ok()) return fail(s);
  std::string durability;
  auto d = req.find("Durability");
  if (d != req.end()) durability = std::string(ToStd(d->value()));
  auto batch = std::make_shared<BatchResponder>(this, session, slot);
  batch->Start(std::move(ops), std::string(ToStd(req[http::field::authorization])),
               d != req.end() ? &durability : nullptr);
}

void NodeImpl::OpenStream(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                          RouteMatch match, http::request<http::string_body>& req) {
  auto fail = [&](const Status& s) {
    session->Respond(slot, HttpStatusFor(s.code()), kJson, ErrorJson(s));
  };
  // The token comes in the Authorization header or, from a browser, which cannot set one on a
  // WebSocket, in a subprotocol; never in the query string (MatchRoute refuses any parameter but
  // accounts), which lands in access logs. Without either, the stream's first message carries it.
  std::string protocols;
  for (auto [it, end] = req.equal_range(http::field::sec_websocket_protocol); it != end; ++it)
    protocols += std::string(ToStd(it->value())) + ",";
  StreamAuth auth;
  if (Status s = ParseStreamAuth(ToStd(req[http::field::authorization]), protocols, &auth); !s.ok())
    return fail(s);
  if (!auth.authorization.empty()) {
    const Principal* who = nullptr;
    if (Status s = session->Authenticate(auth.authorization, &who); !s.ok()) return fail(s);
    if (AuditFacts* facts = session->audit(slot)) facts->token = who->name;
    if (Status s = AuthorizeStream(*who, match.accounts); !s.ok()) return fail(s);
  }
  if (stopping_) return fail(Status::Unavailable("the node is shutting down"));
  if (match.stream_after) {
    // What a resuming stream missed comes from the history store: it must hold it.
    if (!config_.replica.keep_statements)
      return fail(Status::FailedPrecondition(
          "?after= replays from the history this node does not keep ([history] enabled = false)"));
    const std::uint64_t wall = wall_clock_.NowMs();
    if (config_.history_retention_ms != 0 && wall > config_.history_retention_ms &&
        match.stream_after->hlc.wall_ms() < wall - config_.history_retention_ms)
      return fail(Status::FailedPrecondition(
          "the cursor is older than [history] retention_ms: the lines after it may be pruned; "
          "read what is left with GET /v1/accounts/{id}/history and open the stream without "
          "?after="));
  }
  if (!websocket::is_upgrade(req))
    return fail(Status::InvalidArgument("/v1/stream needs a WebSocket upgrade request"));
  // Streams waiting for their first message count too, and have a bound of their own: a flood of
  // silent upgrades must not keep the streams of authenticated clients out.
  if (streams_->size() >= kMaxStreams)
    return fail(Status::ResourceExhausted(fmt::format("at most {} streams at once", kMaxStreams)));
  if (auth.authorization.empty() && streams_->awaiting_auth() >= kMaxStreamsAwaitingAuth)
    return fail(Status::ResourceExhausted(
        fmt::format("at most {} streams at once may wait for their auth message; send the token "
                    "with the upgrade",
                    kMaxStreamsAwaitingAuth)));
  if (!session->Upgrade(slot, std::move(req), std::move(match.accounts), match.stream_after,
                        std::move(auth)))
    return fail(
        Status::InvalidArgument("a WebSocket upgrade must not be pipelined behind other requests"));
}

void NodeImpl::Subscribe(const std::shared_ptr<WsSession>& ws) {
  if (stopping_) {
    ws->Close();
    return;
  }
  // The first messages are the accounts' current state, sent once everything before is synced.
  streams_->Subscribe(ws);
}

std::string NodeImpl::RenderCluster() {
  std::vector<PeerConnections> connections(region_names_.size());
  for (RegionId r = 0; r < connections.size(); ++r) {
    connections[r].connected = links_[r] && links_[r]->ready();
    connections[r].inbound = peer_port_.VerifiedFrom(r);
  }
  return ClusterJson(*replica_, config_, MonoMs(), connections);
}

}  // namespace tally::node
