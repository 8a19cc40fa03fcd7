#include "node/api_stream.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

namespace tally::node {

Status MakeApiTlsContext(const TlsFiles& files, std::shared_ptr<ssl::context>* out) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return Status::InvalidArgument("tls: this OpenSSL cannot require TLS 1.2");
  const bool own = files.api_cert_file.empty();
  const std::string& cert = own ? files.cert_file : files.api_cert_file;
  const std::string& key = own ? files.key_file : files.api_key_file;
  if (Status s = CheckTlsFileReadable(own ? "cert_file" : "api_cert_file", cert); !s.ok()) return s;
  if (Status s = CheckTlsFileReadable(own ? "key_file" : "api_key_file", key); !s.ok()) return s;
  beast::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec)
    return Status::InvalidArgument(
        fmt::format("tls.{} {}: {}", own ? "cert_file" : "api_cert_file", cert, ec.message()));
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec)
    return Status::InvalidArgument(
        fmt::format("tls.{} {}: {}", own ? "key_file" : "api_key_file", key, ec.message()));
  *out = std::move(ctx);
  return Status::OK();
}

ApiStream::ApiStream(tcp::socket socket, std::shared_ptr<ssl::context> tls)
    : context_(std::move(tls)) {
  if (context_)
    tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *context_);
  else
    plain_.emplace(std::move(socket));
}

void teardown(beast::role_type role, ApiStream& s, beast::error_code& ec) {
  if (s.tls_)
    beast::teardown(role, *s.tls_, ec);
  else
    websocket::teardown(role, *s.plain_, ec);
}

}  // namespace tally::node
