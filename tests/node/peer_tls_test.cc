// Mutual TLS between regions, attacked on real tallyd processes (issue 12). Before: anyone who
// could reach a peer port could send a Hello claiming to be region ap, with the cluster's id (not
// a secret), then an op batch crediting 1,000,000 at origin ap, seq 1. eu applied and relayed it,
// and ap's real op under that seq was dropped as a duplicate: money minted and a permanent split.
// Now a peer must present a certificate from the cluster CA, within its validity, naming the
// region its Hello claims (and, dialled, the region we dialled); anything else is refused,
// counted by reason in tally_peer_connections_refused_total, and never delivered to the replica.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on

#include "codec/codec.h"
#include "core/validate.h"
#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kEu = 0, kUs = 1, kAp = 2;
constexpr tally::Amount kMinted = 1'000'000;

// Who the forger says it is on the wire.
struct Disguise {
  bool tls = true;        // false: plain TCP, as before this issue
  std::string cert, key;  // empty: a TLS client without a certificate
};

struct ForgeOutcome {
  bool handshake_done = false;  // our side of the TLS handshake completed (or no TLS)
  bool answered = false;        // the node answered with its Hello: it took us for ap
  bool closed = false;          // the node hung up on us
  std::string detail;
};

// The attack of the issue: a Hello claiming region ap with the cluster's id, then an op batch
// crediting kMinted to `account` as ap's next op.
std::string AttackBytes(const std::string& account) {
  tally::Hello hello;
  hello.cluster_id = "test-cluster";
  hello.protocol_version = tally::kProtocolVersion;
  hello.region = static_cast<tally::RegionId>(kAp);
  tally::Op op;
  op.dot = {static_cast<tally::RegionId>(kAp), 1};
  const auto now_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  op.hlc = tally::Hlc::Make(now_ms, 0);
  op.kind = tally::OpKind::kCredit;
  op.account = account;
  op.amount = kMinted;
  op.key = "minted";
  tally::OpBatch batch;
  batch.ops.push_back(op);
  std::string bytes;
  REQUIRE(tally::codec::AppendFrame(hello, &bytes).ok());
  REQUIRE(tally::codec::AppendFrame(batch, &bytes).ok());
  return bytes;
}

// Dials 127.0.0.1:port in `disguise`, sends `bytes`, and waits up to `patience` for the node to
// answer with a Hello or hang up.
ForgeOutcome Forge(std::uint16_t port, const Disguise& disguise, const std::string& bytes,
                   std::chrono::milliseconds patience = 5s) {
  ForgeOutcome out;
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  boost::system::error_code ec;
  if (!disguise.cert.empty()) {
    ctx.use_certificate_chain_file(disguise.cert, ec);
    if (!ec) ctx.use_private_key_file(disguise.key, ssl::context::pem, ec);
    if (ec) {
      out.detail = "cannot load the forger's certificate: " + ec.message();
      return out;
    }
  }
  ctx.set_verify_mode(ssl::verify_none);  // the forger does not care who answers
  ssl::stream<tcp::socket> tls(io, ctx);
  tcp::socket& socket = tls.next_layer();
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    out.detail = "cannot connect: " + ec.message();
    return out;
  }
  std::array<char, 4096> buf;
  tally::codec::FrameReader reader;
  std::function<void()> read;
  auto on_read = [&](const boost::system::error_code& rec, std::size_t n) {
    if (rec) {
      out.closed = true;
      out.detail = "the node hung up: " + rec.message();
      return;
    }
    reader.Append(std::string_view(buf.data(), n));
    std::string frame;
    bool ready = false;
    if (!reader.Next(&frame, &ready).ok()) {
      out.detail = "a bad frame from the node";
      return;
    }
    if (!ready) return read();
    tally::Message msg;
    out.answered =
        tally::codec::DecodeMessage(frame, &msg).ok() && std::holds_alternative<tally::Hello>(msg);
    out.detail = out.answered ? "the node answered with its Hello" : "the node sent a non-Hello";
  };
  auto on_write = [&](const boost::system::error_code& wec, std::size_t) {
    if (wec) {
      out.closed = true;
      out.detail = "the node hung up while we wrote: " + wec.message();
      return;
    }
    read();
  };
  if (disguise.tls) {
    read = [&] { tls.async_read_some(asio::buffer(buf), on_read); };
    tls.async_handshake(ssl::stream_base::client, [&](const boost::system::error_code& hec) {
      if (hec) {
        out.closed = true;
        out.detail = "TLS handshake failed: " + hec.message();
        return;
      }
      out.handshake_done = true;
      asio::async_write(tls, asio::buffer(bytes), on_write);
    });
  } else {
    read = [&] { socket.async_read_some(asio::buffer(buf), on_read); };
    out.handshake_done = true;
    asio::async_write(socket, asio::buffer(bytes), on_write);
  }
  io.run_for(patience);
  if (!out.answered && !out.closed && out.detail.empty())
    out.detail = "no answer within " + std::to_string(patience.count()) + " ms";
  return out;
}

double Metric(Api& api, const std::string& sample) {
  return MetricSample(api.CallNoAuth("GET", "/metrics").raw, sample);
}

double Refused(Api& api, const std::string& reason) {
  return Metric(api, "tally_peer_connections_refused_total{reason=\"" + reason + "\"}");
}

std::int64_t BalanceAt(Cluster& c, std::size_t i, const std::string& account) {
  Reply r = c.api(i).Account(account);
  INFO(r.raw << r.transport_error);
  REQUIRE(r.status == 200);
  return Int(r.body, "balance");
}

}  // namespace

TEST_CASE("a forged peer cannot mint money: no certificate of the cluster, no gossip",
          "[node][tls]") {
  ClusterOptions options;
  Cluster c("forged-peer", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));
  Api eu = c.api(kEu);
  const std::string acct = "victim";
  REQUIRE(eu.Open(acct).status == 201);
  REQUIRE(eu.Credit(acct, 1000, "real-credit").status == 200);
  WaitVisible(c, acct);

  // The forger's wardrobe: certificates of another CA, an expired one and one of another region
  // from the cluster's own CA (a region that was broken into), and one for another cluster.
  const fs::path pki = c.pki_dir(), forged = c.dir() / "forged";
  MakeCerts({(forged / "other-ca").string(), "test-cluster", "ap"}, c.dir() / "forged-1.log");
  MakeCerts(
      {"--ca", pki.string(), "--days", "-1", (forged / "expired").string(), "test-cluster", "ap"},
      c.dir() / "forged-2.log");
  MakeCerts({"--ca", pki.string(), (forged / "other-cluster").string(), "intruder-cluster", "ap"},
            c.dir() / "forged-3.log");
  auto wearing = [](const fs::path& dir, const std::string& region) {
    return Disguise{true, (dir / (region + ".pem")).string(), (dir / (region + ".key")).string()};
  };
  struct Attempt {
    std::string name;
    Disguise disguise;
    std::string reason;  // tally_peer_connections_refused_total{reason}
  };
  const Attempt attempts[] = {
      {"plain TCP, as before", Disguise{false, "", ""}, "tls_handshake"},
      {"TLS without a certificate", Disguise{}, "no_certificate"},
      {"a certificate of another CA", wearing(forged / "other-ca", "ap"), "untrusted_certificate"},
      {"an expired certificate of the cluster CA", wearing(forged / "expired", "ap"),
       "expired_certificate"},
      {"us's own certificate, claiming to be ap", wearing(pki, "us"), "certificate_region"},
      {"a certificate naming ap of another cluster", wearing(forged / "other-cluster", "ap"),
       "certificate_region"},
  };
  const std::string attack = AttackBytes(acct);
  for (const Attempt& a : attempts) {
    INFO("the forger: " << a.name);
    const double before = Refused(eu, a.reason);
    const ForgeOutcome out = Forge(c.peer_port(kEu), a.disguise, attack);
    INFO("what it saw: " << out.detail << "\neu log:\n" << c.ReadLog(kEu));
    CHECK_FALSE(out.answered);
    CHECK(WaitUntil([&] { return Refused(eu, a.reason) == before + 1; }, 5s));
  }
  CHECK(c.ReadLog(kEu).find("its Hello claims region ap but its certificate names region us") !=
        std::string::npos);

  // Nothing was minted, and ap's real next credit is applied everywhere, not taken for a duplicate.
  REQUIRE(c.api(kAp).Credit(acct, 4, "ap-credit").status == 200);
  auto agreement = c.WaitAgree(acct, 20s);
  INFO(Differences(agreement));
  REQUIRE(agreement.agree);
  for (std::size_t i = 0; i < c.size(); ++i) CHECK(BalanceAt(c, i, acct) == 1004);
  CHECK(c.WaitConnected(10s));  // and the real regions never lost each other
}

TEST_CASE("a region that dials an impostor refuses it: the certificate must name who was dialled",
          "[node][tls]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  Cluster c("impostor", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));
  Api eu = c.api(kEu);
  REQUIRE(c.Stop(kUs) == 0);

  // An impostor takes us's peer port with a certificate the cluster CA gave to another region.
  MakeCerts({"--ca", c.pki_dir().string(), (c.dir() / "impostor").string(), "test-cluster", "ap"},
            c.dir() / "impostor.log");
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_server);
  ctx.use_certificate_chain_file((c.dir() / "impostor" / "ap.pem").string());
  ctx.use_private_key_file((c.dir() / "impostor" / "ap.key").string(), ssl::context::pem);
  tcp::acceptor acceptor(io);
  const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), c.peer_port(kUs));
  acceptor.open(at.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(at);
  acceptor.listen();
  int handshakes = 0;
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket s) {
      if (ec) return;
      auto tls = std::make_shared<ssl::stream<tcp::socket>>(std::move(s), ctx);
      tls->async_handshake(ssl::stream_base::server,
                           [tls, &handshakes](const boost::system::error_code&) { ++handshakes; });
      accept();
    });
  };
  accept();
  const std::string refused_us = "tally_gossip_refused_total";
  const double before = Metric(eu, refused_us);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  // eu may count its refusal before this side's handshake handler has run: wait for both.
  while (std::chrono::steady_clock::now() < deadline &&
         (Metric(eu, refused_us) < before + 1 || handshakes < 1))
    io.run_for(100ms);
  INFO("eu log:\n" << c.ReadLog(kEu));
  CHECK(handshakes >= 1);
  CHECK(Metric(eu, refused_us) >= before + 1);
  CHECK(c.ReadLog(kEu).find("we dialled region us but its certificate names region ap") !=
        std::string::npos);
  json us_at_eu;
  for (const json& p : Field(eu.Cluster().body, "peers"))
    if (Field(p, "region") == "us") us_at_eu = p;
  CHECK(Field(us_at_eu, "connected") == false);
}

TEST_CASE("a TLS handshake that never finishes is closed at the handshake deadline",
          "[node][tls]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.gossip_toml = "handshake_timeout_ms = 500\n";
  Cluster c("tls-deadline", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));
  Api eu = c.api(kEu);
  const double before = Refused(eu, "handshake_timeout");

  // A client that opens TCP and never says anything, and one that starts a TLS handshake but
  // never answers the server: both hold a stranger's slot until the deadline.
  asio::io_context io;
  tcp::socket silent(io);
  silent.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), c.peer_port(kEu)));
  tcp::socket stalled(io);
  stalled.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), c.peer_port(kEu)));
  // The first bytes of a TLS record header (a handshake record, TLS 1.0 version field), no more.
  const unsigned char partial[] = {0x16, 0x03, 0x01};
  asio::write(stalled, asio::buffer(partial));

  const bool closed = WaitUntil([&] { return Refused(eu, "handshake_timeout") >= before + 2; }, 5s);
  INFO("eu log:\n" << c.ReadLog(kEu));
  CHECK(closed);
  CHECK(c.WaitConnected(5s));
}
