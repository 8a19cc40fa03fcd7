// SIGHUP on a real tallyd (issue 12). Before, SIGHUP killed tallyd: rotating a token meant
// restarting every region. Now SIGHUP re-reads the config and applies its tokens, roles and
// certificates — a revoked token is refused from its next request, even on a connection that
// already used it, and its streams are closed — or refuses the new config whole, keeping the
// running one.

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFreshToken = "test-fresh-token";

double Reloads(Api& api, const std::string& result) {
  return MetricSample(api.CallNoAuth("GET", "/metrics").raw,
                      "tally_config_reloads_total{result=\"" + result + "\"}");
}

// eu's config as the harness wrote it, with the shop token taken out and a "fresh" admin token in.
std::string RotatedConfig(const Cluster& c) {
  std::string text = c.ConfigText(0);
  const std::size_t shop = text.find("[[tokens]]\nname = \"shop\"");
  REQUIRE(shop != std::string::npos);
  const std::size_t end = text.find("\n\n", shop);
  text.erase(shop, end == std::string::npos ? std::string::npos : end - shop + 2);
  return text + "\n[[tokens]]\nname = \"fresh\"\nsha256 = \"" + Sha256Hex(kFreshToken) +
         "\"\nrole = \"admin\"\naccounts = [\"*\"]\n";
}

void Rewrite(const Cluster& c, const std::string& text) {
  std::ofstream(c.dir() / (c.region(0) + ".toml"), std::ios::trunc) << text;
}

// Sends SIGHUP to node 0 and waits until its reloads of `result` reach `count`.
bool Hup(Cluster& c, const std::string& result, double count) {
  Api eu = c.api(0, "");
  ::kill(c.pid(0), SIGHUP);
  return WaitUntil([&] { return Reloads(eu, result) >= count; }, 10s);
}

// The certificate node 0's client API presents to a new connection equals the one in `pem`.
bool ServesCertificate(Cluster& c, const fs::path& pem) {
  std::FILE* f = std::fopen(pem.c_str(), "r");
  if (!f) return false;
  X509* want = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_none);
  ssl::stream<tcp::socket> s(io, ctx);
  const std::string url = c.url(0);
  const auto port = static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
  boost::system::error_code ec;
  s.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (!ec) s.handshake(ssl::stream_base::client, ec);
  X509* got = ec ? nullptr : SSL_get1_peer_certificate(s.native_handle());
  const bool same = want && got && X509_cmp(want, got) == 0;
  X509_free(want);
  X509_free(got);
  return same;
}

}  // namespace

TEST_CASE("SIGHUP reloads tokens and certificates, and refuses a bad config whole",
          "[node][reload]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("reload", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));
  Api admin = c.api(0);
  REQUIRE(admin.Open("shop-1").status == 201);
  Api shop = c.api(0, kShopToken);  // one keep-alive connection, its token cached
  REQUIRE(shop.Credit("shop-1", 5, "before").status == 200);
  Api fresh = c.api(0, kFreshToken);
  REQUIRE(fresh.Account("shop-1").status == 401);
  // A standing read with the same token: a stream of shop-1.
  tally::ctl::Url url;
  std::string error;
  REQUIRE(tally::ctl::Url::Parse(c.url(0), &url, &error));
  tally::ctl::WsReader stream(url, 5s, tally::ctl::ClientTls{c.ca_file()});
  REQUIRE(stream.Open("/v1/stream?accounts=shop-1",
                      {{"Authorization", std::string("Bearer ") + kShopToken}}, &error));
  std::string message;
  REQUIRE(stream.Next(5s, &message, &error) == 1);  // the account's state
  // The same token as a browser sends it: in a subprotocol, and in a first message.
  tally::ctl::WsReader by_protocol(url, 5s, tally::ctl::ClientTls{c.ca_file()});
  REQUIRE(by_protocol.Open(
      "/v1/stream?accounts=shop-1",
      {{"Sec-WebSocket-Protocol", std::string("tally.v1, tally.bearer.") + kShopToken}}, &error));
  REQUIRE(by_protocol.Next(5s, &message, &error) == 1);
  tally::ctl::WsReader by_message(url, 5s, tally::ctl::ClientTls{c.ca_file()});
  REQUIRE(by_message.Open("/v1/stream?accounts=shop-1", {}, &error));
  REQUIRE(by_message.Send(json{{"type", "auth"}, {"token", kShopToken}}.dump(), &error));
  REQUIRE(by_message.Next(5s, &message, &error) == 1);  // authenticated
  REQUIRE(by_message.Next(5s, &message, &error) == 1);  // the account's state
  CHECK(json::parse(message)["type"] == "account");

  // Rotation: shop revoked, fresh added. The revoked token is refused on its own connection, and
  // its streams are closed, however they authenticated.
  Rewrite(c, RotatedConfig(c));
  REQUIRE(Hup(c, "ok", 1));
  CHECK(shop.Credit("shop-1", 5, "after").status == 401);
  for (tally::ctl::WsReader* s : {&stream, &by_protocol, &by_message}) {
    int next = 0;
    for (int i = 0; i < 10 && (next = s->Next(1s, &message, &error)) == 1;) ++i;
    INFO("the stream after the reload: " << error);
    CHECK(next == -1);
  }
  CHECK(c.ReadLog(0).find("SIGHUP: closed 3 streams whose token no longer allows them") !=
        std::string::npos);
  CHECK(fresh.Account("shop-1").status == 200);
  CHECK(c.ReadLog(0).find("SIGHUP: reloaded") != std::string::npos);

  // A file that does not parse: refused, the running tokens stay.
  Rewrite(c, "cluster_id = [unterminated\n");
  REQUIRE(Hup(c, "refused", 1));
  CHECK(fresh.Account("shop-1").status == 200);
  CHECK(shop.Account("shop-1").status == 401);
  CHECK(c.ReadLog(0).find("SIGHUP: reload refused, the running config stays") != std::string::npos);

  // A certificate that names another region: refused whole (the tokens in that file too).
  std::string wrong_cert = RotatedConfig(c);
  const std::string eu_pem = (c.pki_dir() / "eu.pem").string();
  const std::string eu_key = (c.pki_dir() / "eu.key").string();
  wrong_cert.replace(wrong_cert.find(eu_pem), eu_pem.size(), (c.pki_dir() / "us.pem").string());
  wrong_cert.replace(wrong_cert.find(eu_key), eu_key.size(), (c.pki_dir() / "us.key").string());
  Rewrite(c, wrong_cert + "\n");
  REQUIRE(Hup(c, "refused", 2));
  CHECK(c.ReadLog(0).find("names region us, but this is region eu") != std::string::npos);
  CHECK(ServesCertificate(c, c.pki_dir() / "eu.pem"));

  // A renewed certificate (same CA, same region): new connections get it, gossip goes on.
  MakeCerts({"--ca", c.pki_dir().string(), (c.dir() / "renewed").string(), "test-cluster", "eu"},
            c.dir() / "renewed.log");
  std::string renewed = RotatedConfig(c);
  const std::string renewed_pem = (c.dir() / "renewed" / "eu.pem").string();
  renewed.replace(renewed.find(eu_pem), eu_pem.size(), renewed_pem);
  renewed.replace(renewed.find(eu_key), eu_key.size(), (c.dir() / "renewed" / "eu.key").string());
  Rewrite(c, renewed);
  REQUIRE(Hup(c, "ok", 2));
  CHECK(ServesCertificate(c, renewed_pem));
  CHECK_FALSE(ServesCertificate(c, c.pki_dir() / "eu.pem"));
  Api after = c.api(0, kFreshToken);
  CHECK(after.Credit("shop-1", 7, "renewed").status == 200);
  c.Stop(1);  // us redials eu after its restart: eu's links see the renewed certificate
  REQUIRE_START(c, 1);
  CHECK(c.WaitConnected(20s));
  auto agreement = c.WaitAgree("shop-1", 20s);
  INFO(Differences(agreement));
  CHECK(agreement.agree);

  // A file that turns TLS off is applied for its tokens only: the insecure flags are read at
  // start, so the API stays HTTPS (before, the reload made its new connections plain HTTP).
  std::string plain = renewed;
  plain.replace(plain.find("[gossip]\n"), 9, "[gossip]\ninsecure_loopback = true\n");
  Rewrite(c, plain + "\n[http]\ninsecure_loopback = true\n");
  REQUIRE(Hup(c, "ok", 3));
  CHECK(c.ReadLog(0).find("gossip.insecure_loopback, http.insecure_loopback changed in the "
                          "config; they take effect at the next restart") != std::string::npos);
  CHECK(ServesCertificate(c, renewed_pem));
}
