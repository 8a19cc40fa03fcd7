// Log: tallyd's operator log, one line per event on stderr:
//
//   2026-11-21T20:41:07.123Z tallyd[eu] WARN refused peer 127.0.0.1:50412: permission_denied: ...
//
// Lines are written with one write(2) each, so lines from the io and storage threads never
// interleave. The wall clock here is for people reading logs, never for the replica.

#ifndef TALLY_NODE_LOG_H_
#define TALLY_NODE_LOG_H_

#include <fmt/format.h>

#include <string_view>

namespace tally::node {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

// Set once at start: the region tag of every line and the lowest level written.
void InitLog(std::string_view region, LogLevel min_level);
void LogLine(LogLevel level, std::string_view text);
bool LogEnabled(LogLevel level);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tally::node

#endif  // TALLY_NODE_LOG_H_
