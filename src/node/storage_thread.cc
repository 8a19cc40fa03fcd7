#include "node/storage_thread.h"

#include <chrono>

namespace tally::node {

StorageThread::StorageThread(Store* store, asio::io_context* io, Done done)
    : store_(store), io_(io), done_(std::move(done)) {}

StorageThread::~StorageThread() { Stop(); }

void StorageThread::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void StorageThread::Submit(const PersistBatch* batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(batch);
  }
  cv_.notify_one();
}

void StorageThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StorageThread::Loop() {
  using Clock = std::chrono::steady_clock;
  auto micros = [](Clock::duration d) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  std::vector<const PersistBatch*> group;
  while (true) {
    const Clock::time_point waiting = Clock::now();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || stop_; });
      // Batches already handed over are written even when stopping: they may hold
      // acknowledged-to-be ops, and a half-finished shutdown must not be what loses them.
      if (queue_.empty()) return;
      group.swap(queue_);
    }
    const Clock::time_point writing = Clock::now();
    idle_us_.fetch_add(micros(writing - waiting), std::memory_order_relaxed);
    WriteStats stats;
    Status s = store_->Write(group, &stats);
    busy_us_.fetch_add(micros(Clock::now() - writing), std::memory_order_relaxed);
    const std::size_t n = group.size();
    group.clear();
    asio::post(*io_, [this, s = std::move(s), stats, n] { done_(s, stats, n); });
  }
}

}  // namespace tally::node
