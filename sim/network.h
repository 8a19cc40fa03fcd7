// Network: the simulated wire between regions.
//
// In the default "datagram" mode every directed link (from -> to) delays each message
// independently (so messages reorder), and may lose, duplicate or hold it back further: the weak
// contract core/messages.h asks of a transport. In "stream" mode a link behaves like tallyd's TCP
// connections: messages arrive in the order they were sent, never twice, and a message addressed to
// a process that has since restarted is gone with its connection. Either way a link holds at most
// `capacity` messages in flight and drops what does not fit (a full socket buffer). Partitions cut
// directed links: a link is up when no active partition cuts it. A message is dropped when its link
// is down at send time or at delivery time (the connection broke while it was in flight). A message
// travels as the codec's bytes, as on tallyd's wire: Send encodes it (a message the codec refuses
// never leaves), and the receiving host decodes each delivery (codec::DecodeMessage), so what a
// replica receives went through the real encoding both ways.
//
// Not thread-safe; one simulation owns one network.

#ifndef TALLY_SIM_NETWORK_H_
#define TALLY_SIM_NETWORK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/messages.h"
#include "core/status.h"
#include "sim/event_queue.h"
#include "sim/random.h"

namespace tally::sim {

struct LinkParams {
  std::uint32_t delay_min_ms = 1;
  std::uint32_t delay_max_ms = 20;
  double tail_p = 0;  // chance of an extra delay of up to tail_ms (a slow path)
  std::uint32_t tail_ms = 0;
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;             // chance of an extra delay of up to 4 × delay_max_ms
  std::uint32_t capacity = 4096;  // messages in flight per directed link
  bool stream = false;            // FIFO per link, no duplicates (TCP-like); see above
};

struct NetworkStats {
  std::uint64_t sent = 0;  // messages handed to the network
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t dropped_partition = 0;
  std::uint64_t dropped_capacity = 0;
  std::uint64_t dropped_receiver_down = 0;
  std::uint64_t bytes = 0;                  // encoded size of sent messages
  std::vector<std::uint64_t> sent_by_kind;  // indexed by Message::index()
};

struct InFlight {
  RegionId from = 0;
  RegionId to = 0;
  std::uint64_t sent_ms = 0;
  std::uint64_t to_incarnation = 0;  // the receiving process when it was sent (stream mode)
  std::string bytes;                 // codec::EncodeMessage of what was sent
};

// A named cut of directed links, active between two instants.
struct Partition {
  std::string kind;  // "symmetric", "asymmetric", "partial", "isolate", "split", "final"
  std::vector<std::pair<RegionId, RegionId>> cut;  // directed links
  std::string description;                         // "r0 -/- r2", "r1 isolated", ...
};

// Every directed link among `regions` regions cut: each region alone (a full split).
Partition EveryLinkCut(RegionId regions);

class Network {
 public:
  Network(RegionId regions, LinkParams params, std::uint64_t seed);

  void SetParams(const LinkParams& params) { params_ = params; }
  const LinkParams& params() const { return params_; }

  // Encodes `msg` and hands the bytes to the link from -> to; schedules zero, one or two kDeliver
  // events. `to_incarnation` identifies the receiving process at send time (stream mode drops the
  // message if that process is gone by delivery). Not ok (nothing sent) when the codec refuses
  // the message.
  Status Send(std::uint64_t now_ms, RegionId from, RegionId to, const Message& msg,
              EventQueue* queue, std::uint64_t to_incarnation = 0);
  // Send in two steps, for a host that sends one message to several peers: Encode it once, then
  // SendBytes a copy of the bytes to each. `kind` is the message's Message::index().
  static Status Encode(const Message& msg, std::string* bytes);
  void SendBytes(std::uint64_t now_ms, RegionId from, RegionId to, std::size_t kind,
                 std::string bytes, EventQueue* queue, std::uint64_t to_incarnation = 0);

  // Takes the message in `slot` off the wire. False when it is dropped at delivery (link down).
  bool Take(std::uint64_t slot, InFlight* out);

  // Partitions. Cut/Uncut return the directed links whose state changed (down->up for Uncut).
  std::vector<std::pair<RegionId, RegionId>> Cut(const Partition& p);
  std::vector<std::pair<RegionId, RegionId>> Uncut(const Partition& p);
  // Clears every cut; returns the links that came up.
  std::vector<std::pair<RegionId, RegionId>> HealAll();
  bool up(RegionId from, RegionId to) const { return cuts_[from * n_ + to] == 0; }
  std::size_t in_flight() const { return slots_.size() - free_.size(); }

  void CountReceiverDown() { ++stats_.dropped_receiver_down; }
  void CountLost() { ++stats_.lost; }  // a message taken off the wire and lost (scripted)
  bool stream() const { return params_.stream; }
  const NetworkStats& stats() const { return stats_; }

 private:
  std::uint64_t DrawDelay();
  void Enqueue(std::uint64_t now_ms, RegionId from, RegionId to, std::string bytes,
               EventQueue* queue, std::uint64_t to_incarnation);

  RegionId n_;
  LinkParams params_;
  Rng rng_;
  std::vector<std::uint32_t> cuts_;              // n×n: active partitions cutting from -> to
  std::vector<std::uint32_t> in_flight_;         // n×n
  std::vector<std::uint64_t> last_delivery_ms_;  // n×n, stream mode: deliveries never overtake
  std::vector<InFlight> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<bool> slot_live_;
  NetworkStats stats_;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_NETWORK_H_
