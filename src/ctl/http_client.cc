#include "ctl/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <fstream>
#include <optional>

#include "ctl/tls_client.h"

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
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

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

// Runs the operations started on `ioc` to completion: the clients are blocking, each call starts
// one operation (whose deadline is on the stream) and waits for it here.
void RunIo(asio::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

std::string Describe(const error_code& ec) {
  return ec == beast::error::timeout ? std::string("timed out") : ec.message();
}

// Resolves and connects `stream`, setting its deadline to `timeout` from now.
bool Connect(asio::io_context& ioc, beast::tcp_stream& stream, const Url& url,
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
  RunIo(ioc);
  if (!done || ec) {
    *error = "cannot connect to " + url.ToString() + ": " + Describe(ec);
    return false;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  return true;
}

// Connects, then completes the TLS client handshake within the same deadline, so a server that
// accepts but never answers the handshake (a plain http server waiting for a request) cannot
// hold the caller past its timeout.
bool Connect(asio::io_context& ioc, TlsStream& stream, const Url& url,
             std::chrono::milliseconds timeout, std::string* error) {
  if (!Connect(ioc, beast::get_lowest_layer(stream), url, timeout, error)) return false;
  if (!SetTlsServerName(stream.native_handle(), url.host, error)) return false;
  error_code ec = asio::error::operation_aborted;
  stream.async_handshake(ssl::stream_base::client, [&](error_code e) { ec = e; });
  RunIo(ioc);
  if (ec) {
    *error = "TLS handshake with " + url.ToString() + ": " +
             DescribeTlsError(ec, stream.native_handle());
    return false;
  }
  return true;
}

// The first bytes of a TLS record from the server: an alert (21) or a handshake (22).
bool LooksLikeTls(const beast::flat_buffer& buffer) {
  if (buffer.size() == 0) return false;
  const auto first = *static_cast<const unsigned char*>(buffer.data().data());
  return first == 21 || first == 22;
}

// Why a request on a plain-http connection got no answer, with a hint when the server seems to
// speak TLS: it then closes or resets the connection, or answers with a TLS alert.
std::string DescribeRead(const error_code& ec, const Url& url, const beast::flat_buffer& buffer,
                         bool got_bytes) {
  std::string text = Describe(ec);
  if (url.tls || got_bytes) return text;
  if (LooksLikeTls(buffer)) return text + " (the server answered in TLS: use https://)";
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset)
    return text + " (no answer: if the server expects TLS, use https://)";
  return text;
}

// Sends `req` and reads the answer into `parser`, both within `timeout`. *wrote_all and
// *got_bytes tell a connection the server had already closed apart from a failure of this request.
template <class Stream>
error_code Exchange(asio::io_context& ioc, Stream& stream, beast::flat_buffer& buffer,
                    const http::request<http::string_body>& req,
                    http::response_parser<http::string_body>& parser,
                    std::chrono::milliseconds timeout, bool* wrote_all, bool* got_bytes) {
  error_code ec;
  beast::get_lowest_layer(stream).expires_after(timeout);
  http::async_write(stream, req, [&](error_code e, std::size_t) {
    ec = e;
    *wrote_all = !e;
  });
  RunIo(ioc);
  if (ec) return ec;
  http::async_read(stream, buffer, parser, [&](error_code e, std::size_t n) {
    ec = e;
    *got_bytes = n > 0;
  });
  RunIo(ioc);
  return ec;
}

// Sends raw bytes and reads one answer into `parser`. The server may answer and close before
// reading everything sent (an oversized body), so the answer is read even when the write failed;
// *write_ec keeps the write's error for the message.
template <class Stream>
error_code RawExchange(asio::io_context& ioc, Stream& stream, beast::flat_buffer& buffer,
                       std::string_view bytes, http::response_parser<http::string_body>& parser,
                       std::chrono::milliseconds timeout, error_code* write_ec) {
  beast::get_lowest_layer(stream).expires_after(timeout);
  asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                    [&](error_code e, std::size_t) { *write_ec = e; });
  RunIo(ioc);
  error_code ec;
  beast::get_lowest_layer(stream).expires_after(timeout);
  http::async_read(stream, buffer, parser, [&](error_code e, std::size_t) { ec = e; });
  RunIo(ioc);
  return ec;
}

}  // namespace

bool Url::Parse(std::string_view text, Url* url, std::string* error) {
  std::string_view rest = text;
  bool tls = false;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    tls = true;
  } else if (rest.find("://") != std::string_view::npos) {
    *error = "unsupported URL scheme in '" + std::string(text) +
             "' (http:// and https:// are supported)";
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
    *error = "URL '" + std::string(text) + "' must be http://HOST:PORT or https://HOST:PORT";
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
  url->tls = tls;
  return true;
}

std::string Url::ToString() const {
  return (tls ? "https://" : "http://") + host + ":" + port + prefix;
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return v;
  return "";
}

struct HttpClient::Impl {
  asio::io_context ioc;
  std::unique_ptr<ssl::context> ssl_ctx;  // made on the first https connection
  beast::tcp_stream plain{ioc};           // http
  // https: a new stream for every connection, as an SSL stream cannot be reused once closed.
  std::optional<TlsStream> secure;
  beast::flat_buffer buffer;
  bool connected = false;

  // Calls `f` with the stream of the current connection.
  template <class F>
  decltype(auto) With(F&& f) {
    return secure ? f(*secure) : f(plain);
  }

  // Opens a new connection (TCP, then TLS for https) within `timeout`.
  bool Connect(const Url& url, const ClientTls& tls, std::chrono::milliseconds timeout,
               std::string* error) {
    Close();
    if (url.tls) {
      if (!ssl_ctx && !MakeClientTlsContext(tls, &ssl_ctx, error)) return false;
      secure.emplace(ioc, *ssl_ctx);
    }
    connected = With([&](auto& s) { return ctl::Connect(ioc, s, url, timeout, error); });
    if (!connected) Close();
    return connected;
  }

  // Drops the connection without a TLS close_notify: the answers are framed by Content-Length,
  // so nothing can be truncated unnoticed, and waiting for the server's close_notify would cost a
  // round trip on every call.
  void Close() {
    error_code ec;
    for (beast::tcp_stream* s : {&plain, secure ? &beast::get_lowest_layer(*secure) : nullptr}) {
      if (!s) continue;
      s->socket().shutdown(tcp::socket::shutdown_both, ec);
      s->socket().close(ec);
    }
    secure.reset();
    buffer.clear();
    connected = false;
  }
};

HttpClient::HttpClient(Url url, std::chrono::milliseconds timeout, ClientTls tls)
    : url_(std::move(url)),
      timeout_(timeout),
      tls_(std::move(tls)),
      impl_(std::make_unique<Impl>()) {}

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
    if (!impl_->connected && !impl_->Connect(url_, tls_, timeout_, error)) return false;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBodyBytes);
    bool wrote_all = false, got_bytes = false;
    error_code ec = impl_->With([&](auto& s) {
      return Exchange(impl_->ioc, s, impl_->buffer, req, parser, timeout_, &wrote_all, &got_bytes);
    });
    if (ec) {
      const std::string why = DescribeRead(ec, url_, impl_->buffer, got_bytes);
      impl_->Close();
      // Over TLS, a server that closed the idle connection without a close_notify shows up as a
      // truncated stream.
      const bool stale =
          reused && !got_bytes &&
          (ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == ssl::error::stream_truncated || (!wrote_all && ec != beast::error::timeout));
      if (stale && attempt == 0) continue;
      *error = std::string(method) + " " + url_.ToString() + std::string(target) + ": " + why;
      return false;
    }
    auto res = parser.release();
    const bool keep = res.keep_alive();
    CopyResponse(std::move(res), response);
    if (!keep) impl_->Close();
    return true;
  }
  return false;
}

bool HttpClient::RawRequest(std::string_view bytes, HttpResponse* response, std::string* error) {
  if (!impl_->Connect(url_, tls_, timeout_, error)) return false;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  error_code write_ec;
  error_code read_ec = impl_->With([&](auto& s) {
    return RawExchange(impl_->ioc, s, impl_->buffer, bytes, parser, timeout_, &write_ec);
  });
  const std::string why = DescribeRead(read_ec, url_, impl_->buffer, false);
  impl_->Close();
  if (read_ec) {
    *error = "raw request to " + url_.ToString() + ": " +
             (write_ec ? "write: " + write_ec.message() + ", " : std::string()) + "read: " + why;
    return false;
  }
  CopyResponse(parser.release(), response);
  return true;
}

struct WsReader::Impl {
  asio::io_context ioc;
  std::unique_ptr<ssl::context> ssl_ctx;               // wss only
  websocket::stream<beast::tcp_stream> plain{ioc};     // ws
  std::optional<websocket::stream<TlsStream>> secure;  // wss, made by Open
  beast::flat_buffer buffer;
  bool reading = false;  // an async_read is outstanding
  bool done = false;     // it completed
  error_code read_ec;

  template <class F>
  decltype(auto) With(F&& f) {
    return secure ? f(*secure) : f(plain);
  }
};

namespace {

// Completes the WebSocket upgrade on a connected stream.
template <class WsStream>
bool Upgrade(asio::io_context& ioc, WsStream& ws, const Url& url, std::string_view target,
             const Headers& headers, std::chrono::milliseconds timeout, std::string* protocol,
             std::string* error) {
  ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    req.set(http::field::user_agent, "tallyctl");
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  error_code ec;
  auto& tcp_stream = beast::get_lowest_layer(ws);
  tcp_stream.expires_after(timeout);
  ws.async_handshake(res, url.host + ":" + url.port, url.prefix + std::string(target),
                     [&](error_code e) { ec = e; });
  RunIo(ioc);
  if (ec) {
    *error =
        "WebSocket upgrade at " + url.ToString() + std::string(target) + " failed: " + ec.message();
    if (res.result_int() != 0) {
      *error += " (HTTP " + std::to_string(res.result_int()) + ")";
      if (!res.body().empty()) *error += ": " + res.body();
    }
    return false;
  }
  *protocol = std::string(res[http::field::sec_websocket_protocol]);
  // Beast's own timeouts for an established stream: idle pings keep a quiet stream alive, and the
  // peer is declared dead if it stops answering them.
  tcp_stream.expires_never();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  return true;
}

}  // namespace

WsReader::WsReader(Url url, std::chrono::milliseconds connect_timeout, ClientTls tls)
    : url_(std::move(url)),
      connect_timeout_(connect_timeout),
      tls_(std::move(tls)),
      impl_(std::make_unique<Impl>()) {}

WsReader::~WsReader() {
  error_code ec;
  impl_->With([&](auto& ws) { beast::get_lowest_layer(ws).socket().close(ec); });
}

bool WsReader::Open(std::string_view target, const Headers& headers, std::string* error) {
  if (url_.tls) {
    if (!impl_->ssl_ctx && !MakeClientTlsContext(tls_, &impl_->ssl_ctx, error)) return false;
    impl_->secure.emplace(impl_->ioc, *impl_->ssl_ctx);
  }
  return impl_->With([&](auto& ws) {
    return Connect(impl_->ioc, ws.next_layer(), url_, connect_timeout_, error) &&
           Upgrade(impl_->ioc, ws, url_, target, headers, connect_timeout_, &protocol_, error);
  });
}

int WsReader::Next(std::chrono::milliseconds timeout, std::string* message, std::string* error) {
  if (!impl_->reading) {
    impl_->reading = true;
    impl_->done = false;
    impl_->buffer.clear();
    impl_->With([this](auto& ws) {
      ws.async_read(impl_->buffer, [this](error_code e, std::size_t) {
        impl_->read_ec = e;
        impl_->done = true;
      });
    });
  }
  if (!impl_->done) {  // (a Send may have run the read to its end already)
    impl_->ioc.restart();
    impl_->ioc.run_for(timeout);
  }
  if (!impl_->done) return 0;  // the read stays outstanding for the next call
  impl_->reading = false;
  if (impl_->read_ec) {
    if (impl_->read_ec == websocket::error::closed) {
      const websocket::close_reason why = impl_->With([](auto& ws) { return ws.reason(); });
      *error = "stream closed by the server (" + std::to_string(why.code) +
               (why.reason.empty() ? std::string()
                                   : ": " + std::string(why.reason.data(), why.reason.size())) +
               ")";
    } else {
      *error = impl_->read_ec.message();
    }
    return -1;
  }
  *message = beast::buffers_to_string(impl_->buffer.data());
  return 1;
}

bool WsReader::Send(std::string_view message, std::string* error, bool binary) {
  // Shared with the handler, which outlives this call if the write times out.
  struct Outcome {
    bool done = false;
    error_code ec;
  };
  auto outcome = std::make_shared<Outcome>();
  impl_->With([&](auto& ws) {
    ws.binary(binary);
    ws.async_write(asio::buffer(message.data(), message.size()),
                   [outcome](error_code e, std::size_t) {
                     outcome->ec = e;
                     outcome->done = true;
                   });
  });
  // A read Next left outstanding may complete meanwhile; Next picks its message up.
  impl_->ioc.restart();
  const auto deadline = std::chrono::steady_clock::now() + connect_timeout_;
  while (!outcome->done && impl_->ioc.run_one_until(deadline) > 0) {
  }
  if (!outcome->done || outcome->ec) {
    *error = "WebSocket send: " + (outcome->done ? outcome->ec.message() : "timed out");
    return false;
  }
  return true;
}

}  // namespace tally::ctl
