// PeerPort: our gossip listener and the connections peers opened to it. Anyone who can reach the
// peer port may connect, so a connection is a stranger's until its Hello is accepted, and
// strangers are bounded apart from the regions: in all (gossip.max_handshakes), per remote address
// (gossip.max_handshakes_per_address), in time (gossip.handshake_timeout_ms), in bytes
// (kMaxHandshakeBytes); and every connection's partial frames together by
// gossip.receive_buffer_bytes. It counts and rate-limits the log lines of every refusal.
//
// NodeImpl owns it and forwards the GossipHost bookkeeping calls of InboundPeers to it.
//
// Threading: io thread only.

#ifndef TALLY_NODE_PEER_PORT_H_
#define TALLY_NODE_PEER_PORT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "core/status.h"
#include "node/config.h"
#include "node/gossip_host.h"
#include "node/inbound_peer.h"
#include "node/net.h"

namespace tally::node {

class PeerPort {
 public:
  // `host` makes the connections' handshake and receives their messages; it outlives this.
  explicit PeerPort(GossipHost* host);
  PeerPort(const PeerPort&) = delete;
  PeerPort& operator=(const PeerPort&) = delete;

  // Binds config().listen_peer. IOError or InvalidArgument naming the address.
  Status Listen();
  // Accepts until Close.
  void StartAccept();
  // Stops accepting and closes every connection (shutdown).
  void Close();

  // From the sweep: closes connections past gossip.handshake_timeout_ms without an accepted
  // Hello, and logs the refusals the rate limit held back.
  void CheckTimeouts(SteadyTime now);

  // The GossipHost bookkeeping calls (see there).
  void Verified(const InboundPeer& peer);
  void BufferChanged(std::size_t before, std::size_t after);
  void Closed(std::uint64_t id);
  void NoteRefusal(PeerRefusal reason, std::string_view remote, std::string_view why);
  void NoteReceived(RegionId from, std::size_t bytes);

  // For metrics and GET /v1/cluster.
  std::size_t VerifiedFrom(RegionId region) const;  // open, verified connections of `region`
  std::size_t handshaking() const;                  // open, Hello not yet accepted
  std::size_t verified() const;                     // open, a region's
  std::size_t buffered_bytes() const { return buffered_; }
  std::uint64_t received_from(RegionId region) const {
    return region < received_.size() ? received_[region] : 0;
  }
  // Handshakes refused (TLS, a certificate, a bad Hello or frame), the count
  // tally_gossip_refused_total adds to the outbound links' own.
  std::uint64_t handshake_refusals() const { return handshake_refusals_; }
  std::uint64_t refusals(PeerRefusal reason) const {
    return refusals_[static_cast<std::size_t>(reason)].total;
  }

 private:
  // Takes a new connection, first making room for it within the strangers' bounds.
  void Admit(tcp::socket socket);
  void EnforceReceiveBudget();

  GossipHost* const host_;
  tcp::acceptor acceptor_;
  bool closing_ = false;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::weak_ptr<InboundPeer>> inbound_;  // by id: oldest first
  std::size_t buffered_ = 0;  // bytes of partial frames held by inbound connections
  struct RefusalCount {
    std::uint64_t total = 0;
    std::uint64_t unlogged = 0;  // since the last line about this reason
    SteadyTime last_line;
  };
  std::array<RefusalCount, kPeerRefusalKinds> refusals_;
  std::uint64_t handshake_refusals_ = 0;
  std::vector<std::uint64_t> received_;  // bytes per region over inbound connections
};

}  // namespace tally::node

#endif  // TALLY_NODE_PEER_PORT_H_
