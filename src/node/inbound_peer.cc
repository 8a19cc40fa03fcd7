#include "node/inbound_peer.h"

#include <fmt/format.h>

#include "node/log.h"

namespace tally::node {

namespace {

std::string AddressOf(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string();
}

}  // namespace

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
    case PeerRefusal::kTlsHandshake:
      return "tls_handshake";
    case PeerRefusal::kNoCertificate:
      return "no_certificate";
    case PeerRefusal::kUntrustedCertificate:
      return "untrusted_certificate";
    case PeerRefusal::kExpiredCertificate:
      return "expired_certificate";
    case PeerRefusal::kCertificateRegion:
      return "certificate_region";
  }
  return "unknown";
}

InboundPeer::InboundPeer(GossipHost* host, tcp::socket socket, std::uint64_t id)
    : host_(host),
      id_(id),
      stream_(std::move(socket), host->peer_tls()),
      remote_(RemoteOf(stream_.socket())),
      address_(AddressOf(stream_.socket())),
      accepted_(std::chrono::steady_clock::now()) {}

void InboundPeer::Start() {
  beast::error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  // A handshake that never finishes is bounded like a Hello that never comes: PeerPort closes
  // the connection gossip.handshake_timeout_ms after it was accepted.
  stream_.AsyncHandshake(false, host_->config().cluster_id,
                         [self = shared_from_this()](const PeerStream::Handshake& result) {
                           self->OnHandshake(result);
                         });
}

void InboundPeer::OnHandshake(const PeerStream::Handshake& result) {
  if (closed_) return;
  if (!result.status.ok()) return Refuse(result.refusal, result.status.message());
  certified_region_ = result.region;
  DoRead();
}

Status InboundPeer::CheckCertifiedRegion(const Hello& hello) const {
  if (!stream_.secure()) return Status::OK();
  const std::string& claimed = host_->config().regions[hello.region].name;
  if (claimed != certified_region_)
    return Status::InvalidArgument(
        fmt::format("its Hello claims region {} but its certificate names region {}", claimed,
                    certified_region_));
  return Status::OK();
}

void InboundPeer::Refuse(PeerRefusal reason, std::string_view why) {
  if (closed_) return;
  host_->NoteRefusal(reason, remote_, why);
  Close();
}

void InboundPeer::DoRead() {
  stream_.AsyncReadSome(asio::buffer(read_buf_), [self = shared_from_this()](beast::error_code ec,
                                                                             std::size_t n) {
    if (self->closed_) return;
    if (ec) {
      if (self->verified_ && !PeerStream::IsEndOfStream(ec) && ec != asio::error::operation_aborted)
        Log(LogLevel::kInfo, "gossip connection from region {} ({}): {}",
            self->host_->config().regions[self->region_].name, self->remote_, ec.message());
      return self->Close();
    }
    if (self->verified_) self->host_->NoteReceived(self->region_, n);
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
        if (Status s = self->host_->CheckHello(*hello); !s.ok())
          return self->Refuse(PeerRefusal::kBadHandshake, s.ToString());
        if (Status s = self->CheckCertifiedRegion(*hello); !s.ok())
          return self->Refuse(PeerRefusal::kCertificateRegion, s.message());
        self->verified_ = true;
        self->region_ = hello->region;
        self->host_->NoteReceived(self->region_, n);
        Log(LogLevel::kInfo, "gossip connection from region {} ({}) accepted",
            self->host_->config().regions[self->region_].name, self->remote_);
        self->host_->InboundVerified(*self);
        // Answer with our Hello so the dialler can check us too.
        if (codec::AppendFrame(self->host_->OurHello(self->region_), &self->out_).ok()) {
          self->stream_.AsyncWrite(asio::buffer(self->out_),
                                   [self](beast::error_code ec, std::size_t) {
                                     if (ec) self->Close();
                                   });
        }
      } else if (hello && hello->region != self->region_) {
        return self->Refuse(PeerRefusal::kBadHandshake, "a second Hello claims another region");
      }
      if (self->host_->stopping()) return self->Close();
      self->host_->Deliver(self->region_, msg);
      if (self->closed_) return;
    }
    // Until its Hello is accepted a connection is anybody's: it may hold a Hello's worth,
    // not the start of a 4 MiB frame (a dialler sends nothing else before our Hello).
    const std::size_t held = self->reader_.buffered_bytes();
    if (!self->verified_ && held > kMaxHandshakeBytes)
      return self->Refuse(
          PeerRefusal::kHandshakeBytes,
          fmt::format("{} bytes and no Hello yet (a Hello fits in {})", held, kMaxHandshakeBytes));
    self->SetBuffered(held);
    if (self->closed_) return;  // the receive budget took this one
    self->DoRead();
  });
}

void InboundPeer::SetBuffered(std::size_t bytes) {
  const std::size_t before = buffered_;
  buffered_ = bytes;
  host_->InboundBufferChanged(before, bytes);
}

void InboundPeer::Close() {
  if (closed_) return;
  closed_ = true;
  stream_.Close();
  reader_ = codec::FrameReader();  // frees the partial frame now, not when the handlers are done
  SetBuffered(0);
  host_->InboundClosed(id_);
}

}  // namespace tally::node
