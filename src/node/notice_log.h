// NoticeLog: turns the replica's notices (Effects::notices: a peer's clock ahead, a peer refused,
// snapshots, rejoin progress, lost history) into log lines and the tally_notices_total counts.
// A skewed peer reports on every heartbeat, so its clock warning is logged at most once per
// region per kClockWarningIntervalMs; every notice is counted.
//
// Threading: io thread only (where the replica's Effects are handled).

#ifndef TALLY_NODE_NOTICE_LOG_H_
#define TALLY_NODE_NOTICE_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/replica.h"

namespace tally::node {

inline constexpr std::uint64_t kClockWarningIntervalMs = 10000;

class NoticeLog {
 public:
  // `regions`: names indexed by RegionId; `max_clock_offset_ms` is quoted in clock warnings.
  NoticeLog(std::vector<std::string> regions, std::uint64_t max_clock_offset_ms)
      : regions_(std::move(regions)),
        max_clock_offset_ms_(max_clock_offset_ms),
        clock_warned_ms_(regions_.size(), 0) {}
  NoticeLog(const NoticeLog&) = delete;
  NoticeLog& operator=(const NoticeLog&) = delete;

  // Logs and counts `notices`, at monotonic time `now_ms`.
  void Handle(const std::vector<Notice>& notices, std::uint64_t now_ms);

  std::uint64_t clock_ahead() const { return clock_ahead_; }
  std::uint64_t peer_refused() const { return peer_refused_; }

 private:
  const std::vector<std::string> regions_;
  const std::uint64_t max_clock_offset_ms_;
  std::vector<std::uint64_t> clock_warned_ms_;  // last clock-ahead line per region
  std::uint64_t clock_ahead_ = 0;
  std::uint64_t peer_refused_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_NOTICE_LOG_H_
