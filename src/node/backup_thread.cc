#include "node/backup_thread.h"

#include <system_error>

namespace tally::node {

BackupThread::~BackupThread() {
  Cancel();
  Join();
}

Status BackupThread::Start(std::string dir, Done done) {
  if (running_) return Status::Conflict("a backup is already running; retry when it is over");
  if (thread_.joinable()) thread_.join();  // the previous backup: over, its `done` has run
  running_ = true;
  try {
    thread_ = std::thread([this, dir = std::move(dir), done = std::move(done)] {
      BackupStats stats;
      Status s = store_->Backup(dir, &stats, &cancel_);
      asio::post(*io_, [this, s = std::move(s), stats, done] {
        running_ = false;
        done(s, stats);
      });
    });
  } catch (const std::system_error& e) {
    // std::thread reports a failure to start one by exception: this is that edge.
    running_ = false;
    return Status::ResourceExhausted(std::string("cannot start a backup thread: ") + e.what());
  }
  return Status::OK();
}

void BackupThread::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace tally::node
