#include "node/process_metrics.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "node/metrics.h"
#include "version/version.h"

namespace tally::node {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Seconds since the epoch at which the machine booted (/proc/stat "btime").
std::optional<std::uint64_t> BootTime() {
  const std::optional<std::string> text = ReadFile("/proc/stat");
  if (!text) return std::nullopt;
  const std::size_t at = text->find("\nbtime ");
  if (at == std::string::npos) return std::nullopt;
  std::uint64_t v = 0;
  const char* begin = text->data() + at + 7;
  if (std::from_chars(begin, text->data() + text->size(), v).ec != std::errc()) return std::nullopt;
  return v;
}

std::optional<std::size_t> OpenFds() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++n;
  if (ec) return std::nullopt;
  return n > 0 ? n - 1 : 0;  // less the descriptor the listing itself holds open
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // Fields from 3 (state) on, space-separated; proc(5) numbers them from 1.
  std::vector<std::string_view> fields;
  std::size_t i = close + 1;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  auto field = [&](std::size_t number, std::uint64_t* v) {
    if (number < 3 || number - 3 >= fields.size()) return false;
    const std::string_view f = fields[number - 3];
    return std::from_chars(f.data(), f.data() + f.size(), *v).ec == std::errc();
  };
  ProcStat s;
  if (!field(14, &s.utime_ticks) || !field(15, &s.stime_ticks) || !field(22, &s.start_ticks) ||
      !field(23, &s.vsize_bytes) || !field(24, &s.rss_pages))
    return std::nullopt;
  return s;
}

void RenderProcessMetrics(std::string* out) {
  AppendHelp("tally_build_info", "gauge", "The build of tallyd that is running: always 1.", out);
  AppendSample("tally_build_info",
               fmt::format("version=\"{}\",revision=\"{}\"", Version(), GitRevision()), 1, out);

  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  const std::optional<std::string> stat_text = ReadFile("/proc/self/stat");
  const std::optional<ProcStat> stat = stat_text ? ParseProcStat(*stat_text) : std::nullopt;
  if (stat && ticks > 0 && page > 0) {
    const double hz = static_cast<double>(ticks);
    AppendHelp("process_cpu_seconds_total", "counter", "User and system CPU time spent.", out);
    AppendSample("process_cpu_seconds_total", "",
                 static_cast<double>(stat->utime_ticks + stat->stime_ticks) / hz, out);
    AppendHelp("process_resident_memory_bytes", "gauge", "Resident memory size.", out);
    AppendSample("process_resident_memory_bytes", "",
                 static_cast<double>(stat->rss_pages) * static_cast<double>(page), out);
    AppendHelp("process_virtual_memory_bytes", "gauge", "Virtual memory size.", out);
    AppendSample("process_virtual_memory_bytes", "", static_cast<double>(stat->vsize_bytes), out);
    if (const std::optional<std::uint64_t> boot = BootTime()) {
      AppendHelp("process_start_time_seconds", "gauge",
                 "Start time of the process since the Unix epoch.", out);
      AppendSample("process_start_time_seconds", "",
                   static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) / hz, out);
    }
  }
  if (const std::optional<std::size_t> fds = OpenFds()) {
    AppendHelp("process_open_fds", "gauge", "Open file descriptors.", out);
    AppendSample("process_open_fds", "", static_cast<double>(*fds), out);
  }
  if (rlimit lim{}; getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    AppendHelp("process_max_fds", "gauge", "Maximum number of open file descriptors.", out);
    AppendSample("process_max_fds", "", static_cast<double>(lim.rlim_cur), out);
  }
}

}  // namespace tally::node
