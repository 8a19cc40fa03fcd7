// BackupThread: runs Store::Backup on a thread of its own, one backup at a time, and posts the
// outcome to the io_context. Not on the storage thread: a copy of a large store takes seconds, and
// every group commit (every acknowledgement) would wait behind it. LevelDB serves the copy's
// snapshot reads alongside the storage thread's writes, and the snapshot makes the copy
// consistent.
//
// Threading: Start, Cancel and running() are called on the io thread; the destructor cancels and
// joins.

#ifndef TALLY_NODE_BACKUP_THREAD_H_
#define TALLY_NODE_BACKUP_THREAD_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "core/status.h"
#include "node/net.h"
#include "node/store.h"

namespace tally::node {

class BackupThread {
 public:
  using Done = std::function<void(Status s, const BackupStats& stats)>;
  BackupThread(const Store* store, asio::io_context* io) : store_(store), io_(io) {}
  ~BackupThread();
  BackupThread(const BackupThread&) = delete;
  BackupThread& operator=(const BackupThread&) = delete;

  // Starts copying the store to `dir`; `done` runs on the io thread when it is over. Conflict
  // while another backup runs (two copies would only share the disk with the live store);
  // ResourceExhausted when no thread can be started.
  Status Start(std::string dir, Done done);
  // Asks the backup in progress to stop at its next batch (shutdown); its `done` gets
  // Unavailable.
  void Cancel() { cancel_.store(true, std::memory_order_relaxed); }
  // Waits for the thread; the posted `done` runs only if the io_context still runs.
  void Join();
  bool running() const { return running_; }

 private:
  const Store* const store_;
  asio::io_context* const io_;
  bool running_ = false;  // io thread: from Start until `done` has run
  std::atomic<bool> cancel_{false};
  std::thread thread_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_BACKUP_THREAD_H_
