// StorageThread: runs Store::Write off the io thread as a group commit. Every batch handed over
// while a write is syncing goes, with the others, into the next write, so the disk never waits for
// the io thread. Batches are written, and their completions posted to the io_context, in the order
// they were handed over.
//
// Threading: Start, Submit and Stop are called on the io thread; Loop (and the Store it drives)
// runs on the thread this class owns; busy_us/idle_us may be read from any thread.

#ifndef TALLY_NODE_STORAGE_THREAD_H_
#define TALLY_NODE_STORAGE_THREAD_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/persist_batch.h"
#include "core/status.h"
#include "node/net.h"
#include "node/store.h"

namespace tally::node {

class StorageThread {
 public:
  // `batches`: how many of the oldest batches handed over and not yet completed this write made
  // durable (with `s` not ok, none of them is known to be).
  using Done = std::function<void(Status s, WriteStats stats, std::size_t batches)>;
  StorageThread(Store* store, asio::io_context* io, Done done);
  ~StorageThread();
  StorageThread(const StorageThread&) = delete;
  StorageThread& operator=(const StorageThread&) = delete;

  void Start();
  // `batch` must stay alive and unchanged until its completion has run.
  void Submit(const PersistBatch* batch);
  // Writes what was handed over (if anything), then joins.
  void Stop();
  // Microseconds spent writing (encoding and the synced write), and waiting with nothing to
  // write. Busy near 100 % means the disk is the bottleneck.
  std::uint64_t busy_us() const { return busy_us_.load(std::memory_order_relaxed); }
  std::uint64_t idle_us() const { return idle_us_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  Store* const store_;
  asio::io_context* const io_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<const PersistBatch*> queue_;  // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
  std::atomic<std::uint64_t> busy_us_{0};
  std::atomic<std::uint64_t> idle_us_{0};
  std::thread thread_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_STORAGE_THREAD_H_
