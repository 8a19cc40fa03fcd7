// PeerLink: our outbound connection to one peer region — what we send travels here. Reconnects
// with exponential backoff and jitter. Handshake: with TLS, first the TLS handshake, whose
// certificate must name the region we dialled (node/peer_tls.h); then we send our Hello (the
// host's replica answers LinkUp with it), the acceptor checks it and answers with its own, which
// we check (GossipHost::CheckHello, and that it is the region we dialled); only then does anything
// but our Hello go out. All of it within gossip.handshake_timeout_ms of the connect, or the
// attempt is dropped. What the peer sends back on this connection is delivered to the host too.
//
// Threading: io thread only. Owned by shared_ptr: the host holds it, pending operations too.

#ifndef TALLY_NODE_PEER_LINK_H_
#define TALLY_NODE_PEER_LINK_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "core/replica.h"
#include "node/config.h"
#include "node/gossip_host.h"
#include "node/net.h"
#include "node/peer_stream.h"

namespace tally::node {

struct PeerConn;

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(GossipHost* host, RegionId region, Endpoint address, std::uint64_t seed);
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  void Start();
  void Stop();
  // Queues a frame; false when it was dropped (not connected, handshake pending, queue full).
  bool Send(const Message& msg);
  bool ready() const { return state_ == State::kReady; }
  RegionId region() const { return region_; }

  // Counters for the metrics (tally_gossip_*_total{peer}).
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t connects() const { return connects_; }
  std::uint64_t refused() const { return refused_; }  // peers whose Hello we refused

 private:
  enum class State { kIdle, kConnecting, kTlsHandshake, kAwaitingHello, kReady, kStopped };
  void Connect();
  void OnConnected();
  void OnHandshake(const std::shared_ptr<PeerConn>& conn, const PeerStream::Handshake& result);
  // Counts and logs a peer we refused, then drops the connection.
  void Refuse(const Status& why);
  void DoRead(std::shared_ptr<PeerConn> conn);
  void DoWrite();
  void Fail(std::string_view why);
  void ScheduleReconnect();

  GossipHost* const host_;
  const RegionId region_;
  const Endpoint address_;
  tcp::resolver resolver_;
  asio::steady_timer retry_;
  asio::steady_timer deadline_;  // the handshake's (gossip.handshake_timeout_ms)
  State state_ = State::kIdle;
  std::shared_ptr<PeerConn> conn_;  // the current connection attempt (null when idle)
  bool hello_queued_ = false;
  std::string out_;  // frames waiting for the write in progress to finish
  bool write_busy_ = false;
  unsigned failures_ = 0;
  std::mt19937_64 rng_;
  std::string last_error_;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t connects_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_PEER_LINK_H_
