#include "ctl/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fstream>
#include <optional>

namespace tally::ctl {

void TrimToken(std::string* token) {
  while (!token->empty() &&
         (token->back() == '\n' || token->back() == '\r' || token->back() == ' '))
    token->pop_back();
}

bool ReadTokenFile(const std::string& path, std::string* token) {
  std::ifstream f(path);
  if (!f || !std::getline(f, *token)) return false;
  TrimToken(token);
  return true;
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

bool HasHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return true;
  return false;
}

void CopyResponse(http::response<http::string_body>&& res, HttpResponse* out) {
  out->status = static_cast<int>(res.result_int());
  out->headers.clear();
  for (const auto& field : res)
    out->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out->body = std::move(res.body());
}

// Resolves and connects `stream` within its current deadline, driving `ioc` until done.
bool ConnectStream(asio::io_context& ioc, beast::tcp_stream& stream, const Url& url,
                   std::chrono::milliseconds timeout, std::string* error) {
  tcp::resolver resolver(ioc);
  error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) {
    *error = "cannot resolve " + url.host + ":" + url.port + ": " + ec.message();
    return false;
  }
  stream.expires_after(timeout);
  bool done = false;
  stream.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  ioc.restart();
  ioc.run();
  if (!done || ec) {
    *error = "cannot connect to " + url.ToString() + ": " +
             (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    return false;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  return true;
}

}  // namespace

bool Url::Parse(std::string_view text, Url* url, std::string* error) {
  std::string_view rest = text;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    *error = "unsupported URL scheme in '" + std::string(text) + "' (only http:// is supported)";
    return false;
  }
  std::string_view authority = rest;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash);
  }
  auto colon = authority.rfind(':');
  if (authority.empty() || colon == std::string_view::npos || colon == 0 ||
      colon + 1 == authority.size()) {
    *error = "URL '" + std::string(text) + "' must be http://HOST:PORT";
    return false;
  }
  std::string_view port = authority.substr(colon + 1);
  for (char c : port) {
    if (c < '0' || c > '9') {
      *error = "URL '" + std::string(text) + "' has a non-numeric port";
      return false;
    }
  }
  if (port.size() > 5 || std::stoul(std::string(port)) > 65535 ||
      std::stoul(std::string(port)) == 0) {
    *error = "URL '" + std::string(text) + "' has a port outside 1..65535";
    return false;
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  url->host = std::string(authority.substr(0, colon));
  url->port = std::string(port);
  url->prefix = std::string(path);
  return true;
}

std::string Url::ToString() const { return "http://" + host + ":" + port + prefix; }

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return v;
  return "";
}

struct HttpClient::Impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;

  void Close() {
    error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    buffer.clear();
    connected = false;
  }
};

HttpClient::HttpClient(Url url, std::chrono::milliseconds timeout)
    : url_(std::move(url)), timeout_(timeout), impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() { impl_->Close(); }

bool HttpClient::Request(std::string_view method, std::string_view target, std::string_view body,
                         const Headers& headers, HttpResponse* response, std::string* error) {
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(url_.prefix + std::string(target));
  req.version(11);
  req.set(http::field::host, url_.host + ":" + url_.port);
  req.set(http::field::user_agent, "tallyctl");
  for (const auto& [k, v] : headers) req.insert(k, v);
  if (!body.empty() && !HasHeader(headers, "Content-Type"))
    req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  req.prepare_payload();

  // A reused connection may have been closed by the server while idle; then one fresh attempt is
  // safe because nothing of this request reached it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = impl_->connected;
    if (!impl_->connected) {
      if (!ConnectStream(impl_->ioc, impl_->stream, url_, timeout_, error)) return false;
      impl_->connected = true;
    }
    error_code ec;
    bool wrote_all = false;
    impl_->stream.expires_after(timeout_);
    http::async_write(impl_->stream, req, [&](error_code e, std::size_t) {
      ec = e;
      wrote_all = !e;
    });
    impl_->ioc.restart();
    impl_->ioc.run();
    std::optional<http::response_parser<http::string_body>> parser;
    parser.emplace();
    parser->body_limit(kMaxResponseBodyBytes);
    bool got_bytes = false;
    if (!ec) {
      http::async_read(impl_->stream, impl_->buffer, *parser, [&](error_code e, std::size_t n) {
        ec = e;
        got_bytes = n > 0;
      });
      impl_->ioc.restart();
      impl_->ioc.run();
    }
    if (ec) {
      impl_->Close();
      const bool stale = reused && !got_bytes &&
                         (ec == http::error::end_of_stream || ec == asio::error::eof ||
                          ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                          (!wrote_all && ec != beast::error::timeout));
      if (stale && attempt == 0) continue;
      *error = std::string(method) + " " + url_.ToString() + std::string(target) + ": " +
               (ec == beast::error::timeout ? std::string("timed out") : ec.message());
      return false;
    }
    auto res = parser->release();
    const bool keep = res.keep_alive();
    CopyResponse(std::move(res), response);
    if (!keep) impl_->Close();
    return true;
  }
  return false;
}

bool HttpClient::RawRequest(std::string_view bytes, HttpResponse* response, std::string* error) {
  impl_->Close();
  if (!ConnectStream(impl_->ioc, impl_->stream, url_, timeout_, error)) return false;
  impl_->connected = true;
  error_code ec;
  impl_->stream.expires_after(timeout_);
  asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()),
                    [&](error_code e, std::size_t) { ec = e; });
  impl_->ioc.restart();
  impl_->ioc.run();
  // The server may answer and close before reading everything we sent (an oversized body): try
  // to read its answer even when the write failed.
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  error_code read_ec;
  impl_->stream.expires_after(timeout_);
  http::async_read(impl_->stream, impl_->buffer, parser,
                   [&](error_code e, std::size_t) { read_ec = e; });
  impl_->ioc.restart();
  impl_->ioc.run();
  impl_->Close();
  if (read_ec) {
    *error = "raw request to " + url_.ToString() + ": " +
             (ec ? "write: " + ec.message() + ", " : std::string()) + "read: " +
             (read_ec == beast::error::timeout ? std::string("timed out") : read_ec.message());
    return false;
  }
  CopyResponse(parser.release(), response);
  return true;
}

struct WsReader::Impl {
  asio::io_context ioc;
  beast::websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  bool reading = false;  // an async_read is outstanding
  bool done = false;     // it completed
  error_code read_ec;
};

WsReader::WsReader(Url url, std::chrono::milliseconds connect_timeout)
    : url_(std::move(url)), connect_timeout_(connect_timeout), impl_(std::make_unique<Impl>()) {}

WsReader::~WsReader() {
  error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

bool WsReader::Open(std::string_view target, const Headers& headers, std::string* error) {
  auto& tcp_stream = beast::get_lowest_layer(impl_->ws);
  if (!ConnectStream(impl_->ioc, tcp_stream, url_, connect_timeout_, error)) return false;
  impl_->ws.set_option(
      beast::websocket::stream_base::decorator([headers](beast::websocket::request_type& req) {
        req.set(http::field::user_agent, "tallyctl");
        for (const auto& [k, v] : headers) req.set(k, v);
      }));
  beast::websocket::response_type res;
  error_code ec;
  tcp_stream.expires_after(connect_timeout_);
  impl_->ws.async_handshake(res, url_.host + ":" + url_.port, url_.prefix + std::string(target),
                            [&](error_code e) { ec = e; });
  impl_->ioc.restart();
  impl_->ioc.run();
  if (ec) {
    *error = "WebSocket upgrade at " + url_.ToString() + std::string(target) +
             " failed: " + ec.message();
    if (res.result_int() != 0) {
      *error += " (HTTP " + std::to_string(res.result_int()) + ")";
      if (!res.body().empty()) *error += ": " + res.body();
    }
    return false;
  }
  // Beast's own timeouts for an established stream: idle pings keep a quiet stream alive, and the
  // peer is declared dead if it stops answering them.
  tcp_stream.expires_never();
  impl_->ws.set_option(beast::websocket::stream_base::timeout::suggested(beast::role_type::client));
  return true;
}

int WsReader::Next(std::chrono::milliseconds timeout, std::string* message, std::string* error) {
  if (!impl_->reading) {
    impl_->reading = true;
    impl_->done = false;
    impl_->buffer.clear();
    impl_->ws.async_read(impl_->buffer, [this](error_code e, std::size_t) {
      impl_->read_ec = e;
      impl_->done = true;
    });
  }
  impl_->ioc.restart();
  impl_->ioc.run_for(timeout);
  if (!impl_->done) return 0;  // the read stays outstanding for the next call
  impl_->reading = false;
  if (impl_->read_ec) {
    *error = impl_->read_ec == beast::websocket::error::closed
                 ? std::string("stream closed by the server")
                 : impl_->read_ec.message();
    return -1;
  }
  *message = beast::buffers_to_string(impl_->buffer.data());
  return 1;
}

}  // namespace tally::ctl
