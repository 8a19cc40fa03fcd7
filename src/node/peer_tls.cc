#include "node/peer_tls.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace tally::node {

namespace {

constexpr std::string_view kScheme = "tally://";

Status FileError(std::string_view setting, const std::string& file, const beast::error_code& ec) {
  return Status::InvalidArgument(fmt::format("tls.{} {}: {}", setting, file, ec.message()));
}

}  // namespace

Status CheckTlsFileReadable(std::string_view setting, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::InvalidArgument(
        fmt::format("tls.{} {}: cannot be read: {}", setting, path, std::strerror(errno)));
  std::fclose(f);
  return Status::OK();
}

Status CertificateRegion(X509* cert, std::string_view cluster_id, std::string* region) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::vector<std::string> uris;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<std::size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  const std::string prefix = fmt::format("{}{}/", kScheme, cluster_id);
  std::vector<std::string> ours;
  for (const std::string& uri : uris) {
    if (uri.size() > prefix.size() && uri.compare(0, prefix.size(), prefix) == 0 &&
        uri.find('/', prefix.size()) == std::string::npos)
      ours.push_back(uri.substr(prefix.size()));
  }
  if (ours.size() == 1) {
    *region = ours.front();
    return Status::OK();
  }
  if (ours.size() > 1)
    return Status::InvalidArgument(
        fmt::format("the certificate names {} regions of cluster {} ({})", ours.size(), cluster_id,
                    fmt::join(uris, ", ")));
  return Status::InvalidArgument(fmt::format(
      "the certificate names no region of cluster {} (wanted a subjectAltName URI "
      "{}<region>; it has {})",
      cluster_id, prefix, uris.empty() ? "none" : fmt::format("{}", fmt::join(uris, ", "))));
}

Status LoadCertificateAndKey(ssl::context* ctx, std::string_view cert_setting,
                             const std::string& cert, std::string_view key_setting,
                             const std::string& key) {
  if (Status s = CheckTlsFileReadable(cert_setting, cert); !s.ok()) return s;
  if (Status s = CheckTlsFileReadable(key_setting, key); !s.ok()) return s;
  beast::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) return FileError(cert_setting, cert, ec);
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec) return FileError(key_setting, key, ec);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Status::InvalidArgument(
        fmt::format("tls.{} {}: is not the key of {}", key_setting, key, cert));
  return Status::OK();
}

Status MakePeerTlsContext(const TlsFiles& files, std::string_view cluster_id,
                          std::string_view region, std::shared_ptr<ssl::context>* out) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1)
    return Status::InvalidArgument("tls: this OpenSSL cannot require TLS 1.3");
  if (Status s = CheckTlsFileReadable("ca_file", files.ca_file); !s.ok()) return s;
  beast::error_code ec;
  ctx->load_verify_file(files.ca_file, ec);
  if (ec) return FileError("ca_file", files.ca_file, ec);
  if (Status s = LoadCertificateAndKey(ctx.get(), "cert_file", files.cert_file, "key_file",
                                       files.key_file);
      !s.ok())
    return s;
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return Status::InvalidArgument("tls: " + ec.message());

  X509* ours = SSL_CTX_get0_certificate(native);
  std::string named;
  if (Status s = CertificateRegion(ours, cluster_id, &named); !s.ok())
    return Status::InvalidArgument(
        fmt::format("tls.cert_file {}: {}", files.cert_file, s.message()));
  if (named != region)
    return Status::InvalidArgument(
        fmt::format("tls.cert_file {}: names region {}, but this is region {}", files.cert_file,
                    named, region));
  if (X509_cmp_current_time(X509_get0_notAfter(ours)) <= 0)
    return Status::InvalidArgument(
        fmt::format("tls.cert_file {}: has expired; every peer would refuse it", files.cert_file));
  *out = std::move(ctx);
  return Status::OK();
}

}  // namespace tally::node
