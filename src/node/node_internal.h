// Internal to tallyd (node.cc, http.cc, gossip.cc): the classes behind Node. Not a public API.
//
// Everything here runs on the io thread except StorageThread::Loop and the Store it drives, and
// the copy a BackupThread makes.

#ifndef TALLY_NODE_NODE_INTERNAL_H_
#define TALLY_NODE_NODE_INTERNAL_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

// clang-format off
// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
// clang-format on

#include "codec/codec.h"
#include "core/commit_gate.h"
#include "core/replica.h"
#include "node/api.h"
#include "node/auth.h"
#include "node/config.h"
#include "node/metrics.h"
#include "node/store.h"
#include "node/views.h"

namespace tally::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

inline std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

class NodeImpl;

// Bounds (style: put a limit on everything).
inline constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr std::size_t kPeerReadChunkBytes = 64 * 1024;
inline constexpr std::size_t kMaxStreamQueuedMessages = 1024;  // per WebSocket, then it is closed
inline constexpr std::size_t kMaxStreams = 256;
inline constexpr std::chrono::milliseconds kLingerTimeout{1000};
inline constexpr std::chrono::milliseconds kShutdownDrainTimeout{5000};
// What an inbound gossip connection may hold before its Hello is accepted. A Hello takes less
// than 16 KiB (16 regions × 32 fences); anything bigger is a stranger's frame, not a handshake.
inline constexpr std::size_t kMaxHandshakeBytes = 64 * 1024;
// Refusals of one reason are logged at most once per interval, with the count since: a flood of
// connections must not become a flood of log lines (the metric counts every one).
inline constexpr std::chrono::seconds kRefusalLogInterval{10};

// ---- storage
// -------------------------------------------------------------------------------------

// An HTTP answer that may leave only once what the replica persisted before it is synced.
struct DeferredResponse {
  std::shared_ptr<class HttpSession> session;
  std::uint64_t slot = 0;
  int status = 200;
  std::string content_type;
  std::string body;
};


// Runs Store::Write off the io thread as a group commit: every batch handed over while a write
// is syncing goes, with the others, into the next write, so the disk never waits for the io
// thread. Batches are written, and their completions posted to the io_context, in the order they
// were handed over.
class StorageThread {
 public:
  // `batches`: how many of the oldest batches handed over and not yet completed this write made
  // durable (with `s` not ok, none of them is known to be).
  using Done = std::function<void(Status s, WriteStats stats, std::size_t batches)>;
  StorageThread(Store* store, asio::io_context* io, Done done);
  ~StorageThread();
  void Start();
  // `batch` must stay alive and unchanged until its completion has run.
  void Submit(const PersistBatch* batch);
  // Writes what was handed over (if anything), then joins.
  void Stop();
  // Microseconds spent writing (encoding and the synced write), and waiting with nothing to
  // write. Busy near 100 % means the disk is the bottleneck; readable from any thread.
  std::uint64_t busy_us() const { return busy_us_.load(std::memory_order_relaxed); }
  std::uint64_t idle_us() const { return idle_us_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  Store* const store_;
  asio::io_context* const io_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<const PersistBatch*> queue_;  // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
  std::atomic<std::uint64_t> busy_us_{0};
  std::atomic<std::uint64_t> idle_us_{0};
  std::thread thread_;
};

// Runs Store::Backup on a thread of its own, one backup at a time, and posts the outcome to the
// io_context. Not on the storage thread: a copy of a large store takes seconds, and every group
// commit (every acknowledgement) would wait behind it. LevelDB serves the copy's snapshot reads
// alongside the storage thread's writes, and the snapshot makes the copy consistent. Start,
// Cancel and running() are called on the io thread; the destructor cancels and joins.
class BackupThread {
 public:
  using Done = std::function<void(Status s, const BackupStats& stats)>;
  BackupThread(const Store* store, asio::io_context* io) : store_(store), io_(io) {}
  ~BackupThread();
  BackupThread(const BackupThread&) = delete;
  BackupThread& operator=(const BackupThread&) = delete;

  // Starts copying the store to `dir`; `done` runs on the io thread when it is over. Conflict
  // while another backup runs (two copies would only share the disk with the live store);
  // ResourceExhausted when no thread can be started.
  Status Start(std::string dir, Done done);
  // Asks the backup in progress to stop at its next batch (shutdown); its `done` gets
  // Unavailable.
  void Cancel() { cancel_.store(true, std::memory_order_relaxed); }
  // Waits for the thread; the posted `done` runs only if the io_context still runs.
  void Join();
  bool running() const { return running_; }

 private:
  const Store* const store_;
  asio::io_context* const io_;
  bool running_ = false;  // io thread: from Start until `done` has run
  std::atomic<bool> cancel_{false};
  std::thread thread_;
};

// ---- client API
// ----------------------------------------------------------------------------------

// One client connection: HTTP/1.1 keep-alive with pipelining (answers in request order).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(NodeImpl* node, tcp::socket socket, std::uint64_t id);
  void Start();
  // Fills answer `slot` (from the request handler or later, after a sync). Ignored once closed.
  void Respond(std::uint64_t slot, int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {});
  // Closes the connection when idle for idle_timeout_ms or lingering past kLingerTimeout.
  void CheckTimeouts(SteadyTime now);
  // Stops reading; closes once every answer owed is written.
  void CloseWhenIdle();
  // Hands the connection over to a WebSocket stream (the upgrade request must be the only one
  // outstanding). False if it is not.
  bool Upgrade(std::uint64_t slot, http::request<http::string_body> req,
               std::vector<std::string> accounts);
  std::uint64_t id() const { return id_; }
  bool closed() const { return closed_; }

  // Authentication is cached per connection: clients send the same token on every request.
  Status Authenticate(std::string_view header, const Principal** out);

 private:
  struct Slot {
    bool ready = false;
    bool close = false;
    Route route = Route::kUnknown;
    SteadyTime start;
    std::string bytes;
  };
  void DoRead();
  void OnRead(beast::error_code ec);
  void MaybeWrite();
  void OnWrite(beast::error_code ec);
  void Linger();
  void Close();
  std::uint64_t AddSlot(Route route, bool keep_alive, SteadyTime start);
  void RespondError(std::uint64_t slot, const Status& s, bool close);

  NodeImpl* const node_;
  const std::uint64_t id_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Slot> slots_;
  std::uint64_t first_slot_ = 0;  // slot number of slots_.front()
  std::string out_;
  bool close_after_write_ = false;
  bool writing_ = false;
  bool reading_ = false;
  bool read_closed_ = false;  // no more requests will be read
  bool closed_ = false;
  std::array<char, 4096> linger_buf_;
  // Timeouts are checked by NodeImpl's sweep (CheckTimeouts), not a timer per operation: resetting
  // a timer on every read and write costs a syscall each on the hot path.
  SteadyTime last_activity_;
  bool lingering_ = false;
  SteadyTime linger_deadline_;
  std::string cached_auth_;
  const Principal* cached_principal_ = nullptr;

  friend class NodeImpl;
};

// GET /v1/stream: a JSON message on every durable change to the subscribed accounts.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(NodeImpl* node, tcp::socket stream, std::vector<std::string> accounts,
            std::uint64_t id);
  void Start(http::request<http::string_body> req);
  void Send(std::string message);  // queued; a consumer too slow to keep up is disconnected
  void Close();
  const std::vector<std::string>& accounts() const { return accounts_; }
  bool open() const { return open_; }
  std::uint64_t id() const { return id_; }

 private:
  void DoRead();
  void DoWrite();
  void Fail(std::string_view what, beast::error_code ec);

  NodeImpl* const node_;
  websocket::stream<tcp::socket> ws_;
  const std::vector<std::string> accounts_;
  const std::uint64_t id_;
  beast::flat_buffer read_buf_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool open_ = false;
  bool closed_ = false;
};

// ---- gossip
// --------------------------------------------------------------------------------------

// Our outbound connection to one peer region: what we send travels here. Reconnects with
// exponential backoff and jitter. Handshake: we send our Hello (from Replica::OnConnected), the
// acceptor checks it and answers with its own, which we check (CheckHello, and that it is the
// region we dialled); only then does anything but our Hello go out.
class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(NodeImpl* node, RegionId region, Endpoint address, std::uint64_t seed);
  void Start();
  void Stop();
  // Queues a frame; false when it was dropped (not connected, handshake pending, queue full).
  bool Send(const Message& msg);
  bool ready() const { return state_ == State::kReady; }
  RegionId region() const { return region_; }

  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t dropped = 0;
  std::uint64_t connects = 0;
  std::uint64_t refused = 0;

 private:
  enum class State { kIdle, kConnecting, kAwaitingHello, kReady, kStopped };
  void Connect();
  void OnConnected();
  void DoRead(std::shared_ptr<struct PeerConn> conn);
  void DoWrite();
  void Fail(std::string_view why);
  void ScheduleReconnect();

  NodeImpl* const node_;
  const RegionId region_;
  const Endpoint address_;
  tcp::resolver resolver_;
  asio::steady_timer retry_;
  State state_ = State::kIdle;
  std::shared_ptr<struct PeerConn> conn_;  // the current connection attempt (null when idle)
  bool hello_queued_ = false;
  std::string out_;  // frames waiting for the write in progress to finish
  bool write_busy_ = false;
  unsigned failures_ = 0;
  std::mt19937_64 rng_;
  std::string last_error_;
};

// Why we closed an inbound gossip connection (tally_peer_connections_refused_total{reason}).
enum class PeerRefusal {
  kHandshakeTimeout,  // no accepted Hello within gossip.handshake_timeout_ms
  kHandshakeLimit,    // gossip.max_handshakes awaited their Hello: the oldest made room
  kAddressLimit,      // gossip.max_handshakes_per_address from one address: its oldest made room
  kHandshakeBytes,    // more than kMaxHandshakeBytes before its Hello was accepted
  kReceiveBudget,     // gossip.receive_buffer_bytes exhausted: it held the largest partial frame
  kBadHandshake,      // its first message is not a Hello, or its Hello was refused
  kBadFrame,          // a frame that cannot be split or decoded
};
inline constexpr std::size_t kPeerRefusalKinds = 7;
std::string_view PeerRefusalName(PeerRefusal reason);  // the metric's label

// A connection opened to our peer port: what a peer sends arrives here. Until its Hello is
// accepted it is a stranger's, and bounded as such (NodeImpl::AdmitInbound).
class InboundPeer : public std::enable_shared_from_this<InboundPeer> {
 public:
  InboundPeer(NodeImpl* node, tcp::socket socket, std::uint64_t id);
  void Start();
  void Close();
  // Closes the connection; NodeImpl::NotePeerRefusal logs and counts why.
  void Refuse(PeerRefusal reason, std::string_view why);
  bool verified() const { return verified_; }
  bool closed() const { return closed_; }
  RegionId region() const { return region_; }
  const std::string& remote() const { return remote_; }    // "ip:port"
  const std::string& address() const { return address_; }  // the remote IP alone
  SteadyTime accepted() const { return accepted_; }
  std::size_t buffered() const { return buffered_; }  // bytes of a partial frame held

 private:
  void DoRead();
  // Tells the node how many bytes of a partial frame this connection now holds.
  void SetBuffered(std::size_t bytes);

  NodeImpl* const node_;
  const std::uint64_t id_;
  tcp::socket socket_;
  std::string remote_;
  std::string address_;
  const SteadyTime accepted_;
  codec::FrameReader reader_;
  std::array<char, kPeerReadChunkBytes> read_buf_;
  std::string out_;
  std::size_t buffered_ = 0;
  bool verified_ = false;
  bool closed_ = false;
  RegionId region_ = 0;
};

// ---- the node
// ------------------------------------------------------------------------------------

struct PendingCommand {
  std::shared_ptr<HttpSession> session;
  std::uint64_t slot = 0;
  Route route = Route::kUnknown;
  std::string account;  // kOpenAccount: answered with the account's view
};

// The system clock, which the replica reads for timestamps only (core/wall_clock.h).
class SystemWallClock final : public WallClock {
 public:
  std::uint64_t NowMs() const override;
};

class NodeImpl {
 public:
  explicit NodeImpl(NodeConfig config);
  ~NodeImpl();

  Status Open();
  int Run();

  // Called by sessions and links (io thread).
  void HandleRequest(const std::shared_ptr<HttpSession>& session, std::uint64_t slot, Route route,
                     RouteMatch match, http::request<http::string_body>& req);
  void OnPeerMessage(RegionId from, const Message& msg);
  void OnLinkConnected(RegionId to);
  void OnLinkLost(RegionId to);  // our connection to `to` died: rights stop moving toward it
  Hello OurHello(RegionId to) const;
  Status CheckPeerHello(const Hello& hello) const { return replica_->CheckHello(hello); }
  void CountRequest(Route route, int status, SteadyTime start);
  void SessionClosed(std::uint64_t id);
  void StreamClosed(std::uint64_t id);
  void InboundClosed(std::uint64_t id);
  // `peer`'s Hello was accepted: older connections claiming its region are closed.
  void InboundVerified(const InboundPeer& peer);
  // An inbound connection's partial frame went from `before` to `after` bytes; past
  // gossip.receive_buffer_bytes in all, connections are closed until the total fits.
  void InboundBufferChanged(std::size_t before, std::size_t after);
  // Logs (at most one line per reason per kRefusalLogInterval) and counts a refused connection.
  void NotePeerRefusal(PeerRefusal reason, std::string_view remote, std::string_view why);
  void NoteGossipReceived(RegionId from, std::size_t bytes);
  // Initial state of a new stream's accounts (after the sync of everything before it).
  void StreamOpened(const std::shared_ptr<WsSession>& ws);

  const NodeConfig& config() const { return config_; }
  asio::io_context& io() { return io_; }
  bool stopping() const { return stopping_; }
  const Authorizer& authorizer() const { return authorizer_; }
  std::uint64_t peer_refusals = 0;

 private:
  // Milliseconds on the monotonic clock: what every replica call gets (core/wall_clock.h).
  std::uint64_t MonoMs() const;
  // `replicated`: durability "replicated" (Command::replicated).
  void Submit(CommandBody body, PendingCommand pending, bool replicated);
  void HandleEffects();
  // Runs `response` after the sync of everything persisted so far (now, if nothing is pending).
  void AfterSync(DeferredResponse response);
  // The batch whose sync covers everything persisted so far: the one filling if it holds
  // anything, else the newest handed to storage; null when everything is synced.
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
  void NotifyStreams(const PersistBatch& batch);
  void HandleNotices();

  void StartAccept();
  void StartPeerAccept();
  // Takes a new connection to the peer port, first making room for it within the strangers'
  // bounds (gossip.max_handshakes, gossip.max_handshakes_per_address).
  void AdmitInbound(tcp::socket socket);
  // From the sweep: closes connections past gossip.handshake_timeout_ms without an accepted
  // Hello, and logs the refusals the rate limit held back.
  void CheckInbound(SteadyTime now);
  void EnforceReceiveBudget();
  void ScheduleTick();
  void ScheduleSweep();
  // A copy of the open sessions: closing one edits sessions_, so loops go over this instead.
  std::vector<std::shared_ptr<HttpSession>> LiveSessions();
  void OnTick();
  void BeginShutdown(int exit_code, std::string_view why);
  void DrainStep();

  // POST /v1/admin/backup: validates `dir` and hands the copy to backup_; answers when it is over.
  void StartBackup(const std::shared_ptr<HttpSession>& session, std::uint64_t slot,
                   std::string dir);
  std::string RenderBackup(const std::string& dir, const BackupStats& stats) const;

  std::string RenderMetrics();
  std::string RenderCluster();
  Status RenderAccount(std::string_view id, std::string* out);
  Status RenderReport(std::string_view id, bool html, std::string* out, std::string* content_type);

  NodeConfig config_;
  RegionNames region_names_;
  Authorizer authorizer_;
  asio::io_context io_{1};
  tcp::acceptor client_acceptor_;
  tcp::acceptor peer_acceptor_;
  asio::steady_timer tick_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer commit_timer_;
  bool write_scheduled_ = false;
  asio::signal_set signals_;
  std::unique_ptr<Store> store_;
  SystemWallClock wall_clock_;  // before replica_, which reads it
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<StorageThread> storage_;
  std::unique_ptr<BackupThread> backup_;
  Metrics metrics_;

  Effects effects_;
  // The durability contract (core/commit_gate.h): batches to write, and what waits for them.
  CommitGate gate_;
  CommitGate::Release released_;  // scratch: what the gate lets out now
  // HTTP answers waiting for a batch to be synced, by the gate's batch number (AfterSync).
  std::map<std::uint64_t, std::vector<DeferredResponse>> deferred_;
  std::uint64_t next_command_id_ = 1;
  std::unordered_map<std::uint64_t, PendingCommand> commands_;  // looked up only, never iterated

  std::uint64_t next_conn_id_ = 1;
  std::map<std::uint64_t, std::weak_ptr<HttpSession>> sessions_;
  std::map<std::uint64_t, std::shared_ptr<WsSession>> streams_;
  std::map<std::uint64_t, std::weak_ptr<InboundPeer>> inbound_;  // by id: oldest first
  std::size_t inbound_buffered_ = 0;  // bytes of partial frames held by inbound connections
  struct RefusalCount {
    std::uint64_t total = 0;
    std::uint64_t unlogged = 0;  // since the last line about this reason
    SteadyTime last_line;
  };
  std::array<RefusalCount, kPeerRefusalKinds> refusals_;
  std::vector<std::shared_ptr<PeerLink>> links_;  // indexed by region; null for self
  std::vector<std::uint64_t> gossip_received_;    // bytes per region over inbound connections
  std::vector<std::uint64_t> clock_warned_ms_;    // last clock-ahead log per region (rate limit)
  // What is synced of the applied vector: the Hello we answer an inbound peer with must not
  // claim ops a crash could still take away.
  VersionVector durable_applied_;

  bool stopping_ = false;
  int exit_code_ = 0;
  SteadyTime drain_deadline_;
  std::uint64_t ops_persisted_ = 0;
  std::uint64_t notices_clock_ahead_ = 0;
  std::uint64_t notices_peer_refused_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_NODE_INTERNAL_H_
