// A small blocking HTTP/1.1 client over one keep-alive connection, and a WebSocket reader, for the
// tools that drive tallyd from outside: tallyctl, the node tests, the demo and benchmark set-up.
// Both speak plain http or, for an https:// URL, TLS that verifies the server's certificate and
// name (ClientTls says which CA to trust).
//
// Every call has a deadline (the client's timeout), so a hung server can never hang a script. A
// transport failure (refused, reset, timed out, TLS handshake or certificate refused, unparseable
// reply) is reported as `false` with a message; any HTTP status, 4xx and 5xx included, is a
// response, not a failure. The body and header values are sent exactly as given, so tests can also
// send malformed requests on purpose.
//
// Not thread-safe: one HttpClient per thread. Not copyable (it owns a socket).

#ifndef TALLY_CTL_HTTP_CLIENT_H_
#define TALLY_CTL_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tally::ctl {

// "http://host:port[/prefix]", "https://host:port[/prefix]" or "host:port" (plain http). tallyd's
// client API is plain http on loopback, or https with a server certificate when it is reachable
// from elsewhere.
struct Url {
  std::string host;
  std::string port;
  std::string prefix;  // path prefix without a trailing '/', usually empty
  bool tls = false;    // https://: TLS, the server's certificate verified against `host`

  // Returns false and sets *error (naming what is wrong) when `text` is not such a URL.
  static bool Parse(std::string_view text, Url* url, std::string* error);
  std::string ToString() const;  // "http://host:port/prefix" or "https://host:port/prefix"
};

// How an https client checks the server. The certificate must chain to a trusted CA and name the
// URL's host (a DNS subjectAltName, or an IP one for an IP address); nothing else is accepted, and
// there is deliberately no "insecure" switch. Ignored for plain http URLs.
struct ClientTls {
  // PEM file of the CA certificate(s) to trust (tallyctl --cacert), e.g. the cluster's ca.pem from
  // scripts/make-certs. Empty: the system's default trust store.
  std::string ca_file;
};

// A bearer token as the tools take it: trailing newlines, carriage returns and spaces dropped (a
// token pasted into a shell, or the line of a token file).
void TrimToken(std::string* token);

// Reads a bearer token from the first line of `path`, trimmed. False when the file is unreadable
// or empty of lines.
bool ReadTokenFile(const std::string& path, std::string* token);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;

  // The first header named `name` (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const;
};

inline constexpr std::size_t kMaxResponseBodyBytes = std::size_t{256} << 20;

class HttpClient {
 public:
  // Connects lazily, on the first request. A CA file that cannot be loaded is reported then, as a
  // transport failure of that request.
  HttpClient(Url url, std::chrono::milliseconds timeout, ClientTls tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method target` (target is appended to the URL's prefix) with `body` and `headers`,
  // reusing the open connection when the server kept it alive. Adds Host, Content-Length and, for a
  // non-empty body, Content-Type: application/json unless `headers` already sets it.
  bool Request(std::string_view method, std::string_view target, std::string_view body,
               const Headers& headers, HttpResponse* response, std::string* error);

  // Sends raw bytes on a fresh connection (inside TLS for https) and reads one response: for
  // requests a well-behaved client cannot express (broken framing, lying Content-Length).
  bool RawRequest(std::string_view bytes, HttpResponse* response, std::string* error);

  const Url& url() const { return url_; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

 private:
  struct Impl;
  Url url_;
  std::chrono::milliseconds timeout_;
  ClientTls tls_;
  std::unique_ptr<Impl> impl_;
};

// Reads JSON text messages from a WebSocket endpoint (tallyd's /v1/stream): ws://, or wss:// for
// an https URL; and sends some (a stream's requests and auth message). Not thread-safe, not
// copyable, like HttpClient.
class WsReader {
 public:
  // `connect_timeout` bounds connecting with the TLS handshake (https), then the upgrade.
  WsReader(Url url, std::chrono::milliseconds connect_timeout, ClientTls tls = {});
  ~WsReader();
  WsReader(const WsReader&) = delete;
  WsReader& operator=(const WsReader&) = delete;

  // Connects and completes the upgrade for `target` with `headers`. False with *error if the
  // server refuses (the HTTP status is in the message).
  bool Open(std::string_view target, const Headers& headers, std::string* error);

  // Waits up to `timeout` for the next message. Returns 1 with *message set, 0 on timeout (the
  // connection stays usable), -1 when the connection closed or failed (*error says why; a close by
  // the server names its close code and reason, "stream closed by the server (1008: …)").
  int Next(std::chrono::milliseconds timeout, std::string* message, std::string* error);

  // Sends one message, text or (`binary`) binary, within the connect timeout. False with *error if
  // the connection failed.
  bool Send(std::string_view message, std::string* error, bool binary = false);

  // The subprotocol the server selected in its upgrade answer ("" for none).
  const std::string& protocol() const { return protocol_; }

 private:
  struct Impl;
  Url url_;
  std::chrono::milliseconds connect_timeout_;
  ClientTls tls_;
  std::string protocol_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ctl

#endif  // TALLY_CTL_HTTP_CLIENT_H_
