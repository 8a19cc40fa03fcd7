// HttpSession: one client connection — HTTP/1.1 keep-alive with pipelining, answered in request
// order. It reads and parses requests, routes them (api.h) and hands each to its ApiHost with the
// number of the answer slot it owes; answers may arrive out of order (a read waits for a sync, a
// debit for rights) and are written in order (it is the HTTP Responder). A GET /v1/stream upgrade
// hands the connection over to a WsSession. Over HTTPS the TLS handshake comes first, within
// http.idle_timeout_ms; a plain HTTP request on the HTTPS port is answered 400 in plain text,
// saying so.
//
// Threading: one thread — the io thread, or, with io_threads > 1, the client pool thread whose
// io_context its socket belongs to (client_pool.h); then its host is a SessionRelay that carries
// each request to the io thread and each answer back (RespondCounted). A GET /v1/stream on a pool
// thread moves the connection to the io thread first (HandOver), where WebSockets are served.
// Owned by shared_ptr: the pending reads and writes hold it; the host (or the pool) holds a
// weak_ptr for its sweep (CheckTimeouts) and shutdown (CloseWhenIdle).

#ifndef TALLY_NODE_HTTP_SESSION_H_
#define TALLY_NODE_HTTP_SESSION_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "node/api.h"
#include "node/api_host.h"
#include "node/api_stream.h"
#include "node/auth.h"
#include "node/net.h"
#include "node/responder.h"
#include "node/stream_messages.h"

namespace tally::node {

class HttpSession : public Responder, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(ApiHost* host, tcp::socket socket, std::uint64_t id);
  // On a client pool thread: `host` is its SessionRelay, which this keeps alive.
  HttpSession(std::shared_ptr<ApiHost> host, tcp::socket socket, std::uint64_t id);
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void Start();
  // Closes the connection when idle for idle_timeout_ms or lingering past kLingerTimeout.
  void CheckTimeouts(SteadyTime now);
  // Stops reading; closes once every answer owed is written.
  void CloseWhenIdle();
  // Hands the connection over to a WebSocket stream of `accounts`, resuming after `after` if set,
  // authenticated as `auth` says (the upgrade request must be the only one outstanding). False
  // if it is not.
  bool Upgrade(std::uint64_t slot, http::request<http::string_body> req,
               std::vector<std::string> accounts, std::optional<CanonicalKey> after,
               StreamAuth auth);
  std::uint64_t id() const { return id_; }
  bool closed() const override { return closed_; }
  AuditFacts* audit(std::uint64_t slot) override;
  // When request `slot` was read (now, if unknown).
  SteadyTime started(std::uint64_t slot) const;
  // An answer the host already counted and audited (ApiHost::Answered), handed over from the io
  // thread by a SessionRelay: written as Respond would, without counting it again.
  void RespondCounted(std::uint64_t slot, int status, std::string_view content_type,
                      std::string_view body, std::string_view extra_headers);
  // A GET /v1/stream read on a pool thread, the only request outstanding: this session gives up
  // its connection — the bytes read ahead, the request's slot — to a new session served by `host`
  // on host->io(), and closes. Null (and this keeps the connection) when other requests are
  // outstanding. The caller hands the new session to the io thread; there it is adopted, the
  // request handed to OpenStream, and Resume called.
  std::shared_ptr<HttpSession> HandOver(ApiHost* host);
  // Reads on (after HandOver).
  void Resume() { DoRead(); }

 private:
  struct Slot {
    bool ready = false;
    bool close = false;
    Route route = Route::kUnknown;
    SteadyTime start;
    std::string bytes;
    AuditFacts audit;
    bool counted = false;  // the host counted its answer already (RespondCounted)
  };
  // HandOver's: the connection `stream`, with what was read ahead and the request owed.
  HttpSession(ApiHost* host, ApiStream stream, std::uint64_t id, std::string remote,
              beast::flat_buffer buffer, Slot slot, std::uint64_t slot_number);
  void DoRespond(std::uint64_t slot, int status, std::string_view content_type,
                 std::string_view body, std::string_view extra_headers) override;
  void OnHandshake(beast::error_code ec);
  void DoRead();
  void OnRead(beast::error_code ec);
  void MaybeWrite();
  void OnWrite(beast::error_code ec);
  void Linger();
  void Close();
  std::uint64_t AddSlot(Route route, bool keep_alive, SteadyTime start);
  void RespondError(std::uint64_t slot, const Status& s, bool close);
  // Why a body over its bound (max_batch_bytes for POST /v1/batch, max_body_bytes for any other)
  // is refused: 413.
  Status BodyTooLarge(bool batch) const;

  std::shared_ptr<ApiHost> owned_host_;  // the SessionRelay, on a pool thread; else null
  ApiHost* const host_;
  const std::uint64_t id_;
  ApiStream stream_;
  std::string remote_;        // "ip:port", for refusals
  bool handshaking_ = false;  // the TLS handshake is not done yet
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Slot> slots_;
  std::uint64_t first_slot_ = 0;  // slot number of slots_.front()
  std::string out_;
  bool close_after_write_ = false;
  bool writing_ = false;
  bool reading_ = false;
  // The request being read, routed once its header is read; POST /v1/batch's body bound is larger.
  Status matched_;
  RouteMatch match_;
  bool batch_body_ = false;
  bool read_closed_ = false;  // no more requests will be read
  bool closed_ = false;
  std::array<char, 4096> linger_buf_;
  // Timeouts are checked by the host's sweep (CheckTimeouts), not a timer per operation:
  // resetting a timer on every read and write costs a syscall each on the hot path.
  SteadyTime last_activity_;
  bool lingering_ = false;
  SteadyTime linger_deadline_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_HTTP_SESSION_H_
