// EventQueue: the simulator's agenda over virtual time.
//
// Events are ordered by (time, insertion counter): two events at the same virtual millisecond run
// in the order they were scheduled, so the order never depends on heap internals and a run is a
// pure function of its seed. An event is a small value (a kind and two integer arguments); bulky
// payloads such as messages live in slabs owned by the component that handles the event.
//
// Not thread-safe; one simulation owns one queue.

#ifndef TALLY_SIM_EVENT_QUEUE_H_
#define TALLY_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <queue>
#include <vector>

namespace tally::sim {

enum class EventKind : std::uint8_t {
  kTick,            // a = region, b = incarnation
  kSyncDone,        // a = region, b = incarnation
  kDeliver,         // b = network slot
  kReconnect,       // a = region, b = peer << 32 | incarnation: call OnConnected(peer)
  kRequestArrives,  // b = workload request slot
  kReplyArrives,    // b = workload reply slot
  kClientTimeout,   // a = client, b = attempt
  kClientWakes,     // a = client
  kFault,           // b = fault schedule index
  kSample,          // report sampling and periodic checks
  kLivenessCheck,   // convergence probe during the liveness phase
};

struct Event {
  std::uint64_t time_ms = 0;
  std::uint64_t order = 0;  // insertion counter: ties at one time run first-scheduled first
  EventKind kind = EventKind::kTick;
  std::uint32_t a = 0;
  std::uint64_t b = 0;
};

class EventQueue {
 public:
  void Schedule(std::uint64_t time_ms, EventKind kind, std::uint32_t a = 0, std::uint64_t b = 0) {
    heap_.push(Event{time_ms, next_order_++, kind, a, b});
  }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  const Event& top() const { return heap_.top(); }
  Event Pop() {
    Event e = heap_.top();
    heap_.pop();
    return e;
  }
  std::uint64_t scheduled() const { return next_order_; }

 private:
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      if (x.time_ms != y.time_ms) return x.time_ms > y.time_ms;
      return x.order > y.order;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  std::uint64_t next_order_ = 0;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_EVENT_QUEUE_H_
