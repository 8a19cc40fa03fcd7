#include "node/client_pool.h"

#include <string>

#include "node/http_session.h"

namespace tally::node {

ClientPool::ClientPool(std::size_t threads) {
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
}

ClientPool::~ClientPool() { Stop(); }

void ClientPool::Start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    ScheduleSweep(worker);
    worker->thread = std::thread([worker] { worker->io.run(); });
  }
}

std::size_t ClientPool::Next() {
  const std::size_t t = next_;
  next_ = (next_ + 1) % workers_.size();
  return t;
}

void ClientPool::Serve(std::size_t thread, std::shared_ptr<HttpSession> session) {
  connections_.fetch_add(1, std::memory_order_relaxed);
  Worker* w = workers_[thread].get();
  asio::post(w->io, [w, session = std::move(session)] {
    w->sessions[session->id()] = session;
    session->Start();
  });
}

void ClientPool::Forget(std::size_t thread, std::uint64_t id) {
  if (workers_[thread]->sessions.erase(id) != 0)
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

std::vector<std::shared_ptr<HttpSession>> ClientPool::Live(Worker* w) {
  std::vector<std::shared_ptr<HttpSession>> live;
  live.reserve(w->sessions.size());
  for (auto& [id, weak] : w->sessions) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  return live;
}

void ClientPool::ScheduleSweep(Worker* w) {
  w->sweep.expires_after(kClientSweepInterval);
  w->sweep.async_wait([this, w](const beast::error_code& ec) {
    if (ec) return;
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto& s : Live(w)) s->CheckTimeouts(now);
    ScheduleSweep(w);
  });
}

void ClientPool::CloseWhenIdle() {
  for (auto& w : workers_) {
    Worker* worker = w.get();
    asio::post(worker->io, [worker] {
      for (auto& s : Live(worker)) s->CloseWhenIdle();
    });
  }
}

void ClientPool::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) {
    w->work.reset();
    w->io.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace tally::node
