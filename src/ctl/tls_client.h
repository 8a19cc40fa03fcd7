// Client-side TLS for the tools that call tallyd's client API over https (tallyctl, tally-load,
// the tests' clients): the context that verifies the server's certificate, the per-connection
// settings that tie that check to the host dialled, and handshake failures put in words.
//
// Not a class: functions. Thread-safe. A context is read-only once made, so the connections of one
// io_context may share it (tally-load's do).

#ifndef TALLY_CTL_TLS_CLIENT_H_
#define TALLY_CTL_TLS_CLIENT_H_

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "ctl/http_client.h"

namespace tally::ctl {

// The context for connections to servers: TLS 1.2 or newer, the server's certificate required
// and checked against `tls.ca_file`, or the system's trust store when that is empty. False with
// *error naming the file when it cannot be loaded (missing, unreadable, no certificate in it).
bool MakeClientTlsContext(const ClientTls& tls, std::unique_ptr<boost::asio::ssl::context>* out,
                          std::string* error);

// Prepares one connection's SSL object, before its handshake, for a server reached as `host`: the
// certificate must name it (a DNS subjectAltName, or an IP one when `host` is an IP address, with
// or without [brackets]), and a DNS name is also sent as SNI (an IP address is not: RFC 6066).
// False with *error when OpenSSL refuses the name.
bool SetTlsServerName(SSL* ssl, std::string_view host, std::string* error);

// A failed TLS handshake in words: "certificate verify failed (hostname mismatch)", "timed out",
// or OpenSSL's reason plus a hint when the server seems not to speak TLS at all. `ssl` is the
// connection's SSL object (for the certificate check's own reason), or null.
std::string DescribeTlsError(const boost::system::error_code& ec, const SSL* ssl);

}  // namespace tally::ctl

#endif  // TALLY_CTL_TLS_CLIENT_H_
