// PeerStream: the bytes of one gossip connection — mutual TLS over TCP (node/peer_tls.h), or plain
// TCP when the node runs with gossip.insecure_loopback. PeerLink and InboundPeer read and write
// through it without caring which; its handshake says which region the peer's certificate names,
// or why the peer is refused.
//
// Threading: io thread only. Neither copied nor moved: the certificate check holds `this`, so the
// owner keeps the stream alive until its handlers have run (they capture the owner).

#ifndef TALLY_NODE_PEER_STREAM_H_
#define TALLY_NODE_PEER_STREAM_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "node/gossip_host.h"
#include "node/net.h"
#include "node/peer_tls.h"

namespace tally::node {

class PeerStream {
 public:
  // `tls` null: plain TCP. Outbound: connect socket() before the handshake. The stream keeps the
  // context it was made with (a reload may replace the node's).
  PeerStream(asio::io_context& io, std::shared_ptr<ssl::context> tls);
  // Inbound: an accepted socket.
  PeerStream(tcp::socket socket, std::shared_ptr<ssl::context> tls);
  PeerStream(const PeerStream&) = delete;
  PeerStream& operator=(const PeerStream&) = delete;

  struct Handshake {
    Status status;                                     // OK, or why the peer is refused
    PeerRefusal refusal = PeerRefusal::kTlsHandshake;  // the metric's reason, when not OK
    std::string region;  // the region the peer's certificate names; empty without TLS
  };
  using HandshakeHandler = std::function<void(const Handshake&)>;
  using IoHandler = std::function<void(beast::error_code, std::size_t)>;

  // The TLS handshake (as the client when `client`) and the check of the peer's certificate
  // against `cluster_id`. Without TLS it succeeds at once (the handler is posted, not called).
  void AsyncHandshake(bool client, const std::string& cluster_id, HandshakeHandler done);
  void AsyncReadSome(asio::mutable_buffer buffer, IoHandler done);
  void AsyncWrite(asio::const_buffer buffer, IoHandler done);
  // Closes the connection at once (no TLS close_notify: gossip has nothing left to say).
  void Close();

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool secure() const { return tls_ != nullptr; }

  // Whether a read error means the peer hung up: end of file, or TLS cut without close_notify.
  static bool IsEndOfStream(const beast::error_code& ec);

 private:
  Handshake Refusal(const beast::error_code& ec) const;

  std::shared_ptr<ssl::context> context_;  // before tls_, which uses it until destroyed
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  std::optional<tcp::socket> plain_;
  int verify_error_ = 0;  // the first certificate error OpenSSL reported (X509_V_ERR_*)
};

}  // namespace tally::node

#endif  // TALLY_NODE_PEER_STREAM_H_
