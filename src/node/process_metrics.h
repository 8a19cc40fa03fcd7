// ProcessMetrics: the families every Prometheus-scraped service exports about itself —
// tally_build_info (version and git revision, src/version) and the standard process_* set
// (CPU seconds, resident and virtual memory, open and maximum file descriptors, start time), read
// from /proc/self on Linux.
//
// A figure that cannot be read (no /proc, a format this code does not know) is left out of the
// page rather than reported as 0. Stateless functions; safe from any thread.

#ifndef TALLY_NODE_PROCESS_METRICS_H_
#define TALLY_NODE_PROCESS_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally::node {

// What /proc/self/stat says, in its own units.
struct ProcStat {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t start_ticks = 0;  // after boot
  std::uint64_t vsize_bytes = 0;
  std::uint64_t rss_pages = 0;
};

// Parses the text of /proc/<pid>/stat (proc(5)): nullopt when it is not in that format. The
// command name, field 2, may hold spaces and parentheses: fields are counted from its last ')'.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// Appends tally_build_info and the process_* families to `out`.
void RenderProcessMetrics(std::string* out);

}  // namespace tally::node

#endif  // TALLY_NODE_PROCESS_METRICS_H_
