// The client API over HTTPS, on a real tallyd (issue 12). Before, the API was plain HTTP and the
// tools could not speak https: bearer tokens crossed the network in the clear. Now the API is
// HTTPS unless http.insecure_loopback says otherwise (on a loopback address only), and each way a
// client can fail to speak TLS is a clear refusal, counted in tally_http_connections_refused_total.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include "harness.h"
#include "node_test_util.h"

using namespace tally::test;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

double Refused(Api& api, const std::string& reason) {
  return MetricSample(api.CallNoAuth("GET", "/metrics").raw,
                      "tally_http_connections_refused_total{reason=\"" + reason + "\"}");
}

}  // namespace

TEST_CASE("the client API is HTTPS: clients that do not speak it are told so and counted",
          "[node][tls]") {
  ClusterOptions options;
  options.regions = {"eu", "us"};
  options.extra_toml = "[http]\nidle_timeout_ms = 500\n";
  Cluster c("api-tls", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(20s));  // a region alone answers writes 503 until a peer answers it
  Api eu = c.api(0);
  REQUIRE(c.url(0).rfind("https://", 0) == 0);
  REQUIRE(eu.Open("tls-1").status == 201);

  // Plain HTTP on the HTTPS port: a 400 in plain text that says what to do.
  const std::string port = c.url(0).substr(std::string("https://127.0.0.1:").size());
  Api plain("http://127.0.0.1:" + port, kAdminToken, 5s);
  const Reply told = plain.Account("tls-1");
  INFO(told.raw << told.transport_error);
  CHECK(told.status == 400);
  CHECK(told.error_code() == "tls_required");
  CHECK(Refused(eu, "plain_http") == 1);

  // A server certificate checked against another CA: the client refuses it, the server counts the
  // handshake that failed.
  MakeCerts({(c.dir() / "other").string(), "test-cluster", "eu"}, c.dir() / "other.log");
  Api doubting(c.url(0), kAdminToken, 5s, (c.dir() / "other" / "ca.pem").string());
  const Reply refused = doubting.Account("tls-1");
  INFO(refused.transport_error);
  CHECK(refused.status == 0);
  CHECK_THAT(refused.transport_error, Catch::Contains("certificate verify failed"));
  CHECK(WaitUntil([&] { return Refused(eu, "tls_handshake") >= 1; }, 5s));

  // A connection that never starts its handshake is closed at http.idle_timeout_ms.
  asio::io_context io;
  tcp::socket silent(io);
  silent.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::stoi(port))));
  CHECK(WaitUntil([&] { return Refused(eu, "handshake_timeout") >= 1; }, 5s));
  char byte;
  boost::system::error_code ec;
  silent.read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);  // the server closed it

  // And the real client, with the cluster's CA, was never in the way.
  CHECK(eu.Credit("tls-1", 5, "after").status == 200);
  CHECK(c.ReadLog(0).find("client API on 127.0.0.1:" + port + " (HTTPS)") != std::string::npos);
}
