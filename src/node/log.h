// Log: tallyd's operator log, one line per event on stderr, as text or (--log-format json) as one
// JSON object per line for a log shipper:
//
//   2026-11-21T20:41:07.123Z tallyd[eu] WARN refused peer 127.0.0.1:50412: permission_denied: ...
//   {"time":"2026-11-21T20:41:07.123Z","region":"eu","level":"warn","msg":"refused peer ..."}
//
// Lines are written with one write(2) each, so lines from the io and storage threads never
// interleave. The wall clock here is for people reading logs, never for the replica.

#ifndef TALLY_NODE_LOG_H_
#define TALLY_NODE_LOG_H_

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace tally::node {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// Set once at start: the region tag of every line, the lowest level written, the format.
void InitLog(std::string_view region, LogLevel min_level, LogFormat format = LogFormat::kText);
// The wall-clock time now as 2026-11-21T20:41:07.123Z (UTC, milliseconds): for people and log
// shippers, never for the replica.
std::string NowIso8601();
void LogLine(LogLevel level, std::string_view text);
bool LogEnabled(LogLevel level);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tally::node

#endif  // TALLY_NODE_LOG_H_
