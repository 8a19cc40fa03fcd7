// Gossip transport of tallyd: an outbound PeerLink per peer region (what we send) and the
// InboundPeer connections peers open to us (what we receive). Frames are codec frames: a 4-byte
// big-endian length and a protobuf envelope of at most codec::kMaxFrameBytes.

#include <fmt/format.h>

#include "node/log.h"
#include "node/node_internal.h"

namespace tally::node {

namespace {

std::string RemoteOf(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

std::string AddressOf(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string();
}

// Takes the next whole message out of `reader`, if one has arrived (*ready). On a bad frame or an
// undecodable message, returns the reason to drop the connection. `frame` is the caller's buffer,
// reused from message to message.
Status NextMessage(codec::FrameReader* reader, std::string* frame, Message* msg, bool* ready) {
  if (Status s = reader->Next(frame, ready); !s.ok())
    return Status::InvalidArgument("bad frame: " + s.ToString());
  if (!*ready) return Status::OK();
  if (Status s = codec::DecodeMessage(*frame, msg); !s.ok())
    return Status::InvalidArgument("undecodable message: " + s.ToString());
  return Status::OK();
}

}  // namespace

// ---- PeerLink
// ------------------------------------------------------------------------------------

// One TCP connection attempt of a PeerLink. Handlers hold it, so a stale handler (of a connection
// already replaced) still has valid buffers and can tell it is stale.
struct PeerConn {
  explicit PeerConn(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string writing;
  std::array<char, kPeerReadChunkBytes> read_buf;
  codec::FrameReader reader;
};

PeerLink::PeerLink(NodeImpl* node, RegionId region, Endpoint address, std::uint64_t seed)
    : node_(node),
      region_(region),
      address_(std::move(address)),
      resolver_(node->io()),
      retry_(node->io()),
      rng_(seed) {}

void PeerLink::Start() { Connect(); }

void PeerLink::Stop() {
  state_ = State::kStopped;
  beast::error_code ec;
  retry_.cancel();
  resolver_.cancel();
  if (conn_) conn_->socket.close(ec);
  conn_.reset();
  out_.clear();
}

void PeerLink::Connect() {
  if (state_ == State::kStopped) return;
  state_ = State::kConnecting;
  hello_queued_ = false;
  write_busy_ = false;
  out_.clear();
  auto conn = std::make_shared<PeerConn>(node_->io());
  conn_ = conn;
  auto self = shared_from_this();
  resolver_.async_resolve(
      address_.host, std::to_string(address_.port),
      [self, conn](beast::error_code ec, tcp::resolver::results_type results) {
        if (conn != self->conn_) return;
        if (ec) return self->Fail("resolve " + self->address_.host + ": " + ec.message());
        asio::async_connect(conn->socket, results,
                            [self, conn](beast::error_code ec, const tcp::endpoint&) {
                              if (conn != self->conn_) return;
                              if (ec) return self->Fail("connect: " + ec.message());
                              self->OnConnected();
                            });
      });
}

void PeerLink::OnConnected() {
  beast::error_code ec;
  conn_->socket.set_option(tcp::no_delay(true), ec);
  state_ = State::kAwaitingHello;
  ++connects;
  DoRead(conn_);
  // The replica answers with our Hello (sent once everything it reflects is synced).
  node_->OnLinkConnected(region_);
}

bool PeerLink::Send(const Message& msg) {
  const bool is_hello = std::holds_alternative<Hello>(msg);
  // Before the peer's Hello is checked only our own Hello may go out: nothing else is sent to a
  // process that has not shown it belongs to our cluster.
  const bool allowed =
      state_ == State::kReady || (state_ == State::kAwaitingHello && is_hello && !hello_queued_);
  if (!allowed || out_.size() >= node_->config().send_queue_bytes) {
    ++dropped;
    return false;
  }
  if (Status s = codec::AppendFrame(msg, &out_); !s.ok()) {
    ++dropped;
    Log(LogLevel::kError, "gossip to region {}: message not sent: {}",
        node_->config().regions[region_].name, s.ToString());
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
  asio::async_write(conn->socket, asio::buffer(conn->writing),
                    [self = shared_from_this(), conn](beast::error_code ec, std::size_t n) {
                      if (conn != self->conn_) return;
                      self->write_busy_ = false;
                      self->bytes_sent += n;
                      conn->writing.clear();
                      if (ec) return self->Fail("write: " + ec.message());
                      self->DoWrite();
                    });
}

void PeerLink::DoRead(std::shared_ptr<PeerConn> conn) {
  conn->socket.async_read_some(asio::buffer(conn->read_buf), [self = shared_from_this(), conn](
                                                                 beast::error_code ec,
                                                                 std::size_t n) {
    if (conn != self->conn_) return;
    if (ec) {
      return self->Fail(ec == asio::error::eof ? "the peer closed the connection"
                                               : "read: " + ec.message());
    }
    self->bytes_received += n;
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
        Status hs = hello ? self->node_->CheckPeerHello(*hello)
                          : Status::InvalidArgument("its first message is not a Hello");
        if (hs.ok() && hello->region != self->region_)
          hs = Status::InvalidArgument(fmt::format(
              "we dialled region {} but it says it is region {}", self->region_, hello->region));
        if (!hs.ok()) {
          ++self->refused;
          Log(LogLevel::kWarn, "refused peer {} (configured for region {}): {}",
              self->address_.ToString(), self->node_->config().regions[self->region_].name,
              hs.ToString());
          return self->Fail("refused: " + hs.ToString());
        }
        self->state_ = State::kReady;
        self->failures_ = 0;
        self->last_error_.clear();
        Log(LogLevel::kInfo, "gossip link to region {} ({}) is up",
            self->node_->config().regions[self->region_].name, self->address_.ToString());
        self->DoWrite();
      }
      self->node_->OnPeerMessage(self->region_, msg);
      if (conn != self->conn_) return;
    }
    self->DoRead(conn);
  });
}

void PeerLink::Fail(std::string_view why) {
  if (state_ == State::kStopped) return;
  const bool was_up = state_ == State::kReady;
  if (was_up) node_->OnLinkLost(region_);
  if (was_up || why != last_error_) {
    Log(was_up ? LogLevel::kWarn : LogLevel::kInfo, "gossip link to region {} ({}): {}",
        node_->config().regions[region_].name, address_.ToString(), why);
    last_error_ = std::string(why);
  }
  if (conn_) {
    beast::error_code ec;
    conn_->socket.close(ec);
  }
  conn_.reset();
  state_ = State::kIdle;
  write_busy_ = false;
  out_.clear();
  ScheduleReconnect();
}

void PeerLink::ScheduleReconnect() {
  const auto& c = node_->config();
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

// ---- InboundPeer
// ---------------------------------------------------------------------------------

std::string_view PeerRefusalName(PeerRefusal reason) {
  switch (reason) {
    case PeerRefusal::kHandshakeTimeout:
      return "handshake_timeout";
    case PeerRefusal::kHandshakeLimit:
      return "handshake_limit";
    case PeerRefusal::kAddressLimit:
      return "address_limit";
    case PeerRefusal::kHandshakeBytes:
      return "handshake_bytes";
    case PeerRefusal::kReceiveBudget:
      return "receive_budget";
    case PeerRefusal::kBadHandshake:
      return "bad_handshake";
    case PeerRefusal::kBadFrame:
      return "bad_frame";
  }
  return "unknown";
}

InboundPeer::InboundPeer(NodeImpl* node, tcp::socket socket, std::uint64_t id)
    : node_(node),
      id_(id),
      socket_(std::move(socket)),
      remote_(RemoteOf(socket_)),
      address_(AddressOf(socket_)),
      accepted_(std::chrono::steady_clock::now()) {}

void InboundPeer::Start() {
  beast::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  DoRead();
}

void InboundPeer::Refuse(PeerRefusal reason, std::string_view why) {
  if (closed_) return;
  node_->NotePeerRefusal(reason, remote_, why);
  Close();
}

void InboundPeer::DoRead() {
  socket_.async_read_some(
      asio::buffer(read_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        if (self->closed_) return;
        if (ec) {
          if (self->verified_ && ec != asio::error::eof && ec != asio::error::operation_aborted)
            Log(LogLevel::kInfo, "gossip connection from region {} ({}): {}",
                self->node_->config().regions[self->region_].name, self->remote_, ec.message());
          return self->Close();
        }
        if (self->verified_) self->node_->NoteGossipReceived(self->region_, n);
        self->reader_.Append(std::string_view(self->read_buf_.data(), n));
        std::string frame;
        bool ready = false;
        while (true) {
          Message msg;
          if (Status s = NextMessage(&self->reader_, &frame, &msg, &ready); !s.ok())
            return self->Refuse(PeerRefusal::kBadFrame, s.message());
          if (!ready) break;
          const Hello* hello = std::get_if<Hello>(&msg);
          if (!self->verified_) {
            if (!hello)
              return self->Refuse(PeerRefusal::kBadHandshake, "its first message is not a Hello");
            if (Status s = self->node_->CheckPeerHello(*hello); !s.ok())
              return self->Refuse(PeerRefusal::kBadHandshake, s.ToString());
            self->verified_ = true;
            self->region_ = hello->region;
            self->node_->NoteGossipReceived(self->region_, n);
            Log(LogLevel::kInfo, "gossip connection from region {} ({}) accepted",
                self->node_->config().regions[self->region_].name, self->remote_);
            self->node_->InboundVerified(*self);
            // Answer with our Hello so the dialler can check us too.
            if (codec::AppendFrame(self->node_->OurHello(self->region_), &self->out_).ok()) {
              asio::async_write(self->socket_, asio::buffer(self->out_),
                                [self](beast::error_code ec, std::size_t) {
                                  if (ec) self->Close();
                                });
            }
          } else if (hello && hello->region != self->region_) {
            return self->Refuse(PeerRefusal::kBadHandshake, "a second Hello claims another region");
          }
          if (self->node_->stopping()) return self->Close();
          self->node_->OnPeerMessage(self->region_, msg);
          if (self->closed_) return;
        }
        // Until its Hello is accepted a connection is anybody's: it may hold a Hello's worth,
        // not the start of a 4 MiB frame (a dialler sends nothing else before our Hello).
        const std::size_t held = self->reader_.buffered_bytes();
        if (!self->verified_ && held > kMaxHandshakeBytes)
          return self->Refuse(PeerRefusal::kHandshakeBytes,
                              fmt::format("{} bytes and no Hello yet (a Hello fits in {})", held,
                                          kMaxHandshakeBytes));
        self->SetBuffered(held);
        if (self->closed_) return;  // the receive budget took this one
        self->DoRead();
      });
}

void InboundPeer::SetBuffered(std::size_t bytes) {
  const std::size_t before = buffered_;
  buffered_ = bytes;
  node_->InboundBufferChanged(before, bytes);
}

void InboundPeer::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  reader_ = codec::FrameReader();  // frees the partial frame now, not when the handlers are done
  SetBuffered(0);
  node_->InboundClosed(id_);
}

// ---- NodeImpl: gossip
// ----------------------------------------------------------------------------

void NodeImpl::StartPeerAccept() {
  peer_acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (!ec) {
      AdmitInbound(std::move(socket));
    } else {
      Log(LogLevel::kWarn, "accept on {}: {}", config_.listen_peer.ToString(), ec.message());
    }
    StartPeerAccept();
  });
}

// Anyone who can reach the peer port may connect, so a connection is a stranger's until its
// Hello is accepted. Strangers are bounded apart from the regions (which hold one connection each,
// InboundVerified): in all (gossip.max_handshakes), per remote address
// (gossip.max_handshakes_per_address), in time (gossip.handshake_timeout_ms, CheckInbound) and in
// bytes (kMaxHandshakeBytes), so they can never take what a region needs. At a bound the oldest
// stranger makes room rather than the newcomer being turned away: a region that redials from
// behind a flood still gets in at once, even from the flood's own address (loopback, NAT), and a
// flood from one address only churns its own connections. Regions are not counted per address:
// on one host, or behind one NAT, every region comes from the same one.
void NodeImpl::AdmitInbound(tcp::socket socket) {
  const std::uint64_t id = next_conn_id_++;
  auto peer = std::make_shared<InboundPeer>(this, std::move(socket), id);
  std::shared_ptr<InboundPeer> oldest, oldest_here;
  std::size_t strangers = 0, here = 0;
  for (auto& [other_id, weak] : inbound_) {
    auto p = weak.lock();
    if (!p || p->closed() || p->verified()) continue;
    ++strangers;
    if (!oldest) oldest = p;
    if (p->address() == peer->address()) {
      ++here;
      if (!oldest_here) oldest_here = p;
    }
  }
  if (here >= config_.max_handshakes_per_address) {
    oldest_here->Refuse(PeerRefusal::kAddressLimit,
                        fmt::format("{} connections from {} await their Hello "
                                    "(gossip.max_handshakes_per_address); the oldest makes room",
                                    here, peer->address()));
  } else if (strangers >= config_.max_handshakes) {
    oldest->Refuse(PeerRefusal::kHandshakeLimit,
                   fmt::format("{} connections await their Hello (gossip.max_handshakes); the "
                               "oldest makes room",
                               strangers));
  }
  inbound_[id] = peer;
  peer->Start();
}

// A region dials us over one connection at a time, so an older connection that claims the same
// region is one its dialler has given up on (a socket left half-open by a partition, a process
// since restarted) or one of a process that is not that region. The newest wins: the real region
// always gets back in when it redials. Two processes claiming one region keep replacing each
// other, which the log shows.
void NodeImpl::InboundVerified(const InboundPeer& peer) {
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (!p || p.get() == &peer || p->closed() || !p->verified() || p->region() != peer.region())
      continue;
    Log(LogLevel::kInfo, "gossip connection from region {} ({}) replaced by a newer one ({})",
        config_.regions[p->region()].name, p->remote(), peer.remote());
    p->Close();
  }
}

void NodeImpl::CheckInbound(SteadyTime now) {
  const auto timeout = std::chrono::milliseconds(config_.handshake_timeout_ms);
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (p && !p->closed() && !p->verified() && now - p->accepted() > timeout)
      p->Refuse(PeerRefusal::kHandshakeTimeout,
                fmt::format("no accepted Hello within {} ms (gossip.handshake_timeout_ms)",
                            config_.handshake_timeout_ms));
  }
  for (std::size_t i = 0; i < kPeerRefusalKinds; ++i) {
    RefusalCount& r = refusals_[i];
    if (r.unlogged == 0 || now - r.last_line < kRefusalLogInterval) continue;
    Log(LogLevel::kWarn, "refused {} more gossip connections ({}) in the last {} s", r.unlogged,
        PeerRefusalName(static_cast<PeerRefusal>(i)),
        std::chrono::duration_cast<std::chrono::seconds>(now - r.last_line).count());
    r.unlogged = 0;
    r.last_line = now;
  }
}

void NodeImpl::NotePeerRefusal(PeerRefusal reason, std::string_view remote, std::string_view why) {
  // The handshake's own refusals have always counted here too (both directions).
  if (reason == PeerRefusal::kBadHandshake || reason == PeerRefusal::kBadFrame) ++peer_refusals;
  RefusalCount& r = refusals_[static_cast<std::size_t>(reason)];
  ++r.total;
  const SteadyTime now = std::chrono::steady_clock::now();
  if (r.total > 1 && now - r.last_line < kRefusalLogInterval) {
    ++r.unlogged;
    return;
  }
  Log(LogLevel::kWarn, "refused gossip connection from {} ({}): {}{}", remote,
      PeerRefusalName(reason), why,
      r.unlogged ? fmt::format(" (and {} more since the last such line)", r.unlogged) : "");
  r.unlogged = 0;
  r.last_line = now;
}

void NodeImpl::InboundBufferChanged(std::size_t before, std::size_t after) {
  inbound_buffered_ = inbound_buffered_ - before + after;
  if (after > before && inbound_buffered_ > config_.receive_buffer_bytes) EnforceReceiveBudget();
}

// Strangers go first, then the largest partial frame: a region's frame (a snapshot may take
// 4 MiB) is cut only when the regions' own frames alone exceed the budget; that region
// reconnects and the replica re-sends what was not acknowledged.
void NodeImpl::EnforceReceiveBudget() {
  while (inbound_buffered_ > config_.receive_buffer_bytes) {
    std::shared_ptr<InboundPeer> victim;
    for (auto& [id, weak] : inbound_) {
      auto p = weak.lock();
      if (!p || p->closed() || p->buffered() == 0) continue;
      if (!victim || std::pair(!p->verified(), p->buffered()) >
                         std::pair(!victim->verified(), victim->buffered()))
        victim = p;
    }
    if (!victim) break;
    victim->Refuse(
        PeerRefusal::kReceiveBudget,
        fmt::format("partial frames on the peer port hold {} bytes, over "
                    "gossip.receive_buffer_bytes ({}); this {} held {}",
                    inbound_buffered_, config_.receive_buffer_bytes,
                    victim->verified() ? "region's connection" : "stranger", victim->buffered()));
  }
}

void NodeImpl::InboundClosed(std::uint64_t id) {
  asio::post(io_, [this, id] { inbound_.erase(id); });
}

void NodeImpl::NoteGossipReceived(RegionId from, std::size_t bytes) {
  if (from < gossip_received_.size()) gossip_received_[from] += bytes;
}

}  // namespace tally::node
