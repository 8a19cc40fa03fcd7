// ClientPool: the threads that serve client connections when [http] io_threads > 1. Each thread
// runs an io_context of its own, so a connection (an HttpSession, with its TLS) lives on exactly
// one thread and needs no strand: reading, parsing, TLS and writing answers happen there, while the
// replica stays on the io thread. The io thread accepts each connection onto the next thread's
// io_context (round-robin) and hands it over with Serve; what a request asks of the node goes to
// the io thread through the session's SessionRelay, and the answer comes back the same way.
//
// Each thread keeps its own list of sessions for its sweep (CheckTimeouts every
// kClientSweepInterval) and for CloseWhenIdle.
//
// Threading: Start, Serve, CloseWhenIdle and Stop are called on the io thread; Forget on the
// connection's own thread (from its SessionRelay); connections() from any thread. Stop joins every
// thread; destroying the pool destroys what the threads left pending (the sessions), so it must
// outlive everything that may still hold a session — NodeImpl declares it before its io_context.

#ifndef TALLY_NODE_CLIENT_POOL_H_
#define TALLY_NODE_CLIENT_POOL_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "node/net.h"

namespace tally::node {

class HttpSession;

inline constexpr std::chrono::milliseconds kClientSweepInterval{250};

class ClientPool {
 public:
  explicit ClientPool(std::size_t threads);
  ~ClientPool();  // Stop()
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  void Start();
  // The thread the next connection goes to, and its io_context (to accept the socket onto).
  std::size_t Next();
  asio::io_context& context(std::size_t thread) { return workers_[thread]->io; }
  // Serves `session` (made on context(thread)) there: counts it, lists it and starts it.
  void Serve(std::size_t thread, std::shared_ptr<HttpSession> session);
  // On `thread`: the session `id` closed or moved to the io thread.
  void Forget(std::size_t thread, std::uint64_t id);
  // Every session stops reading and closes once its answers are written (shutdown).
  void CloseWhenIdle();
  // Stops every io_context and joins every thread; what they left pending is dropped when the pool
  // is destroyed. Idempotent.
  void Stop();
  // Connections served now (Serve, less Forget).
  std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }
  std::size_t threads() const { return workers_.size(); }

 private:
  struct Worker {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    asio::steady_timer sweep{io};
    std::map<std::uint64_t, std::weak_ptr<HttpSession>> sessions;  // its thread's only
    std::thread thread;
  };
  void ScheduleSweep(Worker* w);
  // A copy of `w`'s live sessions: closing one edits the list.
  static std::vector<std::shared_ptr<HttpSession>> Live(Worker* w);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::size_t next_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<std::size_t> connections_{0};
};

}  // namespace tally::node

#endif  // TALLY_NODE_CLIENT_POOL_H_
