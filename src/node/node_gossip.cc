// NodeImpl as GossipHost: what PeerLinks and InboundPeers ask of the node — the replica's side of
// gossip here, the peer port's bookkeeping forwarded to PeerPort — and GET /metrics, which reads
// mostly gossip's counters.

#include <fmt/format.h>

#include "node/node_impl.h"
#include "node/process_metrics.h"

namespace tally::node {

Status NodeImpl::CheckHello(const Hello& hello) const { return replica_->CheckHello(hello); }

Hello NodeImpl::OurHello(RegionId to) const { return replica_->HelloTo(to, durable_applied_); }

void NodeImpl::Deliver(RegionId from, const Message& msg) {
  if (stopping_) return;
  replica_->OnMessage(from, msg, MonoMs(), &effects_);
  HandleEffects();
}

void NodeImpl::LinkUp(RegionId to) {
  replica_->OnConnected(to, MonoMs(), &effects_);
  HandleEffects();
}

void NodeImpl::LinkDown(RegionId to) {
  if (!stopping_) replica_->OnDisconnected(to);
}

void NodeImpl::InboundVerified(const InboundPeer& peer) { peer_port_.Verified(peer); }

void NodeImpl::InboundBufferChanged(std::size_t before, std::size_t after) {
  peer_port_.BufferChanged(before, after);
}

void NodeImpl::InboundClosed(std::uint64_t id) { peer_port_.Closed(id); }

void NodeImpl::NoteRefusal(PeerRefusal reason, std::string_view remote, std::string_view why) {
  peer_port_.NoteRefusal(reason, remote, why);
}

void NodeImpl::NoteReceived(RegionId from, std::size_t bytes) {
  peer_port_.NoteReceived(from, bytes);
}

std::string NodeImpl::RenderMetrics() {
  NodeSample s;
  s.replica = replica_.get();
  s.regions = &region_names_;
  s.self = config_.self;
  s.now_ms = MonoMs();
  s.ops_persisted = ops_persisted_;
  s.store_busy_us = storage_->busy_us();
  s.store_idle_us = storage_->idle_us();
  s.pending_requests = commands_.size();
  s.http_connections = sessions_.size() + (pool_ ? pool_->connections() : 0);
  s.reloads_ok = reloads_ok_;
  s.reloads_refused = reloads_refused_;
  s.history_lines_pruned = history_lines_pruned_;
  for (std::size_t i = 0; i < kClientRefusalKinds; ++i)
    s.client_refusals.emplace_back(ClientRefusalName(static_cast<ClientRefusal>(i)),
                                   client_refusals_[i]);
  s.streams = streams_->size();
  s.gossip_refused = peer_port_.handshake_refusals();
  s.links.resize(links_.size());
  for (RegionId r = 0; r < links_.size(); ++r) {
    const PeerLink* link = links_[r].get();
    if (!link) continue;
    s.links[r] = LinkSample{link->ready(), link->bytes_sent(),
                            peer_port_.received_from(r) + link->bytes_received(), link->dropped(),
                            link->connects()};
    s.gossip_refused += link->refused();
  }
  for (std::size_t i = 0; i < kPeerRefusalKinds; ++i) {
    const auto reason = static_cast<PeerRefusal>(i);
    s.refusals.emplace_back(PeerRefusalName(reason), peer_port_.refusals(reason));
  }
  s.inbound_handshaking = peer_port_.handshaking();
  s.inbound_verified = peer_port_.verified();
  s.inbound_buffered_bytes = peer_port_.buffered_bytes();
  s.notices_clock_ahead = notices_.clock_ahead();
  s.notices_peer_refused = notices_.peer_refused();
  std::string out;
  out.reserve(16 * 1024);
  metrics_.Render(&out);
  RenderNodeMetrics(s, &out);
  RenderProcessMetrics(&out);
  return out;
}

}  // namespace tally::node
