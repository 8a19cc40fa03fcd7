// ApiStream: the bytes of one client API connection — HTTPS (TLS over TCP, with the region's API
// certificate) or plain HTTP when the node runs with http.insecure_loopback — as one type that
// models Asio's AsyncReadStream and AsyncWriteStream. HttpSession, Beast's HTTP reader and
// WsSession's websocket::stream use it without knowing which; its next_layer() is the TCP socket
// either way, which is what Beast's WebSocket timeouts close.
//
// MakeApiTlsContext builds the server context it takes.
//
// Threading: one thread at a time — the one running its executor. Movable (a session hands it to a
// WebSocket on upgrade), not copyable. A connection read on a client pool thread (client_pool.h)
// that becomes a stream moves to the io thread with RunOn: its socket stays registered with the
// pool's io_context, but every completion (and Beast's timers, made from get_executor()) then runs
// on the io thread.

#ifndef TALLY_NODE_API_STREAM_H_
#define TALLY_NODE_API_STREAM_H_

#include <memory>
#include <optional>
#include <utility>

#include "core/status.h"
#include "node/config.h"
#include "node/net.h"
#include "node/peer_tls.h"

// clang-format off
#include <boost/beast/websocket/ssl.hpp>
// clang-format on

namespace tally::node {

// The client API's server context: TLS 1.2 or newer, the certificate and key of
// tls.api_cert_file / api_key_file (by default the region's own). Clients authenticate with bearer
// tokens, not certificates. InvalidArgument naming the setting and file.
Status MakeApiTlsContext(const TlsFiles& files, std::shared_ptr<ssl::context>* out);

class ApiStream {
 public:
  using executor_type = tcp::socket::executor_type;

  // `tls` null: plain TCP. Otherwise the server side of a TLS handshake is owed (AsyncHandshake).
  // The stream keeps the context it was made with (a reload may replace the node's).
  ApiStream(tcp::socket socket, std::shared_ptr<ssl::context> tls);
  ApiStream(ApiStream&&) = default;
  ApiStream& operator=(ApiStream&&) = default;

  executor_type get_executor() { return run_on_ ? *run_on_ : next_layer().get_executor(); }
  // From now on every completion runs on `ex` (call it with no operation pending).
  void RunOn(executor_type ex) { run_on_ = std::move(ex); }
  tcp::socket& next_layer() { return tls_ ? tls_->next_layer() : *plain_; }
  bool secure() const { return tls_ != nullptr; }

  // The server side of the TLS handshake; `handler(error_code)`. Not called without TLS.
  template <class Handler>
  void AsyncHandshake(Handler&& handler) {
    tls_->async_handshake(ssl::stream_base::server, std::forward<Handler>(handler));
  }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (run_on_)
      return ReadSome(buffers, asio::bind_executor(*run_on_, std::forward<Handler>(handler)));
    ReadSome(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (run_on_)
      return WriteSome(buffers, asio::bind_executor(*run_on_, std::forward<Handler>(handler)));
    WriteSome(buffers, std::forward<Handler>(handler));
  }

  // For a WebSocket close: TLS close_notify then TCP, or TCP alone (found by Beast through ADL).
  template <class Handler>
  friend void async_teardown(beast::role_type role, ApiStream& s, Handler&& handler) {
    if (s.tls_)
      beast::async_teardown(role, *s.tls_, std::forward<Handler>(handler));
    else
      websocket::async_teardown(role, *s.plain_, std::forward<Handler>(handler));
  }
  friend void teardown(beast::role_type role, ApiStream& s, beast::error_code& ec);

 private:
  template <class MutableBuffers, class Handler>
  void ReadSome(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class ConstBuffers, class Handler>
  void WriteSome(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
  }

  std::optional<executor_type> run_on_;    // set by RunOn
  std::shared_ptr<ssl::context> context_;  // before tls_, which uses it until destroyed
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  std::optional<tcp::socket> plain_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_API_STREAM_H_
