// InboundPeer: a connection opened to our peer port — what a peer sends arrives here. Until its
// Hello is accepted it is a stranger's, and bounded as such (PeerPort: how many, from where, for
// how long, how many bytes). With TLS it first completes the handshake, whose certificate names
// the region its Hello must then claim. Once accepted it belongs to that region, delivers what it
// reads to the GossipHost, and answers the Hello with ours so the dialler can check us too.
//
// Threading: io thread only. Owned by shared_ptr: its pending reads hold it; PeerPort holds a
// weak_ptr.

#ifndef TALLY_NODE_INBOUND_PEER_H_
#define TALLY_NODE_INBOUND_PEER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "codec/codec.h"
#include "core/replica.h"
#include "node/gossip_host.h"
#include "node/net.h"
#include "node/peer_stream.h"

namespace tally::node {

class InboundPeer : public std::enable_shared_from_this<InboundPeer> {
 public:
  InboundPeer(GossipHost* host, tcp::socket socket, std::uint64_t id);
  InboundPeer(const InboundPeer&) = delete;
  InboundPeer& operator=(const InboundPeer&) = delete;

  void Start();
  void Close();
  // Closes the connection; GossipHost::NoteRefusal logs and counts why.
  void Refuse(PeerRefusal reason, std::string_view why);
  bool verified() const { return verified_; }
  bool closed() const { return closed_; }
  RegionId region() const { return region_; }
  const std::string& remote() const { return remote_; }    // "ip:port"
  const std::string& address() const { return address_; }  // the remote IP alone
  SteadyTime accepted() const { return accepted_; }
  std::size_t buffered() const { return buffered_; }  // bytes of a partial frame held

 private:
  void OnHandshake(const PeerStream::Handshake& result);
  void DoRead();
  // With TLS, whether `hello` (of our cluster) claims the region the certificate names.
  Status CheckCertifiedRegion(const Hello& hello) const;
  // Tells the host how many bytes of a partial frame this connection now holds.
  void SetBuffered(std::size_t bytes);

  GossipHost* const host_;
  const std::uint64_t id_;
  PeerStream stream_;
  std::string remote_;
  std::string address_;
  const SteadyTime accepted_;
  codec::FrameReader reader_;
  std::array<char, kPeerReadChunkBytes> read_buf_;
  std::string out_;
  std::size_t buffered_ = 0;
  std::string certified_region_;  // what the certificate names (TLS only)
  bool verified_ = false;
  bool closed_ = false;
  RegionId region_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_INBOUND_PEER_H_
