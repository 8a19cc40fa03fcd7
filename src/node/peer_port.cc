#include "node/peer_port.h"

#include <fmt/format.h>

#include <utility>

#include "node/log.h"

namespace tally::node {

PeerPort::PeerPort(GossipHost* host)
    : host_(host), acceptor_(host->io()), received_(host->config().regions.size(), 0) {}

Status PeerPort::Listen() {
  return ListenOn(&acceptor_, host_->config().listen_peer, "listen.peer");
}

void PeerPort::StartAccept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || closing_ || host_->stopping()) return;
    if (!ec) {
      Admit(std::move(socket));
    } else {
      Log(LogLevel::kWarn, "accept on {}: {}", host_->config().listen_peer.ToString(),
          ec.message());
    }
    StartAccept();
  });
}

void PeerPort::Close() {
  closing_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  for (auto& [id, weak] : inbound_) {
    if (auto p = weak.lock()) p->Close();
  }
}

// Anyone who can reach the peer port may connect, so a connection is a stranger's until its
// Hello is accepted. Strangers are bounded apart from the regions (which hold one connection each,
// Verified): in all (gossip.max_handshakes), per remote address
// (gossip.max_handshakes_per_address), in time (gossip.handshake_timeout_ms, CheckTimeouts) and in
// bytes (kMaxHandshakeBytes), so they can never take what a region needs. At a bound the oldest
// stranger makes room rather than the newcomer being turned away: a region that redials from
// behind a flood still gets in at once, even from the flood's own address (loopback, NAT), and a
// flood from one address only churns its own connections. Regions are not counted per address:
// on one host, or behind one NAT, every region comes from the same one.
void PeerPort::Admit(tcp::socket socket) {
  const std::uint64_t id = next_id_++;
  auto peer = std::make_shared<InboundPeer>(host_, std::move(socket), id);
  std::shared_ptr<InboundPeer> oldest, oldest_here;
  std::size_t strangers = 0, here = 0;
  for (auto& [other_id, weak] : inbound_) {
    auto p = weak.lock();
    if (!p || p->closed() || p->verified()) continue;
    ++strangers;
    if (!oldest) oldest = p;
    if (p->address() == peer->address()) {
      ++here;
      if (!oldest_here) oldest_here = p;
    }
  }
  if (here >= host_->config().max_handshakes_per_address) {
    oldest_here->Refuse(PeerRefusal::kAddressLimit,
                        fmt::format("{} connections from {} await their Hello "
                                    "(gossip.max_handshakes_per_address); the oldest makes room",
                                    here, peer->address()));
  } else if (strangers >= host_->config().max_handshakes) {
    oldest->Refuse(PeerRefusal::kHandshakeLimit,
                   fmt::format("{} connections await their Hello (gossip.max_handshakes); the "
                               "oldest makes room",
                               strangers));
  }
  inbound_[id] = peer;
  peer->Start();
}

// A region dials us over one connection at a time, so an older connection that claims the same
// region is one its dialler has given up on (a socket left half-open by a partition, a process
// since restarted) or one of a process that is not that region. The newest wins: the real region
// always gets back in when it redials. Two processes claiming one region keep replacing each
// other, which the log shows.
void PeerPort::Verified(const InboundPeer& peer) {
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (!p || p.get() == &peer || p->closed() || !p->verified() || p->region() != peer.region())
      continue;
    Log(LogLevel::kInfo, "gossip connection from region {} ({}) replaced by a newer one ({})",
        host_->config().regions[p->region()].name, p->remote(), peer.remote());
    p->Close();
  }
}

void PeerPort::CheckTimeouts(SteadyTime now) {
  const auto timeout = std::chrono::milliseconds(host_->config().handshake_timeout_ms);
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (p && !p->closed() && !p->verified() && now - p->accepted() > timeout)
      p->Refuse(PeerRefusal::kHandshakeTimeout,
                fmt::format("no accepted Hello within {} ms (gossip.handshake_timeout_ms)",
                            host_->config().handshake_timeout_ms));
  }
  for (std::size_t i = 0; i < kPeerRefusalKinds; ++i) {
    RefusalCount& r = refusals_[i];
    if (r.unlogged == 0 || now - r.last_line < kRefusalLogInterval) continue;
    Log(LogLevel::kWarn, "refused {} more gossip connections ({}) in the last {} s", r.unlogged,
        PeerRefusalName(static_cast<PeerRefusal>(i)),
        std::chrono::duration_cast<std::chrono::seconds>(now - r.last_line).count());
    r.unlogged = 0;
    r.last_line = now;
  }
}

void PeerPort::NoteRefusal(PeerRefusal reason, std::string_view remote, std::string_view why) {
  // The handshake's own refusals (TLS and certificate ones included) count here too, as
  // tally_gossip_refused_total counts both directions; the bounds on strangers do not.
  switch (reason) {
    case PeerRefusal::kHandshakeTimeout:
    case PeerRefusal::kHandshakeLimit:
    case PeerRefusal::kAddressLimit:
    case PeerRefusal::kHandshakeBytes:
    case PeerRefusal::kReceiveBudget:
      break;
    default:
      ++handshake_refusals_;
  }
  RefusalCount& r = refusals_[static_cast<std::size_t>(reason)];
  ++r.total;
  const SteadyTime now = std::chrono::steady_clock::now();
  if (r.total > 1 && now - r.last_line < kRefusalLogInterval) {
    ++r.unlogged;
    return;
  }
  Log(LogLevel::kWarn, "refused gossip connection from {} ({}): {}{}", remote,
      PeerRefusalName(reason), why,
      r.unlogged ? fmt::format(" (and {} more since the last such line)", r.unlogged) : "");
  r.unlogged = 0;
  r.last_line = now;
}

void PeerPort::BufferChanged(std::size_t before, std::size_t after) {
  buffered_ = buffered_ - before + after;
  if (after > before && buffered_ > host_->config().receive_buffer_bytes) EnforceReceiveBudget();
}

// Strangers go first, then the largest partial frame: a region's frame (a snapshot may take
// 4 MiB) is cut only when the regions' own frames alone exceed the budget; that region
// reconnects and the replica re-sends what was not acknowledged.
void PeerPort::EnforceReceiveBudget() {
  while (buffered_ > host_->config().receive_buffer_bytes) {
    std::shared_ptr<InboundPeer> victim;
    for (auto& [id, weak] : inbound_) {
      auto p = weak.lock();
      if (!p || p->closed() || p->buffered() == 0) continue;
      if (!victim || std::pair(!p->verified(), p->buffered()) >
                         std::pair(!victim->verified(), victim->buffered()))
        victim = p;
    }
    if (!victim) break;
    victim->Refuse(
        PeerRefusal::kReceiveBudget,
        fmt::format("partial frames on the peer port hold {} bytes, over "
                    "gossip.receive_buffer_bytes ({}); this {} held {}",
                    buffered_, host_->config().receive_buffer_bytes,
                    victim->verified() ? "region's connection" : "stranger", victim->buffered()));
  }
}

void PeerPort::Closed(std::uint64_t id) {
  asio::post(host_->io(), [this, id] { inbound_.erase(id); });
}

void PeerPort::NoteReceived(RegionId from, std::size_t bytes) {
  if (from < received_.size()) received_[from] += bytes;
}

std::size_t PeerPort::VerifiedFrom(RegionId region) const {
  std::size_t n = 0;
  for (auto& [id, weak] : inbound_) {
    auto in = weak.lock();
    if (in && !in->closed() && in->verified() && in->region() == region) ++n;
  }
  return n;
}

std::size_t PeerPort::handshaking() const {
  std::size_t n = 0;
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (p && !p->closed() && !p->verified()) ++n;
  }
  return n;
}

std::size_t PeerPort::verified() const {
  std::size_t n = 0;
  for (auto& [id, weak] : inbound_) {
    auto p = weak.lock();
    if (p && !p->closed() && p->verified()) ++n;
  }
  return n;
}

}  // namespace tally::node
