// NodeImpl: the class behind Node (node.h) — the Replica wired to the real world. Internal to
// tallyd, not a public API.
//
// It owns everything else: the store and the storage and backup threads, the replica and the
// CommitGate that keeps its durability rule, the client listener and its sessions, the StreamHub,
// the PeerPort and the outbound PeerLinks, the timers. Connections reach it only through the two
// interfaces it implements: ApiHost (HttpSession, WsSession) and GossipHost (PeerLink,
// InboundPeer); every other member is private. Who calls whom is drawn in docs/design.md, "Inside
// tallyd".
//
// Defined in node.cc (start, stop, driving the replica and the commit), node_api.cc (ApiHost) and
// node_gossip.cc (GossipHost, metrics).
//
// Threading: everything runs on the io thread, except what StorageThread and BackupThread run on
// theirs (they hand their outcome back to the io thread) and, with [http] io_threads > 1, the
// client connections: those are read, parsed and written on the ClientPool's threads, and reach
// this class only through their SessionRelay, which posts to the io thread. Of the ApiHost calls,
// only config() (start-only fields), stopping() (atomic), NewRequestId() (atomic) and io() are made
// from those threads.

#ifndef TALLY_NODE_NODE_IMPL_H_
#define TALLY_NODE_NODE_IMPL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/commit_gate.h"
#include "core/replica.h"
#include "node/api.h"
#include "node/api_host.h"
#include "node/auth.h"
#include "node/backup_thread.h"
#include "node/client_pool.h"
#include "node/config.h"
#include "node/gossip_host.h"
#include "node/http_session.h"
#include "node/metrics.h"
#include "node/net.h"
#include "node/node.h"
#include "node/notice_log.h"
#include "node/peer_link.h"
#include "node/peer_port.h"
#include "node/responder.h"
#include "node/storage_thread.h"
#include "node/store.h"
#include "node/stream_hub.h"
#include "node/system_wall_clock.h"
#include "node/views.h"

namespace tally::node {

// An answer that may leave only once what the replica persisted before it is synced.
struct DeferredResponse {
  std::shared_ptr<Responder> session;
  std::uint64_t slot = 0;
  int status = 200;
  std::string content_type;
  std::string body;
};

// A command handed to the replica, and whom to answer when it completes.
struct PendingCommand {
  std::shared_ptr<Responder> session;
  std::uint64_t slot = 0;
  Route route = Route::kUnknown;
  // kOpenAccount: answered with the account's view; a debit with fallback: named as the source
  // when no ancestor paid.
  std::string account;
};

class NodeImpl final : public ApiHost, public GossipHost {
 public:
  NodeImpl(NodeConfig config, ConfigLoader reload);
  ~NodeImpl() override;
  NodeImpl(const NodeImpl&) = delete;
  NodeImpl& operator=(const NodeImpl&) = delete;

  // Node::Open and Node::Run (node.h).
  Status Open();
  int Run();

 private:
  // ---- ApiHost and GossipHost (node_api.cc, node_gossip.cc)
  const NodeConfig& config() const override { return config_; }
  bool stopping() const override { return stopping_.load(std::memory_order_relaxed); }
  std::shared_ptr<ssl::context> api_tls() override { return api_tls_; }
  std::uint64_t auth_generation() const override { return auth_generation_; }
  void NoteClientRefusal(ClientRefusal reason, std::string_view remote,
                         std::string_view why) override;
  Status Authenticate(std::string_view header, const Principal** out) const override;
  void HandleRequest(const std::shared_ptr<Responder>& session, std::uint64_t slot, Route route,
                     RouteMatch match, http::request<http::string_body>& req) override;
  void OpenStream(const std::shared_ptr<HttpSession>& session, std::uint64_t slot, RouteMatch match,
                  http::request<http::string_body>& req) override;
  // POST /v1/batch, its token known: hands each op to HandleRequest (batch_responder.h).
  void StartBatch(const std::shared_ptr<Responder>& session, std::uint64_t slot,
                  http::request<http::string_body>& req);
  void Answered(Route route, int http_status, SteadyTime start, std::string_view body,
                const AuditFacts& facts) override;
  std::string NewRequestId() override;
  void SessionClosed(std::uint64_t id) override;
  void Adopt(const std::shared_ptr<HttpSession>& session) override;
  void Subscribe(const std::shared_ptr<WsSession>& ws) override;
  void Unsubscribe(std::uint64_t id) override;

  asio::io_context& io() override { return io_; }
  std::shared_ptr<ssl::context> peer_tls() override { return peer_tls_; }
  Status CheckHello(const Hello& hello) const override;
  Hello OurHello(RegionId to) const override;
  void Deliver(RegionId from, const Message& msg) override;
  void LinkUp(RegionId to) override;
  void LinkDown(RegionId to) override;
  void InboundVerified(const InboundPeer& peer) override;
  void InboundBufferChanged(std::size_t before, std::size_t after) override;
  void InboundClosed(std::uint64_t id) override;
  void NoteRefusal(PeerRefusal reason, std::string_view remote, std::string_view why) override;
  void NoteReceived(RegionId from, std::size_t bytes) override;

  // ---- driving the replica (node.cc)
  // Milliseconds on the monotonic clock: what every replica call gets (core/wall_clock.h).
  std::uint64_t MonoMs() const;
  // `replicated`: durability "replicated" (Command::replicated).
  void Submit(CommandBody body, PendingCommand pending, bool replicated);
  void HandleEffects();
  // Runs `response` after the sync of everything persisted so far (now, if nothing is pending).
  void AfterSync(DeferredResponse response);
  // Hands the pending batch to the storage thread.
  void StartWrite();
  // Starts a write of the pending batch soon: after the current reactor round, or after
  // storage.commit_delay_us when that is set.
  void ScheduleWrite();
  void OnCommitted(Status s, WriteStats stats, std::size_t batches);
  // Acts on what the gate lets out: messages to peers, answers to commands.
  void Release(CommitGate::Release* out);
  void SendNow(Outbound& out);
  void Complete(const CommandResult& r);

  // ---- serving and stopping (node.cc, node_api.cc)
  void StartAccept();
  void ScheduleTick();
  void ScheduleSweep();
  void PruneHistory(SteadyTime now);
  // A copy of the open sessions: closing one edits sessions_, so loops go over this instead.
  std::vector<std::shared_ptr<HttpSession>> LiveSessions();
  void OnTick();
  void BeginShutdown(int exit_code, std::string_view why);
  // SIGHUP (node_reload.cc): re-reads the config and applies its tokens, roles and certificates,
  // or refuses it whole and keeps the running ones.
  void WaitForReload();
  void Reload();
  // Builds the TLS contexts `config` asks for (null where it runs plain).
  static Status MakeTlsContexts(const NodeConfig& config, std::shared_ptr<ssl::context>* peer,
                                std::shared_ptr<ssl::context>* api);
  void DrainStep();
  // POST /v1/admin/backup: validates `dir` and hands the copy to backup_; answers when it is over.
  void StartBackup(const std::shared_ptr<Responder>& session, std::uint64_t slot, std::string dir);
  // GET /metrics and GET /v1/cluster (the renderers are in metrics.cc and views.cc).
  std::string RenderMetrics();
  std::string RenderCluster();

  NodeConfig config_;
  const ConfigLoader reload_;
  std::uint64_t auth_generation_ = 1;  // bumped when the tokens are reloaded
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_refused_ = 0;
  RegionNames region_names_;
  Authorizer authorizer_;
  // [http] io_threads > 1: the threads that serve client connections (null: the io thread does).
  // Before io_ and everything else that may hold a session: destroyed last (client_pool.h).
  std::unique_ptr<ClientPool> pool_;
  asio::io_context io_{1};
  tcp::acceptor client_acceptor_;
  asio::steady_timer tick_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer commit_timer_;
  bool write_scheduled_ = false;
  asio::signal_set signals_;
  asio::signal_set reload_signal_;  // SIGHUP
  std::unique_ptr<Store> store_;
  SystemWallClock wall_clock_;  // before replica_, which reads it
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<StorageThread> storage_;
  std::unique_ptr<BackupThread> backup_;
  Metrics metrics_;
  AuditLog audit_;
  std::atomic<std::uint64_t> request_ids_{0};  // NewRequestId runs on client pool threads too
  std::uint64_t request_id_nonce_ = 0;  // per process start, so ids do not repeat across restarts

  Effects effects_;
  // The durability contract (core/commit_gate.h): batches to write, and what waits for them.
  CommitGate gate_;
  CommitGate::Release released_;  // scratch: what the gate lets out now
  // Answers waiting for a batch to be synced, by the gate's batch number (AfterSync).
  std::map<std::uint64_t, std::vector<DeferredResponse>> deferred_;
  std::uint64_t next_command_id_ = 1;
  std::unordered_map<std::uint64_t, PendingCommand> commands_;  // looked up only, never iterated

  std::uint64_t next_conn_id_ = 1;
  std::map<std::uint64_t, std::weak_ptr<HttpSession>> sessions_;
  std::unique_ptr<StreamHub> streams_;  // made in Open, once replica_ exists
  // Replaced by a reload; connections keep the one they were made with.
  std::shared_ptr<ssl::context> peer_tls_;  // null: plain TCP gossip (gossip.insecure_loopback)
  std::shared_ptr<ssl::context> api_tls_;   // null: plain HTTP (http.insecure_loopback)
  // tally_http_connections_refused_total, by ClientRefusal; and when each reason was last logged.
  std::array<std::uint64_t, kClientRefusalKinds> client_refusals_{};
  std::array<SteadyTime, kClientRefusalKinds> client_refusal_logged_{};
  PeerPort peer_port_;
  std::vector<std::shared_ptr<PeerLink>> links_;  // indexed by region; null for self
  NoticeLog notices_;
  // What is synced of the applied vector: the Hello we answer an inbound peer with must not
  // claim ops a crash could still take away.
  VersionVector durable_applied_;

  std::atomic<bool> stopping_{false};  // read by client pool threads (stopping())
  int exit_code_ = 0;
  SteadyTime drain_deadline_;
  SteadyTime next_history_prune_{};
  std::uint64_t history_lines_pruned_ = 0;  // tally_history_lines_pruned_total
  std::uint64_t ops_persisted_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_NODE_IMPL_H_
