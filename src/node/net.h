// The Boost.Asio and Beast names tallyd's connection classes share, the bounds on those
// connections (style: put a limit on everything), and how a listener is bound. Internal to
// tallyd. Not a class: names, constants and one function; thread-safe.

#ifndef TALLY_NODE_NET_H_
#define TALLY_NODE_NET_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/config.h"

// clang-format off
// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
// clang-format on

namespace tally::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

inline std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

inline constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr std::size_t kPeerReadChunkBytes = 64 * 1024;
inline constexpr std::size_t kMaxStreamQueuedMessages = 1024;  // per WebSocket, then it is closed
inline constexpr std::size_t kMaxStreams = 256;
// What a client may send in one stream message (a request, or its first-message auth): a larger one
// closes the stream with 1009, "message too big" (Beast's read_message_max).
inline constexpr std::size_t kMaxStreamMessageBytes = 4096;
// How long a stream opened without credentials may take to send its auth message, and how many
// such streams may wait at once (within kMaxStreams): silent sockets must not take every stream.
inline constexpr std::chrono::seconds kStreamAuthTimeout{5};
inline constexpr std::size_t kMaxStreamsAwaitingAuth = 64;
inline constexpr std::chrono::milliseconds kLingerTimeout{1000};
inline constexpr std::chrono::milliseconds kShutdownDrainTimeout{5000};
// What an inbound gossip connection may hold before its Hello is accepted. A Hello takes less
// than 16 KiB (16 regions × 32 fences); anything bigger is a stranger's frame, not a handshake.
inline constexpr std::size_t kMaxHandshakeBytes = 64 * 1024;
// Refusals of one reason are logged at most once per interval, with the count since: a flood of
// connections must not become a flood of log lines (the metric counts every one).
inline constexpr std::chrono::seconds kRefusalLogInterval{10};

// The remote end of `s` as "ip:port" ("?" once it is gone): for log lines and the audit log.
std::string RemoteOf(const tcp::socket& s);

// Opens, binds and listens `acceptor` on `at` (SO_REUSEADDR). InvalidArgument for an address
// that does not parse, IOError when it cannot be bound; both name `what` ("listen.client").
Status ListenOn(tcp::acceptor* acceptor, const Endpoint& at, std::string_view what);

}  // namespace tally::node

#endif  // TALLY_NODE_NET_H_
