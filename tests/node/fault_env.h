// FaultEnv: a leveldb::Env that remembers, per file, how much of it the last Sync made durable,
// and on Crash() puts the file system back to that: every file written since is truncated to its
// size as of its last sync, and files created since the last directory sync are removed. Modelled
// on LevelDB's own db/fault_injection_test.cc (FaultInjectionTestEnv), with its model of the
// directory: syncing a file created since the last directory sync syncs the directory too (so the
// file, and every other file created before it, survives), and a rename carries a file's state.
// It can also fail the next sync of the log without syncing, as a machine that dies before fsync
// returns.
//
// Use: open the store with it, write, close the store (the DB must be closed: Crash edits its
// files), Crash(), reopen. Deletions are not undone (a file deleted before the crash stays
// deleted), as in LevelDB's test.
//
// Thread-safe: LevelDB calls it from its compaction thread as well as the writer's.

#ifndef TALLY_TESTS_NODE_FAULT_ENV_H_
#define TALLY_TESTS_NODE_FAULT_ENV_H_

#include <leveldb/env.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <system_error>

namespace tally::test {

class FaultEnv : public leveldb::EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(leveldb::Env::Default()) {}

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    leveldb::WritableFile* file = nullptr;
    leveldb::Status s = target()->NewWritableFile(name, &file);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      files_[name] = FileState{};
      created_.insert(name);
    }
    *out = new TrackedFile(this, name, file);
    return s;
  }

  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override {
    // What an appendable file already holds counts as synced: it was there before we tracked it.
    std::uint64_t size = 0;
    const bool existed = target()->FileExists(name) && target()->GetFileSize(name, &size).ok();
    leveldb::WritableFile* file = nullptr;
    leveldb::Status s = target()->NewAppendableFile(name, &file);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!files_.count(name)) files_[name] = FileState{size, size};
      if (!existed) created_.insert(name);
    }
    *out = new TrackedFile(this, name, file);
    return s;
  }

  leveldb::Status RemoveFile(const std::string& name) override {
    leveldb::Status s = target()->RemoveFile(name);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      files_.erase(name);
      created_.erase(name);
    }
    return s;
  }

  leveldb::Status RenameFile(const std::string& from, const std::string& to) override {
    leveldb::Status s = target()->RenameFile(from, to);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = files_.find(from); it != files_.end()) {
        files_[to] = it->second;
        files_.erase(from);
      }
      if (created_.erase(from)) created_.insert(to);
    }
    return s;
  }

  // The next Sync of a write-ahead log (*.log) returns IOError without syncing: the write it
  // belonged to was never acknowledged, and its bytes are lost (or torn) by the crash that
  // follows. Only the log's: a compaction's table syncing in the background must not take it.
  void FailNextLogSync() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_sync_ = true;
  }

  // Puts every tracked file back to its size as of its last Sync and removes the files created
  // since the last directory sync. With `torn`, a file keeps a random part of what it had not
  // synced (a write torn by the crash) instead of none of it. Returns the unsynced bytes dropped.
  std::uint64_t Crash(std::mt19937_64* torn = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    std::uint64_t dropped = 0;
    for (const auto& [name, state] : files_) {
      if (created_.count(name) || state.size <= state.synced) continue;
      std::uint64_t keep = state.synced;
      if (torn) keep += (*torn)() % (state.size - state.synced);
      std::error_code ec;
      std::filesystem::resize_file(name, keep, ec);
      if (!ec) dropped += state.size - keep;
    }
    for (const std::string& name : created_) {
      std::error_code ec;
      if (auto it = files_.find(name); it != files_.end()) dropped += it->second.size;
      std::filesystem::remove(name, ec);
    }
    files_.clear();
    created_.clear();
    fail_next_sync_ = false;
    return dropped;
  }

 private:
  struct FileState {
    std::uint64_t size = 0;    // bytes appended
    std::uint64_t synced = 0;  // of which the last successful Sync made durable
  };

  class TrackedFile : public leveldb::WritableFile {
   public:
    TrackedFile(FaultEnv* env, std::string name, leveldb::WritableFile* file)
        : env_(env), name_(std::move(name)), file_(file) {}
    ~TrackedFile() override { delete file_; }
    leveldb::Status Append(const leveldb::Slice& data) override {
      leveldb::Status s = file_->Append(data);
      if (s.ok()) env_->Appended(name_, data.size());
      return s;
    }
    leveldb::Status Close() override { return file_->Close(); }
    leveldb::Status Flush() override { return file_->Flush(); }
    leveldb::Status Sync() override {
      if (env_->TakeSyncFailure(name_))
        return leveldb::Status::IOError(name_, "injected: the machine died before the sync");
      leveldb::Status s = file_->Sync();
      if (s.ok()) env_->Synced(name_);
      return s;
    }

   private:
    FaultEnv* const env_;
    const std::string name_;
    leveldb::WritableFile* const file_;
  };

  void Appended(const std::string& name, std::uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[name].size += n;
  }
  void Synced(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    FileState& f = files_[name];
    f.synced = f.size;
    // LevelDB's model: the first sync of a new file syncs its directory, which makes every file
    // created so far survive a crash (posix LevelDB syncs the directory with each MANIFEST).
    if (created_.count(name)) created_.clear();
  }
  bool TakeSyncFailure(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_next_sync_ || !name.ends_with(".log")) return false;
    fail_next_sync_ = false;
    return true;
  }

  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_
  std::set<std::string> created_;           // guarded by mu_: since the last directory sync
  bool fail_next_sync_ = false;             // guarded by mu_
};

}  // namespace tally::test

#endif  // TALLY_TESTS_NODE_FAULT_ENV_H_
