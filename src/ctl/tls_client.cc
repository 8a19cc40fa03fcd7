#include "ctl/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tally::ctl {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

bool MakeClientTlsContext(const ClientTls& tls, std::unique_ptr<ssl::context>* out,
                          std::string* error) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    *error = "TLS: this OpenSSL cannot require TLS 1.2 or newer";
    return false;
  }
  error_code ec;
  if (tls.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      *error = "TLS: cannot use the system's trust store: " + ec.message();
      return false;
    }
  } else {
    // OpenSSL's own error for a missing file is only "system lib": name the cause first.
    if (std::FILE* f = std::fopen(tls.ca_file.c_str(), "r")) {
      std::fclose(f);
    } else {
      *error = "cannot load CA file " + tls.ca_file + ": " + std::strerror(errno);
      return false;
    }
    ctx->load_verify_file(tls.ca_file, ec);
    if (ec) {
      const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
      *error = "cannot load CA file " + tls.ca_file + ": " + (reason ? reason : ec.message()) +
               " (is it a PEM file of CA certificates?)";
      ERR_clear_error();
      return false;
    }
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) {
    *error = "TLS: " + ec.message();
    return false;
  }
  *out = std::move(ctx);
  return true;
}

bool SetTlsServerName(SSL* ssl, std::string_view host, std::string* error) {
  std::string name(host);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  error_code not_ip;
  boost::asio::ip::make_address(name, not_ip);
  // OpenSSL checks the name while it verifies the chain: the same X509_check_host /
  // X509_check_ip_asc as asio's host_name_verification, but that one runs in a verify callback
  // and a mismatch there leaves the verify result "ok", so the error would not say what failed.
  // Here it says "hostname mismatch" or "IP address mismatch".
  bool ok;
  if (!not_ip) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    ok = SSL_set1_host(ssl, name.c_str()) == 1 && SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
  }
  if (!ok) {
    *error = "TLS: cannot check the server's certificate against '" + name + "'";
    ERR_clear_error();
    return false;
  }
  return true;
}

std::string DescribeTlsError(const error_code& ec, const SSL* ssl) {
  if (ec == boost::beast::error::timeout) return "timed out";
  if (ec == boost::asio::error::eof || ec == ssl::error::stream_truncated)
    return "the server closed the connection during the handshake (does it speak TLS on this "
           "port?)";
  if (ec.category() != boost::asio::error::get_ssl_category()) return ec.message();
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  const char* text = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
  std::string out = text ? text : ec.message();
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl) {
    out += " (";
    out += X509_verify_cert_error_string(SSL_get_verify_result(ssl));
    out += ")";
  } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
             reason == SSL_R_UNKNOWN_PROTOCOL || reason == SSL_R_HTTP_REQUEST) {
    out += " (the server does not speak TLS here: is it plain http://?)";
  }
  return out;
}

}  // namespace tally::ctl
