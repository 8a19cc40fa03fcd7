// NetProxy: a TCP forwarder for loopback clusters that can cut, heal and delay named links, so a
// test or script can partition regions (or put a client 40 ms from a server) without root,
// network namespaces or tc.
//
// Each route listens on 127.0.0.1 and forwards every accepted connection to one target. Routes
// belong to a link (e.g. "eu-us" carries both eu→us and us→eu gossip); link operations apply to
// all of its routes at once:
//   Cut   closes every open connection of the link and closes new ones as soon as they are
//         accepted, as a network partition looks to a peer that redials;
//   Heal  lets new connections through again;
//   Delay holds every chunk for the given time in each direction before forwarding it (order
//         kept), as one-way latency.
//
// The proxy runs on its own I/O thread, started by the constructor and joined by the destructor.
// Public methods are thread-safe and block until the I/O thread has applied them; they must not be
// called from that thread.

#ifndef TALLY_CTL_NETPROXY_H_
#define TALLY_CTL_NETPROXY_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tally::ctl {

// Per direction of a connection, how much may wait in the proxy before it stops reading: bounds
// memory when a delayed link is fed faster than it drains.
inline constexpr std::size_t kProxyMaxQueuedBytes = std::size_t{8} << 20;

struct ProxyRouteInfo {
  std::uint16_t listen_port = 0;
  std::string target;  // "host:port"
};

struct ProxyLinkInfo {
  std::string name;
  bool cut = false;
  std::int64_t delay_ms = 0;
  std::uint64_t open_connections = 0;
  std::uint64_t accepted = 0;  // connections accepted since start
  std::uint64_t refused_while_cut = 0;
  std::uint64_t bytes_forwarded = 0;  // both directions
  std::vector<ProxyRouteInfo> routes;
};

class NetProxy {
 public:
  NetProxy();
  ~NetProxy();
  NetProxy(const NetProxy&) = delete;
  NetProxy& operator=(const NetProxy&) = delete;

  // Listens on 127.0.0.1:listen_port (0 picks a free port, returned in *bound_port) and forwards
  // to target_host:target_port as part of `link`. False with *error if it cannot listen or the
  // target does not resolve.
  bool AddRoute(const std::string& link, std::uint16_t listen_port, const std::string& target_host,
                std::uint16_t target_port, std::uint16_t* bound_port, std::string* error);

  // Each returns false if no route belongs to `link`.
  bool Cut(const std::string& link);
  bool Heal(const std::string& link);
  bool SetDelay(const std::string& link, std::chrono::milliseconds one_way);

  // Links in name order.
  std::vector<ProxyLinkInfo> Links() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ctl

#endif  // TALLY_CTL_NETPROXY_H_
