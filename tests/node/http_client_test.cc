// The tools' HTTP client alone (no tallyd): URL parsing, and https against a small in-test server
// on 127.0.0.1 with certificates from scripts/make-certs: the right CA passes, another CA, a
// certificate for another name, an unloadable CA file, and a server that speaks the other protocol
// all fail, each with a message that says why, within the client's deadline.

// clang-format off
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it
// clang-format on
#include "ctl/http_client.h"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "harness.h"
#include "temp_dir.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Catch::Matchers::Contains;
using tally::ctl::ClientTls;
using tally::ctl::HttpClient;
using tally::ctl::HttpResponse;
using tally::ctl::Url;
using namespace std::chrono_literals;

namespace {

// A CA and a certificate for region "eu" (SANs localhost, 127.0.0.1, ::1) in a fresh directory.
struct Certs {
  tally::test::TempDir dir{"http-client-certs"};
  std::string ca() const { return (dir.path() / "ca.pem").string(); }
  std::string cert() const { return (dir.path() / "eu.pem").string(); }
  std::string key() const { return (dir.path() / "eu.key").string(); }
};

// scripts/make-certs through the harness (no shell: the folder's name is one argument, whatever it
// holds).
void MakeCerts(const Certs& c) {
  REQUIRE_NOTHROW(
      tally::test::MakeCerts({c.dir.path().string(), "test", "eu"}, c.dir.path() / "certs.log"));
}

// What the in-test server does with each connection.
enum class Mode {
  kHttps,           // TLS, then answers every request with 200 "ok", keeping the connection open
  kHttpsOneAnswer,  // the same, but closes after each answer without saying so in a header
  kWss,             // TLS, WebSocket upgrade, then one text message
  kRaw,             // plain TCP: sends `raw` at once (nothing if empty), then waits for the close
};

// A server on 127.0.0.1 with one io_context on its own thread. Stops and joins on destruction.
class TestServer {
 public:
  TestServer(Mode mode, const std::string& cert, const std::string& key, std::string raw = "")
      : mode_(mode),
        raw_(std::move(raw)),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        port_(std::to_string(acceptor_.local_endpoint().port())) {
    if (mode_ != Mode::kRaw) {
      error_code ec;
      ctx_.use_certificate_chain_file(cert, ec);
      REQUIRE_FALSE(ec);
      ctx_.use_private_key_file(key, ssl::context::pem, ec);
      REQUIRE_FALSE(ec);
    }
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TestServer() {
    asio::post(ioc_, [this] {
      error_code ec;
      acceptor_.close(ec);
    });
    ioc_.stop();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  const std::string& port() const { return port_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  // The server name (SNI) the last client to complete a handshake sent, "" if none.
  std::string last_sni() const {
    std::lock_guard lock(mu_);
    return last_sni_;
  }

 private:
  using Tls = beast::ssl_stream<beast::tcp_stream>;

  void Accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket s) {
      if (ec) return;
      ++connections_;
      if (mode_ == Mode::kRaw) {
        Raw(std::make_shared<tcp::socket>(std::move(s)));
      } else {
        auto tls = std::make_shared<Tls>(std::move(s), ctx_);
        beast::get_lowest_layer(*tls).expires_after(10s);
        tls->async_handshake(ssl::stream_base::server, [this, tls](error_code ec) {
          if (ec) return;  // the client refused us, or spoke plain http: drop the connection
          const char* sni = SSL_get_servername(tls->native_handle(), TLSEXT_NAMETYPE_host_name);
          {
            std::lock_guard lock(mu_);
            last_sni_ = sni ? sni : "";
          }
          if (mode_ == Mode::kWss) return Ws(tls);
          Serve(tls, std::make_shared<beast::flat_buffer>());
        });
      }
      Accept();
    });
  }

  void Raw(std::shared_ptr<tcp::socket> s) {
    asio::async_write(*s, asio::buffer(raw_), [this, s](error_code ec, std::size_t) {
      if (!ec) Drain(s, std::make_shared<std::array<char, 4096>>());
    });
  }

  // Reads (and ignores) until the client closes, so the client sees our bytes, not a reset.
  void Drain(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::array<char, 4096>> buf) {
    s->async_read_some(asio::buffer(*buf), [this, s, buf](error_code ec, std::size_t) {
      if (!ec) Drain(s, buf);
    });
  }

  void Serve(std::shared_ptr<Tls> tls, std::shared_ptr<beast::flat_buffer> buffer) {
    auto req = std::make_shared<http::request<http::string_body>>();
    beast::get_lowest_layer(*tls).expires_after(10s);
    http::async_read(*tls, *buffer, *req, [this, tls, buffer, req](error_code ec, std::size_t) {
      if (ec) return;
      ++requests_;  // counted before answering, so a client holding the answer sees the count
      auto res = std::make_shared<http::response<http::string_body>>(http::status::ok, 11);
      res->set(http::field::content_type, "text/plain");
      res->body() = "ok " + std::string(req->target());
      res->prepare_payload();
      http::async_write(*tls, *res, [this, tls, buffer, res](error_code ec, std::size_t) {
        if (ec) return;
        if (mode_ == Mode::kHttpsOneAnswer) {
          error_code ignored;
          beast::get_lowest_layer(*tls).socket().close(ignored);
          return;
        }
        Serve(tls, buffer);
      });
    });
  }

  void Ws(std::shared_ptr<Tls> tls) {
    auto ws = std::make_shared<websocket::stream<Tls>>(std::move(*tls));
    beast::get_lowest_layer(*ws).expires_never();
    ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws->async_accept([this, ws](error_code ec) {
      if (ec) return;
      ws->text(true);
      ++requests_;
      auto msg = std::make_shared<std::string>(R"({"type":"hello"})");
      ws->async_write(asio::buffer(*msg), [this, ws, msg](error_code ec, std::size_t) {
        if (ec) return;
        auto buf = std::make_shared<beast::flat_buffer>();
        ws->async_read(*buf, [ws, buf](error_code, std::size_t) {});  // until the client closes
      });
    });
  }

  Mode mode_;
  std::string raw_;
  asio::io_context ioc_;
  ssl::context ctx_{ssl::context::tls_server};
  tcp::acceptor acceptor_;
  std::string port_;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::string last_sni_;  // guarded by mu_
  std::thread thread_;
};

Url MustParse(const std::string& text) {
  Url url;
  std::string error;
  INFO(text);
  REQUIRE(Url::Parse(text, &url, &error));
  return url;
}

// One GET; true with the body, or false with the client's error.
bool Get(HttpClient& client, const std::string& target, std::string* body_or_error) {
  HttpResponse res;
  std::string error;
  if (!client.Request("GET", target, "", {}, &res, &error)) {
    *body_or_error = error;
    return false;
  }
  *body_or_error = std::to_string(res.status) + " " + res.body;
  return true;
}

}  // namespace

TEST_CASE("URLs: http, https, bare HOST:PORT, and schemes the tools cannot speak", "[node]") {
  Url u;
  std::string error;
  REQUIRE(Url::Parse("https://127.0.0.1:8443/api/", &u, &error));
  CHECK(u.tls);
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == "8443");
  CHECK(u.prefix == "/api");
  CHECK(u.ToString() == "https://127.0.0.1:8443/api");

  REQUIRE(Url::Parse("http://localhost:8081", &u, &error));
  CHECK_FALSE(u.tls);
  CHECK(u.ToString() == "http://localhost:8081");

  // A Url parsed again replaces the scheme too.
  REQUIRE(Url::Parse("https://a:1", &u, &error));
  REQUIRE(Url::Parse("a:1", &u, &error));
  CHECK_FALSE(u.tls);
  CHECK(u.ToString() == "http://a:1");

  for (const char* bad : {"ftp://x:1", "wss://x:1", "HTTPS2://x:1"}) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(Url::Parse(bad, &u, &error));
    CHECK_THAT(error, Contains("unsupported URL scheme"));
    CHECK_THAT(error, Contains("http:// and https://"));
  }
  CHECK_FALSE(Url::Parse("https://x", &u, &error));
  CHECK_THAT(error, Contains("https://HOST:PORT"));
  CHECK_FALSE(Url::Parse("https://x:0", &u, &error));
}

TEST_CASE("https with the cluster's CA: requests, keep-alive, and a dropped idle connection",
          "[node]") {
  Certs certs;
  MakeCerts(certs);
  const ClientTls tls{certs.ca()};

  SECTION("127.0.0.1 and localhost both match the certificate; one connection serves both GETs") {
    TestServer server(Mode::kHttps, certs.cert(), certs.key());
    for (const std::string host : {"127.0.0.1", "localhost"}) {
      INFO(host);
      HttpClient client(MustParse("https://" + host + ":" + server.port()), 5s, tls);
      std::string out;
      CHECK(Get(client, "/v1/one", &out));
      CHECK(out == "200 ok /v1/one");
      CHECK(Get(client, "/v1/two", &out));
      CHECK(out == "200 ok /v1/two");
      // SNI names a DNS host, never an IP address (RFC 6066).
      CHECK(server.last_sni() == (host == "localhost" ? "localhost" : ""));
    }
    CHECK(server.connections() == 2);
    CHECK(server.requests() == 4);
  }

  SECTION("a URL prefix is sent inside TLS like over plain http") {
    TestServer server(Mode::kHttps, certs.cert(), certs.key());
    HttpClient client(MustParse("https://127.0.0.1:" + server.port() + "/base"), 5s, tls);
    std::string out;
    CHECK(Get(client, "/x", &out));
    CHECK(out == "200 ok /base/x");
  }

  SECTION("the server closed the kept-alive connection: the next request reconnects once") {
    TestServer server(Mode::kHttpsOneAnswer, certs.cert(), certs.key());
    HttpClient client(MustParse("https://127.0.0.1:" + server.port()), 5s, tls);
    std::string out;
    REQUIRE(Get(client, "/first", &out));
    std::this_thread::sleep_for(100ms);  // let the close arrive before the next request
    CHECK(Get(client, "/second", &out));
    CHECK(out == "200 ok /second");
    CHECK(server.connections() == 2);
  }

  SECTION("RawRequest sends its bytes inside TLS") {
    TestServer server(Mode::kHttps, certs.cert(), certs.key());
    HttpClient client(MustParse("https://127.0.0.1:" + server.port()), 5s, tls);
    HttpResponse res;
    std::string error;
    REQUIRE(client.RawRequest("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n", &res, &error));
    CHECK(res.status == 200);
    CHECK(res.body == "ok /raw");
  }

  SECTION("WsReader speaks wss for an https URL") {
    TestServer server(Mode::kWss, certs.cert(), certs.key());
    tally::ctl::WsReader ws(MustParse("https://localhost:" + server.port()), 5s, tls);
    std::string error, message;
    REQUIRE(ws.Open("/v1/stream", {}, &error));
    CHECK(ws.Next(5s, &message, &error) == 1);
    CHECK(message == R"({"type":"hello"})");
  }
}

TEST_CASE("https refuses a server it cannot verify, saying why", "[node]") {
  Certs certs, other;
  MakeCerts(certs);
  MakeCerts(other);
  TestServer server(Mode::kHttps, certs.cert(), certs.key());
  const std::string url = "https://127.0.0.1:" + server.port();
  std::string out;

  SECTION("a certificate from another CA") {
    HttpClient client(MustParse(url), 5s, ClientTls{other.ca()});
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK_THAT(out, Contains("TLS handshake with " + url + ": certificate verify failed ("));
    CHECK(server.requests() == 0);
  }

  SECTION("no --cacert: the system's trust store does not know the cluster's CA") {
    HttpClient client(MustParse(url), 5s);
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK_THAT(out, Contains("certificate verify failed"));
  }

  SECTION("the same for a wss stream") {
    tally::ctl::WsReader ws(MustParse(url), 5s, ClientTls{other.ca()});
    CHECK_FALSE(ws.Open("/v1/stream", {}, &out));
    CHECK_THAT(out, Contains("certificate verify failed"));
  }

  SECTION("a CA file that cannot be loaded") {
    const std::string missing = (certs.dir.path() / "no-such-ca.pem").string();
    HttpClient client(MustParse(url), 5s, ClientTls{missing});
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK_THAT(out, Contains("cannot load CA file " + missing));
    CHECK(server.connections() == 0);

    CHECK_THAT(out, Contains("No such file or directory"));

    tally::ctl::WsReader ws(MustParse(url), 5s, ClientTls{missing});
    CHECK_FALSE(ws.Open("/v1/stream", {}, &out));
    CHECK_THAT(out, Contains("cannot load CA file " + missing));

    // A file that holds no certificate: the private key given by mistake.
    HttpClient with_key(MustParse(url), 5s, ClientTls{certs.key()});
    CHECK_FALSE(Get(with_key, "/x", &out));
    CHECK_THAT(out, Contains("cannot load CA file " + certs.key() + ": "));
    CHECK_THAT(out, Contains("PEM file of CA certificates"));
    CHECK(server.connections() == 0);
  }
}

TEST_CASE("https refuses a certificate that does not name the host dialled", "[node]") {
  // Self-signed, for example.invalid only: trusted as its own CA, so only the name can fail.
  tally::test::TempDir dir("http-client-name");
  const std::string cert = (dir.path() / "c.pem").string(), key = (dir.path() / "c.key").string();
  tally::test::Process openssl;
  std::string error;
  REQUIRE(openssl.Start("/usr/bin/openssl",
                        {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-nodes", "-days", "2", "-subj", "/CN=example.invalid", "-addext",
                         "subjectAltName=DNS:example.invalid", "-keyout", key, "-out", cert},
                        dir.path() / "openssl.log", &error));
  REQUIRE(tally::test::WaitUntil([&] { return !openssl.running(); }, 60s, 20ms));
  REQUIRE(openssl.ExitCode() == 0);
  TestServer server(Mode::kHttps, cert, key);
  std::string out;

  HttpClient by_ip(MustParse("https://127.0.0.1:" + server.port()), 5s, ClientTls{cert});
  CHECK_FALSE(Get(by_ip, "/x", &out));
  CHECK_THAT(out, Contains("certificate verify failed (IP address mismatch)"));

  HttpClient by_name(MustParse("https://localhost:" + server.port()), 5s, ClientTls{cert});
  CHECK_FALSE(Get(by_name, "/x", &out));
  CHECK_THAT(out, Contains("certificate verify failed (hostname mismatch)"));
  CHECK(server.requests() == 0);
}

TEST_CASE("http and https aimed at the other kind of server fail fast and say so", "[node]") {
  Certs certs;
  MakeCerts(certs);
  const auto timeout = 3s;
  std::string out;
  auto elapsed_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::steady_clock::now() - t0;
  };

  SECTION("http:// at a TLS server") {
    TestServer server(Mode::kHttps, certs.cert(), certs.key());
    HttpClient client(MustParse("http://127.0.0.1:" + server.port()), timeout);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK(elapsed_since(t0) < timeout);
    CHECK_THAT(out, Contains("use https://"));
  }

  SECTION("https:// at a plain server that answers in plain HTTP") {
    TestServer server(Mode::kRaw, "", "", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    HttpClient client(MustParse("https://127.0.0.1:" + server.port()), timeout,
                      ClientTls{certs.ca()});
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK(elapsed_since(t0) < timeout);
    CHECK_THAT(out, Contains("TLS handshake with https://127.0.0.1:" + server.port()));
    CHECK_THAT(out, Contains("is it plain http://?"));
  }

  SECTION("https:// at a server that accepts and says nothing: the deadline ends the handshake") {
    TestServer server(Mode::kRaw, "", "");
    HttpClient client(MustParse("https://127.0.0.1:" + server.port()), 500ms,
                      ClientTls{certs.ca()});
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(Get(client, "/x", &out));
    CHECK(elapsed_since(t0) >= 400ms);
    CHECK(elapsed_since(t0) < 2s);
    CHECK_THAT(out, Contains("TLS handshake with"));
    CHECK_THAT(out, Contains("timed out"));
  }
}
