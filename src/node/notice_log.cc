#include "node/notice_log.h"

#include "node/log.h"

namespace tally::node {

void NoticeLog::Handle(const std::vector<Notice>& notices, std::uint64_t now) {
  for (const Notice& n : notices) {
    const std::string region =
        n.region < regions_.size() ? regions_[n.region] : std::to_string(n.region);
    switch (n.kind) {
      case Notice::Kind::kClockAhead:
        ++clock_ahead_;
        if (n.region < clock_warned_ms_.size() &&
            now >= clock_warned_ms_[n.region] + kClockWarningIntervalMs) {
          clock_warned_ms_[n.region] = now;
          Log(LogLevel::kWarn, "clock of region {} runs {} ms ahead of ours (max_offset_ms {}) {}",
              region, n.value, max_clock_offset_ms_, n.text);
        }
        break;
      case Notice::Kind::kPeerRefused:
        ++peer_refused_;
        Log(LogLevel::kWarn, "refused from region {}: {}", region, n.text);
        break;
      case Notice::Kind::kSnapshotSent:
        Log(LogLevel::kInfo, "snapshot sent to region {}: {}", region, n.text);
        break;
      case Notice::Kind::kSnapshotInstalled:
        Log(LogLevel::kInfo, "snapshot from region {} installed: {}", region, n.text);
        break;
      case Notice::Kind::kRejoin:
        Log(LogLevel::kInfo, "rejoin: {}", n.text);
        break;
      case Notice::Kind::kLostHistory:
        Log(LogLevel::kWarn, "lost history: {}", n.text);
        break;
    }
  }
}

}  // namespace tally::node
