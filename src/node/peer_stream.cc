#include "node/peer_stream.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

namespace tally::node {

namespace {

// Records the first certificate error of a handshake, so a refusal can say expired from untrusted.
void WatchVerify(ssl::stream<tcp::socket>* tls, int* first_error) {
  tls->set_verify_callback([first_error](bool preverified, ssl::verify_context& ctx) {
    if (!preverified && *first_error == 0)
      *first_error = X509_STORE_CTX_get_error(ctx.native_handle());
    return preverified;
  });
}

}  // namespace

PeerStream::PeerStream(asio::io_context& io, std::shared_ptr<ssl::context> tls)
    : context_(std::move(tls)) {
  if (context_) {
    tls_ = std::make_unique<ssl::stream<tcp::socket>>(io, *context_);
    WatchVerify(tls_.get(), &verify_error_);
  } else {
    plain_.emplace(io);
  }
}

PeerStream::PeerStream(tcp::socket socket, std::shared_ptr<ssl::context> tls)
    : context_(std::move(tls)) {
  if (context_) {
    tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *context_);
    WatchVerify(tls_.get(), &verify_error_);
  } else {
    plain_.emplace(std::move(socket));
  }
}

void PeerStream::AsyncHandshake(bool client, const std::string& cluster_id, HandshakeHandler done) {
  if (!tls_) {
    asio::post(socket().get_executor(), [done = std::move(done)] { done(Handshake{}); });
    return;
  }
  tls_->async_handshake(
      client ? ssl::stream_base::client : ssl::stream_base::server,
      [this, cluster_id, done = std::move(done)](const beast::error_code& ec) {
        if (ec) return done(Refusal(ec));
        Handshake out;
        X509* cert = SSL_get1_peer_certificate(tls_->native_handle());
        if (!cert) {  // not reached with verify_fail_if_no_peer_cert; never trust that alone
          out.status = Status::InvalidArgument("it presented no certificate");
          out.refusal = PeerRefusal::kNoCertificate;
          return done(out);
        }
        out.status = CertificateRegion(cert, cluster_id, &out.region);
        X509_free(cert);
        if (!out.status.ok()) out.refusal = PeerRefusal::kCertificateRegion;
        done(out);
      });
}

PeerStream::Handshake PeerStream::Refusal(const beast::error_code& ec) const {
  Handshake out;
  if (verify_error_ == X509_V_ERR_CERT_HAS_EXPIRED ||
      verify_error_ == X509_V_ERR_CERT_NOT_YET_VALID) {
    out.refusal = PeerRefusal::kExpiredCertificate;
  } else if (verify_error_ != 0) {
    out.refusal = PeerRefusal::kUntrustedCertificate;
  } else if (ec.category() == asio::error::get_ssl_category() &&
             ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                 SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    out.refusal = PeerRefusal::kNoCertificate;
  }
  std::string why = verify_error_ != 0 ? fmt::format("its certificate: {}",
                                                     X509_verify_cert_error_string(verify_error_))
                                       : fmt::format("TLS handshake: {}", ec.message());
  out.status = Status::InvalidArgument(why);
  return out;
}

void PeerStream::AsyncReadSome(asio::mutable_buffer buffer, IoHandler done) {
  if (tls_)
    tls_->async_read_some(buffer, std::move(done));
  else
    plain_->async_read_some(buffer, std::move(done));
}

void PeerStream::AsyncWrite(asio::const_buffer buffer, IoHandler done) {
  if (tls_)
    asio::async_write(*tls_, buffer, std::move(done));
  else
    asio::async_write(*plain_, buffer, std::move(done));
}

void PeerStream::Close() {
  beast::error_code ec;
  socket().shutdown(tcp::socket::shutdown_both, ec);
  socket().close(ec);
}

bool PeerStream::IsEndOfStream(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == ssl::error::stream_truncated;
}

}  // namespace tally::node
