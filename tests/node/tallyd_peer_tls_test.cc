// The TLS contexts a region builds at start (node/peer_tls.h for gossip, node/api_stream.h for the
// client API): every certificate a region could be started with by mistake is refused with a
// message naming the setting and the file, before anything is served — a region whose certificate
// does not name it would be refused by every peer.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "harness.h"
#include "node/api_stream.h"
#include "node/peer_tls.h"

using namespace tally;
using namespace tally::node;
namespace fs = std::filesystem;

namespace {

TlsFiles FilesOf(const fs::path& pki, const std::string& cert, const std::string& key) {
  return TlsFiles{(pki / "ca.pem").string(), (pki / (cert + ".pem")).string(),
                  (pki / (key + ".key")).string()};
}

std::string ErrorOf(const TlsFiles& files, const std::string& cluster, const std::string& region) {
  std::shared_ptr<ssl::context> ctx;
  Status s = MakePeerTlsContext(files, cluster, region, &ctx);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(ctx == nullptr);
  return s.message();
}

}  // namespace

TEST_CASE("a region starts only with a certificate of the cluster CA that names it", "[tls]") {
  tally::test::TempDir dir("peer-tls");
  const fs::path pki = dir.path() / "pki";
  tally::test::MakeCerts({pki.string(), "test", "eu", "us"}, dir.path() / "certs.log");
  tally::test::MakeCerts(
      {"--ca", pki.string(), "--days", "-1", (dir.path() / "old").string(), "test", "eu"},
      dir.path() / "old.log");

  std::shared_ptr<ssl::context> ctx;
  Status s = MakePeerTlsContext(FilesOf(pki, "eu", "eu"), "test", "eu", &ctx);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(ctx != nullptr);

  CHECK_THAT(ErrorOf(FilesOf(pki, "us", "us"), "test", "eu"),
             Catch::Contains("tls.cert_file " + (pki / "us.pem").string() +
                             ": names region us, but this is region eu"));
  CHECK_THAT(ErrorOf(FilesOf(pki, "eu", "eu"), "prod", "eu"),
             Catch::Contains("names no region of cluster prod (wanted a subjectAltName URI "
                             "tally://prod/<region>; it has tally://test/eu)"));
  CHECK_THAT(
      ErrorOf(FilesOf(pki, "eu", "us"), "test", "eu"),
      Catch::Contains("tls.key_file " + (pki / "us.key").string() + ": key values mismatch"));
  TlsFiles expired = FilesOf(pki, "eu", "eu");
  expired.cert_file = (dir.path() / "old" / "eu.pem").string();
  expired.key_file = (dir.path() / "old" / "eu.key").string();
  CHECK_THAT(ErrorOf(expired, "test", "eu"), Catch::Contains("has expired"));

  TlsFiles missing = FilesOf(pki, "eu", "eu");
  missing.ca_file = (dir.path() / "nope.pem").string();
  CHECK_THAT(ErrorOf(missing, "test", "eu"), Catch::StartsWith("tls.ca_file " + missing.ca_file));
  missing = FilesOf(pki, "eu", "eu");
  missing.cert_file = (dir.path() / "nope.pem").string();
  CHECK_THAT(ErrorOf(missing, "test", "eu"),
             Catch::StartsWith("tls.cert_file " + missing.cert_file));
  TlsFiles not_pem = FilesOf(pki, "eu", "eu");
  not_pem.key_file = (dir.path() / "certs.log").string();
  CHECK_THAT(ErrorOf(not_pem, "test", "eu"), Catch::StartsWith("tls.key_file "));
}

TEST_CASE("the client API's context loads the region's or its own certificate, checked alike",
          "[tls]") {
  tally::test::TempDir dir("api-tls");
  const fs::path pki = dir.path() / "pki";
  tally::test::MakeCerts({pki.string(), "test", "eu", "us"}, dir.path() / "certs.log");
  auto error = [](const TlsFiles& files) {
    std::shared_ptr<ssl::context> ctx;
    const Status s = MakeApiTlsContext(files, &ctx);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(ctx == nullptr);
    return s.message();
  };
  std::shared_ptr<ssl::context> ctx;
  REQUIRE(MakeApiTlsContext(FilesOf(pki, "eu", "eu"), &ctx).ok());
  CHECK(ctx != nullptr);
  TlsFiles own = FilesOf(pki, "eu", "eu");
  own.api_cert_file = (pki / "us.pem").string();
  own.api_key_file = (pki / "us.key").string();
  REQUIRE(MakeApiTlsContext(own, &ctx).ok());
  // The settings named are the ones in use: the region's, or api_cert_file / api_key_file.
  CHECK_THAT(error(FilesOf(pki, "eu", "us")),
             Catch::StartsWith("tls.key_file " + (pki / "us.key").string()));
  own.api_key_file = (pki / "eu.key").string();
  CHECK_THAT(error(own), Catch::StartsWith("tls.api_key_file " + (pki / "eu.key").string()));
  own.api_cert_file = (dir.path() / "nope.pem").string();
  CHECK_THAT(error(own),
             Catch::StartsWith("tls.api_cert_file " + own.api_cert_file + ": cannot be read"));
}
