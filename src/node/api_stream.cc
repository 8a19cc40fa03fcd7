#include "node/api_stream.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

namespace tally::node {

Status MakeApiTlsContext(const TlsFiles& files, std::shared_ptr<ssl::context>* out) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return Status::InvalidArgument("tls: this OpenSSL cannot require TLS 1.2");
  const bool own = files.api_cert_file.empty();
  Status s = own ? LoadCertificateAndKey(ctx.get(), "cert_file", files.cert_file, "key_file",
                                         files.key_file)
                 : LoadCertificateAndKey(ctx.get(), "api_cert_file", files.api_cert_file,
                                         "api_key_file", files.api_key_file);
  if (!s.ok()) return s;
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
