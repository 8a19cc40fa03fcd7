#include "node/peer_link.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "node/log.h"

namespace tally::node {

// One connection attempt of a PeerLink. Handlers hold it, so a stale handler (of a connection
// already replaced) still has valid buffers and can tell it is stale.
struct PeerConn {
  PeerConn(asio::io_context& io, std::shared_ptr<ssl::context> tls) : stream(io, std::move(tls)) {}
  PeerStream stream;
  std::string writing;
  std::array<char, kPeerReadChunkBytes> read_buf;
  codec::FrameReader reader;
};

PeerLink::PeerLink(GossipHost* host, RegionId region, Endpoint address, std::uint64_t seed)
    : host_(host),
      region_(region),
      address_(std::move(address)),
      resolver_(host->io()),
      retry_(host->io()),
      deadline_(host->io()),
      rng_(seed) {}

void PeerLink::Start() { Connect(); }

void PeerLink::Stop() {
  state_ = State::kStopped;
  beast::error_code ec;
  retry_.cancel();
  deadline_.cancel();
  resolver_.cancel();
  if (conn_) conn_->stream.Close();
  conn_.reset();
  out_.clear();
}

void PeerLink::Connect() {
  if (state_ == State::kStopped) return;
  state_ = State::kConnecting;
  hello_queued_ = false;
  write_busy_ = false;
  out_.clear();
  auto conn = std::make_shared<PeerConn>(host_->io(), host_->peer_tls());
  conn_ = conn;
  auto self = shared_from_this();
  const auto timeout = std::chrono::milliseconds(host_->config().handshake_timeout_ms);
  deadline_.expires_after(timeout);
  deadline_.async_wait([self, conn, timeout](const beast::error_code& ec) {
    if (ec || conn != self->conn_ || self->state_ == State::kReady) return;
    self->Fail(fmt::format("no completed handshake within {} ms (gossip.handshake_timeout_ms)",
                           timeout.count()));
  });
  resolver_.async_resolve(
      address_.host, std::to_string(address_.port),
      [self, conn](beast::error_code ec, tcp::resolver::results_type results) {
        if (conn != self->conn_) return;
        if (ec) return self->Fail("resolve " + self->address_.host + ": " + ec.message());
        asio::async_connect(conn->stream.socket(), results,
                            [self, conn](beast::error_code ec, const tcp::endpoint&) {
                              if (conn != self->conn_) return;
                              if (ec) return self->Fail("connect: " + ec.message());
                              self->OnConnected();
                            });
      });
}

void PeerLink::OnConnected() {
  beast::error_code ec;
  conn_->stream.socket().set_option(tcp::no_delay(true), ec);
  state_ = State::kTlsHandshake;
  auto conn = conn_;
  conn->stream.AsyncHandshake(
      true, host_->config().cluster_id,
      [self = shared_from_this(), conn](const PeerStream::Handshake& result) {
        self->OnHandshake(conn, result);
      });
}

void PeerLink::OnHandshake(const std::shared_ptr<PeerConn>& conn,
                           const PeerStream::Handshake& result) {
  if (conn != conn_) return;
  if (!result.status.ok()) return Refuse(result.status);
  const std::string& dialled = host_->config().regions[region_].name;
  if (conn->stream.secure() && result.region != dialled)
    return Refuse(Status::InvalidArgument(fmt::format(
        "we dialled region {} but its certificate names region {}", dialled, result.region)));
  state_ = State::kAwaitingHello;
  ++connects_;
  DoRead(conn_);
  // The replica answers with our Hello (sent once everything it reflects is synced).
  host_->LinkUp(region_);
}

void PeerLink::Refuse(const Status& why) {
  ++refused_;
  Log(LogLevel::kWarn, "refused peer {} (configured for region {}): {}", address_.ToString(),
      host_->config().regions[region_].name, why.ToString());
  Fail("refused: " + why.ToString());
}

bool PeerLink::Send(const Message& msg) {
  const bool is_hello = std::holds_alternative<Hello>(msg);
  // Before the peer's Hello is checked only our own Hello may go out: nothing else is sent to a
  // process that has not shown it belongs to our cluster.
  const bool allowed =
      state_ == State::kReady || (state_ == State::kAwaitingHello && is_hello && !hello_queued_);
  if (!allowed || out_.size() >= host_->config().send_queue_bytes) {
    ++dropped_;
    return false;
  }
  if (Status s = codec::AppendFrame(msg, &out_); !s.ok()) {
    ++dropped_;
    Log(LogLevel::kError, "gossip to region {}: message not sent: {}",
        host_->config().regions[region_].name, s.ToString());
    return false;
  }
  if (is_hello) hello_queued_ = true;
  DoWrite();
  return true;
}

void PeerLink::DoWrite() {
  if (write_busy_ || out_.empty() || !conn_) return;
  if (state_ != State::kReady && state_ != State::kAwaitingHello) return;
  write_busy_ = true;
  auto conn = conn_;
  conn->writing.swap(out_);
  out_.clear();
  conn->stream.AsyncWrite(asio::buffer(conn->writing),
                          [self = shared_from_this(), conn](beast::error_code ec, std::size_t n) {
                            if (conn != self->conn_) return;
                            self->write_busy_ = false;
                            self->bytes_sent_ += n;
                            conn->writing.clear();
                            if (ec) return self->Fail("write: " + ec.message());
                            self->DoWrite();
                          });
}

void PeerLink::DoRead(std::shared_ptr<PeerConn> conn) {
  conn->stream.AsyncReadSome(asio::buffer(conn->read_buf), [self = shared_from_this(), conn](
                                                               beast::error_code ec,
                                                               std::size_t n) {
    if (conn != self->conn_) return;
    if (ec) {
      return self->Fail(PeerStream::IsEndOfStream(ec) ? "the peer closed the connection"
                                                      : "read: " + ec.message());
    }
    self->bytes_received_ += n;
    conn->reader.Append(std::string_view(conn->read_buf.data(), n));
    std::string frame;
    bool ready = false;
    while (true) {
      Message msg;
      if (Status s = NextMessage(&conn->reader, &frame, &msg, &ready); !s.ok())
        return self->Fail(s.message());
      if (!ready) break;
      if (self->state_ == State::kAwaitingHello) {
        const Hello* hello = std::get_if<Hello>(&msg);
        Status hs = hello ? self->host_->CheckHello(*hello)
                          : Status::InvalidArgument("its first message is not a Hello");
        if (hs.ok() && hello->region != self->region_)
          hs = Status::InvalidArgument(fmt::format(
              "we dialled region {} but it says it is region {}", self->region_, hello->region));
        if (!hs.ok()) return self->Refuse(hs);
        self->state_ = State::kReady;
        self->deadline_.cancel();
        self->failures_ = 0;
        self->last_error_.clear();
        Log(LogLevel::kInfo, "gossip link to region {} ({}) is up",
            self->host_->config().regions[self->region_].name, self->address_.ToString());
        self->DoWrite();
      }
      self->host_->Deliver(self->region_, msg);
      if (conn != self->conn_) return;
    }
    self->DoRead(conn);
  });
}

void PeerLink::Fail(std::string_view why) {
  if (state_ == State::kStopped) return;
  const bool was_up = state_ == State::kReady;
  if (was_up) host_->LinkDown(region_);
  if (was_up || why != last_error_) {
    Log(was_up ? LogLevel::kWarn : LogLevel::kInfo, "gossip link to region {} ({}): {}",
        host_->config().regions[region_].name, address_.ToString(), why);
    last_error_ = std::string(why);
  }
  if (conn_) conn_->stream.Close();
  conn_.reset();
  state_ = State::kIdle;
  write_busy_ = false;
  out_.clear();
  ScheduleReconnect();
}

void PeerLink::ScheduleReconnect() {
  const auto& c = host_->config();
  double delay = static_cast<double>(c.reconnect_min_ms);
  for (unsigned i = 0; i < failures_ && delay < static_cast<double>(c.reconnect_max_ms); ++i)
    delay *= 2;
  delay = std::min(delay, static_cast<double>(c.reconnect_max_ms));
  // ±50 % jitter so regions that lost each other do not all retry in the same instant.
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  delay *= jitter(rng_);
  ++failures_;
  retry_.expires_after(std::chrono::milliseconds(static_cast<std::int64_t>(delay)));
  retry_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
    if (!ec) self->Connect();
  });
}

}  // namespace tally::node
