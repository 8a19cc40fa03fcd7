// The test proxy alone (no tallyd): forwards both ways, cut closes open connections and refuses
// new ones, heal lets them through again, delay holds data for the configured time.

// clang-format off
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it
// clang-format on
#include "ctl/netproxy.h"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Echoes every byte back, one connection at a time per thread of its own.
class EchoServer {
 public:
  EchoServer() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoServer() {
    asio::post(io_, [this] { acceptor_.close(); });
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      Echo(sock, std::make_shared<std::array<char, 4096>>());
      Accept();
    });
  }
  void Echo(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::array<char, 4096>> buf) {
    s->async_read_some(
        asio::buffer(*buf), [this, s, buf](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          asio::async_write(*s, asio::buffer(buf->data(), n),
                            [this, s, buf](boost::system::error_code ec, std::size_t) {
                              if (!ec) Echo(s, buf);
                            });
        });
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// Sends `text` and reads the echo; "" if the connection fails or closes.
std::string RoundTrip(tcp::socket& s, const std::string& text) {
  boost::system::error_code ec;
  asio::write(s, asio::buffer(text), ec);
  if (ec) return "";
  std::string got(text.size(), '\0');
  asio::read(s, asio::buffer(got), ec);
  return ec ? "" : got;
}

bool Connect(asio::io_context& io, tcp::socket& s, std::uint16_t port) {
  boost::system::error_code ec;
  s = tcp::socket(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

}  // namespace

TEST_CASE("netproxy forwards, cuts, heals and delays a link", "[node]") {
  EchoServer echo;
  tally::ctl::NetProxy proxy;
  std::uint16_t port = 0;
  std::string error;
  REQUIRE(proxy.AddRoute("a-b", 0, "127.0.0.1", echo.port(), &port, &error));
  REQUIRE(port != 0);
  CHECK_FALSE(proxy.Cut("no-such-link"));

  asio::io_context io;
  tcp::socket s(io);
  REQUIRE(Connect(io, s, port));
  CHECK(RoundTrip(s, "hello") == "hello");

  // Cut: the open connection is closed ...
  REQUIRE(proxy.Cut("a-b"));
  CHECK(RoundTrip(s, "after cut") == "");
  // ... and a new one is accepted, then closed before anything is forwarded.
  tcp::socket s2(io);
  REQUIRE(Connect(io, s2, port));
  CHECK(RoundTrip(s2, "refused") == "");
  auto links = proxy.Links();
  REQUIRE(links.size() == 1);
  CHECK(links[0].cut);
  CHECK(links[0].refused_while_cut >= 1);

  REQUIRE(proxy.Heal("a-b"));
  tcp::socket s3(io);
  REQUIRE(Connect(io, s3, port));
  CHECK(RoundTrip(s3, "healed") == "healed");

  // Delay applies to each direction: a round trip takes at least twice the one-way delay.
  REQUIRE(proxy.SetDelay("a-b", 60ms));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(RoundTrip(s3, "slow") == "slow");
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(elapsed >= 120ms);
  CHECK(elapsed < 2s);
  // The count is bumped when the proxy's write completes, which can trail the client's read.
  std::uint64_t forwarded = 0;
  for (int i = 0; i < 100 && forwarded < 2 * (5 + 6 + 4); ++i) {
    forwarded = proxy.Links()[0].bytes_forwarded;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(forwarded == 2 * (5 + 6 + 4));
}
