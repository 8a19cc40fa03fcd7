// tally-netproxy: the NetProxy as a process, for scripts/cluster (partitions between regions) and
// the benchmarks (a far client). `serve` runs the proxy with a small HTTP control endpoint on
// loopback; `cut`, `heal`, `delay` and `status` are clients of that endpoint.
//
//   tally-netproxy serve --control 7400 --route eu-us=7411:127.0.0.1:7102 --route ...
//   tally-netproxy cut --control 127.0.0.1:7400 eu-us
//
// Control API (JSON): GET /links; POST /links/NAME/cut; POST /links/NAME/heal;
// POST /links/NAME/delay?ms=N. Exit codes: 0 ok, 2 usage, 3 cannot reach the control endpoint,
// 4 unknown link or bad request.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it

#include "ctl/http_client.h"
#include "ctl/netproxy.h"
#include "version/version.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using nlohmann::json;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitRejected = 4;

json LinksJson(const tally::ctl::NetProxy& proxy) {
  json links = json::array();
  for (const auto& l : proxy.Links()) {
    json routes = json::array();
    for (const auto& r : l.routes)
      routes.push_back({{"listen_port", r.listen_port}, {"target", r.target}});
    links.push_back({{"name", l.name},
                     {"cut", l.cut},
                     {"delay_ms", l.delay_ms},
                     {"open_connections", l.open_connections},
                     {"accepted", l.accepted},
                     {"refused_while_cut", l.refused_while_cut},
                     {"bytes_forwarded", l.bytes_forwarded},
                     {"routes", routes}});
  }
  return {{"links", links}};
}

http::response<http::string_body> HandleControl(tally::ctl::NetProxy& proxy,
                                                const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(11);
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  auto reply = [&](http::status s, json body) {
    res.result(s);
    res.body() = body.dump() + "\n";
    res.prepare_payload();
    return res;
  };
  auto error = [&](http::status s, std::string code, std::string message) {
    return reply(s, {{"error", {{"code", code}, {"message", message}}}});
  };
  std::string target(req.target());
  std::string query;
  if (auto q = target.find('?'); q != std::string::npos) {
    query = target.substr(q + 1);
    target.resize(q);
  }
  if (target == "/links" && req.method() == http::verb::get)
    return reply(http::status::ok, LinksJson(proxy));
  if (!target.starts_with("/links/") || req.method() != http::verb::post)
    return error(http::status::not_found, "not_found", "no such control route: " + target);
  std::string rest = target.substr(7);
  auto slash = rest.find('/');
  if (slash == std::string::npos)
    return error(http::status::not_found, "not_found", "missing action");
  std::string link = rest.substr(0, slash), action = rest.substr(slash + 1);
  bool known = false;
  if (action == "cut") {
    known = proxy.Cut(link);
  } else if (action == "heal") {
    known = proxy.Heal(link);
  } else if (action == "delay") {
    if (!query.starts_with("ms="))
      return error(http::status::bad_request, "invalid_argument", "delay needs ?ms=N");
    char* end = nullptr;
    long long ms = std::strtoll(query.c_str() + 3, &end, 10);
    if (*end != '\0' || ms < 0 || ms > 600000 || query.size() == 3)
      return error(http::status::bad_request, "invalid_argument",
                   "ms must be an integer in 0..600000");
    known = proxy.SetDelay(link, std::chrono::milliseconds(ms));
  } else {
    return error(http::status::not_found, "not_found", "unknown action: " + action);
  }
  if (!known) return error(http::status::not_found, "unknown_link", "no link named " + link);
  return reply(http::status::ok, LinksJson(proxy));
}

struct ControlConnection : std::enable_shared_from_this<ControlConnection> {
  ControlConnection(tcp::socket s, tally::ctl::NetProxy* p) : socket(std::move(s)), proxy(p) {}
  tcp::socket socket;
  tally::ctl::NetProxy* proxy;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  http::response<http::string_body> res;

  void Start() {
    auto self = shared_from_this();
    http::async_read(socket, buffer, req, [self](error_code ec, std::size_t) {
      if (ec) return;
      self->res = HandleControl(*self->proxy, self->req);
      http::async_write(self->socket, self->res, [self](error_code, std::size_t) {
        error_code ignored;
        self->socket.shutdown(tcp::socket::shutdown_both, ignored);
      });
    });
  }
};

void AcceptControl(tcp::acceptor& acceptor, tally::ctl::NetProxy* proxy) {
  acceptor.async_accept([&acceptor, proxy](error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<ControlConnection>(std::move(s), proxy)->Start();
    AcceptControl(acceptor, proxy);
  });
}

// "eu-us=7411:127.0.0.1:7102"
bool ParseRoute(const std::string& text, std::string* link, std::uint16_t* listen,
                std::string* host, std::uint16_t* port) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *link = text.substr(0, eq);
  std::string rest = text.substr(eq + 1);
  auto c1 = rest.find(':');
  auto c2 = rest.rfind(':');
  if (c1 == std::string::npos || c1 == c2) return false;
  auto parse_port = [](const std::string& s, std::uint16_t* out, bool allow_zero) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
      return false;
    unsigned long v = std::stoul(s);
    if (v > 65535 || (v == 0 && !allow_zero)) return false;
    *out = static_cast<std::uint16_t>(v);
    return true;
  };
  *host = rest.substr(c1 + 1, c2 - c1 - 1);
  return !host->empty() && parse_port(rest.substr(0, c1), listen, true) &&
         parse_port(rest.substr(c2 + 1), port, false);
}

int Serve(std::uint16_t control_port, const std::vector<std::string>& routes,
          const std::vector<std::string>& delays, const std::string& pid_file) {
  tally::ctl::NetProxy proxy;
  for (const auto& r : routes) {
    std::string link, host, error;
    std::uint16_t listen = 0, port = 0, bound = 0;
    if (!ParseRoute(r, &link, &listen, &host, &port)) {
      std::cerr << "tally-netproxy: bad --route '" << r << "' (want LINK=LISTEN_PORT:HOST:PORT)\n";
      return kExitUsage;
    }
    if (!proxy.AddRoute(link, listen, host, port, &bound, &error)) {
      std::cerr << "tally-netproxy: " << error << "\n";
      return kExitUnreachable;
    }
  }
  for (const auto& d : delays) {
    auto eq = d.find('=');
    char* end = nullptr;
    long long ms = eq == std::string::npos ? -1 : std::strtoll(d.c_str() + eq + 1, &end, 10);
    if (ms < 0 || *end != '\0' || !proxy.SetDelay(d.substr(0, eq), std::chrono::milliseconds(ms))) {
      std::cerr << "tally-netproxy: bad --delay '" << d
                << "' (want LINK=MS for a configured link)\n";
      return kExitUsage;
    }
  }
  asio::io_context io;
  tcp::acceptor acceptor(io);
  error_code ec;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), control_port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "tally-netproxy: cannot listen for control on 127.0.0.1:" << control_port << ": "
              << ec.message() << "\n";
    return kExitUnreachable;
  }
  if (!pid_file.empty()) std::ofstream(pid_file) << getpid() << "\n";
  AcceptControl(acceptor, &proxy);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    acceptor.close(ec);
    io.stop();
  });
  std::cout << "tally-netproxy: control on 127.0.0.1:" << acceptor.local_endpoint().port() << ", "
            << routes.size() << " routes" << std::endl;
  io.run();
  return kExitOk;
}

int Control(const std::string& control, const std::string& method, const std::string& target,
            bool as_json) {
  tally::ctl::Url url;
  std::string error;
  if (!tally::ctl::Url::Parse(control, &url, &error)) {
    std::cerr << "tally-netproxy: " << error << "\n";
    return kExitUsage;
  }
  tally::ctl::HttpClient client(url, std::chrono::seconds(5));
  tally::ctl::HttpResponse res;
  if (!client.Request(method, target, "", {}, &res, &error)) {
    std::cerr << "tally-netproxy: " << error << "\n";
    return kExitUnreachable;
  }
  json body = json::parse(res.body, nullptr, false);
  if (res.status != 200) {
    std::cerr << "tally-netproxy: " << (body.is_discarded() ? res.body : body.dump()) << "\n";
    return kExitRejected;
  }
  if (as_json || body.is_discarded() || !body.contains("links")) {
    std::cout << res.body;
    return kExitOk;
  }
  for (const auto& l : body["links"]) {
    std::cout << l["name"].get<std::string>() << ": " << (l["cut"].get<bool>() ? "CUT" : "up")
              << ", delay " << l["delay_ms"] << " ms, " << l["open_connections"] << " open, "
              << l["bytes_forwarded"] << " bytes forwarded\n";
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally-netproxy: a TCP proxy whose links can be cut, healed and delayed.\n"
      "Exit codes: 0 ok, 2 usage, 3 control endpoint unreachable / cannot listen, 4 rejected."};
  app.set_version_flag("--version", tally::VersionLine("tally-netproxy"));
  app.require_subcommand(1);
  std::uint16_t control_port = 0;
  std::vector<std::string> routes, delays;
  std::string pid_file, control = "127.0.0.1:7400", link;
  long long ms = 0;
  bool as_json = false;

  auto* serve = app.add_subcommand("serve", "run the proxy");
  serve->add_option("--control", control_port, "control port on 127.0.0.1")->required();
  serve->add_option("--route", routes, "LINK=LISTEN_PORT:TARGET_HOST:TARGET_PORT (repeatable)")
      ->required();
  serve->add_option("--delay", delays, "LINK=MS initial one-way delay (repeatable)");
  serve->add_option("--pid-file", pid_file, "write the process id here once listening");

  auto add_client = [&](const char* name, const char* help, bool needs_link) {
    auto* c = app.add_subcommand(name, help);
    c->add_option("--control", control, "control endpoint HOST:PORT")->capture_default_str();
    c->add_flag("--json", as_json, "print the control API's JSON");
    if (needs_link) c->add_option("link", link, "link name, e.g. eu-us")->required();
    return c;
  };
  auto* cut = add_client("cut", "cut a link (close its connections, refuse new ones)", true);
  auto* heal = add_client("heal", "heal a link", true);
  auto* delay = add_client("delay", "set a link's one-way delay", true);
  delay->add_option("ms", ms, "milliseconds")->required()->check(CLI::Range(0LL, 600000LL));
  auto* status = add_client("status", "show every link", false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (serve->parsed()) return Serve(control_port, routes, delays, pid_file);
  if (cut->parsed()) return Control(control, "POST", "/links/" + link + "/cut", as_json);
  if (heal->parsed()) return Control(control, "POST", "/links/" + link + "/heal", as_json);
  if (delay->parsed())
    return Control(control, "POST", "/links/" + link + "/delay?ms=" + std::to_string(ms), as_json);
  if (status->parsed()) return Control(control, "GET", "/links", as_json);
  return kExitUsage;
}
