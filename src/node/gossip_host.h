// GossipHost: what a gossip connection (an outbound PeerLink, an InboundPeer) may ask of the node
// — the whole of it: deliver a decoded message, report a link up or down, check and make Hellos,
// and the bookkeeping of the peer port's bounds and counters. Connections own their socket and
// framing and never touch the replica themselves. NodeImpl implements it.
//
// Threading: every call is made on the io thread, from a connection's completion handler.

#ifndef TALLY_NODE_GOSSIP_HOST_H_
#define TALLY_NODE_GOSSIP_HOST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "codec/codec.h"
#include "core/replica.h"
#include "core/status.h"
#include "node/config.h"
#include "node/net.h"
#include "node/peer_tls.h"

namespace tally::node {

class InboundPeer;

// Why we closed an inbound gossip connection (tally_peer_connections_refused_total{reason}).
enum class PeerRefusal {
  kHandshakeTimeout,  // no accepted Hello within gossip.handshake_timeout_ms
  kHandshakeLimit,    // gossip.max_handshakes awaited their Hello: the oldest made room
  kAddressLimit,      // gossip.max_handshakes_per_address from one address: its oldest made room
  kHandshakeBytes,    // more than kMaxHandshakeBytes before its Hello was accepted
  kReceiveBudget,     // gossip.receive_buffer_bytes exhausted: it held the largest partial frame
  kBadHandshake,      // its first message is not a Hello, or its Hello was refused
  kBadFrame,          // a frame that cannot be split or decoded
  // Mutual TLS (node/peer_tls.h):
  kTlsHandshake,          // the TLS handshake failed (not TLS at all, no TLS 1.3, a bad record)
  kNoCertificate,         // it presented no certificate
  kUntrustedCertificate,  // its certificate is not from the cluster CA (or fails verification)
  kExpiredCertificate,    // its certificate is expired or not yet valid
  kCertificateRegion,     // its certificate names no region of ours, or not the one it claims
};
inline constexpr std::size_t kPeerRefusalKinds = 12;
std::string_view PeerRefusalName(PeerRefusal reason);  // the metric's label

class GossipHost {
 public:
  virtual ~GossipHost() = default;

  virtual asio::io_context& io() = 0;
  // The [gossip] settings and the regions' names (config().regions[id].name).
  virtual const NodeConfig& config() const = 0;
  // True once shutdown began: inbound connections stop delivering.
  virtual bool stopping() const = 0;
  // The gossip TLS context (node/peer_tls.h); null when gossip is plain TCP
  // (gossip.insecure_loopback).
  virtual std::shared_ptr<ssl::context> peer_tls() = 0;

  // The handshake: whether a peer's Hello belongs to our cluster, and the Hello we answer with.
  virtual Status CheckHello(const Hello& hello) const = 0;
  virtual Hello OurHello(RegionId to) const = 0;

  // A decoded message from region `from` (after its Hello was accepted, the Hello included).
  virtual void Deliver(RegionId from, const Message& msg) = 0;
  // Our outbound connection to `to` is open (the replica answers with our Hello), or the link
  // that was up died (rights stop moving toward `to`).
  virtual void LinkUp(RegionId to) = 0;
  virtual void LinkDown(RegionId to) = 0;

  // The peer port's bookkeeping (PeerPort). `peer`'s Hello was accepted.
  virtual void InboundVerified(const InboundPeer& peer) = 0;
  // An inbound connection's partial frame went from `before` to `after` bytes.
  virtual void InboundBufferChanged(std::size_t before, std::size_t after) = 0;
  virtual void InboundClosed(std::uint64_t id) = 0;
  // Counts (and, rate limited, logs) why an inbound connection was closed.
  virtual void NoteRefusal(PeerRefusal reason, std::string_view remote, std::string_view why) = 0;
  // Bytes read from region `from` over an inbound connection.
  virtual void NoteReceived(RegionId from, std::size_t bytes) = 0;
};

// Takes the next whole message out of `reader`, if one has arrived (*ready). On a bad frame or an
// undecodable message, returns the reason to drop the connection. `frame` is the caller's buffer,
// reused from message to message. Both kinds of connection read this way.
inline Status NextMessage(codec::FrameReader* reader, std::string* frame, Message* msg,
                          bool* ready) {
  if (Status s = reader->Next(frame, ready); !s.ok())
    return Status::InvalidArgument("bad frame: " + s.ToString());
  if (!*ready) return Status::OK();
  if (Status s = codec::DecodeMessage(*frame, msg); !s.ok())
    return Status::InvalidArgument("undecodable message: " + s.ToString());
  return Status::OK();
}

}  // namespace tally::node

#endif  // TALLY_NODE_GOSSIP_HOST_H_
