#include "node/node.h"

#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <random>
#include <system_error>

#include "node/log.h"
#include "node/node_impl.h"
#include "node/sd_notify.h"

namespace tally::node {

// ---- NodeImpl: start and stop
// --------------------------------------------------------------------

NodeImpl::NodeImpl(NodeConfig config, ConfigLoader reload)
    : config_(std::move(config)),
      reload_(std::move(reload)),
      region_names_(config_.replica.regions),
      authorizer_(config_.MakeAuthorizer()),
      client_acceptor_(io_),
      tick_timer_(io_),
      drain_timer_(io_),
      sweep_timer_(io_),
      commit_timer_(io_),
      signals_(io_),
      reload_signal_(io_),
      gate_(config_.replica.bugs.ack_before_sync),
      peer_port_(this),
      notices_(config_.replica.regions, config_.replica.max_clock_offset_ms) {}

NodeImpl::~NodeImpl() {
  if (pool_) pool_->Stop();  // its threads call into this
  backup_.reset();           // cancels and joins a copy still running: it reads store_
  if (storage_) storage_->Stop();
}

std::uint64_t SystemWallClock::NowMs() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t NodeImpl::MonoMs() const {
  // steady_clock's epoch is arbitrary (often boot); +1 keeps it off 0, which the replica reads
  // as "never".
  return 1 + static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now().time_since_epoch())
                                            .count());
}

Status NodeImpl::Open() {
  // Certificates first: a region that cannot prove who it is must not start answering.
  if (Status s = MakeTlsContexts(config_, &peer_tls_, &api_tls_); !s.ok()) return s;
  std::error_code fs_ec;
  // The data folder holds every balance and the audit log: only tallyd's user may read it.
  const bool fresh = !std::filesystem::exists(config_.data_dir, fs_ec);
  std::filesystem::create_directories(config_.data_dir, fs_ec);
  if (!fs_ec && fresh)
    std::filesystem::permissions(config_.data_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, fs_ec);
  if (fs_ec)
    return Status::IOError(fmt::format("data_dir {}: {}", config_.data_dir, fs_ec.message()));

  const std::string audit_path =
      config_.audit_path.empty() ? config_.data_dir + "/audit.jsonl" : config_.audit_path;
  if (Status s = audit_.Open(audit_path, config_.region); !s.ok()) return s;
  request_id_nonce_ = wall_clock_.NowMs();
  StoreIdentity identity{config_.cluster_id, config_.region, config_.replica.regions};
  if (Status s = Store::Open(config_.data_dir, identity, &store_); !s.ok()) return s;
  RecoveredState state;
  if (Status s = store_->Load(&state); !s.ok()) return s;
  const std::size_t ops = state.ops.size(), keys = state.keys.size(),
                    checkpoints = state.checkpoints.size();
  ReplicaOptions options = config_.replica;
  options.epoch_nonce =
      std::random_device{}() % ReplicaOptions::kEpochNonceLimit;  // see its comment
  replica_ = std::make_unique<Replica>(options, wall_clock_);
  if (Status s = replica_->Recover(std::move(state), MonoMs()); !s.ok()) {
    if (s.code() == Code::kCorruption)
      return Status::Corruption("store " + config_.data_dir + ": " + s.message());
    return s;
  }
  Log(LogLevel::kInfo,
      "recovered from {}: {} accounts ({} checkpoints, {} ops above the floor, {} idempotency "
      "records), applied {}, frontier {}",
      config_.data_dir, replica_->AccountIds().size(), checkpoints, ops, keys,
      replica_->applied().ToString(static_cast<RegionId>(region_names_.size())),
      replica_->frontier().ToString());
  durable_applied_ = replica_->applied();

  // Its threads start with Run.
  if (config_.io_threads > 1) pool_ = std::make_unique<ClientPool>(config_.io_threads);
  if (Status s = ListenOn(&client_acceptor_, config_.listen_client, "listen.client"); !s.ok())
    return s;
  if (Status s = peer_port_.Listen(); !s.ok()) return s;

  storage_ = std::make_unique<StorageThread>(
      store_.get(), &io_, [this](Status s, WriteStats stats, std::size_t batches) {
        OnCommitted(std::move(s), stats, batches);
      });
  backup_ = std::make_unique<BackupThread>(store_.get(), &io_);

  streams_ = std::make_unique<StreamHub>(
      &io_, StatementSources{replica_.get(), &gate_,
                             config_.replica.keep_statements ? &store_->history() : nullptr,
                             &region_names_});
  links_.resize(region_names_.size());
  // The real node's reconnect jitter needs no reproducibility, but a seed per region keeps the
  // regions from retrying in lock step.
  std::uint64_t seed = wall_clock_.NowMs() ^ (static_cast<std::uint64_t>(::getpid()) << 20);
  for (const RegionConfig& r : config_.regions) {
    if (r.id == config_.self) continue;
    links_[r.id] = std::make_shared<PeerLink>(this, r.id, r.peer, seed + r.id * 7919);
  }
  return Status::OK();
}

int NodeImpl::Run() {
  storage_->Start();
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.async_wait([this](const beast::error_code& ec, int signo) {
    if (!ec) BeginShutdown(0, signo == SIGTERM ? "SIGTERM" : "SIGINT");
  });
  reload_signal_.add(SIGHUP);
  WaitForReload();
  if (pool_) pool_->Start();
  StartAccept();
  peer_port_.StartAccept();
  for (auto& link : links_) {
    if (link) link->Start();
  }
  ScheduleTick();
  ScheduleSweep();
  Log(LogLevel::kInfo,
      "serving: client API on {} ({}) {}, gossip on {} ({}), region {} (id {}) of cluster '{}'",
      config_.listen_client.ToString(), api_tls_ ? "HTTPS" : "plain HTTP, http.insecure_loopback",
      pool_ ? fmt::format("on {} client threads", pool_->threads()) : "on the io thread",
      config_.listen_peer.ToString(),
      peer_tls_ ? "mutual TLS" : "plain TCP, gossip.insecure_loopback", config_.region,
      config_.self, config_.cluster_id);
  SdNotify("READY=1");
  io_.run();
  // The drain gave the connections its last moments to write; what is still pending is dropped.
  if (pool_) pool_->Stop();
  backup_->Cancel();  // only if the drain gave up on it; normally it is over
  backup_->Join();
  storage_->Stop();
  Log(LogLevel::kInfo, "stopped (exit {})", exit_code_);
  return exit_code_;
}

void NodeImpl::BeginShutdown(int exit_code, std::string_view why) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  Log(LogLevel::kInfo, "shutting down ({}): no new connections; answering what is in flight", why);
  SdNotify("STOPPING=1");
  beast::error_code ec;
  client_acceptor_.close(ec);
  signals_.cancel(ec);
  reload_signal_.cancel(ec);  // SIGHUP stays caught (and ignored) while the drain ends
  for (auto& link : links_) {
    if (link) link->Stop();
  }
  peer_port_.Close();
  for (auto& s : LiveSessions()) s->CloseWhenIdle();
  if (pool_) pool_->CloseWhenIdle();
  streams_->CloseAll();
  backup_->Cancel();  // its client is answered 503 by the time the drain ends
  drain_deadline_ = std::chrono::steady_clock::now() + kShutdownDrainTimeout;
  DrainStep();
}

// Keeps ticking (debits waiting for rights time out and complete) until every command is
// answered and the last batch is synced; then closes what is left and stops the io_context.
void NodeImpl::DrainStep() {
  const bool commands_done = (commands_.empty() && !backup_->running()) ||
                             std::chrono::steady_clock::now() > drain_deadline_;
  const bool storage_idle = gate_.in_flight() == 0 && !gate_.has_open_batch() && deferred_.empty();
  if (commands_done && storage_idle) {
    beast::error_code ec;
    tick_timer_.cancel();
    sweep_timer_.cancel();
    for (auto& s : LiveSessions()) s->CloseWhenIdle();
    if (pool_) pool_->CloseWhenIdle();
    // Answers just released (to a pool thread, too) may still be on their way out: give the writes
    // a moment.
    drain_timer_.expires_after(std::chrono::milliseconds(200));
    drain_timer_.async_wait([this](const beast::error_code&) { io_.stop(); });
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(5));
  drain_timer_.async_wait([this](const beast::error_code& ec) {
    if (!ec) DrainStep();
  });
}

// ---- NodeImpl: driving the replica
// ---------------------------------------------------------------

void NodeImpl::ScheduleTick() {
  tick_timer_.expires_after(std::chrono::milliseconds(config_.tick_interval_ms));
  tick_timer_.async_wait([this](const beast::error_code& ec) {
    if (ec) return;
    OnTick();
    ScheduleTick();
  });
}

std::vector<std::shared_ptr<HttpSession>> NodeImpl::LiveSessions() {
  std::vector<std::shared_ptr<HttpSession>> live;
  live.reserve(sessions_.size());
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  return live;
}

void NodeImpl::ScheduleSweep() {
  sweep_timer_.expires_after(std::chrono::milliseconds(250));
  sweep_timer_.async_wait([this](const beast::error_code& ec) {
    if (ec) return;
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto& s : LiveSessions()) s->CheckTimeouts(now);
    peer_port_.CheckTimeouts(now);
    if (config_.history_retention_ms != 0 && now >= next_history_prune_) PruneHistory(now);
    ScheduleSweep();
  });
}

// Statement lines past history.retention_ms go, a bounded number a round so the io thread is never
// held long; a round that found more comes back sooner.
void NodeImpl::PruneHistory(SteadyTime now) {
  constexpr std::size_t kMaxDeletes = 10000;
  const std::uint64_t wall = wall_clock_.NowMs();
  std::size_t deleted = 0;
  if (wall > config_.history_retention_ms) {
    const Status s =
        store_->history().Prune(wall - config_.history_retention_ms, kMaxDeletes, &deleted);
    if (!s.ok()) Log(LogLevel::kWarn, "history prune: {}", s.ToString());
  }
  history_lines_pruned_ += deleted;
  next_history_prune_ =
      now + (deleted == kMaxDeletes ? std::chrono::seconds(1) : std::chrono::seconds(60));
}

void NodeImpl::OnTick() {
  replica_->Tick(MonoMs(), &effects_);
  HandleEffects();
  audit_.Flush();
}

void NodeImpl::Submit(CommandBody body, PendingCommand pending, bool replicated) {
  Command cmd;
  cmd.id = next_command_id_++;
  cmd.body = std::move(body);
  cmd.replicated = replicated;
  commands_.emplace(cmd.id, std::move(pending));
  replica_->Submit(cmd, MonoMs(), &effects_);
  HandleEffects();
}

// The durability contract is the gate's (core/commit_gate.h), shared with the simulator and the
// core tests: Effects' persistable part joins the open batch; its sends and answers leave once
// every batch holding anything persisted before them is synced.
void NodeImpl::HandleEffects() {
  if (!effects_.notices.empty()) notices_.Handle(effects_.notices, MonoMs());
  gate_.Absorb(&effects_, &released_);
  effects_.Clear();
  Release(&released_);
  if (gate_.has_open_batch()) ScheduleWrite();
}

void NodeImpl::Release(CommitGate::Release* out) {
  for (Outbound& o : out->send) SendNow(o);
  for (const CommandResult& r : out->completions) Complete(r);
  out->Clear();
}

void NodeImpl::ScheduleWrite() {
  if (write_scheduled_) return;
  write_scheduled_ = true;
  auto start = [this] {
    write_scheduled_ = false;
    if (gate_.has_open_batch()) StartWrite();
  };
  if (config_.commit_delay_us == 0) {
    // Not at once: handlers already runnable (requests that arrived in the same reactor round)
    // join this batch first. A posted handler runs after those, so this costs no waiting, only
    // reordering; the storage thread merges whatever queues up while it syncs anyway.
    asio::post(io_, std::move(start));
  } else {
    commit_timer_.expires_after(std::chrono::microseconds(config_.commit_delay_us));
    commit_timer_.async_wait([start = std::move(start)](const beast::error_code& ec) {
      if (!ec) start();
    });
  }
}

void NodeImpl::AfterSync(DeferredResponse response) {
  const std::uint64_t barrier = gate_.Barrier();
  if (barrier == 0) {
    response.session->Respond(response.slot, response.status, response.content_type, response.body);
    return;
  }
  deferred_[barrier].push_back(std::move(response));
}

// The batch stays valid and unchanged until the gate retires it (OnCommitted).
void NodeImpl::StartWrite() {
  const PersistBatch& batch = gate_.StartWrite();
  streams_->Prepared(gate_.Barrier(), batch);  // the newest in flight: the one just started
  storage_->Submit(&batch);
}

void NodeImpl::OnCommitted(Status s, WriteStats stats, std::size_t batches) {
  if (!s.ok()) {
    // Memory now holds ops the disk may not: serving on would show (and gossip) state a restart
    // would not have. Nothing of this group was acknowledged; stop at once.
    Log(LogLevel::kError, "FATAL: storage write failed, stopping without answering: {}",
        s.ToString());
    std::_Exit(1);
  }
  assert(batches >= 1 && batches <= gate_.in_flight());
  std::size_t answered = 0;
  for (std::size_t i = 0; i < batches; ++i) {
    const PersistBatch& done = gate_.oldest_in_flight();
    for (const Op& op : done.ops) {
      if (op.dot.seq > durable_applied_.get(op.dot.origin))
        durable_applied_.set(op.dot.origin, op.dot.seq);
    }
    for (const Fold& f : done.folds) durable_applied_.JoinWith(f.log_floor);
    streams_->Synced(gate_.synced_through() + 1);
    gate_.Synced(&released_);  // retires `done`
    answered += released_.completions.size();
    Release(&released_);
  }
  while (!deferred_.empty() && deferred_.begin()->first <= gate_.synced_through()) {
    for (DeferredResponse& d : deferred_.begin()->second) {
      d.session->Respond(d.slot, d.status, d.content_type, d.body);
      ++answered;
    }
    deferred_.erase(deferred_.begin());
  }
  metrics_.ObserveCommit(stats.ops, answered, stats.bytes, stats.sync_us);
  ops_persisted_ += stats.ops;
}

void NodeImpl::SendNow(Outbound& out) {
  if (out.to >= links_.size() || !links_[out.to]) return;
  links_[out.to]->Send(out.msg);
}

void NodeImpl::Complete(const CommandResult& r) {
  auto it = commands_.find(r.id);
  if (it == commands_.end()) return;
  PendingCommand p = std::move(it->second);
  commands_.erase(it);
  if (p.session->closed()) return;
  if (!r.status.ok()) {
    const int http = HttpStatusFor(r.status.code());
    if (r.status.code() == Code::kInsufficientFunds) {
      p.session->Respond(p.slot, http, "application/json", InsufficientFundsJson(r, region_names_));
    } else if (r.op.seq != 0) {
      // Durability "replicated" timed out: the op exists; name it.
      p.session->Respond(
          p.slot, http, "application/json",
          ErrorJson(r.status,
                    fmt::format(",\"op\":{{\"region\":\"{}\",\"seq\":{}}},\"replicated\":false",
                                region_names_[r.op.origin], r.op.seq)));
    } else {
      p.session->Respond(p.slot, http, "application/json", ErrorJson(r.status));
    }
    return;
  }
  if (p.route == Route::kOpenAccount) {
    // 201 for a new account, 200 when the same config had been opened before.
    std::string body;
    if (Status s = AccountBody(replica_.get(), p.account, region_names_, &body); !s.ok()) {
      p.session->Respond(p.slot, HttpStatusFor(s.code()), "application/json", ErrorJson(s));
      return;
    }
    p.session->Respond(p.slot, r.replayed ? 200 : 201, "application/json", body);
    return;
  }
  std::string body;
  body.reserve(96);
  if (p.route == Route::kDebit && !p.account.empty() && r.payers.empty() && !r.replayed) {
    // A fallback the account named paid alone (a replay knows only what its op still says).
    CommandResult own = r;
    own.payers = {p.account};
    AppendOpResultJson(own, region_names_, false, &body);
  } else {
    AppendOpResultJson(r, region_names_, p.route == Route::kTransfer, &body);
  }
  p.session->Respond(
      p.slot, 200, "application/json", body,
      r.replayed ? std::string_view("Idempotent-Replayed: true\r\n") : std::string_view());
}

// ---- Node
// ----------------------------------------------------------------------------------------

Node::Node(std::unique_ptr<NodeImpl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

Status Node::Open(NodeConfig config, ConfigLoader reload, std::unique_ptr<Node>* out) {
  auto impl = std::make_unique<NodeImpl>(std::move(config), std::move(reload));
  if (Status s = impl->Open(); !s.ok()) return s;
  out->reset(new Node(std::move(impl)));
  return Status::OK();
}

int Node::Run() { return impl_->Run(); }

}  // namespace tally::node
