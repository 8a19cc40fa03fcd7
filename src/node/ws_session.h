// WsSession: one GET /v1/stream subscriber — a JSON message on every durable change to its
// accounts. The stream is one-way: what the client sends is read (pings, close) and dropped. A
// consumer too slow to keep up (kMaxStreamQueuedMessages queued) is disconnected rather than
// buffered without bound. It subscribes through its ApiHost once the WebSocket handshake is done
// and unsubscribes when it closes.
//
// Threading: io thread only. Owned by shared_ptr: its pending operations and the host's
// subscription list hold it.

#ifndef TALLY_NODE_WS_SESSION_H_
#define TALLY_NODE_WS_SESSION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "node/api_host.h"
#include "node/api_stream.h"
#include "node/net.h"

namespace tally::node {

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(ApiHost* host, ApiStream stream, std::vector<std::string> accounts, std::uint64_t id);
  WsSession(const WsSession&) = delete;
  WsSession& operator=(const WsSession&) = delete;

  void Start(http::request<http::string_body> req);
  void Send(std::string message);  // queued; a consumer too slow to keep up is disconnected
  void Close();
  const std::vector<std::string>& accounts() const { return accounts_; }
  // The Authorization header it was opened with: a reload checks it against the new tokens.
  const std::string& authorization() const { return authorization_; }
  bool open() const { return open_; }
  std::uint64_t id() const { return id_; }

 private:
  void DoRead();
  void DoWrite();
  void Fail(std::string_view what, beast::error_code ec);

  ApiHost* const host_;
  websocket::stream<ApiStream> ws_;
  const std::vector<std::string> accounts_;
  std::string authorization_;
  const std::uint64_t id_;
  beast::flat_buffer read_buf_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool open_ = false;
  bool closed_ = false;
};

}  // namespace tally::node

#endif  // TALLY_NODE_WS_SESSION_H_
