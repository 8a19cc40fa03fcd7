#include "node/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace tally::node {

namespace {

std::string g_region = "?";             // written once by InitLog, before any other thread starts
LogFormat g_format = LogFormat::kText;  // likewise
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

std::string_view LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void InitLog(std::string_view region, LogLevel min_level, LogFormat format) {
  g_region = std::string(region);
  g_format = format;
  g_min_level = static_cast<int>(min_level);
}

std::string NowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_min_level.load(); }

void LogLine(LogLevel level, std::string_view text) {
  std::string line;
  if (g_format == LogFormat::kJson) {
    std::string level_name(LevelName(level));
    for (char& c : level_name) c = static_cast<char>(c - 'A' + 'a');
    // error_handler replace: a log line must never throw on bytes that are not UTF-8.
    line =
        nlohmann::ordered_json{
            {"time", NowIso8601()}, {"region", g_region}, {"level", level_name}, {"msg", text}}
            .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
        "\n";
  } else {
    line = fmt::format("{} tallyd[{}] {} {}\n", NowIso8601(), g_region, LevelName(level), text);
  }
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;  // nowhere to report a failing stderr
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace tally::node
